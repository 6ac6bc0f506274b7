"""CSAT surveys on the wire: GraphClient's quick replies, WhatsApp reply buttons and templates against the
fake Graph API over real HTTP, the limits both refuse, and the customer's tap coming back as Meta's webhook
and read by the webhook parser as an answer."""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.adapters.platforms.http import HttpClient
from chalicelib.adapters.platforms.meta import GraphClient, MetaRequestError
from chalicelib.adapters.platforms.meta_webhooks import normalize_delivery
from chalicelib.domain.case import ReplyTarget
from chalicelib.domain.csat import parse_answer
from chalicelib.services.reply import send_via_platform
from local.fake_graph import FakeGraph

TOKEN = "test-page-token"
CASE_ID = "c_0123456789abcdef"
# What services/csat.py sends: the five quick replies of domain/csat.survey_message, best first.
QUICK = [{"id": f"csat:{CASE_ID}:{n}", "title": title} for n, title in
         [(5, "⭐⭐⭐⭐⭐ Excellent"), (4, "⭐⭐⭐⭐ Good"), (3, "⭐⭐⭐ OK"), (2, "⭐⭐ Poor"), (1, "⭐ Very poor")]]
BUTTONS = [{"id": f"csat:{CASE_ID}:{n}", "title": title} for n, title in [(5, "😊 Good"), (3, "😐 OK"), (1, "😞 Not good")]]
ASK = "How did we do? Please rate our help from 1 (poor) to 5 (excellent)."


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fake(clock):
    server = FakeGraph(access_token=TOKEN, clock=clock).start()
    yield server
    server.stop()


def client_for(fake: FakeGraph) -> GraphClient:
    base_url = fake.url + "/v21.0"
    return GraphClient(base_url, TOKEN, http=HttpClient(base_url=base_url, sleep=lambda seconds: None, timeout=5))


def raw_post(fake: FakeGraph, path: str, body: dict):
    """A request as another client might send it: straight to the fake, past GraphClient's own checks."""
    status, _headers, answer = fake.handle("POST", f"/v21.0{path}", {"Authorization": f"Bearer {TOKEN}",
                                                                      "Content-Type": "application/json"},
                                           json.dumps(body).encode())
    return status, answer


def tapped(item) -> "object":
    [mention], skipped = normalize_delivery(item["delivery"])
    assert skipped == []
    return mention


# ---- Messenger and Instagram: quick replies ----------------------------------------------------------

@pytest.mark.parametrize("platform, account", [("messenger", "page_id"), ("instagram", "ig_user_id")])
def test_quick_replies_go_out_as_the_send_api_takes_them_and_the_tap_comes_back_as_an_answer(fake, platform, account):
    fake.add_customer_message(platform, "7301234567890123", "My name is misspelled on my ticket")

    message_id = client_for(fake).send_message(platform, getattr(fake, account), "7301234567890123", ASK,
                                               options=QUICK)

    [sent] = fake.posted
    assert (sent["id"], sent["text"], sent["messaging_type"]) == (message_id, ASK, "RESPONSE")
    assert sent["quick_replies"] == [{"content_type": "text", "title": o["title"], "payload": o["id"]} for o in QUICK]
    [item] = fake.answer_surveys_now()  # the customer taps the first button
    mention = tapped(item)
    assert (mention.platform, mention.kind, mention.author.id) == (platform, "dm", "7301234567890123")
    assert (mention.text, mention.reply_payload) == ("⭐⭐⭐⭐⭐ Excellent", f"csat:{CASE_ID}:5")
    answer = parse_answer(mention.text, mention.reply_payload)
    assert (answer.score, answer.via, answer.case_id) == (5, "button", CASE_ID)
    assert mention.to_dict()["reply_payload"] == f"csat:{CASE_ID}:5"  # kept through the queue


def test_the_service_sends_a_replys_options_through_the_graph_client(fake):
    fake.add_customer_message("messenger", "5550010", "thanks, all sorted")
    target = ReplyTarget(platform="messenger", kind="dm", platform_id="m_1", author_id="5550010",
                         source_id=f"messenger:{fake.page_id}")

    send_via_platform(target, "private", ASK, client_for(fake), options=QUICK[:2])

    assert [q["payload"] for q in fake.posted[0]["quick_replies"]] == [QUICK[0]["id"], QUICK[1]["id"]]


def test_quick_replies_beyond_the_send_apis_limits_are_refused_before_sending_and_by_graph(fake):
    client = client_for(fake)
    too_many = [{"id": f"p{n}", "title": f"option {n}"} for n in range(14)]
    with pytest.raises(MetaRequestError, match="at most 13"):
        client.send_message("messenger", fake.page_id, "5550011", ASK, options=too_many)
    with pytest.raises(MetaRequestError, match="1 to 20 characters"):
        client.send_message("messenger", fake.page_id, "5550011", ASK, options=[{"id": "p", "title": "x" * 21}])
    with pytest.raises(MetaRequestError, match="must differ"):
        client.send_message("messenger", fake.page_id, "5550011", ASK, options=[QUICK[0], dict(QUICK[0], id="p")])
    assert fake.requests == []

    fake.add_customer_message("messenger", "5550011", "hi")
    for quick_replies, says in [
        ([{"content_type": "text", "title": f"t{n}", "payload": "p"} for n in range(14)], "at most 13"),
        ([{"content_type": "text", "title": "x" * 21, "payload": "p"}], "title] must be at most 20"),
        ([{"content_type": "text", "title": "Good"}], "payload] is required"),
        ([{"content_type": "text", "title": "Good", "payload": "p" * 1001}], "at most 1000"),
        ([{"content_type": "button", "title": "Good", "payload": "p"}], "content_type"),
        ([], "non-empty"),
    ]:
        status, answer = raw_post(fake, f"/{fake.page_id}/messages", {
            "recipient": {"id": "5550011"}, "messaging_type": "RESPONSE",
            "message": {"text": ASK, "quick_replies": quick_replies}})
        assert (status, answer["error"]["code"]) == (400, 100) and says in answer["error"]["message"]
    assert fake.posted == [] and fake.pending_answers == 0


# ---- WhatsApp: reply buttons and templates -------------------------------------------------------------

def test_whatsapp_reply_buttons_go_out_as_interactive_and_the_tap_names_the_button_and_our_message(fake):
    fake.add_customer_message("whatsapp", "818012345678", "明日のSA501便は？", name="佐藤 健")

    wamid = client_for(fake).send_message("whatsapp", fake.phone_number_id, "818012345678", ASK, options=BUTTONS)

    [sent] = fake.posted
    assert (sent["type"], sent["text"], sent["id"]) == ("interactive", ASK, wamid)
    assert sent["buttons"] == BUTTONS
    request = fake.requests[-1]["params"]
    assert request["interactive"]["action"]["buttons"][0] == {"type": "reply", "reply": BUTTONS[0]}
    assert request["interactive"]["body"] == {"text": ASK} and "context" not in request
    mention = tapped(fake.answer_surveys_now()[0])
    assert (mention.platform, mention.author.id, mention.in_reply_to_id) == ("whatsapp", "818012345678", wamid)
    assert (mention.text, mention.reply_payload) == ("😊 Good", BUTTONS[0]["id"])
    assert parse_answer(mention.text, mention.reply_payload).score == 5


def test_whatsapp_buttons_beyond_the_cloud_apis_limits_are_refused(fake):
    client = client_for(fake)
    with pytest.raises(MetaRequestError, match="at most 3"):
        client.send_message("whatsapp", fake.phone_number_id, "818000000001", ASK, options=QUICK[:4])
    with pytest.raises(MetaRequestError, match="1024"):
        client.send_message("whatsapp", fake.phone_number_id, "818000000001", "x" * 1025, options=BUTTONS)
    assert fake.requests == []

    fake.add_customer_message("whatsapp", "818000000001", "hello")
    four = [{"type": "reply", "reply": {"id": f"b{n}", "title": f"B{n}"}} for n in range(4)]
    for interactive, says in [
        ({"type": "button", "body": {"text": ASK}, "action": {"buttons": four}}, "1 to 3 buttons"),
        ({"type": "button", "body": {"text": ASK}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "b", "title": "x" * 21}}]}}, "title must be 1 to 20"),
        ({"type": "button", "body": {"text": ASK}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "b", "title": "Same"}},
            {"type": "reply", "reply": {"id": "b", "title": "Other"}}]}}, "unique"),
        ({"type": "button", "action": {"buttons": four[:1]}}, "body.text is required"),
    ]:
        status, answer = raw_post(fake, f"/{fake.phone_number_id}/messages", {
            "messaging_product": "whatsapp", "to": "818000000001", "type": "interactive", "interactive": interactive})
        assert (status, answer["error"]["code"]) == (400, 131009)
        assert says in answer["error"]["error_data"]["details"]
    assert fake.posted == []


def test_reply_buttons_need_the_24_hour_window_and_a_template_does_not(fake, clock):
    fake.add_customer_message("whatsapp", "818000000002", "thanks", created_time=clock.now - 25 * 3600)
    client = client_for(fake)
    with pytest.raises(MetaRequestError) as refused:
        client.send_message("whatsapp", fake.phone_number_id, "818000000002", ASK, options=BUTTONS)
    assert refused.value.window_closed

    client.send_message("whatsapp", fake.phone_number_id, "818000000002", ASK, options=BUTTONS,
                        template={"name": "csat_survey", "language": "ja"})

    [sent] = fake.posted
    assert sent["type"] == "template" and sent["template"] == {"name": "csat_survey", "language": "ja"}
    components = fake.requests[-1]["params"]["template"]["components"]
    assert components[2] == {"type": "button", "sub_type": "quick_reply", "index": "2",
                             "parameters": [{"type": "payload", "payload": BUTTONS[2]["id"]}]}
    mention = tapped(fake.answer_surveys_now()[0])  # a template's button comes back as type "button"
    assert mention.reply_payload == BUTTONS[0]["id"] and parse_answer(mention.text, mention.reply_payload).score == 5


def test_a_template_that_was_never_approved_is_refused(fake):
    with pytest.raises(MetaRequestError) as refused:
        client_for(fake).send_message("whatsapp", fake.phone_number_id, "818000000003", ASK,
                                      template={"name": "not_approved", "language": "en"})
    assert refused.value.code == 132001 and fake.posted == []


# ---- the fake customer: deterministic, optional, on the next release ---------------------------------

def test_the_fake_customer_taps_the_buttons_it_is_told_to_in_turn_on_the_next_release_after_the_delay(clock):
    fake = FakeGraph(access_token=TOKEN, clock=clock, survey_taps=(1, 4), answer_delay_seconds=30).start()
    try:
        client = client_for(fake)
        for customer in ("5550020", "5550021"):
            fake.add_customer_message("messenger", customer, "ok")
            client.send_message("messenger", fake.page_id, customer, ASK, options=QUICK)

        assert fake.release() == [] and fake.pending_answers == 2  # not yet: the customers take 30 s
        clock.now += 30
        answers = fake.release()

        assert [(a["who"], a["text"]) for a in answers] == [("5550020", "⭐⭐⭐⭐ Good"), ("5550021", "⭐ Very poor")]
        assert [parse_answer(tapped(a).text, tapped(a).reply_payload).score for a in answers] == [4, 1]
        assert fake.pending_answers == 0
        # The tap is in the conversation too, so polling finds it where the webhook did not arrive.
        polled = client.conversations_page(fake.page_id, platform="messenger", brand_id=fake.page_id).mentions
        assert "⭐ Very poor" in [m.text for m in polled]
    finally:
        fake.stop()


def test_a_fake_that_does_not_answer_surveys_sends_nothing_back(clock):
    fake = FakeGraph(access_token=TOKEN, clock=clock, answer_surveys=False).start()
    try:
        fake.add_customer_message("messenger", "5550030", "ok")
        client_for(fake).send_message("messenger", fake.page_id, "5550030", ASK, options=QUICK)
        assert fake.pending_answers == 0 and fake.answer_surveys_now() == []
        # A plain message is no survey, whatever the setting.
        fake.answer_surveys = True
        client_for(fake).send_message("messenger", fake.page_id, "5550030", "Anything else?")
        assert fake.pending_answers == 0
    finally:
        fake.stop()
