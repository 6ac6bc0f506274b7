"""One bad item never costs the good ones, through the Chalice app on moto.

- A signed Meta delivery with malformed, mistyped, oversized or mis-timed items answers 200 (Meta
  retries anything else for hours, and the retry would carry the same items), enqueues exactly the
  good ones, and names every other one with its reason.
- A signed body that is not a delivery at all (too big, not JSON, nested too deep, not an object) is a
  400, never a 5xx.
- On the triage queue, a record that can never be valid is dead-lettered on its first delivery with a
  failure_reason naming the field, and its batch-mates are triaged.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import json

import boto3
import pytest

from local.stack import deliver_queue
from tests.listen.test_fetch import queued_mention_ids
from tests.listen.test_push import APP_SECRET, signed, whatsapp_delivery
from tests.test_app import mention, queue

NOW_SECONDS = "1795425600"  # 2026-11-23T09:20:00Z


def whatsapp_message(message_id, *, body="荷物が届かないのですが", timestamp=NOW_SECONDS, **changes):
    message = {"from": "819012345678", "id": message_id, "timestamp": timestamp, "type": "text",
               "text": {"body": body}}
    message.update(changes)
    return message


def whatsapp_with(*messages):
    delivery = whatsapp_delivery()
    delivery["entry"][0]["changes"][0]["value"]["messages"] = list(messages)
    return delivery


def post(client, payload=None, *, raw=None):
    if raw is None:
        raw, headers = signed(payload)
    else:
        headers = {"Content-Type": "application/json",
                   "X-Hub-Signature-256": "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()}
    return client.http.post("/webhooks/meta", headers=headers, body=raw)


def reasons_for(answer, index):
    return [reason for reason in answer.json_body["skipped"] if f"messages[{index}]" in reason]


# ---- one delivery, good and bad items together ------------------------------------------

def test_only_the_good_message_of_a_delivery_is_enqueued_and_the_rest_are_named(client):
    delivery = whatsapp_with(
        whatsapp_message("wamid.GOOD"),
        whatsapp_message("wamid.NUMBER", body=12345),                    # text.body not a string
        whatsapp_message("wamid.HUGE", body="a" * 300_000),              # 300 KB of text
        whatsapp_message("wamid.WHEN", timestamp="yesterday"),           # not a time
        whatsapp_message("wamid.EPOCH", timestamp="0"),                  # 1970: before any social post
        whatsapp_message("wamid.FUTURE", timestamp=str(4_102_444_800)),  # 2100
        whatsapp_message("wamid.OVERFLOW", timestamp=10 ** 20),          # beyond any calendar
        whatsapp_message("wamid.LONG", timestamp="1" * 400),             # 400 digits
        whatsapp_message(["wamid.LIST"]),                                # id not a string
        whatsapp_message("wamid.NOTEXT", text="hello"),                  # text not an object
        "not a message",
    )

    answer = post(client, delivery)

    assert answer.status_code == 200, answer.body
    assert answer.json_body["enqueued"] == 1
    assert queued_mention_ids() == ["whatsapp:wamid.GOOD"]
    assert answer.json_body["skipped_count"] == 10 == len(answer.json_body["skipped"])
    assert "text.body" in reasons_for(answer, 1)[0] and "int" in reasons_for(answer, 1)[0]
    assert "text" in reasons_for(answer, 2)[0] and "300000 characters" in reasons_for(answer, 2)[0]
    for index in (3, 4, 5, 6, 7):
        assert "timestamp" in reasons_for(answer, index)[0] or "created_at" in reasons_for(answer, index)[0]
    assert "'id'" in reasons_for(answer, 8)[0]
    assert "'text'" in reasons_for(answer, 9)[0]
    assert "not an object" in reasons_for(answer, 10)[0]
    assert all(len(reason) <= 300 for reason in answer.json_body["skipped"])


def test_a_megabyte_message_does_not_sink_its_entry_or_the_next(client):
    delivery = whatsapp_with(whatsapp_message("wamid.MEGA", body="b" * 1_000_000), whatsapp_message("wamid.OK1"))
    second = copy.deepcopy(delivery["entry"][0])
    second["changes"][0]["value"]["messages"] = [whatsapp_message("wamid.OK2")]
    delivery["entry"].append(second)

    answer = post(client, delivery)

    assert answer.status_code == 200 and answer.json_body["enqueued"] == 2
    assert sorted(queued_mention_ids()) == ["whatsapp:wamid.OK1", "whatsapp:wamid.OK2"]
    assert "1000000 characters" in answer.json_body["skipped"][0]


def test_mistyped_structure_in_one_entry_is_skipped_and_other_entries_go_on(client):
    good = whatsapp_delivery(message_id="wamid.FINE")["entry"][0]
    broken_value = {"id": "WABA2", "changes": [{"field": "messages", "value": {
        "metadata": "PHONE1", "contacts": "Haruka", "errors": 5, "messages": {"0": whatsapp_message("wamid.X")}}}]}
    no_list = {"id": "WABA3", "changes": "not a list"}
    bad_contacts = copy.deepcopy(good)
    bad_contacts["changes"][0]["value"]["contacts"] = [{"wa_id": "819012345678", "profile": "Haruka"}, 7]
    bad_contacts["changes"][0]["value"]["messages"][0]["id"] = "wamid.NONAME"
    delivery = {"object": "whatsapp_business_account", "entry": [broken_value, no_list, good, bad_contacts, 3]}

    answer = post(client, delivery)

    assert answer.status_code == 200, answer.body
    assert sorted(queued_mention_ids()) == ["whatsapp:wamid.FINE", "whatsapp:wamid.NONAME"]
    skipped = answer.json_body["skipped"]
    assert any(reason.startswith("entry[0].changes[0]") for reason in skipped)
    assert any(reason.startswith("entry[4]") for reason in skipped)


def test_messenger_and_page_items_with_wrong_types_are_skipped(client):
    from local.fake_graph import feed_comment_delivery, messaging_delivery

    dm = messaging_delivery("page", "PAGE1", sender_id="7301", mid="m_ok", text="where is my refund",
                            timestamp_ms=1795425600000)
    events = dm["entry"][0]["messaging"]
    events.append(copy.deepcopy(events[0]) | {"message": {"mid": "m_dict", "text": {"body": "x"}}})
    events.append(copy.deepcopy(events[0]) | {"sender": {"id": ["7301"]}})
    events.append(copy.deepcopy(events[0]) | {"timestamp": -5})
    comment = feed_comment_delivery("PAGE1", post_id="PAGE1_1", comment_id="1_2", message=404,
                                    sender={"id": "555", "name": "Ken"}, created_time=1795425600)
    dm["entry"].extend(comment["entry"])

    answer = post(client, dm)

    assert answer.status_code == 200, answer.body
    assert queued_mention_ids() == ["messenger:m_ok"]
    assert answer.json_body["skipped_count"] == 4


def test_text_that_is_not_valid_unicode_is_skipped(client):
    delivery = whatsapp_with(whatsapp_message("wamid.HALF", body="broken \ud83d emoji"), whatsapp_message("wamid.OK"))
    answer = post(client, delivery)  # json.dumps sends the lone surrogate as the escape \ud83d
    assert answer.status_code == 200 and queued_mention_ids() == ["whatsapp:wamid.OK"]
    assert "not valid Unicode" in answer.json_body["skipped"][0]


def test_a_delivery_where_nothing_is_good_still_answers_200(client):
    answer = post(client, whatsapp_with(whatsapp_message("wamid.A", body=None), whatsapp_message("wamid.B", body=[])))
    assert answer.status_code == 200
    assert answer.json_body["enqueued"] == 0 and answer.json_body["skipped_count"] == 2
    assert queued_mention_ids() == []


def test_the_answer_lists_a_bounded_number_of_reasons(client):
    delivery = whatsapp_with(*[whatsapp_message(f"wamid.{n}", body=n) for n in range(500)])
    answer = post(client, delivery)
    assert answer.status_code == 200
    assert answer.json_body["skipped_count"] == 500
    assert len(answer.json_body["skipped"]) == 101 and "400 more" in answer.json_body["skipped"][-1]


# ---- bodies that are not deliveries: 400 after the signature check ----------------------

@pytest.mark.parametrize("raw, says", [
    (b"[1, 2, 3]", "JSON object"),
    (b'"just a string"', "JSON object"),
    (b"{not json", "not valid JSON"),
    (b'{"object": "page", "entry": [NaN]}', "NaN"),
    (b'{"object": "page", "entry": [], "x": "\xff\xfe"}', "not valid JSON"),
    (b'{"a":' * 100 + b"1" + b"}" * 100, "nests deeper"),
    (b"[" * 100_000 + b"]" * 100_000, "nests deeper"),
    (b'{"object": "page", "entry": ' + b"[" * 40 + b"]" * 40 + b"}", "nests deeper"),
])
def test_a_signed_body_that_is_not_a_delivery_is_a_400(client, raw, says):
    answer = post(client, raw=raw)
    assert answer.status_code == 400, answer.body
    assert "not a Meta webhook delivery" in answer.json_body["error"] and says in answer.json_body["error"]
    assert queued_mention_ids() == []


def test_a_body_beyond_metas_3_mb_is_a_400_and_unsigned_it_is_a_401(client):
    huge = json.dumps(whatsapp_with(whatsapp_message("wamid.BIG", body="c" * (3 * 1024 * 1024)))).encode()
    answer = post(client, raw=huge)
    assert answer.status_code == 400 and "bytes" in answer.json_body["error"]
    unsigned = client.http.post("/webhooks/meta", headers={"Content-Type": "application/json"}, body=huge)
    assert unsigned.status_code == 401
    assert queued_mention_ids() == []


# ---- the triage queue: bad records dead-lettered on their first delivery ---------------

def test_a_record_with_followers_lots_is_dead_lettered_at_once_and_its_batch_mate_is_triaged(app_module):
    sqs, url = queue("mentions")
    bad = mention("201", "Lost my luggage in Osaka", followers="lots")
    good = mention("202", "My flight was cancelled and nobody at the desk can help")
    for body in (bad, good):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    deliveries = []

    def counting_handler(event, context):
        deliveries.append(len(event["Records"]))
        return app_module.triage_mentions(event, context)

    results = deliver_queue(sqs, "socialcare-test-mentions", counting_handler, "triage")

    assert deliveries == [2]  # one delivery of the batch: nothing was retried
    outcomes = {r.get("mention_id", "bad"): r["outcome"] for r in results}
    assert outcomes == {"bad": "dead_lettered", "x:202": "triaged"}
    dlq_sqs, dlq_url = queue("mentions-dlq")
    parked = dlq_sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10,
                                     MessageAttributeNames=["All"]).get("Messages", [])
    assert len(parked) == 1 and json.loads(parked[0]["Body"])["platform_id"] == "201"
    reason = parked[0]["MessageAttributes"]["failure_reason"]["StringValue"]
    assert "author.followers" in reason
    left = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert left["ApproximateNumberOfMessages"] == "0"


@pytest.mark.parametrize("change, field", [
    ({"author": {"id": "42", "verified": "yes"}}, "author.verified"),
    ({"author": {"id": "42", "followers": True}}, "author.followers"),
    ({"created_at": "2126-11-23T03:00:00Z"}, "created_at"),
    ({"created_at": "2026-11-23 03:00"}, "created_at"),
    ({"text": "x" * 20_000}, "text"),
    ({"lang": "en" * 20}, "lang"),
])
def test_other_invalid_records_are_dead_lettered_at_once_too(app_module, change, field):
    sqs, url = queue("mentions")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({**mention("203", "help"), **change}))
    deliveries = []

    def counting_handler(event, context):
        deliveries.append(1)
        return app_module.triage_mentions(event, context)

    results = deliver_queue(sqs, "socialcare-test-mentions", counting_handler, "triage")

    assert deliveries == [1] and [r["outcome"] for r in results] == ["dead_lettered"]
    assert field in results[0]["reason"]
