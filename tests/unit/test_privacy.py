"""Customers' data handled lawfully, on fakes: retention rules, the customer's ledger, export and erasure."""
from __future__ import annotations

import json

import pytest

from chalicelib.domain import retention
from chalicelib.domain.agent import Agent
from chalicelib.domain.case import new_case, with_status
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import BadRequest, InvalidCursor, NotFound
from chalicelib.ports import LedgerEntry
from chalicelib.services import assign, inbox, intake, privacy, reply
from tests.fakes import Clock, fake_deps, mention

AUTHOR = "9183746501"
CUSTOMER = f"x:{AUTHOR}"
HANDLE = "mika_suzuki_88"
COMPLAINT = "@SoraAir my bag is lost at Haneda, terrible service"
DAY = 86_400


@pytest.fixture
def deps():
    deps = fake_deps(Clock())
    deps.settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=5))
    deps.settings.put_agent(Agent(agent_id="boss", teams=["leads"], role="supervisor"))
    return deps


def post(platform_id, text=COMPLAINT, *, author_id=AUTHOR, handle=HANDLE, platform="x", **extra):
    return mention(platform_id, text, author_id=author_id, handle=handle, platform=platform, **extra)


def run_pipeline(deps, *posts):
    outcomes = [intake.triage_message(json.dumps(p.to_dict()), deps) for p in posts]
    return outcomes, [assign.assign_message(body, deps) for body in deps.triaged_queue.take()]


def a_customer_with_history(deps):
    """Customer x:9183746501: a case (two posts, a sent reply) and a post that needed no case;
    their Instagram identity: a case of its own. Another customer: a case that must survive."""
    # Before their case: a post that needed no case (later, it would join the case's history).
    [no_case] = run_pipeline(deps, post("3", "lol"))[0]
    assert no_case["outcome"] == "no_case"
    _, [opened] = run_pipeline(deps, post("1"))
    run_pipeline(deps, post("2", "@SoraAir still nothing about my bag!!", created_at="2026-11-23T03:10:00Z"))
    case = deps.cases.get(opened["case_id"])
    queued = reply.request_reply(case, {"text": "Sorry, we are on it"}, agent_id="aiko", deps=deps)
    for body in deps.outbound_queue.take():
        reply.deliver_reply(body, deps)
    _, [instagram] = run_pipeline(deps, post("ig1", "my bag is lost, terrible", author_id="1784", handle=HANDLE,
                                             platform="instagram", kind="comment", source_id="instagram:comments:1"))
    _, [someone_else] = run_pipeline(deps, post("9", author_id="555", handle="someone_else"))
    return {"case": opened["case_id"], "reply": queued["reply_id"], "instagram": instagram["case_id"],
            "other": someone_else["case_id"]}


# ---- retention rules ---------------------------------------------------------------------------

def a_case_at(status, updated_at):
    case = new_case(post("1"), {"priority": "normal"}, team="support", assignee=None, now="2026-01-01T00:00:00.000000Z")
    return with_status(case, status, updated_at) if status != "open" else case


@pytest.mark.parametrize("status", ["open", "pending"])
def test_an_active_case_never_expires_however_quiet(status):
    assert retention.case_expires_at(a_case_at(status, "2026-01-02T00:00:00.000000Z"), 730) is None


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_a_done_case_expires_its_period_after_its_last_activity(status):
    done = a_case_at(status, "2026-03-01T12:00:00.000000Z")
    assert retention.case_expires_at(done, 730) == int(parse_iso("2026-03-01T12:00:00Z").timestamp()) + 730 * DAY
    assert retention.retained_until(retention.case_expires_at(done, 1)) == "2026-03-02T12:00:00Z"


def test_a_mention_record_expires_its_period_after_it_arrived():
    assert retention.mention_expires_at(1_800_000_000, 400) == 1_800_000_000 + 400 * DAY
    assert retention.retained_until(None) is None


def test_retention_settings_are_read_and_checked(monkeypatch):
    from chalicelib.config import settings

    monkeypatch.setenv("RETENTION_MENTIONS_DAYS", "30")
    monkeypatch.setenv("RETENTION_CASES_DAYS", "365")
    settings.cache_clear()
    try:
        assert (settings().retention_mentions_days, settings().retention_cases_days) == (30, 365)
        for bad in ("0", "-5", "two years", "36501", "１２"):
            monkeypatch.setenv("RETENTION_CASES_DAYS", bad)
            settings.cache_clear()
            with pytest.raises(ValueError, match="RETENTION_CASES_DAYS"):
                settings()
        monkeypatch.delenv("RETENTION_CASES_DAYS")
        monkeypatch.delenv("RETENTION_MENTIONS_DAYS")
        settings.cache_clear()
        assert (settings().retention_mentions_days, settings().retention_cases_days) == (400, 730)
    finally:
        settings.cache_clear()


# ---- the ledger is written by the pipeline -------------------------------------------------------

def test_every_mention_and_case_of_a_customer_is_in_their_ledger(deps):
    ids = a_customer_with_history(deps)
    entries = deps.cases.customer_ledger(CUSTOMER, limit=50).entries
    assert entries == [LedgerEntry("case", ids["case"]), LedgerEntry("mention", "x:1"), LedgerEntry("mention", "x:2"),
                       LedgerEntry("mention", "x:3")]
    assert deps.cases.customer_ledger("instagram:1784", limit=50).entries == [
        LedgerEntry("case", ids["instagram"]), LedgerEntry("mention", "instagram:ig1")]


# ---- export ------------------------------------------------------------------------------------

def test_a_supervisor_exports_everything_held_about_a_customer(deps):
    ids = a_customer_with_history(deps)
    export = privacy.export_customer(CUSTOMER, {"also": "instagram:1784"}, deps)
    assert export["customer_keys"] == [CUSTOMER, "instagram:1784"] and export["next_cursor"] is None
    cases = {c["case_id"]: c for c in export["cases"]}
    assert set(cases) == {ids["case"], ids["instagram"]}  # not the other customer's
    mine = cases[ids["case"]]
    assert mine["case"]["customer"]["handle"] == HANDLE and mine["retained_until"] is None  # active: kept
    assert [m["platform_id"] for m in mine["mentions"]] == ["1", "2"]
    assert [r["text"] for r in mine["replies"]] == ["Sorry, we are on it"]
    assert "opened" in [e["event"] for e in mine["events"]] and mine["notes"] == []
    mentions = {m["mention_id"]: m for m in export["mentions"]}
    assert set(mentions) == {"x:1", "x:2", "x:3", "instagram:ig1"}
    assert mentions["x:3"]["mention"]["text"] == "lol" and mentions["x:3"]["state"] == "no_case"
    assert mentions["x:1"]["triage"]["category"] == "complaint" and mentions["x:1"]["case_id"] == ids["case"]
    received = int(deps.epoch())
    assert mentions["x:3"]["retained_until"] == retention.retained_until(received + 400 * DAY)
    assert export["retention"]["cases_days"] == 730


def test_a_resolved_case_shows_when_it_will_be_deleted(deps):
    ids = a_customer_with_history(deps)
    inbox.change_status(deps.settings.get_agent("aiko"), ids["case"], {"status": "resolved"}, deps)
    [case] = [c for c in privacy.export_customer(CUSTOMER, {}, deps)["cases"] if c["case_id"] == ids["case"]]
    resolved_at = int(parse_iso(deps.now()).timestamp())
    assert case["retained_until"] == retention.retained_until(resolved_at + 730 * DAY)


def test_a_large_export_comes_in_pages_without_gaps_or_repeats(deps, monkeypatch):
    ids = a_customer_with_history(deps)
    for n in range(12):
        run_pipeline(deps, post(f"5{n:02d}", f"@SoraAir bag update {n}, still terrible",
                                created_at=f"2026-11-23T04:{n:02d}:00Z"))
    whole = privacy.export_customer(CUSTOMER, {}, deps)
    monkeypatch.setattr(privacy, "EXPORT_PAGE_CHARS", 3000)
    monkeypatch.setattr(privacy, "HISTORY_PAGE", 4)
    monkeypatch.setattr(privacy, "LEDGER_PAGE", 3)
    pages, cursor = [], None
    while True:
        page = privacy.export_customer(CUSTOMER, {"cursor": cursor} if cursor else {}, deps)
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(pages) > 3
    posts = [m["platform_id"] for p in pages for c in p["cases"] for m in c["mentions"]]
    assert posts == [m["platform_id"] for c in whole["cases"] for m in c["mentions"]] and len(posts) == 14
    assert [c["case_id"] for p in pages for c in p["cases"]][0] == ids["case"]
    assert sorted(m["mention_id"] for p in pages for m in p["mentions"]) == sorted(
        m["mention_id"] for m in whole["mentions"])
    with pytest.raises(InvalidCursor):  # a cursor of this export does not serve another customer's
        privacy.export_customer("x:555", {"cursor": pages[0]["next_cursor"]}, deps)


def test_exporting_a_customer_who_has_nothing_is_not_found(deps):
    a_customer_with_history(deps)
    with pytest.raises(NotFound, match="nothing is held about this customer"):
        privacy.export_customer("x:404", {}, deps)


@pytest.mark.parametrize("key", ["8675309", "tiktok:8675309", "x:", "x:867 5309", "x:" + "8675309" * 19, ""])
def test_a_key_that_names_no_customer_is_refused_without_echoing_it(deps, key):
    with pytest.raises(BadRequest) as refused:
        privacy.export_customer(key, {}, deps)
    assert "author id" in str(refused.value)
    assert "8675309" not in str(refused.value) and "867 5309" not in str(refused.value)


def test_other_identities_are_checked_too(deps):
    with pytest.raises(BadRequest, match="'also' item 2"):
        privacy.erase_customer(CUSTOMER, {"also": ["instagram:1", "nope"]}, agent_id="boss", deps=deps)
    with pytest.raises(BadRequest, match="body must be empty or"):
        privacy.erase_customer(CUSTOMER, {"everything": True}, agent_id="boss", deps=deps)
    with pytest.raises(BadRequest, match="at most 9"):
        privacy.export_customer(CUSTOMER, {"also": ",".join(f"x:{n}" for n in range(10))}, deps)


# ---- erasure -----------------------------------------------------------------------------------

def test_erasure_removes_everything_and_leaves_an_audit_record_without_personal_data(deps):
    ids = a_customer_with_history(deps)
    assert deps.settings.get_agent("aiko").open_cases == 3
    answer = privacy.erase_customer(CUSTOMER, {"also": ["instagram:1784"]}, agent_id="boss", deps=deps)
    assert answer["status"] == "erased"
    # case items: the two cases, 3 posts, 5 events (2 opened, follow-up, reply queued and sent), 1 reply;
    # the sent reply also leaves its week's QA pool
    # profile items: per identity its record, its link to its profile and its handle entry
    assert answer["counts"] == {"cases": 2, "case_items": 11, "mention_records": 4, "deliveries": 1,
                                "ledger_entries": 6, "open_cases_released": 2, "qa_replies": 1,
                                "customer_profile_items": 6}
    assert not any(deps.qa.sent.values())
    assert answer["items_deleted"] == 11 + 4 + 1 + 6 + 1 + 6
    assert deps.customers.identity(CUSTOMER) is None and deps.customers.keys_by_handle(HANDLE, limit=5) == []
    for case_id in (ids["case"], ids["instagram"]):
        assert deps.cases.get(case_id) is None and deps.cases.history(case_id) is None
    for mention_id in ("x:1", "x:2", "x:3", "instagram:ig1"):
        assert deps.mentions.get(mention_id) is None
    assert deps.cases.get_reply(ids["case"], ids["reply"]) is None
    assert deps.cases.deliveries == {}
    assert deps.cases.customer_ledger(CUSTOMER, limit=50).entries == []
    assert deps.cases.active_case_for_customer(CUSTOMER) is None
    assert deps.settings.get_agent("aiko").open_cases == 1  # the other customer's case only
    assert deps.cases.get(ids["other"]) is not None and deps.mentions.get("x:9") is not None

    [record] = deps.cases.erasures(answer["erasure_id"])
    assert record["requested_by"] == "boss" and record["counts"] == answer["counts"] and record["finished_at"]
    assert record["identity_hashes"] == [privacy.identity_hash(k, privacy._hash_key(deps))
                                         for k in (CUSTOMER, "instagram:1784")]
    written = json.dumps(record)
    for personal in (AUTHOR, "1784", HANDLE, "Haneda", "bag", "x:1", "instagram:ig1", ids["case"]):
        assert personal not in written


def test_erasing_again_is_not_found_and_says_when_it_was_erased(deps):
    a_customer_with_history(deps)
    first = privacy.erase_customer(CUSTOMER, None, agent_id="boss", deps=deps)
    with pytest.raises(NotFound, match=f"erased at {first['finished_at']}"):
        privacy.erase_customer(CUSTOMER, None, agent_id="boss", deps=deps)
    with pytest.raises(NotFound, match="nothing is held"):
        privacy.export_customer(CUSTOMER, {}, deps)


def test_erasing_a_customer_who_has_nothing_is_not_found(deps):
    with pytest.raises(NotFound, match="nothing is held about this customer"):
        privacy.erase_customer("x:404", None, agent_id="boss", deps=deps)
    assert deps.cases.pending_erasures == {}


def test_an_erasure_that_crashed_half_way_is_finished_by_the_same_request(deps):
    ids = a_customer_with_history(deps)
    deps.cases.fail_erasing.append(ids["case"])
    with pytest.raises(ConnectionError):
        privacy.erase_customer(CUSTOMER, None, agent_id="boss", deps=deps)
    assert deps.cases.get(ids["case"]) is not None  # not erased yet, and still findable
    answer = privacy.erase_customer(CUSTOMER, None, agent_id="boss", deps=deps)
    assert answer["status"] == "erased" and answer["counts"]["cases"] == 1
    assert deps.cases.get(ids["case"]) is None and deps.mentions.get("x:3") is None
    assert deps.settings.get_agent("aiko").open_cases == 2  # one given back, once
    assert len(deps.cases.erasures(answer["erasure_id"])) == 1


def test_a_large_erasure_continues_over_several_requests(deps, monkeypatch):
    a_customer_with_history(deps)
    clock = Clock()
    deps.epoch = lambda: (clock.advance(seconds=8), clock.epoch())[1]  # every look at the clock: 8 s later
    answers = [privacy.erase_customer(CUSTOMER, None, agent_id="boss", deps=deps)]
    while answers[-1]["status"] == "in_progress":
        assert "send the same request again" in answers[-1]["message"]
        assert len(answers) < 10
        answers.append(privacy.erase_customer(CUSTOMER, None, agent_id="boss", deps=deps))
    assert len(answers) > 1 and answers[-1]["status"] == "erased"
    assert answers[-1]["counts"]["mention_records"] == 3 and answers[-1]["counts"]["cases"] == 1
    assert deps.cases.customer_ledger(CUSTOMER, limit=50).entries == []
    assert len({a["erasure_id"] for a in answers}) == 1


def test_an_active_case_opened_before_the_ledger_existed_is_found_through_the_customers_pointer(deps):
    case = new_case(post("7"), {"priority": "normal"}, team="support", assignee=None, now="2026-11-23T03:00:00.000000Z")
    deps.cases.open_case(case, opened_event={"event": "opened"})
    deps.cases.ledger.clear()  # as stored before this version
    assert [c["case_id"] for c in privacy.export_customer(CUSTOMER, {}, deps)["cases"]] == [case.case_id]
    assert privacy.erase_customer(CUSTOMER, None, agent_id="boss", deps=deps)["counts"]["cases"] == 1
    assert deps.cases.get(case.case_id) is None
