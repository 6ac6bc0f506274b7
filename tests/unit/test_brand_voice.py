"""Brand-voice rules (domain/brand_voice.py): what an agent's reply is flagged for, in English and Japanese,
and what it must not be flagged for (a year, a flight number, a date, the brand's own support line)."""
from __future__ import annotations

import re

import pytest

from chalicelib.domain.brand_voice import (
    CheckContext,
    check,
    default_rules,
    emoji_spans,
    is_card_number,
    personal_data,
    validate_override_reason,
    validate_rules,
)
from chalicelib.domain.errors import BadRequest

NEGATIVE_X = CheckContext(platform="x", mode="public", category="complaint", sentiment="negative",
                          agent_name="Kana Tanaka", agent_initials="KT")
NEUTRAL_FB = CheckContext(platform="facebook", mode="public", category="question", sentiment="neutral")


def rules(**sections):
    return validate_rules(sections)


def found(text, context=NEUTRAL_FB, **sections):
    return [(f.rule, f.severity, text[f.span[0]:f.span[1]] if f.span else None, f.kind)
            for f in check(text, rules(**sections), context)]


# ---- banned words and phrases ----------------------------------------------------------

def test_banned_english_phrases_match_whole_words_in_any_case():
    banned = [{"phrase": "calm down", "severity": "block"}, {"phrase": "hell", "severity": "warn"}]
    assert found("Please CALM   DOWN, what the hell", banned=banned) == [
        ("banned", "block", "CALM   DOWN", None), ("banned", "warn", "hell", None)]
    # Not inside other words, not across a missing space.
    assert found("Hello, calmdown is a brand of tea; shellfish served", banned=banned) == []


def test_banned_japanese_phrases_match_anywhere_and_english_ones_next_to_japanese():
    banned = [{"phrase": "仕方ない", "severity": "block"}, "calm down"]
    assert found("それは仕方ないことです", banned=banned) == [("banned", "block", "仕方ない", None)]
    assert found("まずはcalm downしてください", banned=banned) == [("banned", "block", "calm down", None)]


def test_a_banned_phrase_note_tells_the_agent_what_to_say_instead():
    [finding] = check("Calm down please", rules(banned=[{"phrase": "calm down", "note": "acknowledge the feeling"}]),
                      NEUTRAL_FB)
    assert "acknowledge the feeling" in finding.message and finding.span == (0, 9)


# ---- required elements -------------------------------------------------------------------

@pytest.mark.parametrize("text", ["Sorry about your bag.", "We apologize for the delay", "Our apologies!",
                                  "大変申し訳ございません。", "すみません、確認します。", "ご迷惑をおかけしたことをお詫びいたします。"])
def test_an_apology_in_english_or_japanese_satisfies_the_rule(text):
    assert [f for f in found(text, NEGATIVE_X) if f[0] == "apology"] == []


def test_a_complaint_without_an_apology_is_flagged_but_a_question_is_not():
    assert ("apology", "warn", None, None) in found("We are checking your bag now.", NEGATIVE_X)
    assert found("We are checking your bag now.", NEUTRAL_FB) == []
    strict = {"apology": {"severity": "block"}}
    assert ("apology", "block", None, None) in found("確認いたします。", NEGATIVE_X, **strict)


def test_the_signature_pattern_may_name_the_agents_initials():
    signature = {"signature": {"enabled": True, "severity": "block", "pattern": "- {agent.initials}$"}}
    assert [f for f in found("Sorry!\n- KT", NEGATIVE_X, **signature) if f[0] == "signature"] == []
    assert ("signature", "block", "Sorry!", None) in found("Sorry!", NEGATIVE_X, **signature)
    assert [f[0] for f in found("Sorry!\n- MS", NEGATIVE_X, **signature)] == ["signature"]
    dashed = {"signature": {"enabled": True, "severity": "block", "pattern": "— {agent.initials}$"}}
    assert [f for f in found("Sorry!\n- KT", NEGATIVE_X, **dashed) if f[0] == "signature"] == []
    plain = {"signature": {"enabled": True, "severity": "warn", "pattern": r"^.*-\w+$"}}
    assert [f for f in found("Sorry about that -Kana  \n", NEGATIVE_X, **plain) if f[0] == "signature"] == []


# ---- emoji -----------------------------------------------------------------------------------

def test_no_emoji_on_a_negative_case_including_joined_sequences_and_smileys():
    text = "Sorry 🙏🏽 we will fix it 👨‍👩‍👧 :) ありがとう😊"
    spans = [text[s:e] for s, e in emoji_spans(text)]
    assert spans == ["🙏🏽", "👨‍👩‍👧", ":)", "😊"]
    assert [f[0] for f in found(text, NEGATIVE_X)] == ["emoji"] * 4
    assert found(text, NEUTRAL_FB) == []  # only negative cases


def test_japanese_punctuation_and_times_are_not_emoji():
    assert emoji_spans("申し訳ございません。10:00〜18:00（月〜金）です。Note:Delivery") == []


# ---- personal data ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, kind, match", [
    ("call 090-1234-5678 today", "phone", "090-1234-5678"),
    ("お電話は０３－１２３４－５６７８まで", "phone", "０３－１２３４－５６７８"),
    ("(03)1234-5678", "phone", "(03)1234-5678"),
    ("mobile 09012345678", "phone", "09012345678"),
    ("toll free 0120-123-456", "phone", "0120-123-456"),
    ("+81 90-1234-5678", "phone", "+81 90-1234-5678"),
    ("+1 (415) 555-0100", "phone", "+1 (415) 555-0100"),
    ("us line 415-555-0100", "phone", "415-555-0100"),
    ("write to kana.t+air@example.co.jp please", "email", "kana.t+air@example.co.jp"),
    ("card 4111 1111 1111 1111 on file", "card", "4111 1111 1111 1111"),
    ("カード番号4111-1111-1111-1111", "card", "4111-1111-1111-1111"),
    ("amex 378282246310005", "card", "378282246310005"),
])
def test_personal_data_is_found_in_english_and_japanese_formats(text, kind, match):
    assert found(text) == [("personal_data", "block", match, kind)]


@pytest.mark.parametrize("text", [
    "Flight JL0061 on 2026-11-23 departs at 10:30",
    "In 2026 we flew 1,234,567 passengers",
    "Booking NH 123, gate 45, seat 12A",
    "Reference 4111 1111 1111 1112 is not a card (fails Luhn)",
    "Tweet 1500000000000000001 is ours",      # 19 digits, not a card's first digit
    "Reach us @SoraAir_help or DM us",
    "Date 2026/11/23 and 2026-11-23",
    "Call 12-34-5678",                       # too few digits for a phone
])
def test_false_positives_are_not_personal_data(text):
    assert found(text) == []


def test_order_numbers_follow_the_configured_pattern():
    pattern = {"personal_data": {"order_pattern": r"SA-[0-9]{8}"}}
    assert found("Your order SA-12345678 ships today", **pattern) == [
        ("personal_data", "block", "SA-12345678", "order")]
    assert found("Your order SA-12345678 ships today") == []  # no pattern: orders are not flagged


def test_personal_data_is_allowed_in_a_private_message_and_when_the_brand_publishes_it():
    private = CheckContext(platform="x", mode="private")
    assert found("call 090-1234-5678", private) == []
    allowed = {"personal_data": {"allow": ["0120-123-456", "support@soraair.example"]}}
    assert found("Call 0120 123 456? No: 0120-123-456 or support@SoraAir.example", **allowed) == []


def test_luhn_and_card_prefixes():
    assert is_card_number("4111111111111111") and is_card_number("5555 5555 5555 4444")
    assert not is_card_number("4111111111111112")     # Luhn fails
    assert not is_card_number("1111111111111117")     # passes Luhn, no card starts with 1
    assert not is_card_number("411111111111")         # 12 digits


def test_a_span_is_reported_once_as_its_likeliest_kind():
    view = "4111-1111-1111-1111"
    assert [k for k, _, _ in personal_data(view, ["phone", "card"], None)] == ["card"]


# ---- length ------------------------------------------------------------------------------------

def test_length_is_counted_as_the_platform_counts():
    japanese = "申" * 141   # 282 as X counts it
    assert [f[0] for f in found(japanese, CheckContext(platform="x"))] == ["length"]
    assert found(japanese, CheckContext(platform="facebook")) == []
    long_ig_dm = "申" * 334   # 1,002 bytes
    [finding] = check(long_ig_dm, default_rules(), CheckContext(platform="instagram", mode="private"))
    assert finding.rule == "length" and "1002 bytes" in finding.message


def test_severities_come_from_the_rules_and_a_disabled_rule_finds_nothing():
    text = "call 090-1234-5678 😡"
    relaxed = {"personal_data": {"severity": "warn"}, "emoji": {"enabled": False}}
    assert found(text, NEGATIVE_X, **relaxed) == [("personal_data", "warn", "090-1234-5678", "phone"),
                                                  ("apology", "warn", None, None)]


# ---- the rules document -------------------------------------------------------------------------

@pytest.mark.parametrize("body, words", [
    ([], "JSON object"),
    ({"tone": {}}, "unknown rule 'tone'"),
    ({"banned": [{"phrase": ""}]}, "banned[0].phrase"),
    ({"banned": ["calm down", "Calm  Down"]}, "listed twice"),
    ({"banned": [{"phrase": "x", "severity": "stop"}]}, "'block'"),
    ({"emoji": {"enabled": "yes"}}, "emoji.enabled"),
    ({"emoji": {"colour": 1}}, "unknown field 'colour'"),
    ({"signature": {"enabled": True, "pattern": ""}}, "signature.pattern is empty"),
    ({"signature": {"enabled": True, "pattern": "(unclosed"}}, "not a valid regular expression"),
    ({"personal_data": {"order_pattern": "x*"}}, "matches empty text"),
    ({"personal_data": {"kinds": ["ssn"]}}, "personal_data.kinds"),
])
def test_bad_rules_are_refused_with_what_to_fix(body, words):
    with pytest.raises(BadRequest, match=re.escape(words)):
        validate_rules(body)


def test_sections_left_out_keep_their_defaults():
    saved = validate_rules({"emoji": {"severity": "block"}})
    assert saved["emoji"] == {"enabled": True, "severity": "block"}
    assert saved["personal_data"] == default_rules()["personal_data"]


def test_an_override_reason_is_bounded():
    assert validate_override_reason("  customer asked for our number  ") == "customer asked for our number"
    assert validate_override_reason(None) is None
    for bad in ("", "   ", "x" * 501, 5):
        with pytest.raises(BadRequest, match="override_reason"):
            validate_override_reason(bad)
