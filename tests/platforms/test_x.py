"""XClient against the fake X API v2 over real HTTP on localhost."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from chalicelib.adapters.platforms.http import HttpClient
from chalicelib.adapters.platforms.x import (
    MAX_QUERY_LENGTH,
    RateLimit,
    XAmbiguous,
    XAuthError,
    XClient,
    XRateLimited,
    XRequestError,
    XTransientError,
    build_search_query,
    normalize_tweet,
    weighted_length,
)
from local.fake_x import FakeX, FakeXControl, usage_capped_problem

SEED = Path(__file__).resolve().parents[2] / "local" / "data" / "x_stream.json"
BEARER = "test-app-bearer"
USER_TOKEN = "test-user-token"


@pytest.fixture
def fake():
    server = FakeX(bearer_token=BEARER).start()
    server.load_seed(str(SEED))
    server.release()
    yield server
    server.stop()


def client_for(fake: FakeX, token: str = BEARER, user_token: str | None = None) -> XClient:
    http = HttpClient(base_url=fake.url, sleep=lambda seconds: None, timeout=5)
    return XClient(fake.url, token, user_token=user_token, http=http)


def all_mentions(client: XClient, fake: FakeX, **kwargs):
    mentions, token, pages = [], None, 0
    while True:
        page = client.mentions_page(fake.brand_user_id, pagination_token=token, **kwargs)
        mentions.extend(page.mentions)
        pages += 1
        token = page.next_token
        if not token:
            return mentions, pages


def by_handle(mentions, handle):
    return next(m for m in mentions if m.author.handle == handle)


# ---- reading mentions ---------------------------------------------------------

def test_pagination_reaches_the_end_newest_first_without_repeats(fake):
    mentions, pages = all_mentions(client_for(fake), fake, max_results=5)

    ids = [int(m.platform_id) for m in mentions]
    assert len(ids) == len(set(ids)) == 26  # seed posts tagging @SoraAir, not the brand's own
    assert ids == sorted(ids, reverse=True)
    assert pages == 6
    assert {m.platform for m in mentions} == {"x"}


def test_since_id_returns_only_newer_posts(fake):
    client = client_for(fake)
    newest = client.mentions_page(fake.brand_user_id).newest_id
    first = fake.add_post("priya_ux", "@SoraAir any news on the offline boarding pass fix?")
    second = fake.add_post("natsu_fly", "@SoraAir ダークモードの件、ありがとうございます！")

    page = client.mentions_page(fake.brand_user_id, since_id=newest)

    assert [m.platform_id for m in page.mentions] == [second["id"], first["id"]]
    assert page.newest_id == second["id"]
    assert page.next_token is None


def test_nothing_new_is_a_normal_empty_page(fake):
    client = client_for(fake)
    newest = client.mentions_page(fake.brand_user_id).newest_id

    page = client.mentions_page(fake.brand_user_id, since_id=newest, source_id="x-main")

    assert page.mentions == [] and page.result_count == 0
    assert page.newest_id is None and page.next_token is None
    assert page.rate_limit.remaining is not None


def test_authors_come_from_includes_users(fake):
    mentions, _ = all_mentions(client_for(fake), fake, source_id="x-main")

    journalist = by_handle(mentions, "tabi_news_jp")
    assert journalist.author.verified and journalist.author.verified_type == "business"
    assert journalist.author.followers == 852300
    assert journalist.author.name == "旅ニュース Japan"
    influencer = by_handle(mentions, "yuki_travels")
    assert influencer.author.verified and influencer.author.verified_type == "blue"
    assert influencer.author.followers == 321500
    regular = by_handle(mentions, "batt_nerd")
    assert not regular.author.verified and regular.author.verified_type == "none"
    assert regular.author.followers == 1540
    assert regular.kind == "mention" and regular.lang == "en" and regular.source_id == "x-main"
    assert regular.permalink == f"https://x.com/batt_nerd/status/{regular.platform_id}"
    assert regular.addressed_to_brand and regular.raw["id"] == regular.platform_id
    assert regular.created_at.endswith("Z")


def test_thread_replies_keep_conversation_and_parent(fake):
    mentions, _ = all_mentions(client_for(fake), fake)
    posts_by_mia = [m for m in mentions if m.author.handle == "mia_chen_sg"]
    original = next(m for m in posts_by_mia if m.kind == "mention")
    update = next(m for m in posts_by_mia if m.kind == "reply")

    assert update.in_reply_to_id == original.platform_id
    assert update.conversation_id == original.conversation_id == original.platform_id
    to_brand_post = by_handle(mentions, "hiro_okinawa")
    assert to_brand_post.kind == "reply" and to_brand_post.addressed_to_brand


def test_search_finds_untagged_posts_and_marks_them_not_addressed(fake):
    client = client_for(fake)
    query = build_search_query(["ソラ航空", "Sora Air"], "SoraAir")

    page = client.search_recent_page(query, brand_user_id=fake.brand_user_id, max_results=10)

    assert sorted(m.author.handle for m in page.mentions) == ["ayaka_s", "jess_nomad"]
    assert not any(m.addressed_to_brand for m in page.mentions)
    sent = fake.requests[-1]["query"]
    assert sent["query"] == query and sent["expansions"].split(",")[0] == "author_id"
    assert "entities" in sent["tweet.fields"] and "public_metrics" in sent["user.fields"]


def test_dm_events_skip_the_brands_own_messages_and_honour_since_id(fake):
    client = client_for(fake)
    page = client.dm_events_page(brand_user_id=fake.brand_user_id, source_id="x-main")
    assert [(m.kind, m.author.handle) for m in page.mentions] == [("dm", "tomo_fukuoka"), ("dm", "mia_chen_sg")]
    mia = page.mentions[1]
    assert mia.conversation_id == f"2847310051-{fake.brand_user_id}"
    assert mia.author.followers == 812 and mia.addressed_to_brand

    client.send_dm(mia.author.id, "Thanks Mia, we're on it.")
    later = fake.add_dm("mia_chen_sg", "Any update?")
    newer = client.dm_events_page(since_id=page.newest_id, brand_user_id=fake.brand_user_id)

    assert [m.platform_id for m in newer.mentions] == [later["id"]]
    assert newer.next_token is None


# ---- writing ----------------------------------------------------------------------

def test_reply_and_dm_are_recorded_by_the_fake(fake):
    client = client_for(fake)
    mentions, _ = all_mentions(client, fake)
    complaint = by_handle(mentions, "d_okafor")

    reply_id = client.reply(complaint.platform_id, "Sorry for the wait, Daniel. We've sent you a DM.")
    dm_id = client.send_dm(complaint.author.id, "Could you share your booking reference?")

    reply, dm = fake.posted
    assert reply["kind"] == "reply" and reply["id"] == reply_id
    assert reply["in_reply_to_tweet_id"] == complaint.platform_id
    assert dm["kind"] == "dm" and dm["dm_event_id"] == dm_id and dm["participant_id"] == complaint.author.id
    post_request = next(r for r in fake.requests if r["method"] == "POST")
    assert post_request["status"] == 201


def test_writes_use_the_user_token_when_given(fake):
    fake.user_token = USER_TOKEN
    mentions, _ = all_mentions(client_for(fake), fake)
    target = by_handle(mentions, "batt_nerd").platform_id

    with pytest.raises(XAuthError, match="Unsupported Authentication|OAuth 2.0 Application-Only"):
        client_for(fake).reply(target, "Spare lithium batteries must be carried on.")
    client_for(fake, user_token=USER_TOKEN).reply(target, "Spare lithium batteries must be carried on.")

    assert [r["auth"] for r in fake.requests if r["method"] == "POST"] == ["app", "user"]


def test_a_failed_send_is_not_retried_and_a_resend_is_flagged_duplicate(fake):
    client = client_for(fake)
    target = by_handle(all_mentions(client, fake)[0], "sam_w_reads").platform_id
    text = "Sorry about that! Please fill in our lost & found form and we'll look for it."
    fake.fail_next("/2/tweets", 503, method="POST")

    with pytest.raises(XAmbiguous):  # a 5xx to a write: X may have posted it
        client.reply(target, text)
    client.reply(target, text)
    with pytest.raises(XRequestError) as raised:
        client.reply(target, text)

    assert [r["status"] for r in fake.requests if r["method"] == "POST"] == [503, 201, 403]
    assert raised.value.duplicate


def test_a_reply_whose_answer_was_lost_is_found_on_the_brands_timeline(fake):
    client = client_for(fake)
    target = by_handle(all_mentions(client, fake)[0], "sam_w_reads").platform_id
    text = "We are on it: your bag is on tomorrow's first flight."
    since = "2020-01-01T00:00:00.000000Z"
    assert client.find_reply(fake.brand_user_id, target, text, since) is None
    fake.fail_next("/2/tweets", 500, method="POST", after_write=True)

    with pytest.raises(XAmbiguous):
        client.reply(target, text)

    assert [r["method"] for r in fake.requests].count("POST") == 1  # never retried by the client
    found = client.find_reply(fake.brand_user_id, target, text, since)
    assert found and client.find_reply(fake.brand_user_id, target, "another text", since) is None


def test_reply_to_an_untagged_post_is_refused_with_xs_message(fake):
    client = client_for(fake)
    page = client.search_recent_page(build_search_query(["Sora Air"], "SoraAir"), brand_user_id=fake.brand_user_id)
    untagged = page.mentions[0]
    assert not untagged.addressed_to_brand

    with pytest.raises(XRequestError, match="not allowed because you have not been mentioned") as raised:
        client.reply(untagged.platform_id, "Sorry to hear that, Jess. Could you DM us?")

    assert raised.value.status == 403 and not raised.value.duplicate
    assert fake.posted == []


def test_overlong_reply_is_refused_before_sending(fake):
    client = client_for(fake)
    target = client.mentions_page(fake.brand_user_id).mentions[0].platform_id
    japanese = "ご" * 141  # 282 as X counts it: CJK weighs 2

    with pytest.raises(XRequestError, match="280"):
        client.reply(target, japanese)
    with pytest.raises(XRequestError, match="280"):
        client.reply(target, "x" * 281)

    assert not [r for r in fake.requests if r["method"] == "POST"]
    assert weighted_length("ご" * 140) == 280
    assert weighted_length("see https://example.com/" + "a" * 300) == 4 + 23


# ---- errors and rate limits -----------------------------------------------------

def test_rate_limit_headers_are_parsed_on_every_response(fake):
    fake.set_limit("mentions", 3)
    client = client_for(fake)

    first = client.mentions_page(fake.brand_user_id)
    second = client.mentions_page(fake.brand_user_id)

    assert (first.rate_limit.limit, first.rate_limit.remaining) == (3, 2)
    assert second.rate_limit.remaining == 1
    assert second.rate_limit.exhausted(reserve=1) and not second.rate_limit.exhausted(reserve=0)
    assert abs(first.rate_limit.reset_at - (time.time() + 900)) < 60


def test_window_exhausted_gives_429_with_reset(fake):
    fake.set_limit("search", 1)
    client = client_for(fake)
    query = build_search_query(["Sora Air"], "SoraAir")
    reset_at = client.search_recent_page(query).rate_limit.reset_at

    with pytest.raises(XRateLimited) as raised:
        client.search_recent_page(query)

    assert raised.value.reset_at == reset_at
    assert raised.value.rate_limit.remaining == 0
    assert client.last_rate_limit.remaining == 0


def test_injected_429_carries_reset_at(fake):
    fake.fail_next("/2/users/", 429, reset_in=120)
    client = client_for(fake)

    with pytest.raises(XRateLimited) as raised:
        client.mentions_page(fake.brand_user_id)

    assert abs(raised.value.reset_at - (time.time() + 120)) < 5
    assert raised.value.status == 429
    assert client.mentions_page(fake.brand_user_id).mentions  # one failure only


def test_usage_cap_problem_is_rate_limited(fake):
    fake.fail_next("/2/tweets/search", 429, body=usage_capped_problem())

    with pytest.raises(XRateLimited, match="Usage cap") as raised:
        client_for(fake).search_recent_page('"Sora Air"')

    assert raised.value.reset_at > time.time()


def test_500_is_retried_then_succeeds(fake):
    fake.fail_next("/2/users/", 500, times=2)

    page = client_for(fake).mentions_page(fake.brand_user_id)

    assert page.result_count > 0
    assert [r["status"] for r in fake.requests] == [500, 500, 200]


def test_persistent_503_is_transient(fake):
    fake.fail_next("/2/dm_events", 503, times=5)

    with pytest.raises(XTransientError):
        client_for(fake).dm_events_page(brand_user_id=fake.brand_user_id)


def test_unreachable_x_is_transient():
    client = XClient("http://127.0.0.1:9", BEARER, http=HttpClient("http://127.0.0.1:9", sleep=lambda s: None,
                                                                     retries=0, timeout=1))
    with pytest.raises(XTransientError):
        client.mentions_page("1")


def test_bad_or_revoked_token_is_an_auth_error(fake):
    with pytest.raises(XAuthError) as raised:
        client_for(fake, token="revoked").mentions_page(fake.brand_user_id)
    assert raised.value.status == 401

    fake.fail_next("/2/tweets/search", 401)
    with pytest.raises(XAuthError):
        client_for(fake).search_recent_page('"Sora Air"')


def test_invalid_parameter_is_a_request_error_with_xs_message(fake):
    with pytest.raises(XRequestError, match=r"max_results.*between 5 and 100"):
        client_for(fake).mentions_page(fake.brand_user_id, max_results=3)


def test_rate_limit_parsing_and_exhaustion():
    parsed = RateLimit.from_headers({"X-Rate-Limit-Limit": "450", "x-rate-limit-remaining": "0",
                                     "x-rate-limit-reset": "1900000000"})
    assert parsed == RateLimit(remaining=0, reset_at=1900000000, limit=450)
    assert parsed.exhausted(now=1_899_999_000)
    assert not parsed.exhausted(now=1_900_000_001)  # window has reset since
    assert not RateLimit.from_headers({}).exhausted()
    assert RateLimit.from_headers({"x-rate-limit-remaining": "soon"}).remaining is None


# ---- search query and normalization ------------------------------------------------

def test_search_query_stays_within_512_characters():
    terms = [f"ソラ航空 キャンペーン {n:03d} 予約 変更 払い戻し" for n in range(60)]

    query = build_search_query(terms, "@SoraAir")

    assert len(query) <= MAX_QUERY_LENGTH
    assert query.startswith('("ソラ航空 キャンペーン 000') and query.endswith(" -from:SoraAir -is:retweet")
    assert build_search_query(['say "hi"', "Sora Air", "Sora Air"], "SoraAir", exclude_retweets=False) == \
        '("say hi" OR "Sora Air") -from:SoraAir'
    with pytest.raises(ValueError):
        build_search_query(["", "  "], "SoraAir")
    with pytest.raises(ValueError):
        build_search_query(["x" * 600], "SoraAir")


def test_oversized_query_is_refused_before_sending(fake):
    with pytest.raises(XRequestError, match="512"):
        client_for(fake).search_recent_page("a" * 513)
    assert fake.requests == []


def test_normalize_tweet_without_author_or_entities():
    tweet = {"id": "5", "text": "hello", "author_id": "9", "referenced_tweets": [{"type": "quoted", "id": "4"}]}

    mention = normalize_tweet(tweet, {}, brand_user_id="1", source_id="s", kind_hint="mention")

    assert mention.kind == "mention" and mention.author.id == "9" and mention.author.handle == ""
    assert mention.in_reply_to_id == "" and not mention.addressed_to_brand
    assert mention.permalink == "https://x.com/i/web/status/5"


# ---- the fake's HTTP control surface ------------------------------------------------

def test_fake_can_be_driven_over_http():
    with FakeX(bearer_token=BEARER) as server:
        server.load_seed(str(SEED))
        control = FakeXControl(server.url)
        client = client_for(server)

        assert client.mentions_page(server.brand_user_id).result_count == 0
        assert len(control.release(3)["released"]) == 3
        assert control.state()["pending"] == 28
        control.fail_next("/2/users/", 503, times=3)
        with pytest.raises(XTransientError):
            client.mentions_page(server.brand_user_id)
        added = control.add_post("aoi_h", "@SoraAir 座席指定の変更はアプリからできますか？")
        page = client.mentions_page(server.brand_user_id)
        assert page.newest_id == added["id"] and page.result_count == 4
        client.reply(added["id"], "はい、アプリの予約詳細から変更できます。")
        assert [item["kind"] for item in control.posted] == ["reply"]
        assert control.requests[-1]["status"] == 201
