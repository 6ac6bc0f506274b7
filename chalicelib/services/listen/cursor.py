"""Polling a source with a cursor: nothing skipped, nothing fetched twice.

Platforms page newest-first. A sweep starts at the newest post and pages back
to the saved ``since`` marker; only when it reaches it does ``since`` move to
the newest marker of the sweep. A sweep cut short (page budget, rate limit)
keeps its place (``page_token``) and its newest marker (``pending_newest``) so
the next run continues where this one stopped. The cursor is written only
after the fetched mentions are enqueued, with a conditional write, so a crash
between fetch and enqueue re-fetches, and dedupe by id drops the repeats.

A sweep out of time (``out_of_time``, asked before each page) stops the same
way as one out of pages: what it enqueued stays done, and the next run
continues from its place. A sweep whose caller stopped waiting for it
(``abandoned``, asked after each fetch) leaves the page it just fetched for
the next run: only what was enqueued before is saved.
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
    timed_out: bool = False  # stopped between pages by its time budget; continues next run
    cursor: Dict[str, Any] = field(default_factory=dict)


_CURSOR_KEYS = ("since", "pending_newest", "page_token")


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
                enqueue: Callable[[List[Mention]], Any], *, max_pages: int,
                out_of_time: Optional[Callable[[], bool]] = None,
                abandoned: Optional[Callable[[], bool]] = None) -> PollOutcome:
    """One sweep step of a source: up to ``max_pages`` pages, fewer when out of time or abandoned."""
    cursor = cursor_store.get_cursor(source_id)
    version = int(cursor.get("version", 0))
    saved = {k: v for k, v in cursor.items() if k in _CURSOR_KEYS}
    since = cursor.get("since")
    token = cursor.get("page_token")
    newest = cursor.get("pending_newest")
    outcome = PollOutcome(source_id=source_id)
    while True:
        if out_of_time is not None and out_of_time():
            outcome.timed_out = True
            page = None
        else:
            page = fetch_page(since, token)
            if abandoned is not None and abandoned():
                outcome.timed_out, page = True, None  # left for the next run, which fetches it again
        if page is None:
            outcome.complete = False
            if not outcome.pages:  # nothing done: the cursor stays as it is
                outcome.cursor = saved
                return outcome
            new_cursor = {"since": since, "pending_newest": newest, "page_token": token}
            break
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
    if new_cursor != saved:
        if not cursor_store.save_cursor(source_id, new_cursor, expected_version=version):
            raise CursorConflict(f"cursor of {source_id} moved during this run")
    outcome.cursor = new_cursor
    return outcome
