"""Canned replies: supervisors keep them per team, agents list them and send replies from them.

- ``GET /admin/templates`` (supervisors): every team's templates, or one team's (``?team=``), only
  those written in a language (``?lang=``), a page at a time (``?limit=``, ``?cursor=``), with usage;
- ``PUT``/``DELETE /admin/templates/{template_id}``;
- ``GET /templates`` (agents): the templates of their teams, the same way;
- a reply (``POST /cases/{id}/replies``) or a check (``.../replies/check``) with ``template_id``
  renders the template for the case (``render_for_case``); a reply sent from it counts one use.

Listing over several teams goes team by team (in name order), each team's templates in id order;
the cursor names the team and the store's position in it. Pages are full; the last one has no cursor.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.domain import hours
from chalicelib.domain.agent import Agent, valid_team_name
from chalicelib.domain.away import FALLBACKS as AWAY_FALLBACKS
from chalicelib.domain.away import customer_name, format_next_open
from chalicelib.domain.case import Case
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import BadRequest, Forbidden, InvalidCursor, NotFound, Unavailable
from chalicelib.domain.limits import page_limit
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.domain.templates import (
    LANGS,
    Template,
    choose_lang,
    initials,
    render,
    validate_template,
    validate_template_id,
    validate_values,
)
from chalicelib.observability import logger
from chalicelib.ports import Deps, TemplateStore

DEFAULT_PAGE = 50
MAX_PAGE = 100
_LIST_PARAMS = ("team", "lang", "limit", "cursor")


def store(deps: Deps) -> TemplateStore:
    if deps.templates is None:  # pragma: no cover - a wiring mistake, not an input error
        raise Unavailable("templates are not set up on this deployment; operator: wire Deps.templates")
    return deps.templates


def _require_supervisor(agent: Agent) -> None:
    if not agent.is_supervisor:
        raise Forbidden("only supervisors may manage templates; agents list theirs with GET /templates")


def _require_case_worker(agent: Agent) -> None:
    if agent.role == "finance":
        raise Forbidden("finance sees the cost and KPI reports only; templates are for agents and supervisors")


# ---- supervisors ----------------------------------------------------------------------------

def admin_list(agent: Agent, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    _require_supervisor(agent)
    team = params.get("team")
    if team is not None:
        _check_team(team)
    teams = [team] if team is not None else store(deps).template_teams()
    return _list(teams, params, deps)


def save(agent: Agent, template_id: str, body: Any, deps: Deps) -> Tuple[Dict[str, Any], bool]:
    """Create or replace a template; (its view, True when it is new)."""
    _require_supervisor(agent)
    template = validate_template(template_id, body, author=agent.agent_id, at=deps.now())
    created = store(deps).put_template(template)
    logger.info("template saved", extra={"template_id": template.template_id, "team": template.team,
                                         "new": created})
    saved = store(deps).get_template(template.template_id) or template
    return saved.public_view(), created


def delete(agent: Agent, template_id: str, deps: Deps) -> Dict[str, Any]:
    _require_supervisor(agent)
    validate_template_id(template_id)
    removed = store(deps).delete_template(template_id)
    if removed is None:
        raise NotFound(f"template '{template_id}' does not exist")
    return {"deleted": template_id, "team": removed.team}


def get(agent: Agent, template_id: str, deps: Deps) -> Dict[str, Any]:
    _require_case_worker(agent)
    template = _load(template_id, deps)
    _may_use(agent, template, None)
    return template.public_view()


# ---- agents ---------------------------------------------------------------------------------

def agent_list(agent: Agent, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    _require_case_worker(agent)
    team = params.get("team")
    if team is not None:
        _check_team(team)
        if not agent.is_supervisor and team not in agent.teams:
            raise Forbidden(f"you are not in team '{team}'; your teams are {', '.join(agent.teams) or 'none'}")
        teams = [team]
    elif agent.is_supervisor:
        teams = sorted(set(store(deps).template_teams()) | set(agent.teams))
    else:
        teams = sorted(set(agent.teams))
    return _list(teams, params, deps)


def _list(teams: List[str], params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    unknown = [name for name in params if name not in _LIST_PARAMS]
    if unknown:
        raise BadRequest(f"unknown query parameter '{unknown[0][:40]}'; use {', '.join(_LIST_PARAMS)}")
    lang = params.get("lang")
    if lang is not None and lang not in LANGS:
        raise BadRequest("query 'lang' must be 'en' or 'ja'")
    limit = page_limit(params["limit"], MAX_PAGE) if "limit" in params else DEFAULT_PAGE
    query = {"team": params.get("team") or "*", "lang": lang or "*"}
    index, position = 0, None
    cursor = params.get("cursor")
    if cursor:
        state = decode_cursor(cursor)
        if state.get("q") != query or state.get("team") not in teams:
            raise InvalidCursor("query 'cursor' was issued for another listing (team or lang changed); "
                                "start again without it")
        index, position = teams.index(state["team"]), state.get("p")
        if position is not None and not isinstance(position, str):
            raise InvalidCursor("query 'cursor' is not one this API issued; start again without it")
    items: List[Template] = []
    next_cursor: Optional[str] = None
    templates = store(deps)
    while index < len(teams):
        page, more = templates.templates_page(teams[index], lang=lang, limit=limit - len(items), after=position)
        items.extend(page)
        if more:
            next_cursor = encode_cursor({"q": query, "team": teams[index], "p": more})
            break
        index, position = index + 1, None
        if len(items) >= limit:
            # Full at a team's end: a cursor only if a later team has something to show.
            for later in teams[index:]:
                if templates.templates_page(later, lang=lang, limit=1)[0]:
                    next_cursor = encode_cursor({"q": query, "team": later, "p": None})
                    break
            break
    return {"templates": [t.public_view() for t in items], "next_cursor": next_cursor}


def _check_team(team: str) -> None:
    if not valid_team_name(team):
        raise BadRequest("query 'team' must be a team name: 1 to 64 printable characters without '#'")


def _load(template_id: Any, deps: Deps) -> Template:
    if not isinstance(template_id, str):
        raise BadRequest("field 'template_id' must be a template's id, e.g. 'lost-bag'")
    validate_template_id(template_id)
    template = store(deps).get_template(template_id)
    if template is None:
        raise NotFound(f"template '{template_id}' does not exist; GET /templates lists the ones you may use")
    return template


def _may_use(agent: Agent, template: Template, case: Optional[Case]) -> None:
    if agent.is_supervisor or template.team in agent.teams or (case is not None and template.team == case.team):
        return
    raise Forbidden(f"template '{template.template_id}' belongs to team '{template.team}', which you are not in")


# ---- rendering for a case ---------------------------------------------------------------------

def render_for_case(case: Case, agent: Agent, body: Mapping[str, Any], deps: Deps) -> Tuple[str, Template, str]:
    """(text, template, lang) of ``body["template_id"]`` rendered for the case and the sending agent."""
    template = _load(body.get("template_id"), deps)
    _may_use(agent, template, case)
    lang = choose_lang(template, body.get("lang"), case.lang)
    given = validate_values(body.get("variables"))
    needed = template.variables
    values: Dict[str, Optional[str]] = {
        "customer.name": _customer_name(case, lang),
        "agent.name": agent.name or None,
        "agent.initials": initials(agent.name) or None,
        "case.id": case.case_id,
    }
    if "team.next_open" in needed and "team.next_open" not in given:
        values["team.next_open"] = next_open_text(case.team, lang, deps)
    values.update(given)
    return render(template.bodies[lang], lang, values), template, lang


def _customer_name(case: Case, lang: str) -> Optional[str]:
    name = customer_name(case.customer or {}, lang)
    return None if name == AWAY_FALLBACKS[lang]["customer_name"] else name


def next_open_text(team: str, lang: str, deps: Deps) -> Optional[str]:
    """When the team next opens after being closed, in its own zone, as a reader of ``lang`` writes it;
    None when it has no calendar (always open) or never opens again (the fallback is used)."""
    calendar = deps.settings.get_team_calendar(team)
    if calendar is None or calendar.is_always_open:
        return None
    now = parse_iso(deps.now())
    opening = hours.next_opening_after_close(calendar, now)
    if opening is None:
        return None
    return format_next_open(opening.astimezone(hours.zone(calendar.time_zone)), lang, now=now)


def count_use(template_id: str, team: str, deps: Deps) -> None:
    """One more use; never fails a reply that is already queued."""
    try:
        store(deps).count_use(template_id, team)
    except Exception as err:  # noqa: BLE001 - a counter must not turn a queued reply into an error
        logger.warning("template use not counted", extra={"template_id": template_id, "reason": str(err)[:300]})
