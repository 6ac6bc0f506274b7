"""The scheduled fetch: poll every enabled source, each on its own, concurrently.

One source failing (a revoked token, an outage) must not stop the others;
its status item records the last error and success for ``GET /sources``.
A source told to slow down is paused until the platform's reset time.

Sources are polled by a small pool of threads, each within a time budget
(``FETCH_SOURCE_BUDGET_SECONDS``, counted from when a thread takes the source
up), and the whole run within ``FETCH_RUN_BUDGET_SECONDS``, below the
function's timeout: one platform that hangs cannot make the run time out and
leave every other source unpolled.

A source starts no new page in the last seconds of its budget
(``PAGE_MARGIN_SECONDS``), so it stops cleanly between two pages: what it
enqueued is saved, and ``poll_source`` keeps its place as after a page
budget. One still waiting on the platform when its budget ends is reported
``timeout`` and abandoned: the page it was fetching is left for the next run
(it is not enqueued), the cursor moves at most past what it enqueued before,
and its status is written by the run, never by the abandoned thread. That
thread may finish after the run returned (in Lambda, when the container thaws
for a later invocation, maybe while that one polls the same source): its
cursor write is still conditional and made only after its mentions were
enqueued, so the cursor can be late, never ahead of what is on the queue.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Dict, List, Optional, Tuple

from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import AuthFailed, RateLimited
from chalicelib.domain.mention import MAX_QUEUED_BYTES, Mention, queued_size
from chalicelib.observability import count, logger
from chalicelib.ports import Deps, FetcherFactory
from chalicelib.services.listen.cursor import CursorConflict, PollOutcome, poll_source

# Polling is waiting on the network, not computing: a few threads suffice, and
# few keep the platforms' per-app rate limits and the Lambda's memory in bounds.
MAX_WORKERS = 8
MIN_BUDGET_SECONDS = 1.0
# No new page is started this close to a source's budget: a page takes a
# second or two, so it ends, enqueued and saved, inside the budget.
PAGE_MARGIN_SECONDS = 2.0
# A source whose run changes nothing but the time of its last success (an idle minute, as the one before)
# writes no status: that was a write per source every minute (issue 17). Its last success is written again
# after this long, so GET /sources shows a success at most this old while the source polls well; any other
# change (a failure, a pause, a different count fetched, the first success after a failure) is written at once.
STATUS_REFRESH_SECONDS = 600
# The longest the run waits without looking at the clock again (the clock is
# injected, so it is not only the passing of real time that moves it).
WAIT_SLICE_SECONDS = 0.5

Clock = Callable[[], float]


class SourceBudget:
    """One source's time in one run: counted from when a thread takes it up, never beyond the run's end."""

    def __init__(self, seconds: float, run_deadline: float, clock: Clock) -> None:
        self.seconds = seconds
        self.run_deadline = run_deadline
        self.margin = min(PAGE_MARGIN_SECONDS, seconds / 4)
        self._clock = clock
        self._started_at: Optional[float] = None
        self._abandoned = threading.Event()

    def start(self) -> None:
        self._started_at = self._clock()

    @property
    def deadline(self) -> float:
        if self._started_at is None:
            return self.run_deadline
        return min(self._started_at + self.seconds, self.run_deadline)

    @property
    def started(self) -> bool:
        return self._started_at is not None

    @property
    def abandoned(self) -> bool:
        return self._abandoned.is_set()

    def abandon(self) -> None:
        self._abandoned.set()

    def out_of_time(self) -> bool:
        """True once no new page should start: the run stopped waiting, or too little budget is left."""
        return self.abandoned or self._clock() >= self.deadline - self.margin


def poll_all(deps: Deps, fetchers: Dict[str, FetcherFactory], *, log: Any = None,
             executor: Optional[Executor] = None, clock: Clock = time.monotonic) -> List[Dict[str, Any]]:
    """Poll every due source at once; one result per enabled polled source, in the order listed.

    ``executor`` runs the polls (by default a pool of up to MAX_WORKERS
    threads for this run, left without waiting for abandoned threads);
    ``clock`` measures the budgets (monotonic seconds). Tests inject both.
    """
    run_budget = max(MIN_BUDGET_SECONDS, float(deps.config.fetch_run_budget_seconds))
    source_budget = min(max(MIN_BUDGET_SECONDS, float(deps.config.fetch_source_budget_seconds)), run_budget)
    run_deadline = clock() + run_budget
    now_epoch = int(deps.epoch())
    results: List[Dict[str, Any]] = []
    due: List[Tuple[int, Dict[str, Any], FetcherFactory]] = []
    for source in deps.settings.list_sources():
        source_id = source["source_id"]
        if not source.get("enabled", True) or source["kind"] not in fetchers:
            continue  # switched off, or a push-only channel
        if int(source.get("paused_until", 0)) > now_epoch:
            results.append({"source_id": source_id, "outcome": "paused", "paused_until": source["paused_until"]})
            continue
        results.append({"source_id": source_id, "outcome": "pending"})
        due.append((len(results) - 1, source, fetchers[source["kind"]]))
    if not due:
        return results
    pool = executor or ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(due)), thread_name_prefix="poll")
    try:
        jobs: Dict[Future, Tuple[int, Dict[str, Any], SourceBudget]] = {}
        for index, source, fetcher_for in due:
            budget = SourceBudget(source_budget, run_deadline, clock)
            future = pool.submit(_poll_one, source, deps, fetcher_for, budget)
            jobs[future] = (index, source, budget)
        _collect(jobs, results, deps, clock, log)
    finally:
        if executor is None:
            # Never wait for an abandoned thread: it ends by itself (its HTTP client has a timeout).
            pool.shutdown(wait=False, cancel_futures=True)
    return results


def _collect(jobs: Dict[Future, Tuple[int, Dict[str, Any], SourceBudget]], results: List[Dict[str, Any]],
             deps: Deps, clock: Clock, log: Any) -> None:
    """Wait for each source until its deadline; record each one's result and status from this thread."""
    pending = set(jobs)
    while pending:
        for future in [f for f in pending if f.done()]:
            pending.discard(future)
            index, source, _budget = jobs[future]
            results[index], status = _finished(future, source["source_id"], deps)
            if status is not None and _changes_only_its_time(source, status):
                status = None
            _record_status(deps, source["source_id"], status, log)
        now = clock()
        for future in [f for f in pending if jobs[f][2].deadline <= now]:
            pending.discard(future)
            index, source, budget = jobs[future]
            budget.abandon()
            future.cancel()  # not started yet: it never will
            results[index], status = _timed_out(source["source_id"], budget, deps)
            _record_status(deps, source["source_id"], status, log)
        if pending:
            next_deadline = min(jobs[f][2].deadline for f in pending)
            wait(pending, timeout=min(WAIT_SLICE_SECONDS, max(0.0, next_deadline - clock())),
                 return_when=FIRST_COMPLETED)


def _enqueue(deps: Deps) -> Callable[[List[Mention]], Any]:
    def enqueue(mentions: List[Mention]) -> Any:
        # A post too large for a queue message is left out (and logged) rather than
        # failing every run: the cursor must move past it.
        fitting = [m for m in mentions if queued_size(m) <= MAX_QUEUED_BYTES]
        for mention in mentions:
            if mention not in fitting:
                logger.warning("polled mention too large to queue; left out",
                               extra={"mention_id": mention.id, "bytes": queued_size(mention)})
        return deps.mentions_queue.send_batch(m.to_dict() for m in fitting)
    return enqueue


def _poll_one(source: Dict[str, Any], deps: Deps, fetcher_for: FetcherFactory, budget: SourceBudget) -> PollOutcome:
    """In a worker thread: one source's sweep step. Writes only the cursor (conditionally); never a status."""
    budget.start()
    fetch = fetcher_for(source, deps)
    return poll_source(source["source_id"], fetch, deps.settings, _enqueue(deps),
                       max_pages=deps.config.fetch_max_pages, out_of_time=budget.out_of_time,
                       abandoned=lambda: budget.abandoned)


def _finished(future: Future, source_id: str, deps: Deps) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    """The result and the status fields of a poll that returned or raised."""
    try:
        outcome: PollOutcome = future.result()
    except CursorConflict as err:
        return {"source_id": source_id, "outcome": "skipped", "reason": str(err)}, None
    except Exception as err:  # each source fails alone; the reason is recorded for people
        name = type(err).__name__
        status: Dict[str, Any] = {"last_error": f"{name}: {err}"[:500], "last_error_at": deps.now()}
        if isinstance(err, RateLimited):
            status["paused_until"] = err.resume_at(int(deps.epoch()))
            status["paused_reason"] = "rate limited by the platform until its reset time"
        elif isinstance(err, AuthFailed):
            status["state"] = "needs_attention"
            count("SourceNeedsAttention")  # an alarm watches it: someone must reconnect the account
        return {"source_id": source_id, "outcome": "error", "error": status["last_error"]}, status
    if outcome.timed_out:
        status = {"last_error": f"TimeoutError: stopped after {outcome.pages} page(s) at the end of its "
                                "time budget; the next run continues where it stopped",
                  "last_error_at": deps.now(), "last_fetched": outcome.fetched}
        return {"source_id": source_id, "outcome": "timeout", "fetched": outcome.fetched, "pages": outcome.pages,
                "complete": False}, status
    status = {"last_success_at": deps.now(), "last_fetched": outcome.fetched, "state": "ok", "paused_until": 0}
    if outcome.paused_until:
        status["paused_until"] = outcome.paused_until
        status["paused_reason"] = "close to the platform's rate limit; resuming after its reset"
    return {"source_id": source_id, "outcome": "ok", "fetched": outcome.fetched, "pages": outcome.pages,
            "complete": outcome.complete}, status


def _changes_only_its_time(source: Dict[str, Any], status: Dict[str, Any]) -> bool:
    """True for a success that would write what the source's status says already (state ok, as many
    mentions fetched, not paused, no error since its last success), with a last success less than
    STATUS_REFRESH_SECONDS old: ``source`` is the item as this run listed it."""
    last = source.get("last_success_at")
    if "last_success_at" not in status or not last or str(source.get("last_error_at") or "") > str(last):
        return False  # a failure, the first success, or the first since a failure: people must see it
    if source.get("state") != "ok" or status.get("paused_until") or source.get("paused_until"):
        return False
    if source.get("last_fetched") != status.get("last_fetched"):
        return False
    try:
        age = (parse_iso(status["last_success_at"]) - parse_iso(str(last))).total_seconds()
    except (TypeError, ValueError):
        return False
    return 0 <= age < STATUS_REFRESH_SECONDS


def _timed_out(source_id: str, budget: SourceBudget, deps: Deps) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    if budget.started:
        reason = (f"TimeoutError: the platform did not answer within the source's {budget.seconds:g} s budget; "
                  "the next run continues from its last saved place")
    else:
        reason = "TimeoutError: the run's time budget ran out before this source's turn; the next run polls it"
    return ({"source_id": source_id, "outcome": "timeout", "error": reason},
            {"last_error": reason, "last_error_at": deps.now()})


def _record_status(deps: Deps, source_id: str, status: Optional[Dict[str, Any]], log: Any) -> None:
    if status is None:
        return
    if log and "last_error" in status:
        log.warning("source poll failed", extra={"source_id": source_id, "error": status["last_error"]})
    try:
        deps.settings.update_source_status(source_id, status)
    except Exception as err:  # a status is for people; the other sources' results still count
        logger.warning("source status not recorded", extra={"source_id": source_id, "error": str(err)[:300]})
