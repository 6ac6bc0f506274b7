"""Sources: which accounts, pages, phone numbers and keywords a brand listens to.

Supervisors configure them through the admin API; they are data in the
settings table, validated here. Polled kinds have a cursor each; the
webhook-only channel (WhatsApp) is listed so it can be switched off.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from chalicelib.domain.errors import BadRequest
from chalicelib.domain.limits import text_problem

# kind -> (platform, how it arrives). "poll+push": Meta's webhook brings it at
# once, and polling picks up what a delivery Meta gave up on did not bring
# (Messenger and Instagram DMs: the Graph Conversations API). WhatsApp is
# "push" only: the Cloud API has no endpoint that lists received messages, so
# a message is lost if Meta stops retrying its webhook delivery (it retries
# for up to 7 days): keep the webhook answering, and watch its failures.
KINDS = {
    "x_mentions": ("x", "poll"),
    "x_search": ("x", "poll"),
    "x_dm": ("x", "poll"),
    "facebook_feed": ("facebook", "poll+push"),
    "instagram_comments": ("instagram", "poll+push"),
    "instagram_mentions": ("instagram", "poll+push"),
    "messenger": ("messenger", "poll+push"),
    "instagram_dm": ("instagram", "poll+push"),
    "whatsapp": ("whatsapp", "push"),
}
MAX_TERMS = 25
MAX_TERM_LENGTH = 100
# Platform ids of accounts, pages and phone numbers are digits; letters, '.',
# '_' and '-' are allowed for test and future ids. Never ':' (it separates
# the parts of a source id) and never '#' (it separates the parts of a key).
MAX_ACCOUNT_ID = 64
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9._-]{1,%d}" % MAX_ACCOUNT_ID)
# Meta page and Instagram names; X handles are stricter (X_HANDLE).
MAX_HANDLE = 50
X_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
# X's limit on a search query (the recent search endpoint, standard access).
X_MAX_QUERY_LENGTH = 512


def source_id_for(kind: str, account_id: str) -> str:
    """'x:mentions:<account>', 'whatsapp:<phone number id>': the account id is always the last part."""
    platform = KINDS[kind][0]
    if "_" not in kind:
        return f"{platform}:{account_id}"
    return f"{platform}:{kind.split('_', 1)[1]}:{account_id}"


def account_of(source_id: str) -> str:
    return (source_id or "").rsplit(":", 1)[-1]


def validate_source(body: Any) -> Dict[str, Any]:
    """A supervisor's source, checked whole before anything is saved; BadRequest says what to fix."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object with 'kind' and 'account_id'")
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise BadRequest(f"field 'kind' must be one of {', '.join(sorted(KINDS))}")
    account_id = body.get("account_id")
    if not isinstance(account_id, str) or not _ACCOUNT_ID.fullmatch(account_id.strip()):
        raise BadRequest(f"field 'account_id' must be the platform's id of the brand account, page or phone "
                         f"number: 1 to {MAX_ACCOUNT_ID} letters, digits, '.', '_' or '-'")
    account_id = account_id.strip()
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadRequest("field 'enabled' must be true or false")
    source: Dict[str, Any] = {
        "source_id": source_id_for(kind, account_id), "kind": kind, "platform": KINDS[kind][0],
        "delivery": KINDS[kind][1], "account_id": account_id, "enabled": enabled,
        "handle": _valid_handle(body.get("handle", ""), platform=KINDS[kind][0]),
    }
    if kind == "instagram_dm" and body.get("page_id") not in (None, ""):
        # The Facebook Page linked to the Instagram account: Meta lists Instagram
        # conversations on it for a Page token. Without it, the account is asked.
        page_id = body["page_id"]
        if not isinstance(page_id, str) or not _ACCOUNT_ID.fullmatch(page_id.strip()):
            raise BadRequest(f"field 'page_id' must be the id of the Facebook Page linked to the Instagram "
                             f"account: 1 to {MAX_ACCOUNT_ID} letters, digits, '.', '_' or '-'")
        source["page_id"] = page_id.strip()
    if kind == "x_search":
        source["terms"] = _valid_terms(body.get("terms"))
        if not source["handle"]:
            raise BadRequest("field 'handle' is required for x_search, to leave out the brand's own posts")
        query = x_search_query(source["terms"], source["handle"], max_length=None)
        if len(query) > X_MAX_QUERY_LENGTH:
            raise BadRequest(f"the X search query these terms make is {len(query)} characters and X allows "
                             f"{X_MAX_QUERY_LENGTH}; use fewer or shorter terms (query: {query[:80]}…)")
    return source


def _valid_handle(handle: Any, *, platform: str) -> str:
    if not isinstance(handle, str):
        raise BadRequest("field 'handle' must be a string (the brand's @handle)")
    handle = handle.strip().lstrip("@")
    if platform == "x":
        if handle and not X_HANDLE.fullmatch(handle):
            raise BadRequest("field 'handle' must be the brand's X handle: 1 to 15 letters, digits or '_'")
        return handle
    problem = text_problem(handle, max_length=MAX_HANDLE)
    if problem:
        raise BadRequest(f"field 'handle' {problem}")
    return handle


def _valid_terms(terms: Any) -> List[str]:
    if not isinstance(terms, list) or not terms:
        raise BadRequest("field 'terms' must be a non-empty list of keywords or brand names to track")
    if len(terms) > MAX_TERMS:
        raise BadRequest(f"field 'terms' has {len(terms)} entries; at most {MAX_TERMS}")
    cleaned = []
    for index, term in enumerate(terms):
        problem = text_problem(term, max_length=MAX_TERM_LENGTH)
        if problem:
            raise BadRequest(f"field 'terms' entry {index + 1} {problem}")
        if not _search_phrase(term):
            raise BadRequest(f"field 'terms' entry {index + 1} is empty; give a keyword or brand name")
        cleaned.append(term.strip())
    return cleaned


def _search_phrase(term: str) -> str:
    """A term as X searches it: an exact phrase, so without double quotes."""
    return term.replace('"', "").strip()


def x_search_query(terms: List[str], brand_handle: str, exclude_retweets: bool = True,
                   max_length: Optional[int] = X_MAX_QUERY_LENGTH) -> str:
    """``("a" OR "b") -from:brand -is:retweet``: the X recent-search query for a source's terms.

    Terms are quoted so multi-word and Japanese phrases match exactly, and
    repeated ones are dropped; the brand's own posts are excluded so its
    replies never come back as mentions. With ``max_length``, trailing terms
    are dropped until the query fits (a ValueError if even the first term
    does not); with ``max_length=None`` every term is kept, which is how a
    source is checked when it is saved.
    """
    quoted: List[str] = []
    for term in terms:
        cleaned = _search_phrase(term)
        if cleaned and f'"{cleaned}"' not in quoted:
            quoted.append(f'"{cleaned}"')
    if not quoted:
        raise ValueError("an X search query needs at least one non-empty term")
    suffix = f" -from:{brand_handle.lstrip('@')}" if brand_handle.strip("@ ") else ""
    if exclude_retweets:
        suffix += " -is:retweet"
    while quoted:
        body = quoted[0] if len(quoted) == 1 else "(" + " OR ".join(quoted) + ")"
        if max_length is None or len(body + suffix) <= max_length:
            return body + suffix
        quoted.pop()
    raise ValueError(f"the first search term alone makes the query longer than {max_length} characters")


def status_view(source: Dict[str, Any]) -> Dict[str, Any]:
    keys = ("source_id", "kind", "platform", "delivery", "account_id", "page_id", "handle", "terms", "enabled",
            "state", "last_success_at", "last_fetched", "last_error", "last_error_at", "paused_until",
            "paused_reason")
    view = {k: source[k] for k in keys if k in source}
    if source.get("kind") in KINDS:  # how the kind arrives now, not when the source was saved
        view["delivery"] = KINDS[source["kind"]][1]
    return view
