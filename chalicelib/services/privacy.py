"""Everything held about one customer: exported as JSON, or erased, on a supervisor's request.

A customer is known by their identities, ``<platform>:<author id>`` (``x:42``);
one person may have several (X and Instagram). Nothing here scans a table:
each mention claimed for an identity and each case opened for it is noted in
the customer's ledger (``CaseStore.note_customer_mention``, ``open_case``),
and the ledger leads to the rest.

**Export** (GDPR articles 15 and 20, APPI article 33): every case with its
whole history (posts, events, replies) and every mention record with its
triage decision, with when each will be deleted. One answer stays far below
Lambda's 6 MB: a large export comes in pages (``next_cursor``), and a long
case may continue on the next page under the same ``case_id``.

**Erasure** (GDPR article 17, APPI article 35): every case of the customer
with everything under it, the receipts of its sent replies, every mention
record, the ledger and the active-case pointer; an active case gives its
agent one open case back. It leaves an audit record without personal data:
who asked, when, how many items went, and a keyed hash (HMAC-SHA256) of each
identity, with which an auditor who holds the key can confirm that a given
customer was erased. It is idempotent and resumable: the ledger entry of a
case or mention goes last, so a request that stopped half-way (a crash, or
the time budget of one API call) is finished by the same request sent again.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.domain import retention
from chalicelib.domain.errors import BadRequest, InvalidCursor, NotFound
from chalicelib.domain.mention import MAX_ID_CHARS, PLATFORMS
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.observability import logger
from chalicelib.ports import Deps, LedgerEntry, StoredMention
from chalicelib.services import customers, media

MAX_IDENTITIES = 10
LEDGER_PAGE = 25
HISTORY_PAGE = 25               # each item at most ~60 KB as JSON: a page stays under 1.5 MB
EXPORT_PAGE_CHARS = 2_000_000   # then the page ends; with one history page on top, well under 6 MB
ERASE_SECONDS = 20.0            # of API Gateway's 29 s: then the answer says to send the request again
# The counts that are items deleted (the others count cases and agents' open cases given back).
ITEM_COUNTS = ("case_items", "mention_records", "deliveries", "ledger_entries", "qa_replies", "customer_profile_items")
HASH_KEY_SECRET = "privacy_hash_key"  # the platform secret's key that keys the audit hashes
KEY_EXAMPLE = "'<platform>:<author id>', such as 'x:42'"
NOTHING_HELD = ("nothing is held about this customer: no case or mention under the given identities "
                "(check the platform and the author id, which is the platform's user id, not the handle)")


# ---- identities --------------------------------------------------------------------------

def check_customer_key(value: Any, where: str) -> str:
    """A customer key ``<platform>:<author id>``; BadRequest naming ``where`` otherwise (never echoing it)."""
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be a customer key {KEY_EXAMPLE}")
    platform, colon, author_id = value.partition(":")
    if not colon or platform not in PLATFORMS:
        raise BadRequest(f"{where} must be a customer key {KEY_EXAMPLE}; platforms: {', '.join(PLATFORMS)}")
    if not 0 < len(author_id) <= MAX_ID_CHARS or not author_id.isprintable() or any(c.isspace() for c in author_id):
        raise BadRequest(f"{where}: the author id after '{platform}:' must be 1 to {MAX_ID_CHARS} printable "
                         "characters without spaces")
    return value


def customer_keys(primary: str, also: Any = None) -> List[str]:
    """The path's customer key and the others given with it (``also``), each once, in order."""
    keys = [check_customer_key(primary, "the customer key in the path")]
    if also is None:
        return keys
    if not isinstance(also, list):
        raise BadRequest(f"'also' must be a list of customer keys {KEY_EXAMPLE}")
    if len(also) > MAX_IDENTITIES - 1:
        raise BadRequest(f"'also' names {len(also)} identities; at most {MAX_IDENTITIES - 1} besides the path's")
    for index, key in enumerate(also):
        checked = check_customer_key(key, f"'also' item {index + 1}")
        if checked not in keys:
            keys.append(checked)
    return keys


def _also_from_query(params: Mapping[str, str]) -> Optional[List[str]]:
    raw = params.get("also")
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",")]


def _also_from_body(body: Any) -> Any:
    if body is None:
        return None
    if not isinstance(body, dict) or set(body) - {"also"}:
        raise BadRequest(f"body must be empty or a JSON object {{\"also\": [customer keys]}}, each {KEY_EXAMPLE}")
    return body.get("also")


def _hash_key(deps: Deps) -> bytes:
    """The key of the audit hashes: the platform secret's ``privacy_hash_key``; without it, one derived
    from the stage, which anyone who knows the stage can use to test a guessed customer id."""
    secret = str(deps.secrets().get(HASH_KEY_SECRET) or "")
    return (secret or f"socialcare-{deps.config.stage}-customer-keys").encode("utf-8")


def identity_hash(customer_key: str, key: bytes) -> str:
    return hmac.new(key, customer_key.encode("utf-8"), hashlib.sha256).hexdigest()


def erasure_id(keys: List[str], key: bytes) -> str:
    """The same identities always name the same erasure: how a repeated request resumes it."""
    return "e_" + hmac.new(key, "\n".join(sorted(keys)).encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def _note_active_cases(keys: List[str], deps: Deps) -> None:
    """Put each identity's active case in its ledger (repeatable): cases opened before the ledger existed."""
    for key in keys:
        active = deps.cases.active_case_for_customer(key)
        if active:
            deps.cases.note_customer_case(key, active)


def _holds_anything(keys: List[str], deps: Deps) -> bool:
    return any(deps.cases.customer_ledger(key, limit=1).entries for key in keys)


# ---- export --------------------------------------------------------------------------------

def _size(piece: Any) -> int:
    return len(json.dumps(piece, default=str))


def _fingerprint(keys: List[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()[:16]


def _export_position(params: Mapping[str, str], keys: List[str]) -> Optional[Dict[str, Any]]:
    cursor = params.get("cursor")
    if not cursor:
        return None
    state = decode_cursor(cursor)
    fields_ok = (state.get("f") == _fingerprint(keys) and isinstance(state.get("i"), int)
                 and 0 <= state["i"] < len(keys)
                 and all(state.get(name) is None or isinstance(state.get(name), str) for name in ("l", "c", "h")))
    if not fields_ok:
        raise InvalidCursor("query 'cursor' is not one this API issued for this export; start again without it")
    return state


def _mention_view(stored: StoredMention) -> Dict[str, Any]:
    received = retention.retained_until(stored.received_epoch) if stored.received_epoch is not None else None
    return {"mention_id": stored.mention_id, "state": stored.state, "received_at": received,
            "retained_until": retention.retained_until(stored.expires_at), "case_id": stored.case_id,
            "mention": stored.mention, "triage": stored.triage}


def _export_case(case_id: str, after: Optional[str], budget: int, deps: Deps) -> Tuple[Optional[Dict[str, Any]],
                                                                                          Optional[str], int]:
    """(the case with its history from ``after``, where to continue when the budget ran out, size)."""
    view: Optional[Dict[str, Any]] = None
    size = 0
    while True:
        history = deps.cases.history(case_id, limit=HISTORY_PAGE, after=after)
        if history is None:  # erased or expired since the ledger named it
            return view, None, size
        if view is None:
            view = {"case_id": case_id, "case": history.case.public_view(),
                    "retained_until": retention.retained_until(history.expires_at),
                    "mentions": [], "events": [], "replies": [], "notes": []}
            size += _size(view)
        page = {"mentions": [m.to_dict() for m in history.mentions], "events": history.events,
                "replies": [r.public_view() for r in history.replies]}
        for name, items in page.items():
            view[name].extend(items)
        size += _size(page)
        after = history.next_position
        if after is None:
            return view, None, size
        if size >= budget:
            return view, after, size


def export_customer(customer_key: str, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    """One page of everything held about the customer's identities; ``next_cursor`` fetches the next."""
    keys = customer_keys(customer_key, _also_from_query(params))
    state = _export_position(params, keys)
    if state is None:
        _note_active_cases(keys, deps)
        if not _holds_anything(keys, deps):
            raise NotFound(NOTHING_HELD)
        state = {"i": 0, "l": None, "c": None, "h": None}
    config = deps.config
    answer: Dict[str, Any] = {
        "customer_keys": keys, "exported_at": deps.now(),
        "retention": {"mentions_days": config.retention_mentions_days, "cases_days": config.retention_cases_days,
                      "rule": "a mention record is deleted that many days after it arrived; a case and everything "
                              "under it that many days after it was resolved or closed, never while it is active"},
        "cases": [], "mentions": [], "next_cursor": None,
    }
    if not params.get("cursor"):  # the profiles (tags, notes, fields, links) come with the first page
        answer["customer_profiles"] = customers.export_profiles(keys, deps)
    size = _size(answer)
    index, ledger_after = state["i"], state["l"]
    split_case, history_after = state["c"], state["h"]
    while index < len(keys):
        page = deps.cases.customer_ledger(keys[index], limit=LEDGER_PAGE, after=ledger_after)
        for entry, position in zip(page.entries, page.positions):
            if entry.kind == "mention":
                stored = deps.mentions.stored(entry.id)
                if stored is not None:
                    view = _mention_view(stored)
                    answer["mentions"].append(view)
                    size += _size(view)
            else:
                start = history_after if entry.id == split_case else None
                case_view, more, used = _export_case(entry.id, start, EXPORT_PAGE_CHARS - size, deps)
                if case_view is not None:
                    answer["cases"].append(case_view)
                    size += used
                if more is not None:  # the case continues on the next page
                    answer["next_cursor"] = encode_cursor({"f": _fingerprint(keys), "i": index, "l": ledger_after,
                                                           "c": entry.id, "h": more})
                    return answer
            split_case = history_after = None
            ledger_after = position
            if size >= EXPORT_PAGE_CHARS:
                answer["next_cursor"] = encode_cursor({"f": _fingerprint(keys), "i": index, "l": ledger_after,
                                                       "c": None, "h": None})
                return answer
        if not page.more:
            index, ledger_after = index + 1, None
    return answer


# ---- erasure -----------------------------------------------------------------------------

def _erase_entry(customer_key: str, entry: LedgerEntry, deps: Deps) -> Counter[str]:
    """Erase what one ledger entry names; the entry itself goes last, so a retry finds what is left."""
    counts: Counter[str] = Counter()
    if entry.kind == "case":
        # The case's posts name their mention records: delete those while the posts still say which.
        for mention_id in deps.cases.case_mention_ids(entry.id):
            media.forget_files(mention_id, deps)  # the copies of its photos and documents (issue 12)
            counts["mention_records"] += int(deps.mentions.delete(mention_id))
        counts["qa_replies"] += _forget_qa(entry.id, deps)
        erased = deps.cases.erase_case(entry.id)
        counts["cases"] += int(erased.case_removed)
        counts["case_items"] += erased.items
        counts["deliveries"] += erased.deliveries
        counts["open_cases_released"] += int(erased.released_agent is not None)
    else:
        media.forget_files(entry.id, deps)
        counts["mention_records"] += int(deps.mentions.delete(entry.id))
    deps.cases.forget_customer_entry(customer_key, entry)
    counts["ledger_entries"] += 1
    return counts


def _forget_qa(case_id: str, deps: Deps) -> int:
    """Take the case's sent replies out of the QA pools (and their reviews), while the replies still say
    when they were sent: the pool is keyed by week."""
    if deps.qa is None:
        return 0
    from chalicelib.services.qa import week_of_moment

    forgotten, after = 0, None
    while True:
        history = deps.cases.history(case_id, limit=50, after=after)
        if history is None:
            return forgotten
        for sent in history.replies:
            if sent.sent_at and not sent.automatic:
                deps.qa.forget_reply(week_of_moment(sent.sent_at, deps), sent.reply_id)
                forgotten += 1
        if not history.next_position:
            return forgotten
        after = history.next_position


def _answer(status: str, record: Dict[str, Any]) -> Dict[str, Any]:
    counts = {name: int(n) for name, n in sorted((record.get("counts") or {}).items())}
    answer = {"status": status, "erasure_id": record["erasure_id"], "started_at": record.get("started_at"),
              "counts": counts, "items_deleted": sum(counts.get(name, 0) for name in ITEM_COUNTS)}
    if status == "erased":
        answer["finished_at"] = record.get("finished_at")
    else:
        answer["message"] = ("the erasure continues: send the same request again until its status is 'erased' "
                             "(nothing is erased twice)")
    return answer


def erase_customer(customer_key: str, body: Any, *, agent_id: str, deps: Deps) -> Dict[str, Any]:
    """Erase everything held about the customer's identities, or as much as the time budget allows:
    ``status`` ``erased`` (done) or ``in_progress`` (send the same request again)."""
    keys = customer_keys(customer_key, _also_from_body(body))
    hash_key = _hash_key(deps)
    erasure = erasure_id(keys, hash_key)
    _note_active_cases(keys, deps)
    pending = deps.cases.pending_erasure(erasure)
    if pending is None:
        if not _holds_anything(keys, deps):
            earlier = deps.cases.erasures(erasure)
            when = f"; these identities were erased at {earlier[-1].get('finished_at')} ({erasure})" if earlier else ""
            raise NotFound(NOTHING_HELD + when)
        pending = deps.cases.start_erasure({
            "erasure_id": erasure, "requested_by": agent_id, "started_at": deps.now(),
            "identities": len(keys), "identity_hashes": [identity_hash(key, hash_key) for key in keys],
            "hash": "HMAC-SHA256 of '<platform>:<author id>'",
        })
    deadline = deps.epoch() + ERASE_SECONDS
    for key in keys:
        while True:
            page = deps.cases.customer_ledger(key, limit=LEDGER_PAGE)
            if not page.entries:
                break
            for entry in page.entries:
                if deps.epoch() >= deadline:
                    logger.info("customer erasure paused at its time budget", extra={"erasure_id": erasure})
                    return _answer("in_progress", deps.cases.pending_erasure(erasure) or pending)
                deps.cases.add_erasure_counts(erasure, _erase_entry(key, entry, deps))
        deps.cases.forget_away_message(key)  # when they last got an away message: keyed by their identity
        # The identity's profile records: links, handles, and a profile it leaves empty (services/customers.py).
        deps.cases.add_erasure_counts(erasure, {"customer_profile_items": customers.forget(key, deps)})
    done = deps.cases.finish_erasure(erasure, finished_at=deps.now())
    if done is None:  # another request finished it a moment ago
        finished = deps.cases.erasures(erasure)
        done = finished[-1] if finished else {**pending, "finished_at": deps.now()}
    logger.info("customer erased", extra={"erasure_id": erasure, "counts": done.get("counts")})
    return _answer("erased", done)
