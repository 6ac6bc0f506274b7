"""One customer, whole history (issue 12): profiles, linked identities, and follow-ups that land with their case.

- **Profiles** (``GET/PATCH /customers/{id}``): the identities linked to a profile, their names and handles,
  tags, notes, supervisor-defined fields, the merges and unmerges done to it, and the customer's cases with
  their outcomes (from each identity's ledger, ``CaseStore.customer_ledger``: no Scan).
- **Linking** (``POST /customers/{id}/merge`` and ``/unmerge``): links, never copies, each audited on both
  profiles. Routing then treats every linked identity as the same person: ``active_case_for`` looks at the
  active case of each, so a WhatsApp message joins the case a Facebook comment opened.
- **Follow-ups**: a message triage finds no case in ("thanks!", a thumbs-up) goes into the history of the
  customer's active case, or of their case resolved within the reopen window (``attach_follow_up``, from the
  triage stage; no reopen). A case-worthy message within the window reopens that case instead of opening a
  new one (``reopen_recent``, from the assignment stage).
- **Identities** are recorded when a case opens for them (``note_case``, from the assignment stage): the first
  time all of it, afterwards only their newest case: one write per case. A message that needs no case writes
  nothing: its author's profile id derives from the customer key (``customer_id_for``), and a look-up by
  platform id finds them through their ledger (their mentions) and records them then (``find_customers``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.domain import customer as rules
from chalicelib.domain.agent import Agent
from chalicelib.domain.case import Case
from chalicelib.domain.customer import Identity, Profile, customer_id_for
from chalicelib.domain.errors import BadRequest, Conflict, InvalidCursor, NotFound
from chalicelib.domain.limits import page_limit
from chalicelib.domain.mention import Mention
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.observability import logger
from chalicelib.ports import CustomerStore, Deps

CASES_DEFAULT_LIMIT = 10
CASES_MAX_LIMIT = 25
PANEL_CASES = 5           # the other cases the case detail's customer panel shows
AUDIT_SHOWN = 20          # merges and unmerges shown on a profile, newest first
MAX_FOUND = 10            # customers one search returns


def _store(deps: Deps) -> CustomerStore:
    if deps.customers is None:
        raise NotFound("customer profiles are not available in this deployment")
    return deps.customers


# ---- who is who -----------------------------------------------------------------------------------

def customer_id_of(customer_key: str, deps: Deps) -> str:
    """The profile an identity is linked to (its home profile when it was never recorded or merged)."""
    identity = deps.customers.identity(customer_key) if deps.customers is not None else None
    return identity.customer_id if identity else customer_id_for(customer_key)


def linked_identities(customer_key: str, deps: Deps) -> List[Identity]:
    """The identity and every identity linked to the same profile, its own first. One read for a customer
    never recorded (most people who write once), a read and a Query with a batch read otherwise."""
    if deps.customers is None:
        return [Identity(customer_key=customer_key, customer_id=customer_id_for(customer_key))]
    return _linked_to(customer_key, deps.customers.identity(customer_key), deps)


def _linked_to(customer_key: str, own: Optional[Identity], deps: Deps) -> List[Identity]:
    """``linked_identities`` for a caller who has read the identity (``own``) already."""
    if own is None or deps.customers is None:
        return [Identity(customer_key=customer_key, customer_id=customer_id_for(customer_key))]
    others = [i for i in deps.customers.identities(own.customer_id) if i.customer_key != customer_key]
    return [own] + others


def active_case_for(mention: Mention, deps: Deps) -> Optional[str]:
    """The customer's active case on any linked identity (their own identity's first)."""
    own = deps.cases.active_case_for_customer(mention.customer_key)
    if own or deps.customers is None:
        return own
    for identity in linked_identities(mention.customer_key, deps)[1:]:
        active = deps.cases.active_case_for_customer(identity.customer_key)
        if active:
            return active
    return None


def _recent_case(identities: List[Identity], deps: Deps, now: str, statuses: Tuple[str, ...]) -> Optional[Case]:
    """The newest case of these identities when it is in ``statuses``: an active one as it is, a resolved or
    closed one only within the reopen window after its resolution."""
    newest: Optional[Case] = None
    for case_id in dict.fromkeys(i.last_case_id for i in identities if i.last_case_id):
        case = deps.cases.get(case_id)
        if case is not None and (newest is None or case.created_at > newest.created_at):
            newest = case
    if newest is None or newest.status not in statuses:
        return None
    if newest.active:
        return newest
    return newest if rules.reopen_window_open(newest.resolved_at, now, deps.config.reopen_window_hours) else None


def note_case(mention: Mention, case: Case, deps: Deps, now: str) -> None:
    """Remember the identity a case opened for (new: linked to its home profile, findable by handle) and
    that case as its newest (the reopen window reads it). Best effort: a failure is logged, never fatal."""
    if deps.customers is None:
        return
    try:
        seen = rules.seen_identity(mention.customer_key, handle=mention.author.handle, name=mention.author.name,
                                   at=now)
        deps.customers.record_identity(seen, case_id=case.case_id, at=case.created_at or now)
    except Exception:  # noqa: BLE001 - the case is settled; a missing profile link is only logged
        logger.exception("recording the customer's identity failed", extra={"case_id": case.case_id})


def reopen_recent(mention: Mention, deps: Deps, now: str) -> Optional[str]:
    """Reopen the customer's case resolved within the reopen window, for a case-worthy follow-up; its id,
    or None (no such case, or it changed meanwhile: a new case opens instead)."""
    from chalicelib.domain import case as case_rules
    from chalicelib.services import sla

    if deps.customers is None or deps.config.reopen_window_hours <= 0:
        return None
    case = _recent_case(linked_identities(mention.customer_key, deps), deps, now, ("resolved",))
    if case is None:
        return None
    if case.assignee:
        agent = deps.settings.get_agent(case.assignee)
        if agent is None or not agent.has_room:
            # Their agent is away or full: the case goes back to its team's queue (workload fills it), so
            # that no agent carries a case their open-case count does not hold.
            unassigned = case_rules.with_assignee(case, None, now)
            if not deps.cases.save(unassigned):
                return None
            case = unassigned
    changed = sla.refresh(case_rules.with_status(case, "open", now), deps, now)
    event = {"event": "status_changed", "from": case.status, "to": "open", "agent_id": None,
             "by": "customer", "reason": "follow_up_within_reopen_window", "mention_id": mention.id}
    try:
        if not deps.cases.change_status(case, changed, event=event):
            return None
    except Conflict:  # the customer has another active case now: the caller looks again
        return None
    logger.info("resolved case reopened by the customer's follow-up",
                extra={"case_id": case.case_id, "mention_id": mention.id})
    return case.case_id


def attach_follow_up(mention: Mention, deps: Deps, now: str) -> Optional[str]:
    """A message that needs no case of its own ("thanks!"): into the history of the customer's active case,
    or of their case resolved within the reopen window, without reopening it. The case id, or None."""
    if deps.customers is None:
        return None
    # Read for every message that needs no case: eventually consistent, half the price (issue 17). A case
    # opened for them within the last second may be missed: the same race as between this stage and the
    # assign stage that records the identity, and the message then waits on the review list instead.
    own = deps.customers.identity(mention.customer_key, consistent=False)
    if own is None:
        # Never had a case (a greeting, a question): nothing to attach to, and nothing written - their
        # profile id derives from the customer key, and looking them up by platform id records them then
        # (``find_customers``), so most people, who write once, cost no profile write at all.
        return None
    # Their newest case (each identity names its own; no read of the active-case pointers, which this
    # stage may not clear): active, or resolved within the window. The identity just read is not read again.
    recent = _recent_case(_linked_to(mention.customer_key, own, deps), deps, now,
                          ("open", "pending", "resolved", "closed"))
    if recent is None:
        return None
    case_id = recent.case_id
    if deps.cases.add_mention(case_id, mention, at=mention.created_at or now):
        deps.cases.add_event(case_id, {"event": "customer_follow_up", "mention_id": mention.id,
                                       "platform": mention.platform, "needs_case": False}, at=now)
    return case_id


# ---- what agents see -------------------------------------------------------------------------------

def case_summary(case: Case) -> Dict[str, Any]:
    return {"case_id": case.case_id, "status": case.status, "platform": case.platform, "team": case.team,
            "assignee": case.assignee, "priority": case.priority, "category": case.category,
            "created_at": case.created_at, "resolved_at": case.resolved_at, "reopen_count": case.reopen_count,
            "csat_score": case.csat_score, "csat_status": case.csat_status}


def panel(case: Case, shown: Dict[str, Any], deps: Deps) -> Dict[str, Any]:
    """The customer panel of a case's detail: the case's customer with their profile id, tags, linked
    identities and a short history of their other cases, so the agent need not ask again."""
    view = {**shown, "customer_key": case.customer_key, "customer_id": customer_id_for(case.customer_key)}
    if deps.customers is None:
        return view
    try:
        _remember(case.customer_key, case.customer, deps)
        identities = linked_identities(case.customer_key, deps)
        customer_id = identities[0].customer_id
        profile = deps.customers.profile(customer_id) or Profile(customer_id=customer_id)
        others, _ = _cases_page(customer_id, [i.customer_key for i in identities], PANEL_CASES + 1, None, deps)
        view.update({"customer_id": customer_id, "tags": profile.tags, "fields": profile.fields,
                     "identities": [i.view() for i in identities],
                     "other_cases": [c for c in others if c["case_id"] != case.case_id][:PANEL_CASES]})
    except Exception:  # noqa: BLE001 - the case shows without its panel rather than not at all
        logger.exception("customer panel unavailable", extra={"case_id": case.case_id})
    return view


def _remember(customer_key: str, shown: Mapping[str, Any], deps: Deps) -> None:
    """Record an identity seen only on cases opened before profiles existed (once), so that the profile
    id an agent is shown can be opened, edited and merged."""
    if deps.customers is not None and deps.customers.identity(customer_key) is None:
        deps.customers.record_identity(rules.seen_identity(customer_key, handle=str(shown.get("handle") or ""),
                                                           name=str(shown.get("name") or ""), at=deps.now()),
                                       at=deps.now())


def _cases_page(customer_id: str, keys: List[str], limit: int, cursor: Optional[str],
                deps: Deps) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """A page of the customer's cases, read from each identity's ledger in turn (newest first within a page)."""
    index, after = 0, None
    if cursor:
        state = decode_cursor(cursor)
        if (state.get("f") != customer_id or not isinstance(state.get("i"), int) or not 0 <= state["i"] < len(keys)
                or not (state.get("l") is None or isinstance(state.get("l"), str))):
            raise InvalidCursor("query 'cursor' is not one this API issued for this customer; start again without it")
        index, after = state["i"], state["l"]
    found: List[Case] = []
    while index < len(keys) and len(found) < limit:
        page = deps.cases.customer_ledger(keys[index], limit=limit - len(found), after=after)
        ended = not page.more
        for entry, position in zip(page.entries, page.positions):
            if entry.kind != "case":  # the ledger lists cases before mentions: this identity's cases are done
                ended = True
                break
            case = deps.cases.get(entry.id)
            if case is not None:
                found.append(case)
            after = position
        if ended:
            index, after = index + 1, None
    found.sort(key=lambda c: (c.created_at, c.case_id), reverse=True)
    more = index < len(keys)
    return [case_summary(c) for c in found], (encode_cursor({"f": customer_id, "i": index, "l": after}) if more else None)


def _require_worker(agent: Agent) -> None:
    from chalicelib.services.inbox import require_case_worker

    require_case_worker(agent)


def _checked_id(customer_id: Any) -> str:
    if not rules.is_customer_id(customer_id):
        raise NotFound("customer id is not one this API issued (they look like 'cu_' and 16 hex digits)")
    return customer_id


def _loaded(customer_id: str, deps: Deps) -> Tuple[List[Identity], Profile]:
    store = _store(deps)
    identities = store.identities(customer_id)
    profile = store.profile(customer_id)
    if not identities and profile is None:
        raise NotFound(f"customer '{customer_id}' does not exist")
    return identities, profile or Profile(customer_id=customer_id)


def _profile_view(customer_id: str, identities: List[Identity], profile: Profile, deps: Deps,
                  params: Mapping[str, str]) -> Dict[str, Any]:
    limit = page_limit(params.get("limit", str(CASES_DEFAULT_LIMIT)), CASES_MAX_LIMIT)
    cases, next_cursor = _cases_page(customer_id, [i.customer_key for i in identities], limit,
                                     params.get("cursor") or None, deps)
    return {
        "customer_id": customer_id,
        "identities": [i.view() for i in identities],
        "names": sorted({i.name for i in identities if i.name}),
        "handles": sorted({i.handle for i in identities if i.handle}),
        **profile.view(),
        "audit": _store(deps).audit_trail(customer_id, limit=AUDIT_SHOWN),
        "cases": cases,
        "next_cursor": next_cursor,
    }


def get_customer(agent: Agent, customer_id: str, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    _require_worker(agent)
    customer_id = _checked_id(customer_id)
    identities, profile = _loaded(customer_id, deps)
    return _profile_view(customer_id, identities, profile, deps, params)


def find_customers(agent: Agent, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    """``?handle=`` (with ``platform=`` to narrow it) or ``?platform=&platform_id=``: the customers and their cases."""
    _require_worker(agent)
    store = _store(deps)
    platform = params.get("platform") or None
    if platform is not None and platform not in rules.PLATFORMS:
        raise BadRequest(f"query 'platform' must be one of {', '.join(rules.PLATFORMS)}")
    if params.get("handle"):
        handle = params["handle"]
        if len(handle) > 200:
            raise BadRequest("query 'handle' is at most 200 characters")
        keys = store.keys_by_handle(handle, platform=platform, limit=MAX_FOUND)
    elif platform and params.get("platform_id"):
        keys = [rules.check_customer_key(f"{platform}:{params['platform_id']}", "query 'platform_id'")]
    else:
        raise BadRequest("give query 'handle' (and optionally 'platform'), or 'platform' and 'platform_id'")
    found: Dict[str, Dict[str, Any]] = {}
    for key in keys:
        customer_id = customer_id_of(key, deps)
        if customer_id in found:
            continue
        identities = store.identities(customer_id) or [Identity(customer_key=key, customer_id=customer_id)]
        profile = store.profile(customer_id) or Profile(customer_id=customer_id)
        cases, next_cursor = _cases_page(customer_id, [i.customer_key for i in identities], CASES_DEFAULT_LIMIT,
                                         None, deps)
        if store.identity(key) is None:
            seen = {} if cases else _seen_in_ledger(key, deps)
            if seen is None:
                continue  # nothing is known about this identity
            # Known from cases older than profiles, or only from messages that needed no case (those record
            # nothing): from now on, a profile too.
            _remember(key, seen, deps)
        found[customer_id] = {"customer_id": customer_id, "identities": [i.view() for i in identities],
                              "tags": profile.tags, "merged_into": profile.merged_into, "cases": cases,
                              "more_cases": next_cursor is not None}
    return {"customers": list(found.values())}


def _seen_in_ledger(customer_key: str, deps: Deps) -> Optional[Dict[str, Any]]:
    """The author of the identity's newest message in its ledger (handle and name), or None when the ledger
    holds nothing of it: one Query of one item and one read, no Scan."""
    page = deps.cases.customer_ledger(customer_key, limit=1)
    if not page.entries:
        return None
    stored = deps.mentions.stored(page.entries[0].id) if page.entries[0].kind == "mention" else None
    author = (stored.mention.get("author") if stored is not None else None) or {}
    return {"handle": author.get("handle") or "", "name": author.get("name") or ""}


def update_customer(agent: Agent, customer_id: str, body: Any, deps: Deps) -> Dict[str, Any]:
    _require_worker(agent)
    customer_id = _checked_id(customer_id)
    store = _store(deps)
    identities, profile = _loaded(customer_id, deps)
    if profile.merged_into:
        raise Conflict(f"customer '{customer_id}' was merged into '{profile.merged_into}'; edit that profile")
    changes = rules.validate_profile_patch(body, store.field_definitions())
    updated = rules.apply_patch(profile, changes, by=agent.agent_id, at=deps.now())
    if not store.save_profile(updated):
        raise Conflict(f"customer '{customer_id}' changed while you were editing it; reload and try again")
    return _profile_view(customer_id, identities, updated, deps, {})


def merge(agent: Agent, customer_id: str, body: Any, deps: Deps) -> Dict[str, Any]:
    """Link the other profile's identities to this one (``{"customer_id": other}``); audited on both."""
    _require_worker(agent)
    customer_id = _checked_id(customer_id)
    store = _store(deps)
    if not isinstance(body, dict) or set(body) != {"customer_id"} or not rules.is_customer_id(body["customer_id"]):
        raise BadRequest('body must be {"customer_id": "<the other profile\'s id, cu_ and 16 hex digits>"}')
    other_id = body["customer_id"]
    target = store.identities(customer_id)
    other = store.identities(other_id)
    rules.check_merge(customer_id, other_id, target, other)
    audit = rules.audit_entry("merge", by=agent.agent_id, at=deps.now(), customer_id=customer_id,
                              other_customer_id=other_id, customer_keys=[i.customer_key for i in other])
    if not store.link(customer_id, other_id, other, audit=audit):
        raise Conflict("an identity of either profile moved while merging; reload both and try again")
    logger.info("customers merged", extra={"customer_id": customer_id, "merged": other_id})
    identities, profile = _loaded(customer_id, deps)
    return _profile_view(customer_id, identities, profile, deps, {})


def unmerge(agent: Agent, customer_id: str, body: Any, deps: Deps) -> Dict[str, Any]:
    """Send one linked identity back to its own profile (``{"customer_key": ...}``); audited on both."""
    _require_worker(agent)
    customer_id = _checked_id(customer_id)
    store = _store(deps)
    key = rules.unmerge_key(body)
    identity = rules.check_unmerge(customer_id, store.identity(key), key)
    audit = rules.audit_entry("unmerge", by=agent.agent_id, at=deps.now(), customer_id=customer_id,
                              other_customer_id=identity.home_customer_id, customer_keys=[key])
    if not store.unlink(identity, audit=audit):
        raise Conflict(f"identity '{key}' moved while unmerging it; reload and try again")
    identities, profile = _loaded(customer_id, deps)
    return _profile_view(customer_id, identities, profile, deps, {})


def field_definitions(agent: Agent, deps: Deps) -> Dict[str, Any]:
    _require_worker(agent)
    return {"fields": [d.to_dict() for d in _store(deps).field_definitions()]}


def save_field_definitions(agent: Agent, body: Any, deps: Deps) -> Dict[str, Any]:
    from chalicelib.services.inbox import require_supervisor

    require_supervisor(agent)
    definitions = rules.validate_field_definitions(body)
    _store(deps).put_field_definitions(definitions, author=agent.agent_id, at=deps.now())
    return {"fields": [d.to_dict() for d in definitions]}


# ---- privacy (services/privacy.py) ------------------------------------------------------------------

def export_profiles(keys: List[str], deps: Deps) -> List[Dict[str, Any]]:
    """What profiles hold about these identities: each identity, its profile's tags, notes, fields and audit."""
    if deps.customers is None:
        return []
    out: Dict[str, Dict[str, Any]] = {}
    for key in keys:
        identity = deps.customers.identity(key)
        customer_id = identity.customer_id if identity else customer_id_for(key)
        entry = out.setdefault(customer_id, {"customer_id": customer_id, "identities": []})
        if identity is not None:
            entry["identities"].append({**identity.view(), "handles": identity.handles})
        profile = deps.customers.profile(customer_id)
        if profile is not None:
            entry.update(profile.view())
        entry["audit"] = deps.customers.audit_trail(customer_id, limit=AUDIT_SHOWN)
    return [e for e in out.values() if e["identities"] or "tags" in e or e["audit"]]


def forget(customer_key: str, deps: Deps) -> int:
    """Erase what profiles hold about an identity; items deleted (repeatable)."""
    return deps.customers.forget_identity(customer_key) if deps.customers is not None else 0
