"""One customer, whole history, on fakes: the profile rules, cheap identity records, follow-ups that land
with their case, the reopen window (counters, clocks), and routing across linked identities."""
from __future__ import annotations

import json

import pytest

from chalicelib.domain import customer as rules
from chalicelib.domain.agent import Agent
from chalicelib.domain.errors import BadRequest, Conflict, NotFound
from chalicelib.services import assign, customers, inbox, intake
from tests.fakes import Clock, fake_deps, mention

BOSS = Agent(agent_id="boss", teams=["leads"], role="supervisor")
AIKO = Agent(agent_id="aiko", teams=["support"], capacity=5)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def deps(clock):
    deps = fake_deps(clock)
    deps.settings.put_agent(AIKO)
    deps.settings.put_agent(BOSS)
    return deps


def run(deps, post):
    """Triage, then assign whatever triage forwarded: the outcome of each."""
    first = intake.triage_message(json.dumps(post.to_dict()), deps)
    later = [assign.assign_message(body, deps) for body in deps.triaged_queue.take()]
    return later[0] if later else first


def post(platform_id, text="@SoraAir my bag is lost, terrible", **extra):
    extra.setdefault("created_at", "2026-11-23T03:00:00Z")
    return mention(platform_id, text, **extra)


# ---- rules ---------------------------------------------------------------------------------------

def test_every_identity_has_a_profile_id_without_any_write():
    assert rules.customer_id_for("x:42") == rules.customer_id_for("x:42") != rules.customer_id_for("x:43")
    assert rules.is_customer_id(rules.customer_id_for("whatsapp:8190"))
    assert not rules.is_customer_id("cu_XYZ") and not rules.is_customer_id(None)


@pytest.mark.parametrize("body, says", [
    ({"fields": [{"name": "a", "label": "A"}, {"name": "a", "label": "B"}]}, "defined twice"),
    ({"fields": [{"name": "miles", "label": "Miles", "type": "date"}]}, "'type' must be one of"),
    ({"fields": [{"name": "miles", "label": "Miles", "max_length": 0}]}, "'max_length'"),
    ({"fields": [{"name": "miles", "label": "   "}]}, "'label'"),
    ({"fields": [{"name": "x", "label": "x", "colour": "red"}]}, "name, label, type and max_length only"),
    ({"fields": [{"name": f"f{i}", "label": "x"} for i in range(31)]}, "at most 30"),
    ({"definitions": []}, "body must be"),
])
def test_field_definitions_are_refused_with_a_reason(body, says):
    with pytest.raises(BadRequest, match=says):
        rules.validate_field_definitions(body)


def test_tags_are_trimmed_and_deduplicated_and_notes_may_span_lines():
    changes = rules.validate_profile_patch({"tags": [" VIP", "VIP", "tier-1"], "notes": "a\nb"}, [])
    assert changes == {"tags": ["VIP", "tier-1"], "notes": "a\nb"}
    with pytest.raises(BadRequest, match="at most 20"):
        rules.validate_profile_patch({"tags": [str(i) for i in range(21)]}, [])
    with pytest.raises(BadRequest, match="control characters"):
        rules.validate_profile_patch({"tags": ["bad\x00tag"]}, [])


def test_the_reopen_window_is_counted_from_the_resolution():
    resolved = "2026-11-23T03:00:00.000000Z"
    assert rules.reopen_window_open(resolved, "2026-11-26T03:00:00.000000Z", 72)
    assert not rules.reopen_window_open(resolved, "2026-11-26T03:00:01.000000Z", 72)
    assert not rules.reopen_window_open(resolved, "2026-11-23T03:00:01.000000Z", 0)  # 0: reopening is off
    assert not rules.reopen_window_open(None, resolved, 72)


def test_the_reopen_window_setting_is_read_and_checked(monkeypatch):
    from chalicelib.config import settings

    settings.cache_clear()
    try:
        assert settings().reopen_window_hours == 72
        monkeypatch.setenv("REOPEN_WINDOW_HOURS", "0")
        settings.cache_clear()
        assert settings().reopen_window_hours == 0
        monkeypatch.setenv("REOPEN_WINDOW_HOURS", "3 days")
        settings.cache_clear()
        with pytest.raises(ValueError, match="REOPEN_WINDOW_HOURS"):
            settings()
    finally:
        monkeypatch.delenv("REOPEN_WINDOW_HOURS", raising=False)
        settings.cache_clear()


# ---- identities are recorded cheaply --------------------------------------------------------------

def test_an_identity_is_written_when_a_case_opens_or_someone_looks_never_per_message(deps, clock):
    for n in range(3):  # someone who only ever says nice things: nothing written while nobody looks
        assert run(deps, post(f"p{n}", "@SoraAir thanks!", author_id="77"))["outcome"] == "no_case"
    assert deps.customers.writes == 0 and deps.customers.identity("x:77") is None
    [found] = customers.find_customers(AIKO, {"platform": "x", "platform_id": "77"}, deps)["customers"]
    assert found["customer_id"] == rules.customer_id_for("x:77") and found["cases"] == []
    assert deps.customers.writes == 1 and deps.customers.identity("x:77").handle == "kana_t"
    assert customers.find_customers(AIKO, {"platform": "x", "platform_id": "79"}, deps) == {"customers": []}

    opened = run(deps, post("c1", author_id="78"))
    assert opened["outcome"] == "opened" and deps.customers.writes == 2
    for n in range(3):  # follow-ups joining the case write nothing to the profile store
        clock.advance(minutes=1)
        assert run(deps, post(f"f{n}", "@SoraAir still nothing, terrible", author_id="78"))["outcome"] == "joined"
    assert deps.customers.writes == 2
    assert deps.customers.identity("x:78").last_case_id == opened["case_id"]


# ---- follow-ups ------------------------------------------------------------------------------------

def test_a_thumbs_up_on_an_active_case_joins_its_history_without_starting_a_clock(deps, clock):
    opened = run(deps, post("1", author_id="7"))
    before = deps.cases.get(opened["case_id"])
    clock.advance(minutes=5)
    thumbs = run(deps, post("2", "👍", author_id="7", created_at="2026-11-23T03:05:00Z"))
    assert thumbs["outcome"] == "no_case" and thumbs["case_id"] == opened["case_id"]
    after = deps.cases.get(opened["case_id"])
    assert (after.mention_count, after.follow_up_at, after.status) == (before.mention_count, None, "open")
    history = deps.cases.history(opened["case_id"])
    assert [m.id for m in history.mentions] == ["x:1", "x:2"]
    assert history.events[-1]["event"] == "customer_follow_up"
    assert deps.mentions.get("x:2").case_id == opened["case_id"]
    # Delivered again (SQS at least once): attached once.
    customers.attach_follow_up(post("2", "👍", author_id="7", created_at="2026-11-23T03:05:00Z"), deps, deps.now())
    assert len(deps.cases.history(opened["case_id"]).mentions) == 2
    assert [e["event"] for e in deps.cases.history(opened["case_id"]).events].count("customer_follow_up") == 1


def test_a_follow_up_reads_its_identity_once_and_a_stranger_costs_one_read(deps, clock):
    # Issue 17: attaching read the identity, then read it again to find the identities linked to it.
    opened = run(deps, post("1", author_id="7"))
    looked_up = []
    identity = deps.customers.identity
    deps.customers.identity = lambda key, consistent=True: looked_up.append(key) or identity(key)
    clock.advance(minutes=5)
    thanks = run(deps, post("2", "@SoraAir thanks!", author_id="7", created_at="2026-11-23T03:05:00Z"))
    assert thanks["outcome"] == "no_case" and thanks["case_id"] == opened["case_id"]
    assert looked_up == ["x:7"]
    assert run(deps, post("3", "@SoraAir thanks!", author_id="8"))["outcome"] == "no_case"
    assert looked_up == ["x:7", "x:8"]


def test_a_follow_up_within_the_window_reopens_with_counters_and_clocks_right(deps, clock):
    opened = run(deps, post("1", author_id="7"))
    case = deps.cases.get(opened["case_id"])
    inbox.change_status(AIKO, case.case_id, {"status": "resolved"}, deps)
    assert deps.settings.get_agent("aiko").open_cases == 0
    clock.advance(hours=71)
    again = run(deps, post("2", "@SoraAir the bag came back broken, awful", author_id="7",
                           created_at="2026-11-26T01:00:00Z"))
    assert again["outcome"] == "joined" and again["case_id"] == case.case_id
    reopened = deps.cases.get(case.case_id)
    assert (reopened.status, reopened.reopen_count, reopened.resolved_at) == ("open", 1, None)
    assert reopened.reopened_at == deps.now() and reopened.mention_count == 2
    assert reopened.pauses and reopened.pauses[-1][1] == deps.now()  # the resolved time never counts
    assert deps.settings.get_agent("aiko").open_cases == 1
    assert deps.cases.active_case_for_customer("x:7") == case.case_id
    events = [e for e in deps.cases.history(case.case_id).events if e["event"] == "status_changed"]
    assert events[-1]["by"] == "customer" and events[-1]["to"] == "open"


def test_a_closed_case_is_never_reopened_and_a_setting_of_zero_turns_reopening_off(deps, clock, monkeypatch):
    from dataclasses import replace

    opened = run(deps, post("1", author_id="7"))
    inbox.change_status(AIKO, opened["case_id"], {"status": "closed"}, deps)
    clock.advance(hours=1)
    assert run(deps, post("2", author_id="7", created_at="2026-11-23T03:30:00Z"))["case_id"] != opened["case_id"]

    other = run(deps, post("3", author_id="8"))
    inbox.change_status(AIKO, other["case_id"], {"status": "resolved"}, deps)
    deps.config = replace(deps.config, reopen_window_hours=0)
    clock.advance(hours=1)
    assert run(deps, post("4", author_id="8", created_at="2026-11-23T04:30:00Z"))["outcome"] == "opened"


def test_a_survey_answer_is_still_taken_before_any_follow_up_rule(deps, clock):
    opened = run(deps, post("1", author_id="7"))
    inbox.change_status(AIKO, opened["case_id"], {"status": "resolved"}, deps)
    from dataclasses import replace

    case = deps.cases.get(opened["case_id"])
    assert deps.cases.save(replace(case, csat_status="asked", csat_asked_at="2026-11-23T03:00:00.000000Z"))
    deps.cases.await_survey_answer("x:7", opened["case_id"], until="2026-11-30T00:00:00.000000Z")
    answer = intake.triage_message(json.dumps(post("2", "5", author_id="7", created_at="2026-11-23T03:30:00Z")
                                              .to_dict()), deps)
    assert answer["outcome"] == "csat_answer"
    assert deps.cases.get(opened["case_id"]).csat_score == 5
    events = [e["event"] for e in deps.cases.history(opened["case_id"]).events]
    assert "csat_answered" in events and "customer_follow_up" not in events


# ---- linked identities -----------------------------------------------------------------------------

def test_after_a_merge_each_linked_channel_joins_the_one_active_case(deps, clock):
    fb = run(deps, post("c1", platform="facebook", kind="comment", author_id="fb7", source_id="facebook:1"))
    run(deps, post("w0", "thanks!", platform="whatsapp", kind="dm", author_id="8190", source_id="whatsapp:1"))
    fb_id, wa_id = rules.customer_id_for("facebook:fb7"), rules.customer_id_for("whatsapp:8190")
    # The agent finds the WhatsApp customer (a "thanks" recorded nothing; the look-up records them).
    customers.find_customers(AIKO, {"platform": "whatsapp", "platform_id": "8190"}, deps)
    customers.merge(AIKO, fb_id, {"customer_id": wa_id}, deps)
    clock.advance(minutes=1)
    joined = run(deps, post("w1", "my bag is still lost, terrible", platform="whatsapp", kind="dm",
                            author_id="8190", source_id="whatsapp:1", created_at="2026-11-23T03:01:00Z"))
    assert joined["outcome"] == "joined" and joined["case_id"] == fb["case_id"]
    # The reply goes where the customer wrote last.
    assert deps.cases.get(fb["case_id"]).reply_target.platform == "whatsapp"
    with pytest.raises(NotFound):
        customers.merge(AIKO, fb_id, {"customer_id": wa_id}, deps)  # its identities are here already
    with pytest.raises(Conflict):
        customers.update_customer(AIKO, wa_id, {"tags": ["VIP"]}, deps)  # merged away: edit the profile it joined


def test_merging_more_identities_than_a_profile_holds_is_refused(deps):
    for n in range(rules.MAX_IDENTITIES):
        deps.customers.record_identity(rules.seen_identity(f"x:{n}", handle="", name="", at=deps.now()), at=deps.now())
        if n:
            customers.merge(AIKO, rules.customer_id_for("x:0"), {"customer_id": rules.customer_id_for(f"x:{n}")}, deps)
    deps.customers.record_identity(rules.seen_identity("x:99", handle="", name="", at=deps.now()), at=deps.now())
    with pytest.raises(Conflict, match="at most 20"):
        customers.merge(AIKO, rules.customer_id_for("x:0"), {"customer_id": rules.customer_id_for("x:99")}, deps)


def test_finance_sees_no_customers(deps):
    finance = Agent(agent_id="fin", teams=[], role="finance")
    deps.settings.put_agent(finance)
    from chalicelib.domain.errors import Forbidden

    with pytest.raises(Forbidden):
        customers.find_customers(finance, {"handle": "kana_t"}, deps)


def test_a_customer_known_only_from_cases_older_than_profiles_gets_a_usable_profile_on_first_view(deps):
    opened = run(deps, post("1", author_id="7"))
    deps.customers.identity_items.clear()  # as if the case had opened before profiles existed
    deps.customers.links.clear()
    panel = inbox.case_detail(BOSS, opened["case_id"], deps)["customer"]
    shown = customers.get_customer(AIKO, panel["customer_id"], {}, deps)
    assert [i["customer_key"] for i in shown["identities"]] == ["x:7"]
    assert [c["case_id"] for c in shown["cases"]] == [opened["case_id"]]


def test_a_reopened_case_whose_agent_is_away_waits_in_the_team_queue_without_skewing_counts(deps, clock):
    opened = run(deps, post("1", author_id="7"))
    inbox.change_status(AIKO, opened["case_id"], {"status": "resolved"}, deps)
    deps.settings.set_presence("aiko", "away", at=deps.now())
    clock.advance(hours=2)
    again = run(deps, post("2", "@SoraAir the bag came back broken, awful", author_id="7",
                           created_at="2026-11-23T05:00:00Z"))
    assert again["case_id"] == opened["case_id"] and again["assignee"] is None
    case = deps.cases.get(opened["case_id"])
    assert case.status == "open" and case.assignee is None and case.waiting_for_agent
    assert deps.settings.get_agent("aiko").open_cases == 0
