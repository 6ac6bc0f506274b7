"""Assignment survives crashes and races: counters never drift, one customer has one active case."""
from __future__ import annotations

import json

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.services import assign, inbox
from tests.fakes import fake_deps, mention


@pytest.fixture
def deps():
    deps = fake_deps()
    deps.settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=3))
    deps.settings.put_agent(Agent(agent_id="boss", teams=["leads"], role="supervisor"))
    return deps


def triaged(post, priority="normal"):
    return json.dumps({"mention": post.to_dict(), "triage": {"priority": priority, "case": True}})


def test_a_redelivery_after_a_crash_finishes_the_work_without_counting_twice(deps):
    body = triaged(mention("1", author_id="7"))

    class CrashAfterOpen(Exception):
        pass

    real_add_mention = deps.cases.add_mention
    deps.cases.add_mention = lambda *a, **k: (_ for _ in ()).throw(CrashAfterOpen())
    with pytest.raises(CrashAfterOpen):
        assign.assign_message(body, deps)
    deps.cases.add_mention = real_add_mention

    again = assign.assign_message(body, deps)

    assert again["outcome"] == "duplicate"
    history = deps.cases.history(again["case_id"])
    assert [m.id for m in history.mentions] == ["x:1"]
    assert [e["event"] for e in history.events] == ["opened"]
    assert deps.settings.get_agent("aiko").open_cases == 1
    assert deps.mentions.get("x:1").state == "routed"


def test_two_posts_of_one_customer_arriving_together_make_one_case(deps):
    first, second = mention("2", author_id="8"), mention("3", author_id="8", text="hello??")
    # Both deliveries looked before either opened a case.
    deps.cases.active_case_for_customer = lambda key, _real=deps.cases.active_case_for_customer: None
    a = assign.assign_message(triaged(first), deps)
    del deps.cases.active_case_for_customer
    b = assign.assign_message(triaged(second), deps)
    assert a["outcome"] == "opened" and b["outcome"] == "joined" and b["case_id"] == a["case_id"]
    assert deps.settings.get_agent("aiko").open_cases == 1


def test_a_follow_up_redelivered_is_attached_once(deps):
    opened = assign.assign_message(triaged(mention("4", author_id="9")), deps)
    follow = triaged(mention("5", author_id="9", created_at="2026-11-23T03:10:00Z"), priority="high")
    assert assign.assign_message(follow, deps)["outcome"] == "joined"
    assert assign.assign_message(follow, deps)["outcome"] == "duplicate"
    case = deps.cases.get(opened["case_id"])
    assert case.mention_count == 2 and case.priority == "high"


def test_the_open_case_counter_follows_status_and_never_goes_below_zero(deps):
    opened = assign.assign_message(triaged(mention("6", author_id="10")), deps)
    boss = deps.settings.get_agent("boss")
    inbox.change_status(boss, opened["case_id"], {"status": "resolved"}, deps)
    assert deps.settings.get_agent("aiko").open_cases == 0
    inbox.change_status(boss, opened["case_id"], {"status": "open"}, deps)
    assert deps.settings.get_agent("aiko").open_cases == 1
    inbox.change_status(boss, opened["case_id"], {"status": "closed"}, deps)
    inbox.change_status(boss, opened["case_id"], {"status": "closed"}, deps)  # no change, no second decrement
    assert deps.settings.get_agent("aiko").open_cases == 0
    # After resolution the customer's next post opens a new case.
    again = assign.assign_message(triaged(mention("7", author_id="10")), deps)
    assert again["outcome"] == "opened" and again["case_id"] != opened["case_id"]
