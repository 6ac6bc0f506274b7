"""Meta webhooks: handshake, signature over the raw bytes, and deliveries -> Mentions."""
from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.adapters.platforms.meta_webhooks import (
    answer_handshake,
    failed_sends,
    iso_utc,
    normalize_delivery,
    signature_is_valid,
)
from chalicelib.domain.mention import UNKNOWN_AUTHOR_ID, needs_lookup
from local.fake_graph import (
    deliver,
    encode_delivery,
    feed_comment_delivery,
    feed_post_delivery,
    ig_comment_delivery,
    messaging_delivery,
    sample_deliveries,
    whatsapp_status_delivery,
)

PAGE_ID = "104857600213455"
IG_USER_ID = "17841405822304911"
PHONE_NUMBER_ID = "106540352242922"
SECRET = "test-app-secret"
NOW = 1795425600  # 2026-11-23T09:20:00Z


@pytest.fixture
def samples():
    return sample_deliveries(PAGE_ID, IG_USER_ID, PHONE_NUMBER_ID, now=NOW)


# ---- handshake ------------------------------------------------------------------------

def test_handshake_answers_the_challenge_for_our_token():
    params = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    assert answer_handshake(params, "verify-me") == "1158201444"


@pytest.mark.parametrize("params, configured", [
    ({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}, "verify-me"),
    ({"hub.mode": "unsubscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"}, "verify-me"),
    ({"hub.mode": "subscribe", "hub.verify_token": "verify-me"}, "verify-me"),
    ({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, ""),  # nothing configured
])
def test_handshake_refuses_anything_else(params, configured):
    assert answer_handshake(params, configured) is None


# ---- signature ------------------------------------------------------------------------

def test_signature_over_metas_escaped_bytes_is_valid(samples):
    raw, headers = encode_delivery(samples["whatsapp_message"], SECRET)

    assert b"\\u660e\\u65e5" in raw  # 明日, escaped as Meta sends it
    assert signature_is_valid(raw, headers["X-Hub-Signature-256"], SECRET)


def test_signature_fails_for_wrong_secret_missing_header_other_scheme_or_tampered_body(samples):
    raw, headers = encode_delivery(samples["messenger_dm"], SECRET)
    signature = headers["X-Hub-Signature-256"]

    assert not signature_is_valid(raw, signature, "another-secret")
    assert not signature_is_valid(raw, None, SECRET)
    assert not signature_is_valid(raw, "", SECRET)
    assert not signature_is_valid(raw, headers["X-Hub-Signature"], SECRET)  # sha1 is not accepted
    assert not signature_is_valid(raw, signature, "")
    assert not signature_is_valid(raw.replace(b"misspelled", b"correct"), signature, SECRET)


def test_re_encoding_the_json_breaks_the_signature(samples):
    """Why the route must verify the raw bytes: a parse/dump round trip changes them."""
    raw, headers = encode_delivery(samples["instagram_dm"], SECRET)
    re_encoded = json.dumps(json.loads(raw), ensure_ascii=False).encode("utf-8")

    assert json.loads(re_encoded) == json.loads(raw)
    assert not signature_is_valid(re_encoded, headers["X-Hub-Signature-256"], SECRET)


def test_deliver_posts_exactly_the_signed_bytes(samples):
    received = {}

    class Capture(BaseHTTPRequestHandler):
        def do_POST(self):
            received["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            received["signature"] = self.headers["X-Hub-Signature-256"]
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        status = deliver(samples["facebook_comment"], f"http://127.0.0.1:{server.server_address[1]}/hook", SECRET)
    finally:
        server.shutdown()
        server.server_close()

    assert status == 200
    assert signature_is_valid(received["body"], received["signature"], SECRET)
    assert received["body"].isascii()
    mentions, _ = normalize_delivery(json.loads(received["body"]))
    assert mentions[0].text.startswith("羽田行きSA215")


# ---- every channel --------------------------------------------------------------------

@pytest.mark.parametrize("channel, platform, kind, author_id, text_start, conversation_id, source_id", [
    ("facebook_comment", "facebook", "comment", "26543219876543210", "羽田行きSA215",
     f"{PAGE_ID}_122104857600213001", f"facebook:{PAGE_ID}"),
    ("instagram_comment", "instagram", "comment", "17841400000000042", "The new lounge",
     "17912345678901234", f"instagram:{IG_USER_ID}"),
    ("instagram_mention", "instagram", "mention", UNKNOWN_AUTHOR_ID, "",
     "17987654321098765", f"instagram:{IG_USER_ID}"),
    ("messenger_dm", "messenger", "dm", "7301234567890123", "Hi, I booked SA102",
     "7301234567890123", f"messenger:{PAGE_ID}"),
    ("instagram_dm", "instagram", "dm", "1122334455667788", "手荷物が届いていません",
     "1122334455667788", f"instagram:{IG_USER_ID}"),
    ("whatsapp_message", "whatsapp", "dm", "818012345678", "明日のSA501便",
     "818012345678", f"whatsapp:{PHONE_NUMBER_ID}"),
])
def test_each_channel_normalizes(samples, channel, platform, kind, author_id, text_start, conversation_id,
                                 source_id):
    mentions, skipped = normalize_delivery(samples[channel])

    assert skipped == []
    assert len(mentions) == 1
    mention = mentions[0]
    assert (mention.platform, mention.kind, mention.author.id) == (platform, kind, author_id)
    assert mention.text.startswith(text_start)
    assert mention.conversation_id == conversation_id
    assert mention.source_id == source_id
    assert mention.created_at == "2026-11-23T09:20:00Z"


def test_channel_details_authors_ids_and_links(samples):
    facebook = normalize_delivery(samples["facebook_comment"])[0][0]
    assert facebook.platform_id == "122104857600213001_1187342265511094"
    assert facebook.author.name == "山田 花子" and facebook.lang == "ja"
    assert facebook.in_reply_to_id == facebook.conversation_id
    assert facebook.permalink == (f"https://www.facebook.com/{PAGE_ID}/posts/122104857600213001"
                                  "?comment_id=1187342265511094")

    instagram = normalize_delivery(samples["instagram_comment"])[0][0]
    assert instagram.author.handle == "mia_chen_sg" and instagram.lang == ""

    whatsapp = normalize_delivery(samples["whatsapp_message"])[0][0]
    assert whatsapp.author.name == "佐藤 健"
    assert whatsapp.platform_id.startswith("wamid.")
    assert whatsapp.raw["text"]["body"] == whatsapp.text

    messenger = normalize_delivery(samples["messenger_dm"])[0][0]
    assert messenger.platform_id == "m_AG5Hz2Uq7tpwXv9lYdkHgj3qTz1"
    assert messenger.raw["sender"]["id"] == messenger.author.id


def test_an_instagram_mention_carries_only_ids_and_needs_a_lookup(samples):
    mention = normalize_delivery(samples["instagram_mention"])[0][0]

    assert needs_lookup(mention)
    assert mention.platform_id == "18098765432109876"  # the comment that mentions us
    assert mention.in_reply_to_id == "17987654321098765"
    assert not needs_lookup(normalize_delivery(samples["instagram_comment"])[0][0])


def test_replies_to_comments_are_kind_reply():
    facebook = feed_comment_delivery(PAGE_ID, post_id=f"{PAGE_ID}_1", comment_id="1_2", message="me too",
                                     sender={"id": "555", "name": "Ken"}, created_time=NOW, parent_id="1_1")
    instagram = ig_comment_delivery(IG_USER_ID, comment_id="180002", media_id="179001", text="same here",
                                    sender={"id": "777", "username": "aoi_h"}, time_=NOW, parent_id="180001")

    fb_reply = normalize_delivery(facebook)[0][0]
    ig_reply = normalize_delivery(instagram)[0][0]

    assert (fb_reply.kind, fb_reply.in_reply_to_id, fb_reply.conversation_id) == ("reply", "1_1", f"{PAGE_ID}_1")
    assert (ig_reply.kind, ig_reply.in_reply_to_id, ig_reply.conversation_id) == ("reply", "180001", "179001")


def test_a_visitor_post_on_the_page_is_a_mention():
    delivery = feed_post_delivery(PAGE_ID, post_id=f"{PAGE_ID}_99", message="Lost my bag on SA108",
                                  sender={"id": "555", "name": "Marco"}, created_time=NOW)

    mention = normalize_delivery(delivery)[0][0]

    assert (mention.kind, mention.platform_id, mention.conversation_id) == ("mention", f"{PAGE_ID}_99", f"{PAGE_ID}_99")
    assert mention.permalink == f"https://www.facebook.com/{PAGE_ID}/posts/99"


# ---- what is left out -----------------------------------------------------------------

def test_the_pages_own_comment_and_brand_accounts_are_skipped():
    own = feed_comment_delivery(PAGE_ID, post_id=f"{PAGE_ID}_1", comment_id="1_3", message="We're on it!",
                                sender={"id": PAGE_ID, "name": "SoraAir"}, created_time=NOW)
    sister = feed_comment_delivery(PAGE_ID, post_id=f"{PAGE_ID}_1", comment_id="1_4", message="Hello from SoraAir JP",
                                   sender={"id": "888000", "name": "SoraAir Japan"}, created_time=NOW)

    mentions, skipped = normalize_delivery(own)
    assert mentions == [] and skipped == ["entry[0].changes[0]: comment by the brand itself"]
    assert normalize_delivery(sister, brand_ids={"888000"})[0] == []
    assert len(normalize_delivery(sister)[0]) == 1


def test_echoes_and_read_receipts_are_skipped_but_a_photo_without_text_is_kept():
    echo = messaging_delivery("page", PAGE_ID, sender_id="7301", mid="m_echo", text="Thanks for waiting!",
                              timestamp_ms=NOW * 1000, is_echo=True)
    photo = messaging_delivery("instagram", IG_USER_ID, sender_id="1122", mid="aWdf1", text=None,
                               timestamp_ms=NOW * 1000,
                               attachments=[{"type": "image", "payload": {"url": "https://example.com/bag.jpg"}}])
    read = {"object": "page", "entry": [{"id": PAGE_ID, "time": NOW * 1000, "messaging": [
        {"sender": {"id": "7301"}, "recipient": {"id": PAGE_ID}, "timestamp": NOW * 1000, "read": {"watermark": 1}}]}]}

    assert normalize_delivery(echo) == ([], ["entry[0].messaging[0]: echo of a message the business sent"])
    # A photo of a damaged bag with no words is still the customer talking (issue 12): kept, with its file.
    [kept], skipped = normalize_delivery(photo)
    assert skipped == [] and kept.text == "" and [m.type for m in kept.media] == ["image"]
    assert kept.media[0].url == "https://example.com/bag.jpg"
    assert normalize_delivery(read) == ([], ["entry[0].messaging[0]: read event, not a message"])


def test_whatsapp_statuses_are_ignored_but_failures_are_reported():
    delivered = whatsapp_status_delivery("WABA", PHONE_NUMBER_ID, wamid="wamid.1", recipient_id="8180",
                                         timestamp=NOW)
    failed = whatsapp_status_delivery("WABA", PHONE_NUMBER_ID, wamid="wamid.2", recipient_id="8180", timestamp=NOW,
                                      status="failed", errors=[{"code": 131047, "title": "Re-engagement message"}])

    assert normalize_delivery(delivered) == ([], [])
    assert normalize_delivery(failed) == ([], [])
    assert failed_sends(delivered) == []
    assert failed_sends(failed) == [{"platform": "whatsapp", "message_id": "wamid.2", "recipient_id": "8180",
                                     "errors": [{"code": 131047, "title": "Re-engagement message"}]}]


def test_removed_comments_are_skipped_and_edits_keep_the_same_id():
    removed = feed_comment_delivery(PAGE_ID, post_id=f"{PAGE_ID}_1", comment_id="1_5", message="",
                                    sender={"id": "555", "name": "Ken"}, created_time=NOW, verb="remove")
    edited = feed_comment_delivery(PAGE_ID, post_id=f"{PAGE_ID}_1", comment_id="1_5", message="fixed typo",
                                   sender={"id": "555", "name": "Ken"}, created_time=NOW, verb="edited")

    assert normalize_delivery(removed) == ([], ["entry[0].changes[0]: comment was removed"])
    assert normalize_delivery(edited)[0][0].id == "facebook:1_5"


def test_a_bad_item_is_skipped_with_a_reason_and_the_rest_survive(samples):
    delivery = copy.deepcopy(samples["facebook_comment"])
    good = delivery["entry"][0]["changes"][0]
    broken = copy.deepcopy(good)
    del broken["value"]["from"]
    other = copy.deepcopy(good)
    other["value"]["comment_id"] = "122104857600213001_42"
    delivery["entry"][0]["changes"] = [good, broken, other, "not a change"]
    delivery["entry"].append({"time": NOW})  # an entry without an id

    mentions, skipped = normalize_delivery(delivery)

    assert [m.platform_id for m in mentions] == ["122104857600213001_1187342265511094", "122104857600213001_42"]
    assert skipped == [
        "entry[0].changes[1]: malformed (ValueError: 'from.id' is missing)",
        "entry[0].changes[3]: malformed (TypeError: change is not an object)",
        "entry[1]: malformed (not an object with an id)",
    ]


def test_a_whatsapp_image_is_kept_and_a_message_without_a_phone_number_id_is_skipped(samples):
    delivery = copy.deepcopy(samples["whatsapp_message"])
    value = delivery["entry"][0]["changes"][0]["value"]
    image = {**value["messages"][0], "id": "wamid.img", "type": "image", "image": {"id": "1"}}
    del image["text"]
    value["messages"].append(image)

    mentions, skipped = normalize_delivery(delivery)
    assert len(mentions) == 2 and skipped == []
    assert [m.type for m in mentions[1].media] == ["image"] and mentions[1].media[0].platform_media_id == "1"

    del value["metadata"]["phone_number_id"]
    mentions, skipped = normalize_delivery(delivery)
    assert mentions == [] and "phone_number_id is missing" in skipped[0]


def test_only_a_payload_that_is_not_a_delivery_raises():
    for payload in ({"hello": "world"}, {"object": "page"}, {"object": "page", "entry": {}}, [], "x"):
        with pytest.raises(ValueError, match="not a Meta webhook delivery"):
            normalize_delivery(payload)
    assert normalize_delivery({"object": "permissions", "entry": []}) == (
        [], ["delivery: object 'permissions' is not a channel socialcare listens to"])


@pytest.mark.parametrize("value, expected", [
    (1795425600, "2026-11-23T09:20:00Z"),
    ("1795425600", "2026-11-23T09:20:00Z"),
    (1795425600123, "2026-11-23T09:20:00Z"),  # Messenger milliseconds
    ("2026-11-23T09:20:00+0000", "2026-11-23T09:20:00Z"),
    ("2026-11-23T18:20:00+09:00", "2026-11-23T09:20:00Z"),
])
def test_times_become_iso_utc(value, expected):
    assert iso_utc(value) == expected
