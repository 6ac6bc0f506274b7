"""Working a case on fakes: notes and @mentions, edits with history and triage feedback, hand-offs,
and inbox filters that keep pages full."""
from __future__ import annotations

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.case import new_case
from chalicelib.domain.errors import BadRequest, Conflict, Forbidden, InvalidCursor
from chalicelib.services import case_work, inbox
from tests.fakes import fake_deps, mention


@pytest.fixture
def deps():
    deps = fake_deps()
    deps.settings.put_agent(Agent(agent_id="aiko", name="Aiko", teams=["support"], open_cases=1))
    deps.settings.put_agent(Agent(agent_id="ken", name="Ken", teams=["support"]))
    deps.settings.put_agent(Agent(agent_id="mika", teams=["vip"]))
    deps.settings.put_agent(Agent(agent_id="boss", teams=["leads"], role="supervisor"))
    deps.settings.put_agent(Agent(agent_id="fin", teams=[], role="finance"))
    return deps


def who(deps, agent_id):
    return deps.settings.get_agent(agent_id)


def a_case(deps, n=1, *, team="support", assignee="aiko", **triage):
    post = mention(f"p{n}", text=f"my bag {n} is lost", author_id=f"c{n}")
    deps.mentions.claim(post, now_epoch=0)
    case = new_case(post, {"priority": "normal", "category": "complaint", "tags": ["baggage"], **triage},
                    team=team, assignee=assignee, now=f"2026-11-23T03:{n:02d}:00.000000Z")
    deps.cases.create(case)
    return case


def events(deps, case_id, kind=None):
    return [e for e in deps.cases.events.get(case_id, []) if kind is None or e.get("event") == kind]


# ---- notes -------------------------------------------------------------------------------

def test_a_note_is_kept_in_the_history_never_sent_and_mentions_reach_colleagues(deps):
    case = a_case(deps)
    answer = case_work.add_note(who(deps, "aiko"), case.case_id,
                                {"text": "@ken can you check the tag? cc @boss, @nobody and @mika."}, deps)
    assert answer["notified"] == ["ken", "boss"]
    assert answer["unknown_mentions"] == ["nobody"]
    assert [n["agent_id"] for n in answer["not_notified"]] == ["mika"]  # not in the case's team
    assert deps.outbound_queue.bodies == []  # nothing goes to the customer
    [note] = events(deps, case.case_id, "note_added")
    assert note["agent_id"] == "aiko" and note["text"].startswith("@ken")
    ken_feed = deps.notifications.notifications_page("ken", limit=10).notifications
    assert [n.reason for n in ken_feed] == ["mention"] and case.case_id in ken_feed[0].detail
    assert deps.notifications.notifications_page("mika", limit=10).notifications == []
    detail = inbox.case_detail(who(deps, "ken"), case.case_id, deps)
    assert [n["note_id"] for n in detail["notes"]] == [note["note_id"]]
    assert detail["replies"] == []


@pytest.mark.parametrize("body", [{"text": ""}, {"text": " \n"}, {"text": "x" * 4001}, {"note": "hi"},
                                  {"text": "hi", "to": "ken"}, ["hi"], {"text": 5}])
def test_a_note_must_be_text_within_bounds(deps, body):
    case = a_case(deps)
    with pytest.raises(BadRequest):
        case_work.add_note(who(deps, "aiko"), case.case_id, body, deps)
    assert events(deps, case.case_id, "note_added") == []


def test_finance_and_other_teams_cannot_write_notes(deps):
    case = a_case(deps)
    for outsider in ("fin", "mika"):
        with pytest.raises(Forbidden):
            case_work.add_note(who(deps, outsider), case.case_id, {"text": "hi"}, deps)


# ---- edits -------------------------------------------------------------------------------

def test_edits_change_the_case_record_history_and_become_triage_feedback(deps):
    case = a_case(deps)
    answer = case_work.update_case(who(deps, "aiko"), case.case_id,
                                   {"priority": "urgent", "category": "question", "add_tags": ["refund"],
                                    "remove_tags": ["baggage"]}, deps)
    assert (answer["priority"], answer["category"], answer["tags"]) == ("urgent", "question", ["refund"])
    assert answer["changes"]["priority"] == {"from": "normal", "to": "urgent"}
    stored = deps.cases.get(case.case_id)
    assert (stored.priority, stored.category, stored.tags) == ("urgent", "question", ["refund"])
    [event] = events(deps, case.case_id, "case_updated")
    assert event["agent_id"] == "aiko" and event["changes"]["tags"] == {"from": ["baggage"], "to": ["refund"]}
    kept = {c.field: c for c in deps.feedback.kept.values()}
    assert set(kept) == {"priority", "category", "tags"}
    assert kept["category"].before == "complaint" and kept["category"].after == "question"
    assert kept["category"].mention_id == case.first_mention_id and kept["category"].text == "my bag 1 is lost"
    # The same edit again changes nothing and records nothing more.
    again = case_work.update_case(who(deps, "aiko"), case.case_id, {"priority": "urgent"}, deps)
    assert again["changes"] == {} and len(deps.feedback.kept) == 3


def test_the_inbox_order_follows_a_priority_change(deps):
    first, second = a_case(deps, 1), a_case(deps, 2)
    case_work.update_case(who(deps, "boss"), first.case_id, {"priority": "urgent"}, deps)
    listed = inbox.list_inbox(who(deps, "aiko"), {"order": "priority"}, deps)["cases"]
    assert [c["case_id"] for c in listed] == [first.case_id, second.case_id]
    urgent = inbox.list_inbox(who(deps, "aiko"), {"priority": "urgent"}, deps)["cases"]
    assert [c["case_id"] for c in urgent] == [first.case_id]


def test_status_and_fields_change_in_one_write(deps):
    case = a_case(deps)
    answer = case_work.update_case(who(deps, "aiko"), case.case_id, {"status": "resolved", "tags": ["done"]}, deps)
    assert answer["status"] == "resolved" and answer["tags"] == ["done"]
    assert who(deps, "aiko").open_cases == 0  # the load follows the status
    case_work.update_case(who(deps, "aiko"), case.case_id, {"status": "closed"}, deps)
    with pytest.raises(Conflict, match="closed case cannot become open"):
        case_work.update_case(who(deps, "aiko"), case.case_id, {"status": "open", "priority": "low"}, deps)
    assert deps.cases.get(case.case_id).priority == "normal"  # nothing of a refused edit is saved


@pytest.mark.parametrize("body,words", [
    ({"assignee": "ken"}, "assignee"), ({"status": "open", "colour": "red"}, "colour"), ({}, "one or more"),
    ({"priority": "critical"}, "priority"), ({"category": "rant"}, "category"), ({"tags": "refund"}, "tags"),
    ({"tags": ["Refund!"]}, "not a tag"), ({"tags": [f"t{i}" for i in range(21)]}, "at most 20"),
    ({"tags": ["a"], "add_tags": ["b"]}, "not both"), ({"escalated": "yes"}, "escalated"),
])
def test_bad_edits_are_refused_with_the_field_named(deps, body, words):
    case = a_case(deps)
    with pytest.raises(BadRequest) as err:
        case_work.update_case(who(deps, "aiko"), case.case_id, body, deps)
    assert words in str(err.value)
    assert deps.cases.get(case.case_id).version == case.version


def test_adding_tags_past_the_maximum_is_refused(deps):
    case = a_case(deps, tags=[f"t{i}" for i in range(19)])
    with pytest.raises(BadRequest, match="at most 20"):
        case_work.update_case(who(deps, "aiko"), case.case_id, {"add_tags": ["x1", "x2"]}, deps)


def test_escalating_by_hand_tells_the_supervisors(deps):
    case = a_case(deps)
    case_work.update_case(who(deps, "aiko"), case.case_id, {"escalated": True}, deps)
    feed = deps.notifications.notifications_page("boss", limit=5).notifications
    assert [n.reason for n in feed] == ["escalation"]
    assert inbox.list_inbox(who(deps, "aiko"), {"escalated": "true"}, deps)["cases"][0]["case_id"] == case.case_id


def test_edits_work_without_a_feedback_store(deps):
    deps.feedback = None
    case = a_case(deps)
    assert case_work.update_case(who(deps, "aiko"), case.case_id, {"category": "praise"}, deps)["category"] == "praise"


# ---- hand-offs ---------------------------------------------------------------------------

def test_claiming_an_unassigned_case(deps):
    case = a_case(deps, assignee=None)
    answer = case_work.claim(who(deps, "ken"), case.case_id, None, deps)
    assert answer["assignee"] == "ken" and answer["changed"]
    assert who(deps, "ken").open_cases == 1
    assert case_work.claim(who(deps, "ken"), case.case_id, None, deps)["changed"] is False  # repeatable
    with pytest.raises(Conflict, match="already ken's"):
        case_work.claim(who(deps, "aiko"), case.case_id, None, deps)
    [event] = events(deps, case.case_id, "assigned")
    assert event["agent_id"] == "ken" and event["how"] == "claim"


def test_claiming_at_capacity_needs_an_explicit_override(deps):
    deps.settings.put_agent(Agent(agent_id="sato", teams=["support"], capacity=1, open_cases=1))
    case = a_case(deps, assignee=None)
    with pytest.raises(Conflict, match="capacity"):
        case_work.claim(who(deps, "sato"), case.case_id, None, deps)
    assert case_work.claim(who(deps, "sato"), case.case_id, {"override": True}, deps)["assignee"] == "sato"
    assert who(deps, "sato").open_cases == 2


def test_the_assignee_hands_a_case_to_a_colleague_with_a_note(deps):
    case = a_case(deps)
    answer = case_work.assign(who(deps, "aiko"), case.case_id, {"agent_id": "ken", "note": "refund expert"}, deps)
    assert answer["assignee"] == "ken"
    assert (who(deps, "aiko").open_cases, who(deps, "ken").open_cases) == (0, 1)
    [event] = events(deps, case.case_id, "assigned")
    assert (event["from"], event["to"], event["note"], event["agent_id"]) == ("aiko", "ken", "refund expert", "aiko")
    [note] = deps.notifications.notifications_page("ken", limit=5).notifications
    assert note.reason == "assigned" and "refund expert" in note.detail


def test_who_may_hand_a_case_on(deps):
    case = a_case(deps)
    with pytest.raises(Forbidden):
        case_work.assign(who(deps, "ken"), case.case_id, {"agent_id": "ken"}, deps)  # aiko's, not ken's
    with pytest.raises(Forbidden):
        case_work.unassign(who(deps, "ken"), case.case_id, None, deps)
    with pytest.raises(Forbidden, match="supervisors"):
        case_work.assign(who(deps, "aiko"), case.case_id, {"agent_id": "ken", "override": True}, deps)
    with pytest.raises(BadRequest, match="not in team"):
        case_work.assign(who(deps, "boss"), case.case_id, {"agent_id": "mika"}, deps)
    with pytest.raises(BadRequest, match="no agent"):
        case_work.assign(who(deps, "boss"), case.case_id, {"agent_id": "ghost"}, deps)
    with pytest.raises(BadRequest, match="no team"):
        case_work.assign(who(deps, "boss"), case.case_id, {"team": "ghosts"}, deps)
    with pytest.raises(BadRequest):
        case_work.assign(who(deps, "boss"), case.case_id, {"note": "hi"}, deps)


def test_presence_is_respected_unless_a_supervisor_overrides(deps):
    case = a_case(deps)
    deps.settings.set_presence("ken", "away", at="t")
    with pytest.raises(Conflict, match="away"):
        case_work.assign(who(deps, "boss"), case.case_id, {"agent_id": "ken"}, deps)
    answer = case_work.assign(who(deps, "boss"), case.case_id, {"agent_id": "ken", "override": True}, deps)
    assert answer["assignee"] == "ken" and events(deps, case.case_id, "assigned")[0]["override"] is True


def test_a_transfer_to_a_team_lands_with_one_of_its_agents(deps):
    case = a_case(deps)
    answer = case_work.assign(who(deps, "aiko"), case.case_id, {"team": "vip", "note": "VIP contract"}, deps)
    assert answer["team"] == "vip" and answer["assignee"] == "mika"  # vip's agent with room took it
    assert (who(deps, "aiko").open_cases, who(deps, "mika").open_cases) == (0, 1)
    [moved] = events(deps, case.case_id, "moved")
    assert (moved["from_team"], moved["to_team"], moved["note"]) == ("support", "vip", "VIP contract")


def test_unassigning_puts_the_case_back_in_the_queue(deps):
    case = a_case(deps)
    answer = case_work.unassign(who(deps, "aiko"), case.case_id, {"note": "going home"}, deps)
    assert answer["assignee"] is None and who(deps, "aiko").open_cases == 0
    assert [c.case_id for c in deps.cases.waiting_page("support", 10, None).cases] == [case.case_id]
    assert events(deps, case.case_id, "unassigned")[0]["note"] == "going home"
    assert case_work.unassign(who(deps, "boss"), case.case_id, None, deps)["changed"] is False


def test_a_resolved_case_cannot_be_claimed(deps):
    case = a_case(deps, assignee=None)
    case_work.update_case(who(deps, "boss"), case.case_id, {"status": "resolved"}, deps)
    with pytest.raises(Conflict, match="resolved"):
        case_work.claim(who(deps, "ken"), case.case_id, None, deps)


# ---- inbox filters -------------------------------------------------------------------------

def pages(agent, deps, **params):
    seen, cursor, count = [], None, 0
    while True:
        page = inbox.list_inbox(agent, {**params, **({"cursor": cursor} if cursor else {})}, deps)
        count += 1
        cursor = page["next_cursor"]
        assert page["cases"] or not cursor, "an empty page with a cursor"
        seen += page["cases"]
        if not cursor:
            return seen, count


def test_assignee_me_lists_my_cases_in_full_pages(deps):
    mine = {a_case(deps, n, assignee="ken" if n % 5 == 0 else None).case_id for n in range(1, 31)}
    mine = {cid for cid in mine if deps.cases.get(cid).assignee == "ken"}
    seen, count = pages(who(deps, "ken"), deps, assignee="me", limit="2")
    assert {c["case_id"] for c in seen} == mine and len(seen) == 6 and count == 3
    none, _ = pages(who(deps, "ken"), deps, assignee="none", limit="7", order="priority")
    assert len(none) == 24 and all(c["assignee"] is None for c in none)


def test_filters_combine_and_bind_the_cursor(deps):
    for n in range(1, 13):
        a_case(deps, n, assignee=None, priority="urgent" if n % 4 == 0 else "normal",
               tags=["refund"] if n % 2 == 0 else ["baggage"])
    seen, _ = pages(who(deps, "boss"), deps, priority="urgent", tag="refund", limit="1", order="due")
    assert len(seen) == 3
    first = inbox.list_inbox(who(deps, "boss"), {"tag": "refund", "limit": "2"}, deps)
    with pytest.raises(InvalidCursor):
        inbox.list_inbox(who(deps, "boss"), {"tag": "baggage", "cursor": first["next_cursor"]}, deps)


@pytest.mark.parametrize("params", [{"priority": "meh"}, {"category": "rant"}, {"platform": "myspace"},
                                    {"lang": "english!"}, {"tag": "Bad Tag"}, {"escalated": "yes"},
                                    {"assignee": "a b"}, {"colour": "red"}])
def test_bad_filters_are_refused(deps, params):
    with pytest.raises(BadRequest):
        inbox.list_inbox(who(deps, "boss"), params, deps)


def test_the_inbox_vocabulary_is_triages():
    from chalicelib.domain import inbox_filter
    from chalicelib.domain.case import PRIORITIES
    from chalicelib.triage import decide, rules

    assert set(inbox_filter.CATEGORIES) == set(decide.CATEGORIES)
    assert set(inbox_filter.PRIORITIES) == set(PRIORITIES) == set(decide.PRIORITIES)
    assert set(inbox_filter.PLATFORMS) == set(rules.PLATFORMS)
    assert inbox_filter.TAG_PATTERN.pattern == rules._TAG_RE.pattern
