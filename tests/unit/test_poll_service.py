"""The scheduled fetch on in-memory fakes: sources polled concurrently, each within its time budget.

The budgets are measured on an injected clock and the polls run on an
injected pool, so a "hanging" platform is a fetcher blocked on an event: the
tests never sleep, and what they check does not depend on timing.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

import pytest

from chalicelib.domain.errors import AuthFailed
from chalicelib.ports import FetchedPage
from chalicelib.services.listen import poll
from chalicelib.services.listen.poll import poll_all
from tests.fakes import fake_deps, mention

HANG_LIMIT = 10  # seconds: a blocked fetcher gives up by itself if a test goes wrong


class ManualClock:
    """Monotonic seconds that move only when a test moves them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingPool(ThreadPoolExecutor):
    """A thread pool that keeps the futures of what it runs, so a test can wait for some of them."""

    def __init__(self, workers: int = 4) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="test-poll")
        self.futures = []

    def submit(self, fn, /, *args, **kwargs):
        future = super().submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future


@pytest.fixture(autouse=True)
def quick_wait_slice(monkeypatch):
    # The run looks at the injected clock again at least this often.
    monkeypatch.setattr(poll, "WAIT_SLICE_SECONDS", 0.01)


def deps_with(*sources, run_budget=25.0, source_budget=20.0, max_pages=5):
    deps = fake_deps()
    deps.config = dataclasses.replace(deps.config, fetch_run_budget_seconds=run_budget,
                                      fetch_source_budget_seconds=source_budget, fetch_max_pages=max_pages)
    for source_id, kind in sources:
        deps.settings.put_source({"source_id": source_id, "kind": kind, "account_id": "1", "enabled": True})
    return deps


def one_page(source_id, *ids, next_token=None):
    mentions = [mention(platform_id=i, source_id=source_id) for i in ids]
    return FetchedPage(mentions, max(ids, key=int) if ids else None, next_token)


def queued_ids(deps):
    import json

    return sorted(json.loads(body)["platform_id"] for body in deps.mentions_queue.bodies)


def test_a_hanging_source_times_out_while_the_others_finish_and_its_cursor_stays_put():
    clock, pool = ManualClock(), RecordingPool(workers=4)
    deps = deps_with(("a:fast", "fast"), ("b:hang", "hang"), ("c:fast", "fast"))
    released, calls = threading.Event(), []

    def fast(source, _deps):
        return lambda since, token: one_page(source["source_id"], "10" if source["source_id"] == "a:fast" else "20")

    def hang(source, _deps):
        def fetch(since, token):
            calls.append("hang")
            # The platform answers nothing until the other sources are done, and then too late.
            limit = time.monotonic() + HANG_LIMIT
            while len(pool.futures) < 3 and time.monotonic() < limit:
                time.sleep(0.001)
            wait([pool.futures[0], pool.futures[2]], timeout=HANG_LIMIT)  # a:fast and c:fast
            clock.advance(30)
            released.wait(HANG_LIMIT)
            return one_page(source["source_id"], "99")
        return fetch

    try:
        results = poll_all(deps, {"fast": fast, "hang": hang}, executor=pool, clock=clock)
        by_id = {r["source_id"]: r for r in results}
        assert [r["source_id"] for r in results] == ["a:fast", "b:hang", "c:fast"]  # the order sources are listed
        assert by_id["a:fast"]["outcome"] == by_id["c:fast"]["outcome"] == "ok"
        assert by_id["b:hang"]["outcome"] == "timeout" and "20 s budget" in by_id["b:hang"]["error"]
        assert queued_ids(deps) == ["10", "20"]
        assert deps.settings.get_cursor("a:fast")["since"] == "10"
        status = deps.settings.get_source("b:hang")
        assert "TimeoutError" in status["last_error"] and status["last_error_at"]
        assert "last_success_at" not in status and status.get("state") != "needs_attention"
    finally:
        # The platform finally answers, after the run returned: nothing of it may land.
        released.set()
        pool.shutdown(wait=True)
    assert calls == ["hang"]
    assert deps.settings.get_cursor("b:hang") == {"version": 0}
    assert queued_ids(deps) == ["10", "20"]
    assert "last_success_at" not in deps.settings.get_source("b:hang")  # the late thread wrote no status


def test_a_source_out_of_time_between_pages_keeps_what_it_enqueued_and_continues_next_run():
    clock, pool = ManualClock(), RecordingPool(workers=2)
    deps = deps_with(("x:slow", "slow"))
    pages = {None: ("9", "8", "2"), "2": ("7", "6", "4"), "4": ("5", None, None)}
    fetched_tokens = []

    def slow(source, _deps):
        def fetch(since, token):
            fetched_tokens.append(token)
            first, second, next_token = pages[token]
            clock.advance(9)  # each page takes 9 s: after two, too little of the 20 s budget is left
            return one_page(source["source_id"], *[i for i in (first, second) if i], next_token=next_token)
        return fetch

    with pool:
        first = poll_all(deps, {"slow": slow}, executor=pool, clock=clock)
    assert first == [{"source_id": "x:slow", "outcome": "timeout", "fetched": 4, "pages": 2, "complete": False}]
    cursor = deps.settings.get_cursor("x:slow")
    assert cursor["page_token"] == "4" and cursor["pending_newest"] == "9" and "since" not in cursor
    assert "TimeoutError" in deps.settings.get_source("x:slow")["last_error"]

    with RecordingPool(workers=2) as again:
        second = poll_all(deps, {"slow": slow}, executor=again, clock=clock)
    assert second[0]["outcome"] == "ok" and second[0]["complete"]
    assert fetched_tokens == [None, "2", "4"]  # continued where it stopped: nothing fetched twice
    assert deps.settings.get_cursor("x:slow")["since"] == "9"
    assert queued_ids(deps) == ["5", "6", "7", "8", "9"]


def test_sources_waiting_for_a_thread_when_the_run_budget_ends_are_not_started():
    clock, pool = ManualClock(), RecordingPool(workers=1)
    deps = deps_with(("a:hang", "hang"), ("b:fast", "fast"), run_budget=25, source_budget=20)
    released, started = threading.Event(), []

    def hang(source, _deps):
        def fetch(since, token):
            started.append(source["source_id"])
            clock.advance(26)  # past the run's budget too
            released.wait(HANG_LIMIT)
            return one_page(source["source_id"], "1")
        return fetch

    def fast(source, _deps):
        started.append(source["source_id"])
        return lambda since, token: one_page(source["source_id"], "2")

    try:
        results = {r["source_id"]: r for r in poll_all(deps, {"hang": hang, "fast": fast}, executor=pool,
                                                          clock=clock)}
    finally:
        released.set()
        pool.shutdown(wait=True)
    assert results["a:hang"]["outcome"] == results["b:fast"]["outcome"] == "timeout"
    assert "before this source's turn" in results["b:fast"]["error"]
    assert started == ["a:hang"]  # the waiting source never ran
    assert deps.settings.get_cursor("b:fast") == {"version": 0} and deps.mentions_queue.bodies == []


def test_errors_pauses_and_successes_are_reported_per_source_as_before():
    clock, pool = ManualClock(), RecordingPool()
    deps = deps_with(("a:ok", "ok"), ("b:auth", "auth"), ("c:paused", "ok"), ("d:off", "ok"), ("e:push", "push"))
    deps.settings.update_source_status("c:paused", {"paused_until": int(deps.epoch()) + 600})
    deps.settings.update_source_status("d:off", {"enabled": False})

    def refused(source, _deps):
        def fetch(since, token):
            raise AuthFailed("token revoked")
        return fetch

    with pool:
        results = poll_all(deps, {"ok": lambda s, d: lambda since, token: one_page(s["source_id"], "5"),
                                  "auth": refused}, executor=pool, clock=clock)
    by_id = {r["source_id"]: r for r in results}
    assert set(by_id) == {"a:ok", "b:auth", "c:paused"}  # switched off and push-only sources are not polled
    assert by_id["a:ok"]["outcome"] == "ok" and by_id["c:paused"]["outcome"] == "paused"
    assert by_id["b:auth"]["outcome"] == "error"
    assert deps.settings.get_source("b:auth")["state"] == "needs_attention"
    assert deps.settings.get_source("a:ok")["state"] == "ok"


def test_the_default_pool_returns_on_time_without_waiting_for_a_hung_platform():
    deps = deps_with(("a:hang", "hang"), ("b:fast", "fast"), run_budget=1, source_budget=1)
    released = threading.Event()

    def hang(source, _deps):
        def fetch(since, token):
            released.wait(HANG_LIMIT)
            return one_page(source["source_id"], "1")
        return fetch

    started = time.monotonic()
    try:
        results = {r["source_id"]: r["outcome"] for r in poll_all(
            deps, {"hang": hang, "fast": lambda s, d: lambda since, token: one_page(s["source_id"], "2")})}
        took = time.monotonic() - started
    finally:
        released.set()
    assert results == {"a:hang": "timeout", "b:fast": "ok"}
    assert took < HANG_LIMIT / 2  # about the 1 s budget, never the platform's 10 s


def test_a_run_that_changes_only_the_time_of_a_success_writes_no_status_until_it_is_ten_minutes_old():
    # Issue 17: every run wrote every source's status, an idle minute as much as a busy one.
    from tests.fakes import Clock

    clock = Clock()
    deps = dataclasses.replace(deps_with(("a:x", "x")), now=clock.now, epoch=clock.epoch)
    posts, failing = ["7"], []
    written = []
    update = deps.settings.update_source_status
    deps.settings.update_source_status = lambda source_id, fields: written.append(dict(fields)) or update(
        source_id, fields)

    def fetcher(source, _deps):
        def fetch(since, token):
            if failing:
                raise ConnectionError("Graph is down")
            return one_page(source["source_id"], *[p for p in posts if since is None or int(p) > int(since)])
        return fetch

    def run_once():
        clock.advance(minutes=1)
        with RecordingPool(workers=1) as pool:
            [result] = poll_all(deps, {"x": fetcher}, executor=pool, clock=ManualClock())
        return result["outcome"]

    assert run_once() == "ok" and written[-1]["last_fetched"] == 1  # the first success
    assert run_once() == "ok" and len(written) == 2 and written[-1]["last_fetched"] == 0  # a different count
    first_idle = deps.settings.get_source("a:x")["last_success_at"]
    for _ in range(9):  # idle minutes like the one before: nothing to write
        assert run_once() == "ok"
    assert len(written) == 2 and deps.settings.get_source("a:x")["last_success_at"] == first_idle
    assert run_once() == "ok" and len(written) == 3  # its last success is ten minutes old: written again
    assert deps.settings.get_source("a:x")["last_success_at"] == clock.now()

    posts.append("8")
    assert run_once() == "ok" and len(written) == 4 and written[-1]["last_fetched"] == 1  # something new
    assert queued_ids(deps) == ["7", "8"]
    posts.clear()
    assert run_once() == "ok" and len(written) == 5  # nothing new again: 1 -> 0
    failing.append(True)
    assert run_once() == "error" and "ConnectionError" in written[-1]["last_error"]
    failing.clear()
    assert run_once() == "ok" and len(written) == 7  # the first success after a failure is always written
    assert deps.settings.get_source("a:x")["last_success_at"] == clock.now()
    assert run_once() == "ok" and len(written) == 7
