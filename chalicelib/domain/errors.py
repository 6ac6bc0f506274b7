"""Errors, by type, for the whole code base.

Input errors carry the HTTP status an entry point answers with and a message
written for a person. Platform errors share one taxonomy so that services
decide by type (retry later, pause the source, ask a person) whatever the
platform; the X and Graph adapters raise subclasses of these.
"""
from __future__ import annotations

from typing import Optional


class ApiError(Exception):
    status = 400


class BadRequest(ApiError):
    status = 400


class PayloadTooLarge(BadRequest):
    """A body over its limit (HTTP 413): a BadRequest, so whatever refuses bad input refuses it too."""
    status = 413


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unavailable(ApiError):
    """Something behind the API failed for a passing reason; the message says what to do."""

    status = 503


class PermanentFailure(Exception):
    """A queued message that can never succeed: dead-letter it with this reason."""


class MessageTooLarge(PermanentFailure):
    """Bigger than one queue message may be: it can never be sent, and nothing of it was.

    A PermanentFailure, so a pipeline stage whose output cannot be queued
    dead-letters its input with this reason instead of retrying it.
    """

    def __init__(self, queue: str, size: int, limit: int, index: Optional[int] = None) -> None:
        which = "a message" if index is None else f"message {index} of the batch"
        super().__init__(f"{which} is {size} bytes; {queue} takes at most {limit} "
                         f"(SQS allows 256 KiB with its attributes); nothing was sent")
        self.queue, self.size, self.limit, self.index = queue, size, limit, index


class RetryLater(Exception):
    """A queued message that may succeed later: deliver it again after ``delay_seconds``."""

    def __init__(self, message: str, *, delay_seconds: int = 0):
        super().__init__(message)
        self.delay_seconds = max(0, int(delay_seconds))


class InvalidCursor(BadRequest):
    """A pagination cursor this API did not issue, or issued for another query."""


# ---- platforms ------------------------------------------------------------------------

class PlatformError(Exception):
    """A platform API call failed; the subclass says what a caller can do about it."""

    platform = ""


class RateLimited(PlatformError):
    """Stop calling until ``resume_at``: the platform's reset time, or now + retry_after."""

    reset_at: Optional[int] = None      # unix seconds, when the platform gives it
    retry_after: Optional[int] = None   # seconds, when it gives a duration instead

    def resume_at(self, now_epoch: int) -> int:
        if self.reset_at:
            return int(self.reset_at)
        return now_epoch + int(self.retry_after or 60)


class AuthFailed(PlatformError):
    """The token is invalid, expired or lacks a permission: a person must reconnect the account."""


class TransientFailure(PlatformError):
    """The platform failed or could not be reached, before anything was written: try again later."""


class Refused(PlatformError):
    """The platform refused this one request; asking again will not change the answer."""

    window_closed = False   # Meta: outside the messaging window; the customer must write again

    @property
    def duplicate(self) -> bool:
        """X: the same text was already posted (an earlier attempt went through)."""
        return False


class AmbiguousOutcome(PlatformError):
    """A write whose outcome is unknown (timeout after sending, 5xx, an answer without an id).

    It may have reached the customer. Posting again could answer them twice,
    so the caller must look before it writes again.
    """
