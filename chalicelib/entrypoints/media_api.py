"""Media and reply options over HTTP (issue 12): a case's inbound media, and what can be sent outside the platform's window."""
from __future__ import annotations

from chalice import Blueprint

media_api = Blueprint(__name__)
