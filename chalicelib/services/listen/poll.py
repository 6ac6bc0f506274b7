"""The scheduled fetch: poll every enabled source, each on its own.

One source failing (a revoked token, an outage) must not stop the others;
its status item records the last error and success for ``GET /sources``.
A source told to slow down is paused until the platform's reset time.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from chalicelib.domain.errors import AuthFailed, RateLimited
from chalicelib.domain.mention import MAX_QUEUED_BYTES, Mention, queued_size
from chalicelib.observability import logger
from chalicelib.ports import Deps, FetcherFactory
from chalicelib.services.listen.cursor import CursorConflict, poll_source


def poll_all(deps: Deps, fetchers: Dict[str, FetcherFactory], *, log: Any = None) -> List[Dict[str, Any]]:
    now_epoch = int(deps.epoch())
    results = []
    for source in deps.settings.list_sources():
        source_id = source["source_id"]
        if not source.get("enabled", True) or source["kind"] not in fetchers:
            continue  # switched off, or a push-only channel
        if int(source.get("paused_until", 0)) > now_epoch:
            results.append({"source_id": source_id, "outcome": "paused", "paused_until": source["paused_until"]})
            continue
        results.append(_poll_one(source, deps, fetchers[source["kind"]], now_epoch, log))
    return results


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


def _poll_one(source: Dict[str, Any], deps: Deps, fetcher_for: FetcherFactory, now_epoch: int,
              log: Any) -> Dict[str, Any]:
    source_id = source["source_id"]
    try:
        fetch = fetcher_for(source, deps)
        outcome = poll_source(source_id, fetch, deps.settings, _enqueue(deps), max_pages=deps.config.fetch_max_pages)
    except CursorConflict as err:
        return {"source_id": source_id, "outcome": "skipped", "reason": str(err)}
    except Exception as err:  # each source fails alone; the reason is recorded for people
        name = type(err).__name__
        status: Dict[str, Any] = {"last_error": f"{name}: {err}"[:500], "last_error_at": deps.now()}
        if isinstance(err, RateLimited):
            status["paused_until"] = err.resume_at(now_epoch)
            status["paused_reason"] = "rate limited by the platform until its reset time"
        elif isinstance(err, AuthFailed):
            status["state"] = "needs_attention"
        deps.settings.update_source_status(source_id, status)
        if log:
            log.warning("source poll failed", extra={"source_id": source_id, "error": status["last_error"]})
        return {"source_id": source_id, "outcome": "error", "error": status["last_error"]}
    status = {"last_success_at": deps.now(), "last_fetched": outcome.fetched, "state": "ok", "paused_until": 0}
    if outcome.paused_until:
        status["paused_until"] = outcome.paused_until
        status["paused_reason"] = "close to the platform's rate limit; resuming after its reset"
    deps.settings.update_source_status(source_id, status)
    return {"source_id": source_id, "outcome": "ok", "fetched": outcome.fetched, "pages": outcome.pages,
            "complete": outcome.complete}


