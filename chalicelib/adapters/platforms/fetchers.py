"""Fetchers: one page of a polled source, from the platform client that serves its kind.

Each factory takes the source (its account, terms) and the container's
dependencies, and returns ``fetch(since, page_token) -> FetchedPage``.

Messenger and Instagram direct messages are polled too, from the Graph
Conversations API, to pick up what a webhook delivery Meta gave up on did not
bring. WhatsApp has no fetcher: the Cloud API offers no endpoint that lists
received messages, so a WhatsApp source is webhook-only.
"""
from __future__ import annotations

from typing import Any, Dict

from chalicelib.adapters.platforms.meta import DM_LOOKBACK_SECONDS
from chalicelib.adapters.platforms.x import build_search_query
from chalicelib.ports import Deps, FetchedPage, Fetcher, FetcherFactory


def x_mentions_fetcher(source: Dict[str, Any], deps: Deps) -> Fetcher:
    client: Any = deps.platforms.x()

    def fetch(since: Any, token: Any) -> FetchedPage:
        page = client.mentions_page(source["account_id"], since_id=since, pagination_token=token,
                                    source_id=source["source_id"])
        return FetchedPage(page.mentions, page.newest_id, page.next_token, _reset_if_exhausted(page.rate_limit))
    return fetch


def _reset_if_exhausted(rate_limit: Any):
    if rate_limit is not None and rate_limit.exhausted(reserve=1):
        return rate_limit.reset_at
    return None


def x_search_fetcher(source: Dict[str, Any], deps: Deps) -> Fetcher:
    """Untagged mentions: posts naming the brand or its products without @-tagging it."""
    client: Any = deps.platforms.x()
    query = build_search_query(source["terms"], source["handle"])

    def fetch(since: Any, token: Any) -> FetchedPage:
        page = client.search_recent_page(query, since_id=since, next_token=token,
                                         brand_user_id=source["account_id"], source_id=source["source_id"])
        # Posts that tag the brand come through the mentions source already.
        untagged = [m for m in page.mentions if not m.addressed_to_brand]
        return FetchedPage(untagged, page.newest_id, page.next_token, _reset_if_exhausted(page.rate_limit))
    return fetch


def x_dm_fetcher(source: Dict[str, Any], deps: Deps) -> Fetcher:
    client: Any = deps.platforms.x()

    def fetch(since: Any, token: Any) -> FetchedPage:
        page = client.dm_events_page(since_id=since, pagination_token=token, brand_user_id=source["account_id"],
                                     source_id=source["source_id"])
        return FetchedPage(page.mentions, page.newest_id, page.next_token, _reset_if_exhausted(page.rate_limit))
    return fetch


def _graph_fetcher(method_name: str) -> FetcherFactory:
    """Graph pages: newest-first with an ``after`` cursor; ``since`` is the newest item time seen."""
    def factory(source: Dict[str, Any], deps: Deps) -> Fetcher:
        method: Any = getattr(deps.platforms.graph(), method_name)

        def fetch(since: Any, token: Any) -> FetchedPage:
            page = method(source["account_id"], since=since, after=token, source_id=source["source_id"])
            return _graph_page(page, deps)
        return fetch
    return factory


def _graph_page(page: Any, deps: Deps) -> FetchedPage:
    pause = None
    if page.usage.near_limit():
        pause = int(deps.epoch()) + max(page.usage.regain_seconds, 300)
    return FetchedPage(page.mentions, page.newest_time, page.next_after, pause)


def _conversations_fetcher(platform: str) -> FetcherFactory:
    """Direct messages from the Conversations API, the same mentions as their webhooks (deduped by id).

    A Messenger source's account is its Page. An Instagram source's account is
    the Instagram account (the sender of the brand's own messages); its
    conversations are read on the linked Page (``page_id``) when the source
    names one, as Meta documents for a Page token, else on the account itself.
    """
    def factory(source: Dict[str, Any], deps: Deps) -> Fetcher:
        client: Any = deps.platforms.graph()
        node = str(source.get("page_id") or source["account_id"])

        def fetch(since: Any, token: Any) -> FetchedPage:
            page = client.conversations_page(node, platform=platform, brand_id=source["account_id"], since=since,
                                             after=token, not_before=int(deps.epoch()) - DM_LOOKBACK_SECONDS,
                                             source_id=source["source_id"])
            return _graph_page(page, deps)
        return fetch
    return factory


FETCHERS: Dict[str, FetcherFactory] = {
    "facebook_feed": _graph_fetcher("page_feed_page"),
    "instagram_comments": _graph_fetcher("ig_comments_page"),
    "instagram_mentions": _graph_fetcher("ig_mentions_page"),
    "messenger": _conversations_fetcher("messenger"),
    "instagram_dm": _conversations_fetcher("instagram"),
    "x_mentions": x_mentions_fetcher,
    "x_search": x_search_fetcher,
    "x_dm": x_dm_fetcher,
}
