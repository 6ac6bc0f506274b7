"""Cursor rules, with an in-memory cursor store and a scripted platform."""
import pytest

from chalicelib.domain.mention import Author, Mention
from chalicelib.ports import FetchedPage
from chalicelib.services.listen.cursor import CursorConflict, poll_source


class MemoryCursors:
    def __init__(self):
        self.cursors = {}

    def get_cursor(self, source_id):
        return dict(self.cursors.get(source_id, {"version": 0}))

    def save_cursor(self, source_id, cursor, *, expected_version):
        if self.cursors.get(source_id, {"version": 0})["version"] != expected_version:
            return False
        self.cursors[source_id] = {**cursor, "version": expected_version + 1}
        return True


class Timeline:
    """A platform holding posts with increasing ids, paged newest first."""

    def __init__(self, ids, page_size=2):
        self.ids = list(ids)
        self.page_size = page_size
        self.calls = []

    def fetch(self, since, token):
        self.calls.append((since, token))
        newer = sorted((i for i in self.ids if since is None or i > int(since)), reverse=True)
        start = int(token) if token else 0
        chunk = newer[start:start + self.page_size]
        more = start + self.page_size < len(newer)
        mentions = [Mention(platform="x", kind="mention", platform_id=str(i), text=f"post {i}",
                            created_at="2026-11-23T00:00:00Z", author=Author(id="1")) for i in chunk]
        return FetchedPage(mentions, str(newer[0]) if newer and not token else (str(chunk[0]) if chunk else None),
                           str(start + self.page_size) if more else None)


def run(timeline, cursors, enqueued, max_pages=10):
    return poll_source("x:mentions:1", timeline.fetch, cursors, lambda ms: enqueued.extend(m.platform_id for m in ms),
                       max_pages=max_pages)


def test_pages_to_the_end_then_only_fetches_newer_posts():
    timeline, cursors, enqueued = Timeline([1, 2, 3, 4, 5]), MemoryCursors(), []
    run(timeline, cursors, enqueued)
    assert sorted(enqueued, key=int) == ["1", "2", "3", "4", "5"]
    timeline.ids += [6, 7]
    run(timeline, cursors, enqueued)
    assert enqueued[5:] == ["7", "6"]


def test_a_run_cut_short_continues_next_time_without_skipping():
    timeline, cursors, enqueued = Timeline(range(1, 10), page_size=2), MemoryCursors(), []
    outcome = run(timeline, cursors, enqueued, max_pages=2)
    assert not outcome.complete and len(enqueued) == 4
    timeline.ids += [10]  # arrives between runs; the next sweep picks it up
    run(timeline, cursors, enqueued, max_pages=2)
    run(timeline, cursors, enqueued, max_pages=2)
    run(timeline, cursors, enqueued, max_pages=5)
    assert sorted(set(enqueued), key=int) == [str(i) for i in range(1, 11)]


def test_crash_between_fetch_and_enqueue_refetches_and_loses_nothing():
    timeline, cursors, enqueued = Timeline([1, 2, 3]), MemoryCursors(), []

    def broken_enqueue(_mentions):
        raise ConnectionError("SQS unreachable")

    with pytest.raises(ConnectionError):
        poll_source("x:mentions:1", timeline.fetch, cursors, broken_enqueue, max_pages=10)
    assert cursors.get_cursor("x:mentions:1") == {"version": 0}  # cursor did not move
    run(timeline, cursors, enqueued)
    assert sorted(enqueued) == ["1", "2", "3"]


def test_a_rate_limited_page_stops_the_sweep_and_keeps_the_place():
    timeline, cursors, enqueued = Timeline([1, 2, 3, 4]), MemoryCursors(), []
    original = timeline.fetch
    timeline.fetch = lambda since, token: FetchedPage(**{**original(since, token).__dict__, "rate_limit_reset_at": 1234})
    outcome = run(timeline, cursors, enqueued)
    assert outcome.paused_until == 1234 and outcome.pages == 1
    assert cursors.get_cursor("x:mentions:1")["page_token"] == "2"


def test_a_concurrent_run_that_moved_the_cursor_wins():
    timeline, cursors = Timeline([1, 2]), MemoryCursors()

    def fetch_while_another_run_saves(since, token):
        cursors.cursors["x:mentions:1"] = {"since": "2", "version": 1}
        return timeline.fetch(since, token)

    with pytest.raises(CursorConflict):
        poll_source("x:mentions:1", fetch_while_another_run_saves, cursors, lambda ms: None, max_pages=5)


def test_a_cursor_that_did_not_move_is_not_written_and_one_that_moved_is():
    # An idle minute writes nothing (issue 17); a new post moves the cursor, and that is written.
    timeline, cursors, enqueued, saved = Timeline([1, 2]), MemoryCursors(), [], []
    save = cursors.save_cursor
    cursors.save_cursor = lambda source_id, cursor, *, expected_version: saved.append(dict(cursor)) or save(
        source_id, cursor, expected_version=expected_version)
    run(timeline, cursors, enqueued)
    assert saved == [{"since": "2"}]
    for _ in range(3):
        assert run(timeline, cursors, enqueued).cursor == {"since": "2"}
    assert saved == [{"since": "2"}] and cursors.get_cursor("x:mentions:1") == {"since": "2", "version": 1}
    timeline.ids.append(3)
    run(timeline, cursors, enqueued)
    assert saved == [{"since": "2"}, {"since": "3"}] and enqueued == ["2", "1", "3"]
