"""Polling a source with a cursor: nothing skipped, nothing fetched twice.

Platforms page newest-first. A sweep starts at the newest post and pages back
to the saved ``since`` marker; only when it reaches it does ``since`` move to
the newest marker of the sweep. A sweep cut short (page budget, rate limit)
keeps its place (``page_token``) and its newest marker (``pending_newest``) so
the next run continues where this one stopped. The cursor is written only
after the fetched mentions are enqueued, with a conditional write, so a crash
between fetch and enqueue re-fetches, and dedupe by id drops the repeats.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from chalicelib.domain.mention import Mention
from chalicelib.ports import FetchedPage, SourceStore


@dataclass
class PollOutcome:
    source_id: str
    fetched: int = 0
    pages: int = 0
    complete: bool = True
    paused_until: Optional[int] = None
    cursor: Dict[str, Any] = field(default_factory=dict)


class CursorConflict(Exception):
    """Another invocation moved this source's cursor: its work stands, ours is redundant."""


def newer_marker(a: Optional[str], b: Optional[str]) -> Optional[str]:
    """The later of two markers: numeric ids (longer is larger) or ISO times.

    Taken over the whole sweep, because a comment on an older post can be
    newer than everything on the first page.
    """
    if a is None or b is None:
        return a if b is None else b
    return max(a, b, key=lambda marker: (len(marker), marker))


def poll_source(source_id: str, fetch_page: Callable[[Optional[str], Optional[str]], FetchedPage],
                cursor_store: SourceStore,
                enqueue: Callable[[List[Mention]], Any], *, max_pages: int) -> PollOutcome:
    cursor = cursor_store.get_cursor(source_id)
    version = int(cursor.get("version", 0))
    since = cursor.get("since")
    token = cursor.get("page_token")
    newest = cursor.get("pending_newest")
    outcome = PollOutcome(source_id=source_id)
    while True:
        page = fetch_page(since, token)
        newest = newer_marker(newest, page.newest)
        if page.mentions:
            enqueue(page.mentions)
        outcome.fetched += len(page.mentions)
        outcome.pages += 1
        token = page.next_token
        if not token:
            new_cursor = {"since": newest or since}
            break
        if outcome.pages >= max_pages or page.rate_limit_reset_at:
            new_cursor = {"since": since, "pending_newest": newest, "page_token": token}
            outcome.complete = False
            outcome.paused_until = page.rate_limit_reset_at
            break
    new_cursor = {k: v for k, v in new_cursor.items() if v is not None}
    if new_cursor != {k: v for k, v in cursor.items() if k in ("since", "pending_newest", "page_token")}:
        if not cursor_store.save_cursor(source_id, new_cursor, expected_version=version):
            raise CursorConflict(f"cursor of {source_id} moved during this run")
    outcome.cursor = new_cursor
    return outcome
