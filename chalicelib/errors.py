"""Errors the API turns into HTTP answers; messages are written for a person."""


class ApiError(Exception):
    status = 400


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PermanentFailure(Exception):
    """A queued message that can never succeed: dead-letter it with this reason."""
