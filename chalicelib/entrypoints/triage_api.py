"""Triage learning over HTTP (issue 14): no-case mentions to review, promote/confirm, corrections export, models and rollback."""
from __future__ import annotations

from chalice import Blueprint

triage_api = Blueprint(__name__)
