"""The API contract (issue 12): ``GET /openapi.json``, the OpenAPI 3.1 document of every route.

Public, like ``/health``: it describes the API and holds no data, and a client needs it before it has a
token. The document is built on the first request (``openapi_spec``), never at a function's cold start,
and kept for the container's life. ``servers`` points at the base path it was fetched from (API
Gateway's stage, ``/api``, or nothing under ``chalice local``), so tools call the same deployment.
"""
from __future__ import annotations

from chalice import Blueprint, Response

openapi_api = Blueprint(__name__)


@openapi_api.route("/openapi.json", methods=["GET"])
def openapi_document():
    from chalicelib.entrypoints.openapi_spec import document

    request = openapi_api.current_request
    context = getattr(request, "context", None) or {}
    full_path = str(context.get("path") or "")
    resource = str(context.get("resourcePath") or "/openapi.json")
    base = full_path[: -len(resource)] if resource and full_path.endswith(resource) else ""
    return Response(body=document(base.rstrip("/")), status_code=200,
                    headers={"Content-Type": "application/json", "Cache-Control": "public, max-age=300"})
