"""The case lifecycle's DynamoDB units (issue 17, "A smaller bill"), counted on the moto-backed store, and the
guarantees each cut keeps: an inbox page reads its cases eventually consistent and still drops one that left
the listing; the case detail takes META from its history Query; history items written right after the case
written after another container resolved the case still take its expiry; resolving releases the customer's
pointer in its transaction without reading it first, and a pointer left behind never blocks the customer."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.case import with_status
from tests.contract.test_privacy_stores import RESOLVED, T0, a_full_case, raw_expiries
from tests.contract.test_stores import a_case

CASES, SETTINGS = "socialcare-test-cases", "socialcare-test-settings"


@pytest.fixture
def requests(aws):
    """Every DynamoDB request made from now on: (operation, parameters)."""
    from chalicelib.adapters.dynamo import ddb

    seen = []
    ddb().meta.events.register("provide-client-params.dynamodb.*",
                               lambda params, model, **_: seen.append((model.name, dict(params))))
    return seen


def count(requests):
    return Counter(name for name, _ in requests)


def store():
    from chalicelib.adapters.stores import DynamoCaseStore

    return DynamoCaseStore(CASES, SETTINGS)


def raw(key):
    from chalicelib.adapters.dynamo import ddb, marshal, unmarshal

    item = ddb().get_item(TableName=CASES, Key=marshal(key), ConsistentRead=True).get("Item")
    return unmarshal(item) if item else None


# ---- inbox pages --------------------------------------------------------------------------------

def test_an_inbox_page_reads_its_cases_eventually_consistent_and_drops_one_that_left_the_listing(
        requests, monkeypatch):
    from chalicelib.adapters import stores as module

    cases = store()
    staying, leaving = a_case("1", author_id="1"), a_case("2", author_id="2", created="2026-11-23T03:00:01.000000Z")
    for case in (staying, leaving):
        assert cases.create(case)
    lagging = module.ddb().query(TableName=CASES, IndexName="inbox-time", KeyConditionExpression="inbox_pk = :p",
                                 ExpressionAttributeValues={":p": {"S": "support#open"}})
    assert len(lagging["Items"]) == 2
    current = cases.get(leaving.case_id)
    assert cases.save(with_status(current, "pending", "2026-11-23T04:00:00.000000Z"))

    class LaggingIndex:  # the index still lists the case that went pending: GSIs lag the table
        def __init__(self, client):
            self.client = client

        def query(self, **params):
            return lagging if params.get("IndexName") == "inbox-time" else self.client.query(**params)

        def __getattr__(self, name):
            return getattr(self.client, name)

    real = module.ddb
    monkeypatch.setattr(module, "ddb", lambda: LaggingIndex(real()))
    requests.clear()
    page = cases.inbox_page("support", "open", "newest", 25, None)
    assert [case.case_id for case in page.cases] == [staying.case_id] and not page.more
    batches = [params for name, params in requests if name == "BatchGetItem"]
    assert batches and all(request["ConsistentRead"] is False
                           for params in batches for request in params["RequestItems"].values())
    assert cases.get(leaving.case_id).status == "pending"  # what an agent opens is read consistently


def test_an_agents_own_page_reads_its_cases_eventually_consistent(requests):
    cases = store()
    case = replace(a_case("3", author_id="3"), assignee="aiko")
    assert cases.create(case)
    requests.clear()
    page = cases.assignee_page("aiko", "open", "newest", 25, None, teams=["support"])
    assert page is not None and [c.case_id for c in page.cases] == [case.case_id]
    assert all(request["ConsistentRead"] is False for name, params in requests if name == "BatchGetItem"
               for request in params["RequestItems"].values())


# ---- the case detail ----------------------------------------------------------------------------

def test_the_case_detail_reads_the_case_in_its_history_query_and_pages_without_it(requests, aws):
    from chalicelib.adapters.stores import DynamoSettingsStore

    cases = store()
    case, reply = a_full_case(cases, DynamoSettingsStore(SETTINGS))
    requests.clear()
    history = cases.history(case.case_id)
    assert count(requests) == Counter({"Query": 1})  # no GetItem of META: it came with the history
    assert history.case == cases.get(case.case_id) and history.expires_at is None
    assert len(history.events) == 2 and len(history.mentions) == 2 and [r.reply_id for r in history.replies] == [
        reply.reply_id]
    # Paged one item at a time, META is never an item nor a position, and every item comes once.
    seen, after = [], None
    while True:
        page = cases.history(case.case_id, limit=1, after=after)
        assert page.case == history.case
        items = page.events + page.mentions + page.replies
        assert len(items) <= 1
        seen += items
        if page.next_position is None:
            break
        after = page.next_position
    assert len(seen) == 5
    requests.clear()
    assert cases.history("c_missing") is None
    assert count(requests)["GetItem"] == 1


# ---- the expiry of history items ----------------------------------------------------------------

def test_an_item_written_after_another_container_resolved_the_case_takes_its_expiry(requests):
    """"Reply and resolve": the sender reads the case, waits on the platform, and writes its event after the
    agent's resolution committed and stamped every item: the event still takes the case's expiry (each
    history write reads META right before it; nothing remembered between requests)."""
    sender, agent = store(), store()
    case = a_case("5", author_id="5")
    assert sender.open_case(case, opened_event={"event": "opened"}).outcome == "opened"
    sender.get(case.case_id)  # the sender's read, before it posts to the platform
    sender.add_event(case.case_id, {"event": "viewed"}, at=T0)
    current = agent.get(case.case_id)
    assert agent.change_status(current, with_status(current, "resolved", RESOLVED), event={"event": "status_changed"})
    sender.add_event(case.case_id, {"event": "reply_sent"}, at=RESOLVED)
    expiries = raw_expiries(case)
    assert None not in expiries.values() and len({v for v in expiries.values() if v != "missing"}) == 1


def test_a_receipt_for_an_erased_case_is_not_written(requests):
    cases = store()
    case = a_case("6", author_id="6")
    assert cases.open_case(case, opened_event={"event": "opened"}).outcome == "opened"
    cases.get(case.case_id)
    cases.erase_case(case.case_id)
    cases.record_delivery("x", "9100", case.case_id, "r_1")
    assert cases.find_delivery("x", "9100") is None


# ---- the customer's pointer ---------------------------------------------------------------------

def test_resolving_releases_the_pointer_in_its_transaction_without_reading_it_first(requests):
    from chalicelib.adapters.stores import DynamoSettingsStore

    DynamoSettingsStore(SETTINGS).put_agent(Agent(agent_id="aiko", teams=["support"], capacity=5))
    cases = store()
    case = replace(a_case("7", author_id="7"), assignee="aiko")
    assert cases.open_case(case, opened_event={"event": "opened"}).outcome == "opened"
    current = cases.get(case.case_id)
    requests.clear()
    assert cases.change_status(current, with_status(current, "resolved", RESOLVED), event={"event": "status_changed"})
    transactions = [params for name, params in requests if name == "TransactWriteItems"]
    assert len(transactions) == 1 and [next(iter(item)) for item in transactions[0]["TransactItems"]] == [
        "Put", "Put", "Delete", "Update"]  # the case, its event, the pointer (all or nothing), the agent's load
    assert not any(name == "GetItem" and params["Key"]["sk"] == {"S": "ACTIVE"} for name, params in requests)
    assert raw({"pk": f"CUSTOMER#{case.customer_key}", "sk": "ACTIVE"}) is None
    assert cases.active_case_for_customer(case.customer_key) is None


def test_a_pointer_left_behind_by_a_done_case_never_blocks_the_customer(aws):
    from chalicelib.adapters.dynamo import ddb, marshal

    cases = store()
    first = a_case("8", author_id="8")
    second = a_case("9", author_id="8", created="2026-11-23T05:00:00.000000Z")
    assert cases.open_case(first, opened_event={"event": "opened"}).outcome == "opened"
    current = cases.get(first.case_id)
    assert cases.change_status(current, with_status(current, "resolved", RESOLVED), event={"event": "status_changed"})
    # A pointer that still names the resolved case (left by an older version, or written by hand).
    pointer = {"pk": f"CUSTOMER#{first.customer_key}", "sk": "ACTIVE"}
    ddb().put_item(TableName=CASES, Item=marshal({**pointer, "case_id": first.case_id}))
    assert cases.active_case_for_customer(first.customer_key) is None  # checked against the case and cleared
    assert cases.open_case(second, opened_event={"event": "opened"}).outcome == "opened"
    later = cases.get(second.case_id)
    assert cases.change_status(later, with_status(later, "resolved", "2026-11-24T05:00:00.000000Z"),
                               event={"event": "status_changed"})
    ddb().put_item(TableName=CASES, Item=marshal({**pointer, "case_id": second.case_id}))  # left behind again
    # Reopening the first case clears the leftover instead of refusing: it names a done case.
    done = cases.get(first.case_id)
    assert cases.change_status(done, with_status(done, "open", "2026-11-24T06:00:00.000000Z"),
                               event={"event": "status_changed"})
    assert raw(pointer)["case_id"] == first.case_id
    # A pointer to an active case still refuses a second active case.
    from chalicelib.domain.errors import Conflict

    again = cases.get(second.case_id)
    with pytest.raises(Conflict):
        cases.change_status(again, with_status(again, "open", "2026-11-24T07:00:00.000000Z"),
                            event={"event": "status_changed"})
