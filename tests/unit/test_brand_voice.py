"""Brand-voice rules (domain/brand_voice.py): what an agent's reply is flagged for, in English and Japanese,
and what it must not be flagged for (a year, a flight number, a date, the brand's own support line)."""
from __future__ import annotations

import re

import pytest

from chalicelib.domain.brand_voice import (
    MAX_CHECKED_CHARS,
    SIGNATURE_WINDOW,
    CheckContext,
    check,
    default_rules,
    effective_rules,
    emoji_spans,
    is_card_number,
    pattern_problem,
    personal_data,
    signature_tail,
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


# ---- patterns that could pin the API: refused when saved, bounded when run -----------------------

HOSTILE = [
    (r"(a+)+$", "nested repeats"),
    (r"(x*)*y", "nested repeats"),
    (r"(x+)*y", "nested repeats"),
    (r"(ab?)+c", "nested repeats"),
    (r"(?:a|a)*b", "'|' choice"),
    (r"(\w|\w)*x", "'|' choice"),
    (r"(a|ab)*c", "'|' choice"),
    (r"(?:cat|dog)+", "'|' choice"),
    (r"(\d)\1", "back-reference"),
    (r"(a)?(?(1)b|c)", "conditional group"),
    (r".*.*.*x", "could take too long"),
    ("a?" * 30 + "a" * 30, "could take too long"),
    ("x" * 201, "200 characters"),
]


@pytest.mark.parametrize("pattern, words", HOSTILE)
def test_patterns_that_can_backtrack_badly_are_refused_naming_the_rule(pattern, words):
    with pytest.raises(BadRequest, match=re.escape(words)) as signature:
        validate_rules({"signature": {"enabled": True, "pattern": pattern}})
    assert "signature.pattern" in str(signature.value)
    with pytest.raises(BadRequest, match=re.escape(words)) as order:
        validate_rules({"personal_data": {"order_pattern": pattern}})
    assert "personal_data.order_pattern" in str(order.value)


def test_an_order_pattern_reads_the_whole_reply_so_its_repeats_need_an_upper_limit():
    with pytest.raises(BadRequest, match=r"personal_data.order_pattern could take too long.*upper limit"):
        validate_rules({"personal_data": {"order_pattern": r"\d+x"}})
    assert validate_rules({"personal_data": {"order_pattern": r"SA-\d{6,12}"}})["personal_data"]["order_pattern"]


@pytest.mark.parametrize("order", [r"[A-Z]{2}\d{6}", r"SA-[0-9]{8}", r"(?<![A-Z])SA-\d{8}(?!\d)",
                                   r"(?:\d{3}-){2}\d{4}", r"(?i)order\s?#?\d{6,10}"])
def test_ordinary_order_patterns_are_accepted(order):
    assert validate_rules({"personal_data": {"order_pattern": order}})["personal_data"]["order_pattern"] == order


@pytest.mark.parametrize("signature", [r"^— .+$", r"-\w+$", r"^.*-\w+$", r".*-\w+$", "- {agent.initials}$",
                                       "— {agent.name}$"])
def test_ordinary_signature_patterns_are_accepted(signature):
    saved = validate_rules({"signature": {"enabled": True, "pattern": signature}})
    assert saved["signature"]["pattern"] == signature


def test_the_signature_pattern_reads_only_the_end_of_the_last_line():
    line = "a" * 9_990 + " -Kana"
    assert signature_tail(line) == line[-SIGNATURE_WINDOW:]
    assert signature_tail("- KT") == "- KT"
    # An accepted pattern with two unbounded repeats, on a worst-case 10,000-character last line:
    # it only ever sees SIGNATURE_WINDOW characters, and the answer is as on the whole line.
    plain = {"signature": {"enabled": True, "severity": "warn", "pattern": r".*-\w+$"}}
    assert pattern_problem(r".*-\w+$", SIGNATURE_WINDOW) is None
    assert [f for f in found(line, NEGATIVE_X, **plain) if f[0] == "signature"] == []
    unsigned = "-a" * 4_900 + "!"
    assert [f[0] for f in found(unsigned, NEGATIVE_X, **plain) if f[0] == "signature"] == ["signature"]


def test_an_order_pattern_sees_at_most_the_checked_text():
    text = "x" * (MAX_CHECKED_CHARS - 20) + " order SA-12345678 " + "SA-87654321"
    hits = [f for f in check(text, rules(personal_data={"order_pattern": r"SA-\d{8}"}), NEUTRAL_FB)
            if f.kind == "order"]
    assert [text[f.span[0]:f.span[1]] for f in hits] == ["SA-12345678"]  # the one past the limit is not read


def test_a_hostile_pattern_stored_before_the_guard_is_not_run():
    # Rules saved before patterns were checked reach check() unvalidated: they are skipped with a
    # warning instead of running ((a+)+$ on this text would not finish).
    stored = effective_rules({"signature": {"enabled": True, "severity": "block", "pattern": r"(a+)+$"},
                              "personal_data": {"order_pattern": r"(\w|\w)*x"}})
    findings = check("a" * 9_000 + "!", stored, NEUTRAL_FB)
    unchecked = [(f.rule, f.severity) for f in findings if "not checked" in f.message]
    assert unchecked == [("signature", "warn"), ("personal_data", "warn")]


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
