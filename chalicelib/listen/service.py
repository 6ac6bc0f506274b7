"""The scheduled fetch: poll every enabled source, each on its own.

One source failing (a revoked token, an outage) must not stop the others;
its status item records the last error and success for ``GET /sources``.
A source told to slow down is paused until the platform's reset time.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from chalicelib.listen.polling import CursorConflict, FetchedPage, poll_source
from chalicelib.mention import Mention

AUTH_ERRORS = {"XAuthError", "MetaAuthError"}
RATE_ERRORS = {"XRateLimited", "MetaRateLimited"}


def poll_all(deps: Any, fetcher_for: Callable[[Dict[str, Any], Any], Callable], *, log: Any = None) -> List[Dict[str, Any]]:
    now_epoch = int(deps.epoch())
    results = []
    for source in deps.settings.list_sources():
        source_id = source["source_id"]
        if not source.get("enabled", True) or source["kind"] not in FETCHERS:
            continue  # switched off, or a push-only channel
        if int(source.get("paused_until", 0)) > now_epoch:
            results.append({"source_id": source_id, "outcome": "paused", "paused_until": source["paused_until"]})
            continue
        results.append(_poll_one(source, deps, fetcher_for, now_epoch, log))
    return results


def _enqueue(deps: Any) -> Callable[[List[Mention]], Any]:
    return lambda mentions: deps.mentions_queue.send_batch(m.to_dict() for m in mentions)


def _poll_one(source: Dict[str, Any], deps: Any, fetcher_for: Callable, now_epoch: int, log: Any) -> Dict[str, Any]:
    source_id = source["source_id"]
    try:
        fetch = fetcher_for(source, deps)
        outcome = poll_source(source_id, fetch, deps.settings, _enqueue(deps), max_pages=deps.config.fetch_max_pages)
    except CursorConflict as err:
        return {"source_id": source_id, "outcome": "skipped", "reason": str(err)}
    except Exception as err:  # each source fails alone; the reason is recorded for people
        name = type(err).__name__
        status: Dict[str, Any] = {"last_error": f"{name}: {err}"[:500], "last_error_at": deps.now()}
        if name in RATE_ERRORS:
            reset = int(getattr(err, "reset_at", 0) or (now_epoch + int(getattr(err, "retry_after", 60) or 60)))
            status["paused_until"] = reset
            status["paused_reason"] = "rate limited by the platform until its reset time"
        elif name in AUTH_ERRORS:
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


def x_mentions_fetcher(source: Dict[str, Any], deps: Any) -> Callable:
    client = deps.x_client()

    def fetch(since: Any, token: Any) -> FetchedPage:
        page = client.mentions_page(source["account_id"], since_id=since, pagination_token=token,
                                    source_id=source["source_id"])
        return FetchedPage(page.mentions, page.newest_id, page.next_token, _reset_if_exhausted(page.rate_limit))
    return fetch


def _reset_if_exhausted(rate_limit: Any):
    if rate_limit is not None and rate_limit.exhausted(reserve=1):
        return rate_limit.reset_at
    return None


def x_search_fetcher(source: Dict[str, Any], deps: Any) -> Callable:
    """Untagged mentions: posts naming the brand or its products without @-tagging it."""
    from chalicelib.platforms.x import build_search_query

    client = deps.x_client()
    query = build_search_query(source["terms"], source["handle"])

    def fetch(since: Any, token: Any) -> FetchedPage:
        page = client.search_recent_page(query, since_id=since, next_token=token,
                                         brand_user_id=source["account_id"], source_id=source["source_id"])
        # Posts that tag the brand come through the mentions source already.
        untagged = [m for m in page.mentions if not m.addressed_to_brand]
        return FetchedPage(untagged, page.newest_id, page.next_token, _reset_if_exhausted(page.rate_limit))
    return fetch


def x_dm_fetcher(source: Dict[str, Any], deps: Any) -> Callable:
    client = deps.x_client()

    def fetch(since: Any, token: Any) -> FetchedPage:
        page = client.dm_events_page(since_id=since, pagination_token=token, brand_user_id=source["account_id"],
                                     source_id=source["source_id"])
        return FetchedPage(page.mentions, page.newest_id, page.next_token, _reset_if_exhausted(page.rate_limit))
    return fetch


def _graph_fetcher(method_name: str) -> Callable:
    """Graph pages: newest-first with an ``after`` cursor; ``since`` is the newest item time seen."""
    def factory(source: Dict[str, Any], deps: Any) -> Callable:
        method = getattr(deps.graph_client(), method_name)

        def fetch(since: Any, token: Any) -> FetchedPage:
            page = method(source["account_id"], since=since, after=token, source_id=source["source_id"])
            pause = None
            if page.usage.near_limit():
                pause = int(deps.epoch()) + max(page.usage.regain_seconds, 300)
            return FetchedPage(page.mentions, page.newest_time, page.next_after, pause)
        return fetch
    return factory


FETCHERS: Dict[str, Callable] = {
    "facebook_feed": _graph_fetcher("page_feed_page"),
    "instagram_comments": _graph_fetcher("ig_comments_page"),
    "instagram_mentions": _graph_fetcher("ig_mentions_page"),
    "x_mentions": x_mentions_fetcher,
    "x_search": x_search_fetcher,
    "x_dm": x_dm_fetcher,
}


def fetcher_for(source: Dict[str, Any], deps: Any) -> Callable:
    try:
        return FETCHERS[source["kind"]](source, deps)
    except KeyError:
        raise ValueError(f"source kind '{source.get('kind')}' is not supported") from None
