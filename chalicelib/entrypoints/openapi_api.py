"""The API contract (issue 12): GET /openapi.json."""
from __future__ import annotations

from chalice import Blueprint

openapi_api = Blueprint(__name__)
