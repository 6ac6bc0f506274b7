"""Mention.from_dict is the gate onto the pipeline: every field checked, every refusal an InvalidMention
naming the field (so the record is dead-lettered at once, never retried), and no payload carried twice."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from chalicelib.domain.mention import (
    MAX_QUEUED_BYTES,
    MAX_TEXT_CHARS,
    Author,
    InvalidMention,
    Mention,
    queued_size,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def record(**changes):
    data = {
        "platform": "x", "kind": "mention", "platform_id": "100", "text": "my bag is lost",
        "created_at": "2026-11-23T03:00:00Z", "source_id": "x:mentions:1", "lang": "en",
        "conversation_id": "100", "in_reply_to_id": "", "permalink": "https://x.com/kana_t/status/100",
        "addressed_to_brand": True,
        "author": {"id": "42", "handle": "kana_t", "name": "Kana", "verified": False, "verified_type": "none",
                   "followers": 120},
    }
    for dotted, value in changes.items():
        target = data
        *path, last = dotted.split("__")
        for part in path:
            target = target[part]
        if value is _DELETE:
            target.pop(last, None)
        else:
            target[last] = value
    return data


_DELETE = object()


def refused(data, now=NOW):
    with pytest.raises(InvalidMention) as caught:
        Mention.from_dict(data, now=now)
    return str(caught.value)


def test_a_good_record_parses_and_round_trips():
    mention = Mention.from_dict(record(), now=NOW)
    assert mention.author == Author(id="42", handle="kana_t", name="Kana", followers=120)
    assert Mention.from_dict(mention.to_dict(), now=NOW) == mention


def test_optional_fields_may_be_absent_or_null():
    data = record(source_id=None, lang=_DELETE, permalink=_DELETE, addressed_to_brand=None,
                  author__followers=None, author__verified=_DELETE, author__name=None)
    mention = Mention.from_dict(data, now=NOW)
    assert (mention.source_id, mention.lang, mention.addressed_to_brand) == ("", "", True)
    assert (mention.author.followers, mention.author.verified, mention.author.name) == (0, False, "")


# ---- types: nothing is coerced --------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("author__followers", "lots"),
    ("author__followers", "120"),
    ("author__followers", 12.5),
    ("author__followers", True),          # a bool is not a count
    ("author__followers", [1]),
    ("author__verified", 1),              # an int is not a bool
    ("author__verified", "false"),
    ("author__id", 42),
    ("author__handle", {"a": 1}),
    ("author__name", 7),
    ("author__verified_type", False),
    ("addressed_to_brand", "yes"),
    ("addressed_to_brand", 0),
    ("text", 123),
    ("text", ["hello"]),
    ("platform_id", 100),
    ("created_at", 1795425600),
    ("source_id", 1),
    ("lang", ["en"]),
    ("conversation_id", 5),
    ("in_reply_to_id", 5.0),
    ("permalink", {}),
])
def test_a_field_of_the_wrong_type_is_refused_by_name(field, value):
    reason = refused(record(**{field: value}))
    assert field.replace("__", ".") in reason


def test_author_must_be_an_object_and_the_mention_too():
    assert "author" in refused(record(author="kana_t"))
    assert "author" in refused(record(author=_DELETE))
    assert "author.id" in refused(record(author__id=_DELETE, author__handle=_DELETE))
    for not_an_object in (None, [], "x", 1):
        assert "object" in refused(not_an_object)


@pytest.mark.parametrize("field", ["platform", "kind", "platform_id", "created_at", "text"])
def test_required_fields_must_be_present(field):
    assert field in refused(record(**{field: _DELETE}))


def test_platform_and_kind_must_be_known():
    assert "platform" in refused(record(platform="myspace"))
    assert "kind" in refused(record(kind="like"))


def test_followers_must_lie_in_range():
    assert "author.followers" in refused(record(author__followers=-1))
    assert "author.followers" in refused(record(author__followers=10 ** 10 + 1))
    assert Mention.from_dict(record(author__followers=10 ** 10), now=NOW).author.followers == 10 ** 10


# ---- sizes ----------------------------------------------------------------------------

@pytest.mark.parametrize("field, limit", [
    ("text", MAX_TEXT_CHARS), ("platform_id", 128), ("source_id", 128), ("conversation_id", 128),
    ("in_reply_to_id", 128), ("permalink", 2048), ("lang", 16),
    ("author__id", 128), ("author__handle", 200), ("author__name", 200),
])
def test_strings_have_a_maximum_length(field, limit):
    assert Mention.from_dict(record(**{field: "9" * limit}), now=NOW)
    assert field.replace("__", ".") in refused(record(**{field: "9" * (limit + 1)}))


def test_a_megabyte_of_text_is_refused_without_echoing_it():
    reason = refused(record(text="a" * 1_000_000))
    assert "text" in reason and len(reason) < 200


def test_text_limit_counts_characters_not_bytes():
    assert Mention.from_dict(record(text="荷" * MAX_TEXT_CHARS), now=NOW).text.startswith("荷")


def test_lone_surrogates_are_refused():
    assert "text" in refused(record(text="broken \ud83d half emoji"))
    assert "author.name" in refused(record(author__name="\udc00"))
    assert Mention.from_dict(record(text="whole emoji \U0001F600"), now=NOW)


def test_a_lone_surrogate_arriving_as_a_json_escape_is_refused():
    body = json.dumps(record(text="x")).replace('"text": "x"', '"text": "\\ud800"')
    assert "text" in refused(json.loads(body))


# ---- created_at -----------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "2026-11-23T03:00:00Z", "2026-11-23T03:00:00.000Z", "2026-11-23T03:00:00.123456789Z",
    "2026-11-23T12:00:00+09:00", "2026-11-23T03:00:00+0000", "2026-11-23T03:00Z", "2026-11-23t03:00:00z",
    "2006-01-01T00:00:00Z", "2026-11-24T11:59:59Z",
])
def test_iso_times_with_a_zone_within_range_are_accepted(value):
    assert Mention.from_dict(record(created_at=value), now=NOW).created_at == value


@pytest.mark.parametrize("value", [
    "2026-11-23T03:00:00",          # no zone: whose 3 o'clock?
    "2026-11-23",
    "23/11/2026 03:00",
    "1795425600",
    "yesterday",
    "",
    "2026-13-01T00:00:00Z",         # no month 13
    "2026-02-30T00:00:00Z",
    "2026-11-23T25:00:00Z",
    "2026-11-23T03:00:60Z",
    "２０２６-11-23T03:00:00Z",     # full-width digits
    "2026-11-23 03:00:00Z",
    " 2026-11-23T03:00:00Z",
    "2026-11-23T03:00:00Z" + "0" * 100,
])
def test_malformed_times_are_refused(value):
    assert "created_at" in refused(record(created_at=value))


@pytest.mark.parametrize("value", [
    "2005-12-31T23:59:59Z",         # before social media
    "1970-01-01T00:00:00Z",         # a zero timestamp
    "2026-11-24T12:00:01Z",         # more than a day ahead of now
    "2126-11-23T03:00:00Z",         # milliseconds read as seconds
    "9999-12-31T23:59:59Z",
])
def test_times_out_of_range_are_refused(value):
    assert "created_at" in refused(record(created_at=value))


def test_now_defaults_to_the_current_time_and_may_be_given_as_iso():
    this_year = datetime.now(timezone.utc).year
    assert Mention.from_dict(record(created_at=f"{this_year}-01-01T00:00:00Z"))
    assert "created_at" in refused(record(created_at=f"{this_year + 1}-12-31T00:00:00Z"), now=None)
    assert Mention.from_dict(record(), now="2026-11-23T03:00:00.000000Z")
    assert "created_at" in refused(record(created_at="2026-11-25T03:00:00Z"), now="2026-11-23T03:00:00.000000Z")


def test_an_id_that_disagrees_with_the_platform_id_is_refused():
    assert Mention.from_dict(record(id="x:100"), now=NOW)
    assert "field 'id'" in refused(record(id="x:999"))


# ---- raw is not carried ---------------------------------------------------------------

def test_to_dict_leaves_the_raw_payload_out_and_from_dict_ignores_it():
    mention = Mention.from_dict(record(), now=NOW)
    mention.raw = {"text": mention.text, "extra": "x" * 5000}
    data = mention.to_dict()
    assert "raw" not in data
    assert data["id"] == "x:100" and data["author"]["handle"] == "kana_t"
    assert json.dumps(data).count("my bag is lost") == 1
    assert Mention.from_dict({**data, "raw": {"anything": [1, 2]}}, now=NOW).raw == {}


def test_to_dict_is_a_copy():
    mention = Mention.from_dict(record(), now=NOW)
    data = mention.to_dict()
    data["author"]["name"] = "changed"
    assert mention.author.name == "Kana"


def test_queued_size_counts_utf8_bytes_and_a_valid_mention_always_fits():
    small = Mention.from_dict(record(text="abc"), now=NOW)
    japanese = Mention.from_dict(record(text="荷物" * 10), now=NOW)
    assert queued_size(japanese) == queued_size(small) - 3 + 60
    # The worst a valid mention can be: every string at its limit, text of characters JSON escapes.
    worst = (record(text="\x01" * MAX_TEXT_CHARS, platform_id="\x01" * 128, source_id="\x01" * 128,
                                 conversation_id="\x01" * 128, in_reply_to_id="\x01" * 128,
                                 permalink="\x01" * 2048, lang="\x01" * 16, author__id="\x01" * 128,
                                 author__handle="\x01" * 200, author__name="\x01" * 200))
    assert queued_size(Mention.from_dict(worst, now=NOW)) < MAX_QUEUED_BYTES


def test_validate_checks_a_built_mention_by_the_same_rules():
    good = Mention.from_dict(record(), now=NOW)
    assert good.validate(NOW) is good
    built = Mention(platform="whatsapp", kind="dm", platform_id="wamid.1", author=Author(id="81"),
                    text="x" * (MAX_TEXT_CHARS + 1), created_at="2026-11-23T03:00:00Z")
    with pytest.raises(InvalidMention, match="text"):
        built.validate(NOW)
