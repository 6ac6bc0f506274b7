"""The no-case review list and the model versions, on the in-memory fakes and on DynamoDB/S3 (moto, from
infra/template.yaml) alike: the sparse index by day, newest first, filters, pages that join up, a review
taking a mention off the list once; model versions written once, listed newest first, the active one."""
from __future__ import annotations

import pytest

from chalicelib.domain.errors import InvalidCursor
from tests.fakes import FakeMentionStore, FakeModels, mention
from tests.fakes_triage import FakeMentionReview, FakeModelStore

MODEL_BUCKET = "socialcare-test-models-123456789012"
TRIAGE = {"sentiment": "positive", "sentiment_score": 0.6, "category": "praise", "lang": "en", "case": False,
          "why": ["praise: thanks"], "tags": ["acknowledge"], "priority": "low"}


@pytest.fixture(params=["fake", "dynamo"])
def review(request):
    if request.param == "fake":
        mentions = FakeMentionStore()
        return mentions, FakeMentionReview(mentions)
    request.getfixturevalue("aws")
    from chalicelib.adapters.review_store import DynamoMentionReview
    from chalicelib.adapters.stores import DynamoMentionStore

    return DynamoMentionStore("socialcare-test-mentions"), DynamoMentionReview("socialcare-test-mentions")


def left_without_case(mentions, platform_id, at, **triage):
    post = mention(platform_id, f"post {platform_id}", author_id=f"a{platform_id}")
    mentions.claim(post, now_epoch=1_795_000_000)
    mentions.update(post.id, state="no_case", triage={**TRIAGE, **triage}, review_at=at)
    return post.id


def test_a_days_no_case_mentions_newest_first_with_what_the_review_shows(review):
    mentions, store = review
    left_without_case(mentions, "1", "2026-11-23T01:00:00.000000Z")
    left_without_case(mentions, "2", "2026-11-23T02:00:00.000000Z", sentiment="negative", sentiment_score=-0.8,
                      category="noise")
    left_without_case(mentions, "3", "2026-11-24T00:00:00.000000Z")
    other = mention("4", "a case")
    mentions.claim(other, now_epoch=1_795_000_000)
    mentions.update(other.id, state="triaged", triage={**TRIAGE, "case": True})  # not for review

    page, position = store.no_case_page("2026-11-23", limit=10)

    assert [m.mention_id for m in page] == ["x:2", "x:1"] and position is None
    assert page[0].mention["text"] == "post 2" and page[0].mention["author"]["id"] == "a2"
    assert page[0].triage["category"] == "noise" and page[0].triage["why"] == ["praise: thanks"]
    assert page[0].state == "no_case"
    summaries = sorted(store.no_case_summaries("2026-11-23"), key=lambda r: r["mention_id"])
    assert summaries == [
        {"mention_id": "x:1", "at": "2026-11-23T01:00:00.000000Z", "lang": "en", "platform": "x",
         "sentiment": "positive", "category": "praise", "score": 0.6},
        {"mention_id": "x:2", "at": "2026-11-23T02:00:00.000000Z", "lang": "en", "platform": "x",
         "sentiment": "negative", "category": "noise", "score": -0.8}]
    assert [m.mention_id for m in store.no_case_page("2026-11-24", limit=10)[0]] == ["x:3"]


def test_filters_and_pages_that_join_up(review):
    mentions, store = review
    for n in range(7):
        left_without_case(mentions, str(n), f"2026-11-23T0{n}:00:00.000000Z",
                          **({"sentiment": "negative"} if n % 2 else {}))

    seen, pages, position = [], [], None
    while True:
        page, position = store.no_case_page("2026-11-23", limit=2, after=position, filters={"sentiment": "negative"})
        seen += [m.mention_id for m in page]
        pages.append((len(page), position is not None))
        if position is None:
            break
    assert seen == ["x:5", "x:3", "x:1"]
    assert pages == [(2, True), (1, False)], "full pages; a cursor only when more follow"
    exact, position = store.no_case_page("2026-11-23", limit=3, filters={"sentiment": "negative"})
    assert len(exact) == 3 and position is None, "a listing that ends with the page hands out no cursor"
    everything, _ = store.no_case_page("2026-11-23", limit=100, filters={"lang": "en", "platform": "x"})
    assert len(everything) == 7
    with pytest.raises(InvalidCursor):
        store.no_case_page("2026-11-23", limit=2, after="bm9wZQ")
    _, position = store.no_case_page("2026-11-23", limit=2)
    with pytest.raises(InvalidCursor):  # a position of another day
        store.no_case_page("2026-11-24", limit=2, after=position)


def test_a_review_takes_it_off_the_list_once(review):
    mentions, store = review
    left_without_case(mentions, "1", "2026-11-23T01:00:00.000000Z")

    assert store.settle_review("x:1", outcome="confirmed", by="ken", at="2026-11-23T05:00:00Z") is True
    assert store.settle_review("x:1", outcome="promoted", by="aiko", at="2026-11-23T05:00:01Z") is False
    assert store.no_case_page("2026-11-23", limit=10)[0] == [] and store.no_case_summaries("2026-11-23") == []
    assert mentions.get("x:1").state == "no_case"
    assert store.settle_review("x:404", outcome="confirmed", by="ken", at="2026-11-23T05:00:00Z") is False


@pytest.fixture(params=["fake", "dynamo"])
def models(request):
    if request.param == "fake":
        source = FakeModels()
        return FakeModelStore(source), source
    request.getfixturevalue("aws")
    import boto3

    from chalicelib.adapters.model_store import DynamoS3ModelStore
    from chalicelib.adapters.models import S3ModelSource

    # The template turns versioning on (ModelBucket VersioningConfiguration); moto's CloudFormation does not apply it.
    boto3.client("s3", region_name="us-east-1").put_bucket_versioning(
        Bucket=MODEL_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return DynamoS3ModelStore("socialcare-test-settings", MODEL_BUCKET), S3ModelSource()


def test_model_versions_are_kept_once_with_their_bytes_and_one_is_active(models):
    store, source = models
    assert store.active() is None and store.list_versions() == []

    one = store.add_version({"version": "v1", "created_at": "2026-11-23T03:00:00Z", "figures": {"n": 3}}, b"one")
    two = store.add_version({"version": "v2", "created_at": "2026-11-24T03:00:00Z", "figures": {"n": 4}}, b"two")
    assert store.add_version({"version": "v1", "created_at": "2026-11-25T03:00:00Z"}, b"again") is None

    assert source.load(one["uri"]) == b"one" and source.load(two["uri"]) == b"two"  # each version its own bytes
    assert [v["version"] for v in store.list_versions()] == ["v2", "v1"]
    assert store.get_version("v1")["figures"] == {"n": 3} and store.get_version("v3") is None
    store.activate("v2", by="boss", at="2026-11-24T04:00:00Z")
    assert store.active()["version"] == "v2" and store.active()["activated_by"] == "boss"
    store.activate("v1", by="boss", at="2026-11-24T05:00:00Z")
    assert store.active()["uri"] == one["uri"]
    store.activate("baseline", by="boss", at="2026-11-24T06:00:00Z")
    assert store.active() is None
