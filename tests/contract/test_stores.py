"""One contract, two implementations: the in-memory fakes and the DynamoDB/SQS
adapters on moto (tables made from infra/template.yaml). A fake that drifts
from the real store fails here, not in production. (The ``stores`` fixture is in conftest.py.)"""
from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.case import new_case, with_follow_up, with_status
from chalicelib.domain.errors import Conflict, InvalidCursor
from chalicelib.domain.reply import new_reply
from tests.fakes import mention


def a_case(platform_id="100", *, team="support", priority="normal", created="2026-11-23T03:00:00.000000Z",
           author_id="42"):
    return new_case(mention(platform_id, author_id=author_id), {"priority": priority, "category": "complaint"},
                    team=team, assignee=None, now=created)


# ---- cases -------------------------------------------------------------------------

def test_a_case_is_created_once_and_read_back_whole(stores):
    cases = stores["cases"]
    case = a_case()
    assert cases.create(case)
    assert not cases.create(case)  # a repeated delivery
    loaded = cases.get(case.case_id)
    assert loaded == case
    assert cases.get("c_missing") is None


def test_saving_over_a_stale_version_is_refused(stores):
    cases = stores["cases"]
    case = a_case()
    cases.create(case)
    first, second = cases.get(case.case_id), cases.get(case.case_id)
    assert cases.save(with_status(first, "pending", "t1"))
    assert not cases.save(with_status(second, "resolved", "t2"))  # lost the race: must re-read
    assert cases.get(case.case_id).status == "pending"
    assert cases.get(case.case_id).version == 1


def test_opening_claims_the_customer_and_the_agents_load_together(stores):
    cases, settings = stores["cases"], stores["settings"]
    settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=1))
    first = replace(a_case("1", author_id="7"), assignee="aiko")
    assert cases.open_case(first, opened_event={"event": "opened"}).outcome == "opened"
    assert cases.active_case_for_customer("x:7") == first.case_id
    assert settings.get_agent("aiko").open_cases == 1
    # A second post of the same customer, opened at the same moment, must join instead.
    second = replace(a_case("2", author_id="7"), assignee="aiko")
    result = cases.open_case(second, opened_event={"event": "opened"})
    assert result.outcome == "customer_active" and result.active_case_id == first.case_id
    assert cases.get(second.case_id) is None
    # A repeated delivery changes nothing: no second count, no second opened event.
    assert cases.open_case(first, opened_event={"event": "opened"}).outcome == "exists"
    assert settings.get_agent("aiko").open_cases == 1
    assert [e["event"] for e in cases.history(first.case_id).events] == ["opened"]


def test_an_agent_at_capacity_leaves_the_new_case_in_the_team_queue(stores):
    cases, settings = stores["cases"], stores["settings"]
    settings.put_agent(Agent(agent_id="ken", teams=["support"], capacity=1))
    settings.adjust_open_cases("ken", +1, at="t0")
    case = replace(a_case("3", author_id="8"), assignee="ken")
    result = cases.open_case(case, opened_event={"event": "opened"})
    assert result.outcome == "opened" and result.assignee is None
    assert cases.get(case.case_id).assignee is None and settings.get_agent("ken").open_cases == 1


def test_status_changes_move_the_customer_and_the_load_with_the_case(stores):
    cases, settings = stores["cases"], stores["settings"]
    settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=5))
    case = replace(a_case("4", author_id="9"), assignee="aiko")
    cases.open_case(case, opened_event={"event": "opened"})
    before = cases.get(case.case_id)
    resolved = with_status(before, "resolved", "2026-11-23T04:00:00.000000Z")
    assert cases.change_status(before, resolved, event={"event": "status_changed"})
    assert cases.active_case_for_customer("x:9") is None
    assert settings.get_agent("aiko").open_cases == 0
    assert not cases.change_status(before, resolved, event={"event": "status_changed"})  # stale version
    # The customer writes again: a new case; reopening the old one now would give them two.
    newer = a_case("5", author_id="9", created="2026-11-23T05:00:00.000000Z")
    assert cases.open_case(newer, opened_event={"event": "opened"}).outcome == "opened"
    old = cases.get(case.case_id)
    with pytest.raises(Conflict):
        cases.change_status(old, with_status(old, "open", "2026-11-23T06:00:00.000000Z"), event={"event": "x"})
    assert cases.get(case.case_id).status == "resolved"


def test_a_follow_up_is_attached_once(stores):
    cases = stores["cases"]
    case = a_case("6", author_id="10")
    cases.open_case(case, opened_event={"event": "opened"})
    post = mention("7", author_id="10", text="any news?")
    current = cases.get(case.case_id)
    changed = with_follow_up(current, post, "high", "2026-11-23T03:05:00.000000Z")
    assert cases.add_follow_up(changed, post, at="2026-11-23T03:05:00Z", event={"event": "follow_up"}) == "added"
    again = with_follow_up(cases.get(case.case_id), post, "high", "2026-11-23T03:06:00.000000Z")
    assert cases.add_follow_up(again, post, at="2026-11-23T03:06:00Z", event={"event": "follow_up"}) == "duplicate"
    stale = with_follow_up(current, mention("8", author_id="10"), "low", "t")
    assert cases.add_follow_up(stale, mention("8", author_id="10"), at="t", event={"event": "follow_up"}) == "stale"
    stored = cases.get(case.case_id)
    assert stored.mention_count == 2 and stored.priority == "high" and stored.reply_target.platform_id == "7"


def test_inbox_pages_in_order_without_skipping_or_repeating(stores):
    cases = stores["cases"]
    for i, priority in enumerate(["low", "urgent", "normal", "high", "urgent"]):
        cases.create(a_case(str(200 + i), priority=priority, created=f"2026-11-23T03:00:0{i}.000000Z",
                            author_id=str(i)))
    cases.create(a_case("300", team="vip", author_id="99"))
    seen, after = [], None
    while True:
        page = cases.inbox_page("support", "open", "priority", 2, after)
        seen.extend(c.priority for c in page.cases)
        assert len(page.positions) == len(page.cases)
        if not page.more:
            break
        after = page.positions[-1]
    assert seen == ["urgent", "urgent", "high", "normal", "low"]
    newest = cases.inbox_page("support", "open", "newest", 10, None)
    assert [c.created_at for c in newest.cases] == sorted((c.created_at for c in newest.cases), reverse=True)
    assert not newest.more


def test_inbox_refuses_a_position_it_did_not_issue(stores):
    cases = stores["cases"]
    cases.create(a_case())
    with pytest.raises(InvalidCursor):
        cases.inbox_page("support", "open", "newest", 10, "not-a-position")


def test_history_holds_mentions_events_and_replies_in_order(stores):
    cases = stores["cases"]
    case = a_case()
    cases.create(case)
    assert cases.add_mention(case.case_id, mention("100"), at="2026-11-23T03:00:00Z")
    assert not cases.add_mention(case.case_id, mention("100"), at="2026-11-23T03:00:00Z")
    cases.add_mention(case.case_id, mention("101", text="any news?"), at="2026-11-23T03:05:00Z")
    cases.add_event(case.case_id, {"event": "opened"}, at="2026-11-23T03:00:01Z")
    cases.add_event(case.case_id, {"event": "follow_up"}, at="2026-11-23T03:05:01Z")
    reply = new_reply(case, {"text": "On it", "mode": "public", "idempotency_key": None}, agent_id="aiko", now="t")
    assert cases.put_reply(reply)
    history = cases.history(case.case_id)
    assert [m.platform_id for m in history.mentions] == ["100", "101"]
    assert [e["event"] for e in history.events] == ["opened", "follow_up"]
    assert [r.reply_id for r in history.replies] == [reply.reply_id]
    assert cases.history("c_missing") is None


def test_reply_updates_are_conditional_on_delivery_status(stores):
    cases = stores["cases"]
    case = a_case()
    cases.create(case)
    reply = new_reply(case, {"text": "On it", "mode": "public", "idempotency_key": "k1"}, agent_id="aiko", now="t")
    assert cases.put_reply(reply)
    assert not cases.put_reply(replace(reply, text="other"))
    assert cases.update_reply(case.case_id, reply.reply_id, {"delivery_status": "sending"}, expect_status=["queued"])
    assert not cases.update_reply(case.case_id, reply.reply_id, {"delivery_status": "sending"}, expect_status=["queued"])
    assert cases.get_reply(case.case_id, reply.reply_id).delivery_status == "sending"
    cases.record_delivery("x", "9001", case.case_id, reply.reply_id)
    assert cases.find_delivery("x", "9001") == (case.case_id, reply.reply_id)
    assert cases.find_delivery("x", "9002") is None


# ---- mentions --------------------------------------------------------------------

def test_first_claim_of_a_mention_wins(stores):
    store = stores["mentions"]
    post = mention("1")
    assert store.claim(post, now_epoch=1000) is None
    store.update(post.id, state="routed", case_id="c_1")
    again = store.claim(post, now_epoch=1001)
    assert again.state == "routed" and again.done and again.case_id == "c_1"


# ---- settings ------------------------------------------------------------------------

def test_cursor_writes_are_optimistic(stores):
    store = stores["settings"]
    assert store.get_cursor("x:1") == {"version": 0}
    assert store.save_cursor("x:1", {"since": "10"}, expected_version=0)
    assert not store.save_cursor("x:1", {"since": "11"}, expected_version=0)  # a stale run loses
    assert store.save_cursor("x:1", {"since": "12"}, expected_version=1)
    assert store.get_cursor("x:1")["since"] == "12"


def test_agent_counter_refuses_past_capacity_and_below_zero(stores):
    store = stores["settings"]
    store.put_agent(Agent(agent_id="aiko", teams=["support", "vip"], capacity=1))
    assert store.adjust_open_cases("aiko", +1, at="t1")
    assert not store.adjust_open_cases("aiko", +1, at="t2")
    assert store.get_agent("aiko").open_cases == 1
    assert store.adjust_open_cases("aiko", -1, at="t3")
    assert not store.adjust_open_cases("aiko", -1, at="t4")  # never below zero
    assert store.get_agent("aiko").open_cases == 0


def test_team_membership_follows_the_profile_and_edits_keep_the_counter(stores):
    store = stores["settings"]
    store.put_agent(Agent(agent_id="aiko", teams=["support", "vip"], capacity=3))
    store.adjust_open_cases("aiko", +1, at="t1")
    store.put_agent(replace(store.get_agent("aiko"), teams=["support"], open_cases=0))
    assert store.team_agents("vip") == []
    assert [a.agent_id for a in store.team_agents("support")] == ["aiko"]
    assert store.get_agent("aiko").open_cases == 1  # a profile edit does not reset the load
    assert store.teams() == ["support", "vip"]


def test_sources_are_listed_and_their_status_updated(stores):
    store = stores["settings"]
    store.put_source({"source_id": "x:mentions:1", "kind": "x_mentions", "platform": "x", "account_id": "1"})
    store.update_source_status("x:mentions:1", {"state": "ok", "last_fetched": 3})
    assert store.get_source("x:mentions:1")["last_fetched"] == 3
    assert [s["source_id"] for s in store.list_sources()] == ["x:mentions:1"]
    assert store.get_source("x:mentions:2") is None


def test_every_rules_save_gets_its_own_version(stores):
    store = stores["settings"]
    assert store.current_rules_version() == 0
    assert store.add_rules_version({"rules": []}, author="boss", at="t1") == 1
    assert store.add_rules_version({"rules": [1]}, author="lead", at="t2") == 2
    assert store.current_rules_version() == 2
    assert store.get_rules_version(1)["saved_by"] == "boss"
    assert [v["version"] for v in store.list_rules_versions()] == [1, 2]


# ---- queues ------------------------------------------------------------------------

def test_queue_sends_batches_beyond_ten_messages(stores):
    assert stores["queue"].send_batch({"n": i} for i in range(23)) == 23


def test_a_long_history_comes_in_pages_without_gaps(stores):
    cases = stores["cases"]
    case = a_case("9", author_id="11")
    cases.create(case)
    for i in range(23):
        cases.add_mention(case.case_id, mention(f"9{i:02d}", author_id="11"), at=f"2026-11-23T04:{i:02d}:00Z")
        cases.add_event(case.case_id, {"event": "follow_up"}, at=f"2026-11-23T04:{i:02d}:01Z")
    seen_mentions, seen_events, after = [], 0, None
    while True:
        page = cases.history(case.case_id, limit=10, after=after)
        assert len(page.mentions) + len(page.events) + len(page.replies) <= 10
        seen_mentions += [m.platform_id for m in page.mentions]
        seen_events += len(page.events)
        after = page.next_position
        if after is None:
            break
    assert seen_mentions == [f"9{i:02d}" for i in range(23)] and seen_events == 23
    with pytest.raises(InvalidCursor):
        cases.history(case.case_id, limit=10, after="bm9wZQ")


def test_two_supervisors_saving_at_once_both_get_a_version(stores, monkeypatch):
    """Both read "version 1 is the latest" before either saved: neither overwrites the other."""
    store = stores["settings"]
    store.add_rules_version({"rules": ["base"]}, author="boss", at="t0")
    if hasattr(store, "_latest_rules_version"):  # the DynamoDB store: make the second reader stale
        monkeypatch.setattr(store, "_latest_rules_version", lambda: 1)
        monkeypatch.setattr(store, "current_rules_version", lambda: 1)
    first = store.add_rules_version({"rules": ["from lead A"]}, author="lead-a", at="t1")
    second = store.add_rules_version({"rules": ["from lead B"]}, author="lead-b", at="t2")
    monkeypatch.undo()
    assert {first, second} == {2, 3}
    assert store.get_rules_version(2)["saved_by"] == "lead-a" and store.get_rules_version(3)["saved_by"] == "lead-b"
    assert store.current_rules_version() == 3
