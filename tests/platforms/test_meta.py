"""GraphClient against the fake Graph API over real HTTP on localhost."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from chalicelib.adapters.platforms.http import HttpClient, Response
from chalicelib.adapters.platforms.meta import (
    DEFAULT_THROTTLE_SECONDS,
    GraphClient,
    MetaAuthError,
    MetaRateLimited,
    MetaRequestError,
    MetaTransientError,
    Usage,
    error_from_response,
)
from chalicelib.adapters.platforms.meta_webhooks import normalize_delivery
from local.fake_graph import FakeGraph, FakeGraphControl

SEED = Path(__file__).resolve().parents[2] / "local" / "data" / "meta_stream.json"
TOKEN = "test-page-token"
HOUR = 3600


@pytest.fixture
def fake():
    server = FakeGraph(access_token=TOKEN).start()
    yield server
    server.stop()


def client_for(fake: FakeGraph, token: str = TOKEN) -> GraphClient:
    base_url = fake.url + "/v21.0"
    return GraphClient(base_url, token, http=HttpClient(base_url=base_url, sleep=lambda seconds: None, timeout=5))


def all_feed(client: GraphClient, fake: FakeGraph, **kwargs):
    mentions, after, pages = [], None, 0
    while True:
        page = client.page_feed_page(fake.page_id, after=after, **kwargs)
        mentions.extend(page.mentions)
        pages += 1
        after = page.next_after
        if not after:
            return mentions, pages


def ago(hours: float) -> float:
    return time.time() - hours * HOUR


# ---- polling: Facebook feed ---------------------------------------------------------------

def test_feed_pages_through_visitor_posts_and_comments_without_repeats(fake):
    notice = fake.add_page_post("台風情報 / Typhoon advisory", created_time=ago(10))
    question = fake.add_page_comment("SA681は欠航ですか？", post_id=notice["id"], author_name="山田 花子",
                                     created_time=ago(9))
    fake.add_page_comment("Me too, SA683?", parent_id=question["id"], author_name="Ken", created_time=ago(8))
    fake.add_page_comment("アプリでご確認ください。", parent_id=question["id"], author_id=fake.page_id,
                          created_time=ago(7))
    for hour in (6, 5, 4):
        fake.add_visitor_post(f"Lost item on SA10{hour}", author_name=f"Visitor {hour}", created_time=ago(hour))

    mentions, pages = all_feed(client_for(fake), fake, limit=2)

    assert pages == 2  # four posts, two per page
    assert len({m.platform_id for m in mentions}) == len(mentions) == 5  # the Page's own answer is left out
    by_text = {m.text: m for m in mentions}
    assert by_text["SA681は欠航ですか？"].kind == "comment"
    assert by_text["SA681は欠航ですか？"].lang == "ja"
    reply = by_text["Me too, SA683?"]
    assert (reply.kind, reply.in_reply_to_id, reply.conversation_id) == ("reply", question["id"], notice["id"])
    visitor = by_text["Lost item on SA104"]
    assert (visitor.kind, visitor.author.name, visitor.source_id) == ("mention", "Visitor 4", f"facebook:{fake.page_id}")
    assert visitor.permalink.startswith(f"https://www.facebook.com/{fake.page_id}/posts/")
    assert all(m.created_at.endswith("Z") for m in mentions)


def test_since_finds_new_comments_even_on_older_posts(fake):
    client = client_for(fake)
    old_post = fake.add_page_post("Winter schedule", created_time=ago(72))
    fake.add_page_comment("When does it start?", post_id=old_post["id"], created_time=ago(48))
    first = client.page_feed_page(fake.page_id)
    assert [m.text for m in first.mentions] == ["When does it start?"]

    fake.add_page_comment("Is SA215 still daily?", post_id=old_post["id"])
    page = client.page_feed_page(fake.page_id, since=first.newest_time)

    assert [m.text for m in page.mentions] == ["Is SA215 still daily?"]
    assert page.newest_time > first.newest_time
    feed_request = fake.requests[-1]
    assert int(feed_request["query"]["since"]) < time.time() - 6 * 24 * HOUR  # a week of posts is re-read


def test_comments_beyond_the_first_inline_page_are_fetched(fake):
    post = fake.add_page_post("Share your travel photos!", created_time=ago(3))
    for number in range(130):
        fake.add_page_comment(f"photo {number}", post_id=post["id"], created_time=ago(2) + number)

    page = client_for(fake).page_feed_page(fake.page_id)

    assert len(page.mentions) == 130
    assert [r["path"] for r in fake.requests] == [f"/{fake.page_id}/feed", f"/{post['id']}/comments"]


# ---- polling: Instagram -------------------------------------------------------------------

def test_instagram_comments_and_replies(fake):
    media = fake.add_ig_media("新しい羽田ラウンジ", created_time=ago(3))
    question = fake.add_ig_comment("Open to economy?", username="mia_chen_sg", user_id="1784140000000042",
                                   media_id=media["id"], created_time=ago(2))
    fake.add_ig_comment("Yes, with Gold status!", username=fake.ig_username, parent_id=question["id"],
                        created_time=ago(1.5))
    fake.add_ig_comment("ゴールドじゃないとダメ？", username="aoi_h", parent_id=question["id"], created_time=ago(1))

    page = client_for(fake).ig_comments_page(fake.ig_user_id)

    assert [(m.kind, m.author.handle) for m in page.mentions] == [("comment", "mia_chen_sg"), ("reply", "aoi_h")]
    comment, reply = page.mentions
    assert comment.author.id == "1784140000000042"
    assert (comment.conversation_id, comment.in_reply_to_id) == (media["id"], media["id"])
    assert (reply.conversation_id, reply.in_reply_to_id) == (media["id"], question["id"])
    assert comment.permalink == media["permalink"]
    assert comment.source_id == f"instagram:{fake.ig_user_id}"
    assert page.next_after is None


def test_instagram_tags_page_and_stop_at_since(fake):
    client = client_for(fake)
    for hour in (5, 4, 3):
        fake.add_ig_mention(f"Flying with @soraair #{hour}", username=f"fan{hour}", created_time=ago(hour))

    first = client.ig_mentions_page(fake.ig_user_id, limit=2)
    assert [m.author.handle for m in first.mentions] == ["fan3", "fan4"]
    assert first.next_after
    fake.add_ig_mention("Best crew ever @soraair", username="yuki_travels")

    page = client.ig_mentions_page(fake.ig_user_id, since=first.newest_time, limit=2)

    assert [m.text for m in page.mentions] == ["Best crew ever @soraair"]
    assert page.next_after is None  # older tags are behind the cursor already


def test_instagram_mention_details_fill_in_a_webhook_mention(fake):
    client = client_for(fake)
    caption = fake.add_ig_mention("Sunset landing in Naha with @soraair", username="hiro_okinawa")
    in_comment = fake.add_ig_mention("@soraair checkin queue is 1 hour 😢", username="tomo_fukuoka",
                                     in_comment=True)

    from_caption = client.ig_mention_details(fake.ig_user_id, caption["id"])
    from_comment = client.ig_mention_details(fake.ig_user_id, in_comment["media"]["id"], in_comment["id"])

    assert (from_caption.kind, from_caption.author.handle, from_caption.platform_id) == (
        "mention", "hiro_okinawa", caption["id"])
    assert from_comment.text == "@soraair checkin queue is 1 hour 😢"
    assert (from_comment.platform_id, from_comment.conversation_id) == (in_comment["id"], in_comment["media"]["id"])
    with pytest.raises(MetaRequestError):
        client.ig_mention_details(fake.ig_user_id, "17900000000000999")


def test_dm_senders_are_named_by_the_user_profile_api_once_per_customer(fake):
    client = client_for(fake)
    fake.add_customer_message("messenger", "7301234567890123", "Where is my refund?", name="Daniel Okafor")
    fake.add_customer_message("instagram", "1122334455667788", "荷物が届きません", name="Haruka",
                              username="haruka_mama_", verified=True, followers=52000)

    daniel = client.messaging_profile("messenger", "7301234567890123")
    haruka = client.messaging_profile("instagram", "1122334455667788")
    client.messaging_profile("messenger", "7301234567890123")

    assert (daniel.id, daniel.name, daniel.handle) == ("7301234567890123", "Daniel Okafor", "")
    assert (haruka.handle, haruka.name, haruka.verified, haruka.followers) == ("haruka_mama_", "Haruka", True, 52000)
    lookups = [r for r in fake.requests if r["path"] in ("/7301234567890123", "/1122334455667788")]
    assert [(r["path"], r["query"]["fields"]) for r in lookups] == [
        ("/7301234567890123", "first_name,last_name"),
        ("/1122334455667788", "name,username,is_verified_user,follower_count"),
    ]
    with pytest.raises(MetaRequestError):  # never wrote to the brand: no consent, no profile
        client.messaging_profile("messenger", "7309999999999999")


# ---- replies ---------------------------------------------------------------------------------

def test_public_replies_per_platform_are_recorded_and_not_polled_back(fake):
    client = client_for(fake)
    comment = fake.add_page_comment("Is SA215 delayed?", author_name="Ken")
    ig_comment = fake.add_ig_comment("Lounge hours?", username="mia_chen_sg")

    facebook_id = client.reply_to_comment("facebook", comment["id"], "現在30分遅れの見込みです。")
    instagram_id = client.reply_to_comment("instagram", ig_comment["id"], "6:00–23:00 daily ☕️")

    posted = fake.posted
    assert [(p["kind"], p["platform"], p["target_id"], p["id"]) for p in posted] == [
        ("comment_reply", "facebook", comment["id"], facebook_id),
        ("comment_reply", "instagram", ig_comment["id"], instagram_id),
    ]
    assert posted[0]["text"] == "現在30分遅れの見込みです。"
    assert all(r["auth"] == "header" for r in fake.requests)
    # Our own replies show up in the feed and media, and polling leaves them out.
    assert [m.platform_id for m in client.page_feed_page(fake.page_id).mentions] == [comment["id"]]
    assert [m.platform_id for m in client.ig_comments_page(fake.ig_user_id).mentions] == [ig_comment["id"]]


def test_private_reply_once_per_comment(fake):
    client = client_for(fake)
    comment = fake.add_page_comment("My booking ref is QX7P2L, please check", author_name="Daniel")

    message_id = client.private_reply_to_comment(fake.page_id, comment["id"], "Sent you the details privately.")

    assert message_id.startswith("m_")
    assert fake.posted[-1]["kind"] == "private_reply"
    with pytest.raises(MetaRequestError) as refused:
        client.private_reply_to_comment(fake.page_id, comment["id"], "And one more thing")
    assert refused.value.code == 10900 and "already has its one private reply" in str(refused.value)


def test_private_reply_after_seven_days_is_refused(fake):
    comment = fake.add_ig_comment("Where is my refund?", username="kenta_0412", created_time=ago(8 * 24))

    with pytest.raises(MetaRequestError, match="within 7 days of the comment") as refused:
        client_for(fake).private_reply_to_comment(fake.ig_user_id, comment["id"], "DMing you now", platform="instagram")

    assert refused.value.window_closed and fake.posted == []


def test_messages_inside_the_window_on_each_platform(fake):
    client = client_for(fake)
    fake.add_customer_message("messenger", "7301234567890123", "Name misspelled on my ticket")
    fake.add_customer_message("instagram", "1122334455667788", "ベビーカーは使えますか？")
    delivery = fake.add_customer_message("whatsapp", "818012345678", "明日のSA501便は？", name="佐藤 健")
    customer_wamid = normalize_delivery(delivery)[0][0].platform_id

    messenger_id = client.send_message("messenger", fake.page_id, "7301234567890123", "Fixed, see your email.")
    instagram_id = client.send_message("instagram", fake.ig_user_id, "1122334455667788", "はい、搭乗口まで使えます。")
    whatsapp_id = client.send_message("whatsapp", fake.phone_number_id, "818012345678", "現在、定刻運航の予定です。",
                                      reply_to_message_id=customer_wamid)

    assert messenger_id.startswith("m_") and instagram_id and whatsapp_id.startswith("wamid.")
    sent = fake.posted
    assert [(p["platform"], p["target_id"]) for p in sent] == [
        ("messenger", "7301234567890123"), ("instagram", "1122334455667788"), ("whatsapp", "818012345678")]
    assert sent[0]["messaging_type"] == "RESPONSE"
    assert sent[2]["context_message_id"] == customer_wamid


@pytest.mark.parametrize("platform, account", [("messenger", "page_id"), ("instagram", "ig_user_id"),
                                               ("whatsapp", "phone_number_id")])
def test_a_closed_24_hour_window_is_a_clear_request_error(fake, platform, account):
    fake.add_customer_message(platform, "5550001", "hello?", created_time=ago(25))

    with pytest.raises(MetaRequestError) as refused:
        client_for(fake).send_message(platform, getattr(fake, account), "5550001", "Sorry for the wait!")

    assert refused.value.window_closed
    assert "outside the 24-hour window" in str(refused.value)
    assert fake.posted == []


def test_human_agent_tag_answers_within_seven_days(fake):
    fake.add_customer_message("messenger", "5550002", "Any update on my refund?", created_time=ago(30))

    message_id = client_for(fake).send_message("messenger", fake.page_id, "5550002", "Refund sent today.",
                                               tag="HUMAN_AGENT")

    assert message_id and fake.posted[0]["tag"] == "HUMAN_AGENT"


def test_too_long_text_is_refused_before_sending(fake):
    client = client_for(fake)

    with pytest.raises(MetaRequestError, match="2000"):
        client.send_message("messenger", fake.page_id, "5550003", "x" * 2001)
    with pytest.raises(MetaRequestError, match="bytes"):
        client.send_message("instagram", fake.ig_user_id, "5550003", "お" * 400)  # 1,200 bytes
    with pytest.raises(MetaRequestError, match="empty"):
        client.reply_to_comment("facebook", "1_2", "   ")
    assert fake.requests == []


# ---- errors, retries and usage ---------------------------------------------------------------

def test_a_bad_token_is_an_auth_error(fake):
    with pytest.raises(MetaAuthError) as refused:
        client_for(fake, token="revoked").page_feed_page(fake.page_id)

    assert refused.value.code == 190
    assert refused.value.fbtrace_id


def test_throttling_is_rate_limited_with_the_regain_time(fake):
    client = client_for(fake)
    fake.fail_next(f"/{fake.page_id}/feed", 400, body={"code": 32}, regain_minutes=7)
    fake.fail_next(f"/v21.0/{fake.ig_user_id}/media", 429)

    with pytest.raises(MetaRateLimited) as page_limited:
        client.page_feed_page(fake.page_id)
    with pytest.raises(MetaRateLimited) as app_limited:
        client.ig_comments_page(fake.ig_user_id)

    assert (page_limited.value.code, page_limited.value.retry_after) == (32, 7 * 60)
    assert page_limited.value.usage.buc_pct == 100
    assert app_limited.value.code == 4 and app_limited.value.usage.app_pct == 100
    assert client.page_feed_page(fake.page_id).mentions == []  # the next call goes through


def test_server_errors_are_retried_then_transient(fake):
    client = client_for(fake)
    fake.fail_next(f"/{fake.page_id}/feed", 500, times=2)
    assert client.page_feed_page(fake.page_id).next_after is None  # third attempt succeeds
    assert len(fake.requests) == 3

    fake.fail_next(f"/{fake.page_id}/feed", 503, times=3)
    with pytest.raises(MetaTransientError):
        client.page_feed_page(fake.page_id)


def test_usage_headers_are_parsed_and_near_limit(fake):
    client = client_for(fake)
    page = client.page_feed_page(fake.page_id)
    assert not page.usage.near_limit()

    fake.set_usage(app={"call_count": 12, "total_time": 93}, buc={"estimated_time_to_regain_access": 4})
    page = client.page_feed_page(fake.page_id)

    assert page.usage.app_pct == 93
    assert page.usage.regain_seconds == 240
    assert page.usage.near_limit() and not page.usage.near_limit(threshold=95)
    assert client.last_usage == page.usage


def test_usage_from_raw_headers_takes_the_worst_entry():
    usage = Usage.from_headers({
        "X-App-Usage": '{"call_count": 5, "total_cputime": 20, "total_time": 7}',
        "X-Business-Use-Case-Usage": ('{"104857600213455": [{"type": "pages", "call_count": 40, "total_cputime": 2,'
                                      ' "total_time": 2, "estimated_time_to_regain_access": 0}],'
                                      ' "17841405822304911": [{"type": "instagram", "call_count": 97,'
                                      ' "total_cputime": 3, "total_time": 9, "estimated_time_to_regain_access": 12}]}'),
    })

    assert usage == Usage(app_pct=20, buc_pct=97, regain_seconds=720)
    assert Usage.from_headers({"X-App-Usage": "not json"}) == Usage()


@pytest.mark.parametrize("status, error, expected", [
    (400, {"code": 190, "error_subcode": 463}, MetaAuthError),
    (403, {"code": 200}, MetaAuthError),
    (400, {"code": 10}, MetaAuthError),
    (400, {"code": 10, "error_subcode": 2018278}, MetaRequestError),
    (400, {"code": 131047}, MetaRequestError),
    (400, {"code": 10900}, MetaRequestError),
    (400, {"code": 100, "error_subcode": 33}, MetaRequestError),
    (400, {"code": 613}, MetaRateLimited),
    (400, {"code": 80001}, MetaRateLimited),
    (400, {"code": 2, "is_transient": True}, MetaTransientError),
    (502, {}, MetaTransientError),
])
def test_graph_errors_map_to_what_to_do_next(status, error, expected):
    body = {"error": {"message": "(#x) from Graph", "type": "OAuthException", "fbtrace_id": "AbC", **error}}

    err = error_from_response(Response(status=status, headers={}, body=body))

    assert type(err) is expected
    if expected is MetaRateLimited:
        assert err.retry_after == DEFAULT_THROTTLE_SECONDS


# ---- the fake from another process, and the demo seed ---------------------------------------

def test_control_endpoints_drive_the_fake(fake):
    control = FakeGraphControl(fake.url)
    control.add("page_comment", message="Is the lounge open?", author_name="Ken")
    control.fail_next(f"/{fake.page_id}/feed", 400, body={"code": 4})

    with pytest.raises(MetaRateLimited):
        client_for(fake).page_feed_page(fake.page_id)
    mentions = client_for(fake).page_feed_page(fake.page_id).mentions
    comment_id = mentions[0].platform_id
    client_for(fake).reply_to_comment("facebook", comment_id, "Yes, from 6:00.")

    assert [p["target_id"] for p in control.posted] == [comment_id]
    assert control.state()["comments"] == 2


def test_the_demo_seed_releases_into_polling_and_webhooks(fake):
    assert fake.load_seed(str(SEED)) == 16
    released = fake.release()
    client = client_for(fake)

    from_webhooks = [m for item in released for m in normalize_delivery(item["delivery"])[0]]
    polled = (client.page_feed_page(fake.page_id).mentions + client.ig_comments_page(fake.ig_user_id).mentions
              + client.ig_mentions_page(fake.ig_user_id).mentions)

    assert len(from_webhooks) == 16
    assert {m.platform for m in from_webhooks} == {"facebook", "instagram", "messenger", "whatsapp"}
    assert {m.id for m in polled} <= {m.id for m in from_webhooks}  # same ids both ways: dedupe works
    assert len(polled) == 10  # not the 5 DMs, nor the @mention in a comment: only webhooks carry those
    dm = next(m for m in from_webhooks if m.platform == "messenger")
    assert client.send_message("messenger", fake.page_id, dm.author.id, "Checking now.")
