"""The agent's inbox on fakes: visibility, paging across teams, status changes."""
from __future__ import annotations

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.case import new_case
from chalicelib.domain.errors import BadRequest, Conflict, Forbidden, InvalidCursor, NotFound
from chalicelib.services import inbox, workload
from tests.fakes import fake_deps, mention


@pytest.fixture
def deps():
    deps = fake_deps()
    for team, count in (("support", 7), ("vip", 4)):
        for i in range(count):
            created = f"2026-11-23T03:{i:02d}:{len(team):02d}.000000Z"
            case = new_case(mention(f"{team}{i}", author_id=f"{team}{i}"), {"priority": ["normal", "urgent"][i % 2]},
                            team=team, assignee="aiko" if team == "support" and i < 2 else None, now=created)
            deps.cases.create(case)
    deps.settings.put_agent(Agent(agent_id="aiko", teams=["support"]))
    deps.settings.put_agent(Agent(agent_id="mika", teams=["vip"]))
    deps.settings.put_agent(Agent(agent_id="boss", teams=["leads"], role="supervisor"))
    return deps


def all_pages(agent, deps, **params):
    seen, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = inbox.list_inbox(agent, query, deps)
        seen.extend(page["cases"])
        cursor = page["next_cursor"]
        if not cursor:
            return seen


@pytest.mark.parametrize("order", ["newest", "priority"])
def test_a_supervisor_pages_every_team_without_skips_or_repeats(deps, order):
    boss = deps.settings.get_agent("boss")
    seen = all_pages(boss, deps, order=order, limit="3")
    assert len(seen) == 11 and len({c["case_id"] for c in seen}) == 11
    if order == "priority":
        assert [c["priority"] for c in seen] == sorted((c["priority"] for c in seen), key=["urgent", "normal"].index)
    else:
        assert [c["created_at"] for c in seen] == sorted((c["created_at"] for c in seen), reverse=True)


def test_an_agent_sees_only_their_teams(deps):
    aiko = deps.settings.get_agent("aiko")
    assert {c["team"] for c in all_pages(aiko, deps)} == {"support"}
    with pytest.raises(Forbidden):
        inbox.list_inbox(aiko, {"team": "vip"}, deps)
    vip_case = next(iter(c for c in deps.cases.cases.values() if c.team == "vip"))
    with pytest.raises(Forbidden):
        inbox.case_detail(aiko, vip_case.case_id, deps)
    with pytest.raises(NotFound):
        inbox.case_detail(aiko, "c_nope", deps)


@pytest.mark.parametrize("cursor", ["%%%", "e30", "eyJwb3NpdGlvbnMiOiAxfQ", "x" * 5000])
def test_a_tampered_cursor_is_a_clear_400(deps, cursor):
    with pytest.raises(InvalidCursor):
        inbox.list_inbox(deps.settings.get_agent("boss"), {"cursor": cursor}, deps)


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "1e9"}, {"limit": "9" * 400}, {"status": "gone"},
                                    {"order": "random"}])
def test_bad_queries_say_what_to_fix(deps, params):
    with pytest.raises(BadRequest):
        inbox.list_inbox(deps.settings.get_agent("boss"), params, deps)


def test_resolving_frees_the_agent_and_a_closed_case_stays_closed(deps, monkeypatch):
    # The freed slot is offered to the waiting queue (workload's business, tested there): here, only that it is.
    filled = []
    monkeypatch.setattr(workload, "fill_agent", lambda agent_id, _deps: filled.append(agent_id) or [])
    aiko = deps.settings.get_agent("aiko")
    deps.settings.adjust_open_cases("aiko", +1, at="t0")
    case = next(c for c in deps.cases.cases.values() if c.assignee == "aiko")
    assert inbox.change_status(aiko, case.case_id, {"status": "resolved"}, deps)["status"] == "resolved"
    assert deps.settings.get_agent("aiko").open_cases == 0
    assert filled == ["aiko"]
    inbox.change_status(aiko, case.case_id, {"status": "closed"}, deps)
    with pytest.raises(Conflict):
        inbox.change_status(aiko, case.case_id, {"status": "open"}, deps)
    with pytest.raises(BadRequest):
        inbox.change_status(aiko, case.case_id, {"status": ["open"]}, deps)
