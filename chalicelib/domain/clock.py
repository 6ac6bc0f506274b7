"""Timestamps as sortable ISO 8601 UTC strings, the one format we store."""
from __future__ import annotations

from datetime import datetime, timezone


def now_iso() -> str:
    return to_iso(datetime.now(timezone.utc))


def to_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
