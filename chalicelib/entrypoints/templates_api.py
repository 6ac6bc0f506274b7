"""Templates and brand voice over HTTP (issue 12): /admin/templates, /admin/brand-voice, POST /cases/{case_id}/replies/check."""
from __future__ import annotations

from chalice import Blueprint

templates_api = Blueprint(__name__)
