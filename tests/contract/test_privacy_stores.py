"""The customer ledger, erasure, audit records and retention: the same behaviour on the fakes and on
DynamoDB (moto). The last tests read the raw DynamoDB items: TTL works per item, so every item of a
done case must carry the case's expiry, and none of an active one."""
from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.case import with_follow_up, with_status
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.reply import new_reply
from chalicelib.ports import LedgerEntry
from tests.contract.test_stores import a_case
from tests.fakes import mention

T0 = "2026-11-23T03:00:00.000000Z"
RESOLVED = "2026-11-24T00:00:00.000000Z"
DAY = 86_400


def epoch(iso):
    return int(parse_iso(iso).timestamp())


def whole_ledger(cases, customer_key, limit):
    seen, after = [], None
    while True:
        page = cases.customer_ledger(customer_key, limit=limit, after=after)
        assert len(page.positions) == len(page.entries) <= limit
        seen += page.entries
        if not page.more:
            return seen
        after = page.positions[-1]


def a_full_case(cases, settings, *, author_id="7", platform_id="1", assignee="aiko"):
    """An assigned case with two posts, a sent reply and its receipt."""
    settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=5))
    case = replace(a_case(platform_id, author_id=author_id, created=T0), assignee=assignee)
    assert cases.open_case(case, opened_event={"event": "opened"}).outcome == "opened"
    cases.add_mention(case.case_id, mention(platform_id, author_id=author_id), at="2026-11-23T03:00:00Z")
    follow_up = mention(platform_id + "1", author_id=author_id, text="any news? call me on 090-1234-5678")
    changed = with_follow_up(cases.get(case.case_id), follow_up, "high", "2026-11-23T03:05:00.000000Z")
    assert cases.add_follow_up(changed, follow_up, at="2026-11-23T03:05:00Z", event={"event": "follow_up"}) == "added"
    reply = new_reply(cases.get(case.case_id), {"text": "On it", "mode": "public", "idempotency_key": "k"},
                      agent_id="aiko", now=T0)
    cases.put_reply(reply)
    cases.update_reply(case.case_id, reply.reply_id, {"delivery_status": "sent", "platform_post_id": "9001"},
                       expect_status=["queued"])
    cases.record_delivery("x", "9001", case.case_id, reply.reply_id)
    return case, reply


# ---- the ledger ------------------------------------------------------------------------------

def test_opened_cases_and_noted_mentions_make_the_customers_ledger(stores):
    cases = stores["cases"]
    case = a_case("1", author_id="7")
    cases.open_case(case, opened_event={"event": "opened"})
    for mention_id in ("x:1", "x:2", "x:1"):  # noting again changes nothing
        cases.note_customer_mention("x:7", mention_id, expires_at=2_000_000_000)
    cases.note_customer_mention("x:8", "x:3", expires_at=2_000_000_000)  # another customer
    expected = [LedgerEntry("case", case.case_id), LedgerEntry("mention", "x:1"), LedgerEntry("mention", "x:2")]
    assert cases.customer_ledger("x:7", limit=10).entries == expected  # not the ACTIVE pointer, not x:8's
    assert whole_ledger(cases, "x:7", limit=1) == expected
    cases.forget_customer_entry("x:7", LedgerEntry("mention", "x:1"))
    cases.forget_customer_entry("x:7", LedgerEntry("mention", "x:1"))
    assert cases.customer_ledger("x:7", limit=10).entries == [expected[0], expected[2]]
    assert cases.customer_ledger("x:99", limit=10).entries == []
    cases.note_customer_case("x:99", "c_legacy")
    assert cases.customer_ledger("x:99", limit=10).entries == [LedgerEntry("case", "c_legacy")]
    with pytest.raises(InvalidCursor):
        cases.customer_ledger("x:7", limit=10, after="bm9wZQ")


# ---- erasure ---------------------------------------------------------------------------------

def test_erasing_a_case_removes_all_of_it_and_gives_the_agent_a_case_back_once(stores):
    cases, settings = stores["cases"], stores["settings"]
    case, reply = a_full_case(cases, settings)
    other = a_case("5", author_id="8")
    cases.open_case(other, opened_event={"event": "opened"})
    assert settings.get_agent("aiko").open_cases == 1
    assert sorted(cases.case_mention_ids(case.case_id)) == ["x:1", "x:11"]

    erased = cases.erase_case(case.case_id)
    assert erased.case_removed and erased.released_agent == "aiko"
    assert erased.items == 6  # the case, 2 posts, 2 events (opened, follow_up), 1 reply
    assert erased.deliveries == 1
    assert cases.get(case.case_id) is None and cases.history(case.case_id) is None
    assert cases.get_reply(case.case_id, reply.reply_id) is None
    assert cases.case_mention_ids(case.case_id) == []
    assert cases.find_delivery("x", "9001") is None
    cases.record_delivery("x", "9002", case.case_id, reply.reply_id)  # a sender that was mid-send
    assert cases.find_delivery("x", "9002") is None
    assert cases.active_case_for_customer("x:7") is None
    assert settings.get_agent("aiko").open_cases == 0

    again = cases.erase_case(case.case_id)  # a retry: nothing left, nothing given back twice
    assert (again.case_removed, again.items, again.deliveries, again.released_agent) == (False, 0, 0, None)
    assert settings.get_agent("aiko").open_cases == 0
    assert cases.get(other.case_id) is not None and cases.active_case_for_customer("x:8") == other.case_id
    # The customer writes again afterwards: a new case, as for anyone.
    assert cases.open_case(a_case("3", author_id="7"), opened_event={"event": "opened"}).outcome == "opened"


def test_erasing_a_done_case_leaves_every_agents_count_alone(stores):
    cases, settings = stores["cases"], stores["settings"]
    case, _reply = a_full_case(cases, settings)
    before = cases.get(case.case_id)
    assert cases.change_status(before, with_status(before, "resolved", RESOLVED), event={"event": "status_changed"})
    assert settings.get_agent("aiko").open_cases == 0
    erased = cases.erase_case(case.case_id)
    assert erased.case_removed and erased.released_agent is None
    assert settings.get_agent("aiko").open_cases == 0


def test_a_mention_record_is_exported_whole_and_deleted(stores):
    store = stores["mentions"]
    post = mention("1", text="my bag is lost")
    assert store.stored(post.id) is None
    store.claim(post, now_epoch=1_800_000_000)
    store.update(post.id, state="routed", triage={"category": "complaint"}, case_id="c_1")
    kept = store.stored(post.id)
    assert kept.mention["text"] == "my bag is lost" and kept.mention["author"]["handle"] == "kana_t"
    assert (kept.state, kept.triage, kept.case_id) == ("routed", {"category": "complaint"}, "c_1")
    assert kept.received_epoch == 1_800_000_000 and kept.expires_at == 1_800_000_000 + 400 * DAY
    assert store.delete(post.id)
    assert not store.delete(post.id)
    assert store.get(post.id) is None and store.stored(post.id) is None


def test_an_erasure_is_recorded_once_with_its_counts(stores):
    cases = stores["cases"]
    record = {"erasure_id": "e_1", "requested_by": "boss", "started_at": T0, "identity_hashes": ["ab" * 32]}
    assert cases.pending_erasure("e_1") is None
    assert cases.start_erasure(record)["counts"] == {}
    retried = cases.start_erasure({**record, "requested_by": "lead", "started_at": RESOLVED})
    assert retried["requested_by"] == "boss" and retried["started_at"] == T0  # the first start stands
    cases.add_erasure_counts("e_1", {"cases": 1, "case_items": 6})
    cases.add_erasure_counts("e_1", {"case_items": 2, "mention_records": 0})
    assert cases.pending_erasure("e_1")["counts"] == {"cases": 1, "case_items": 8}

    done = cases.finish_erasure("e_1", finished_at=RESOLVED)
    assert done["counts"] == {"cases": 1, "case_items": 8} and done["finished_at"] == RESOLVED
    assert done["requested_by"] == "boss" and done["identity_hashes"] == ["ab" * 32]
    assert cases.pending_erasure("e_1") is None
    assert cases.finish_erasure("e_1", finished_at="2026-11-25T00:00:00.000000Z") is None  # finished already
    cases.add_erasure_counts("e_1", {"cases": 5})  # too late: no record is made up
    assert cases.pending_erasure("e_1") is None
    assert [(r["erasure_id"], r["finished_at"], r["counts"]) for r in cases.erasures("e_1")] == [
        ("e_1", RESOLVED, {"cases": 1, "case_items": 8})]
    assert cases.erasures("e_2") == []


# ---- retention -------------------------------------------------------------------------------

def test_a_case_expires_only_once_it_is_done_and_reopening_keeps_it(stores):
    cases = stores["cases"]
    case = a_case("1", author_id="7", created=T0)
    cases.open_case(case, opened_event={"event": "opened"})
    assert cases.history(case.case_id).expires_at is None  # active: kept however long it takes
    before = cases.get(case.case_id)
    assert cases.change_status(before, with_status(before, "resolved", RESOLVED), event={"event": "status_changed"})
    assert cases.history(case.case_id).expires_at == epoch(RESOLVED) + 730 * DAY
    before = cases.get(case.case_id)
    assert cases.change_status(before, with_status(before, "open", "2026-12-01T00:00:00.000000Z"),
                               event={"event": "status_changed"})
    assert cases.history(case.case_id).expires_at is None
    before = cases.get(case.case_id)
    closed_at = "2027-03-01T00:00:00.000000Z"
    assert cases.change_status(before, with_status(before, "closed", closed_at), event={"event": "status_changed"})
    assert cases.history(case.case_id).expires_at == epoch(closed_at) + 730 * DAY


# ---- DynamoDB only: the items themselves --------------------------------------------------------

@pytest.fixture
def dynamo(aws):
    from chalicelib.adapters.stores import DynamoCaseStore, DynamoSettingsStore

    return DynamoCaseStore("socialcare-test-cases", "socialcare-test-settings"), DynamoSettingsStore("socialcare-test-settings")


def raw_expiries(case, reply_post_id="9001"):
    """expires_at of every item of the case, its receipt and its ledger entry, as stored."""
    import boto3
    from boto3.dynamodb.conditions import Key

    table = boto3.resource("dynamodb", region_name="us-east-1").Table("socialcare-test-cases")
    items = table.query(KeyConditionExpression=Key("pk").eq(f"CASE#{case.case_id}"), ConsistentRead=True)["Items"]
    found = {item["sk"]: item.get("expires_at")
             for item in items}
    for key in ({"pk": f"POSTED#x:{reply_post_id}", "sk": "REPLY"},
                {"pk": f"CUSTOMER#{case.customer_key}", "sk": f"CASE#{case.case_id}"}):
        item = table.get_item(Key=key, ConsistentRead=True).get("Item")
        found[key["pk"].split("#")[0]] = item.get("expires_at") if item else "missing"
    return {name: int(value) if value not in (None, "missing") else value for name, value in found.items()}


def test_every_item_of_a_done_case_carries_its_expiry_and_none_while_active(dynamo):
    cases, settings = dynamo
    case, reply = a_full_case(cases, settings)
    active = raw_expiries(case)
    assert len(active) == 8 and set(active.values()) == {None}  # META, 2 posts, 2 events, reply, receipt, ledger

    before = cases.get(case.case_id)
    cases.change_status(before, with_status(before, "resolved", RESOLVED), event={"event": "status_changed"})
    cases.add_event(case.case_id, {"event": "reply_sent"}, at="2026-11-24T00:00:05Z")  # written after it was done
    done = raw_expiries(case)
    assert len(done) == 10 and set(done.values()) == {epoch(RESOLVED) + 730 * DAY}

    before = cases.get(case.case_id)
    cases.change_status(before, with_status(before, "open", "2026-12-01T00:00:00.000000Z"), event={"event": "x"})
    assert set(raw_expiries(case).values()) == {None}  # reopened: nothing of it may expire


def test_a_status_change_that_loses_its_race_leaves_the_expiry_as_stored(dynamo):
    cases, settings = dynamo
    case, _reply = a_full_case(cases, settings)
    stale = cases.get(case.case_id)
    current = cases.get(case.case_id)
    assert cases.change_status(current, with_status(current, "pending", "2026-11-23T04:00:00.000000Z"),
                               event={"event": "status_changed"})
    assert not cases.change_status(stale, with_status(stale, "resolved", RESOLVED), event={"event": "status_changed"})
    assert set(raw_expiries(case).values()) == {None}  # still active: the early stamps were taken back


def test_an_erasure_interrupted_half_way_finishes_on_retry(dynamo, monkeypatch):
    from chalicelib.adapters import stores as adapter

    cases, settings = dynamo
    case, _reply = a_full_case(cases, settings)
    real_delete = adapter._delete_keys

    def crash(table, keys):
        raise ConnectionError("the Lambda timed out here")

    monkeypatch.setattr(adapter, "_delete_keys", crash)
    with pytest.raises(ConnectionError):
        cases.erase_case(case.case_id)
    assert cases.get(case.case_id) is None and settings.get_agent("aiko").open_cases == 0
    monkeypatch.setattr(adapter, "_delete_keys", real_delete)
    finished = cases.erase_case(case.case_id)
    assert not finished.case_removed and finished.items == 5 and finished.released_agent is None
    assert cases.case_mention_ids(case.case_id) == [] and settings.get_agent("aiko").open_cases == 0


def test_retention_periods_come_from_the_settings(aws, monkeypatch):
    from chalicelib.adapters.stores import DynamoCaseStore, DynamoMentionStore
    from chalicelib.config import settings

    monkeypatch.setenv("RETENTION_MENTIONS_DAYS", "30")
    monkeypatch.setenv("RETENTION_CASES_DAYS", "90")
    settings.cache_clear()
    mentions, cases = DynamoMentionStore("socialcare-test-mentions"), DynamoCaseStore("socialcare-test-cases")
    mentions.claim(mention("1"), now_epoch=1_800_000_000)
    assert mentions.stored("x:1").expires_at == 1_800_000_000 + 30 * DAY
    case = a_case("2", author_id="9", created=T0)
    cases.open_case(case, opened_event={"event": "opened"})
    before = cases.get(case.case_id)
    cases.change_status(before, with_status(before, "closed", RESOLVED), event={"event": "status_changed"})
    assert cases.history(case.case_id).expires_at == epoch(RESOLVED) + 90 * DAY
