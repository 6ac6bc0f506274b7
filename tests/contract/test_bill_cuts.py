"""What a mention and a case cost in DynamoDB writes (issue 17, "A smaller bill"), counted on the moto-backed
stores: a duplicate writes nothing, a mention that opens no case is one write and its ledger entry, the
signed-in agent's profile is read once per container per AGENT_CACHE_SECONDS, META holds no empty fields,
and resolving a case stamps each item once."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.case import with_status
from tests.contract.test_privacy_stores import RESOLVED, a_full_case, raw_expiries
from tests.contract.test_stores import a_case
from tests.fakes import Clock, fake_deps, mention


@pytest.fixture
def calls(aws):
    """DynamoDB calls made from now on, by operation."""
    from chalicelib.adapters.dynamo import ddb

    seen: Counter = Counter()
    ddb().meta.events.register("before-call.dynamodb.*", lambda model, **_: seen.update([model.name]))
    return seen


def dynamo_deps():
    from chalicelib.adapters.stores import DynamoCaseStore, DynamoMentionStore

    deps = fake_deps(Clock())
    deps.mentions = DynamoMentionStore("socialcare-test-mentions")
    deps.cases = DynamoCaseStore("socialcare-test-cases", "socialcare-test-settings")
    deps.customers = None  # the customer profiles' own writes are not what this counts
    return deps


def raw_mention_record(mention_id):
    from chalicelib.adapters.dynamo import ddb, marshal, unmarshal

    item = ddb().get_item(TableName="socialcare-test-mentions", Key=marshal({"mention_id": mention_id}))["Item"]
    return unmarshal(item)["mention"]


WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def writes(calls):
    return sum(calls[name] for name in WRITES)


def test_a_mention_without_a_case_is_claimed_and_settled_in_one_write_and_a_duplicate_writes_nothing(calls):
    from chalicelib.services import intake

    deps = dynamo_deps()
    post = mention("1", "thanks for the smooth flight to Osaka today, great crew!")
    body = json.dumps(post.to_dict())
    assert intake.triage_message(body, deps)["outcome"] == "no_case"
    assert writes(calls) == 2 and calls["PutItem"] == 2  # the mention record and its ledger entry
    stored = deps.mentions.stored("x:1")
    assert stored.state == "no_case" and stored.triage["case"] is False and stored.expires_at
    assert stored.mention == post.to_dict()  # what export and review read, whole
    raw = raw_mention_record("x:1")
    assert "id" not in raw and "permalink" not in raw and "verified" not in raw["author"]  # not stored: defaults
    assert deps.cases.customer_ledger("x:42", limit=10).entries[0].id == "x:1"

    calls.clear()
    assert intake.triage_message(body, deps)["outcome"] == "duplicate"  # the poll brings what the webhook did
    assert writes(calls) == 0 and calls["GetItem"] == 0  # this container settled it: not even a read

    deps.caches.clear()  # another container: one eventually consistent read of the record, no write
    assert intake.triage_message(body, deps)["outcome"] == "duplicate"
    assert writes(calls) == 0 and calls["GetItem"] == 1


def test_a_mention_that_opens_a_case_is_forwarded_then_recorded(calls):
    from chalicelib.services import intake

    deps = dynamo_deps()
    body = json.dumps(mention("2", "my bag never arrived on SA215 and nobody answers the phone. Where is it?").to_dict())
    assert intake.triage_message(body, deps)["outcome"] == "triaged"
    assert len(deps.triaged_queue.take()) == 1
    assert deps.mentions.get("x:2").state == "triaged"
    assert writes(calls) == 3  # ledger entry, claim, then the state once forwarded (a crash in between resends)


def test_an_attempt_that_stopped_before_settling_is_finished_by_the_redelivery(calls):
    from chalicelib.services import intake

    deps = dynamo_deps()
    post = mention("3", "my bag never arrived on SA215 and nobody answers the phone. Where is it?")
    deps.mentions.claim(post, now_epoch=1_800_000_000)  # claimed, then the Lambda died
    assert intake.triage_message(json.dumps(post.to_dict()), deps)["outcome"] == "triaged"
    assert deps.mentions.get("x:3").state == "triaged" and len(deps.triaged_queue.take()) == 1
    assert [e.id for e in deps.cases.customer_ledger("x:42", limit=10).entries] == ["x:3"]


def test_the_signed_in_agent_is_read_once_per_container_for_30_seconds(calls, monkeypatch):
    from chalicelib.adapters import stores
    from chalicelib.adapters.dynamo import ddb, marshal
    from chalicelib.adapters.stores import DynamoSettingsStore

    settings = DynamoSettingsStore("socialcare-test-settings")
    settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=5))
    now = [1000.0]
    monkeypatch.setattr(stores.time, "monotonic", lambda: now[0])
    calls.clear()
    assert settings.signed_in_agent("aiko").teams == ["support"]
    assert settings.signed_in_agent("aiko").teams == ["support"]
    assert calls["GetItem"] == 1
    # Removed by another container (or the admin CLI): still let in until the profile is 30 s old...
    ddb().delete_item(TableName="socialcare-test-settings", Key=marshal({"pk": "AGENT#aiko", "sk": "PROFILE"}))
    now[0] += stores.AGENT_CACHE_SECONDS - 1
    assert settings.signed_in_agent("aiko") is not None
    # ...and no longer after.
    now[0] += 1
    assert settings.signed_in_agent("aiko") is None
    # A change made through this container is seen at once.
    settings.put_agent(Agent(agent_id="aiko", teams=["billing"], capacity=5))
    assert settings.signed_in_agent("aiko").teams == ["billing"]
    settings.put_agent(Agent(agent_id="aiko", teams=["billing"], capacity=5, role="supervisor"))
    assert settings.signed_in_agent("aiko").is_supervisor


def test_the_case_item_holds_no_empty_fields_and_reads_back_whole(aws):
    from chalicelib.adapters.dynamo import ddb, marshal, unmarshal
    from chalicelib.adapters.stores import DynamoCaseStore, case_from_item

    cases = DynamoCaseStore("socialcare-test-cases", "socialcare-test-settings")
    case = replace(a_case("5", author_id="9"), sentiment_score=0.0, escalated=False)
    assert cases.open_case(case, opened_event={"event": "opened"}).outcome == "opened"
    item = ddb().get_item(TableName="socialcare-test-cases", Key=marshal({"pk": f"CASE#{case.case_id}", "sk": "META"}),
                          ConsistentRead=True)["Item"]
    for empty in ("csat_status", "pauses", "response_cycles", "sla_fired", "reopen_count", "response_count"):
        assert empty not in item
    assert float(item["sentiment_score"]["N"]) == 0.0 and item["escalated"] == {"BOOL": False}  # not None; filtered on
    assert cases.get(case.case_id) == case
    assert case_from_item(unmarshal(item)) == case  # the KPI stream reads META's images so


def test_resolving_a_case_stamps_each_of_its_items_once(calls):
    from chalicelib.adapters.stores import DynamoCaseStore, DynamoSettingsStore

    cases, settings = DynamoCaseStore("socialcare-test-cases", "socialcare-test-settings"), DynamoSettingsStore(
        "socialcare-test-settings")
    case, _reply = a_full_case(cases, settings)
    before = cases.get(case.case_id)
    calls.clear()
    assert cases.change_status(before, with_status(before, "resolved", RESOLVED), event={"event": "status_changed"})
    done = raw_expiries(case)
    # Two posts, two events, the reply, its receipt and the ledger entry: one update each, not two for the
    # receipt and the ledger entry (META and the status event carry it in the change itself).
    assert calls["UpdateItem"] == 7 and len(set(done.values())) == 1
