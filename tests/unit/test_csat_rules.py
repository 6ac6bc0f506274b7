"""CSAT rules: when a survey is due, how each channel carries it, and which messages are answers."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain import csat
from chalicelib.domain.case import new_case, with_follow_up, with_status
from chalicelib.domain.clock import to_iso
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.mention import Author, Mention

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)
SETTINGS = csat.SurveySettings()


def iso(moment: datetime) -> str:
    return to_iso(moment)


def resolved_case(platform="messenger", kind="dm", lang="en", category="question", after=timedelta(hours=1)):
    mention = Mention(platform=platform, kind=kind, platform_id="m1", author=Author(id="cust"), text="hi",
                      created_at=iso(T0), lang=lang)
    case = new_case(mention, {"category": category}, team="support", assignee="a1", now=iso(T0))
    return with_status(case, "resolved", iso(T0 + after))


def decide(case, now, **options):
    return csat.survey_decision(case, settings=options.pop("settings", SETTINGS), now=iso(now),
                                asked_at=options.pop("asked_at", None), opted_out=options.pop("opted_out", False),
                                **options)


# ---- when --------------------------------------------------------------------------

def test_a_survey_waits_for_the_delay_after_the_resolution_then_is_asked_once():
    case = resolved_case()
    waiting = decide(case, T0 + timedelta(hours=1, minutes=59))
    assert (waiting.action, waiting.ask_at) == ("wait", iso(T0 + timedelta(hours=2)))
    asked = decide(case, T0 + timedelta(hours=2))
    assert asked.action == "ask" and asked.message is not None and not asked.counts_as_not_asked
    assert decide(case, T0 + timedelta(hours=3), asked_at=iso(T0 + timedelta(hours=2))).action == "skip"
    quick = csat.SurveySettings(delay_minutes=0)
    assert decide(case, T0 + timedelta(hours=1), settings=quick).action == "ask"


@pytest.mark.parametrize("case,options,action", [
    (with_status(resolved_case(), "open", iso(T0 + timedelta(hours=2))), {}, "skip"),     # reopened
    (resolved_case(category="noise"), {}, "skip"),
    (resolved_case(), {"settings": csat.SurveySettings(enabled=False)}, "skip"),
    (resolved_case(), {"opted_out": True}, "not_asked"),
])
def test_no_survey_while_open_for_noise_when_turned_off_or_opted_out(case, options, action):
    decision = decide(case, T0 + timedelta(days=1), **options)
    assert decision.action == action and decision.message is None
    assert decision.counts_as_not_asked == (action == "not_asked")


# ---- where and how ------------------------------------------------------------------

@pytest.mark.parametrize("platform,kind,style", [
    ("messenger", "dm", "quick_replies"),
    ("instagram", "dm", "quick_replies"),
    ("whatsapp", "dm", "reply_buttons"),
    ("x", "dm", "text"),
])
def test_each_private_channel_gets_the_survey_it_can_carry(platform, kind, style):
    decision = decide(resolved_case(platform, kind), T0 + timedelta(hours=2))
    assert decision.action == "ask"
    assert decision.message.style == style and decision.message.platform == platform
    assert csat.message_problems(decision.message) == []


@pytest.mark.parametrize("platform,kind", [("x", "mention"), ("x", "reply"), ("facebook", "comment"),
                                           ("instagram", "comment"), ("instagram", "mention")])
def test_a_public_post_is_not_asked_and_counted_as_such(platform, kind):
    decision = decide(resolved_case(platform, kind), T0 + timedelta(hours=2))
    assert (decision.action, decision.message) == ("not_asked", None) and decision.counts_as_not_asked
    if platform == "x":
        assert "DM conversation the customer started" in decision.reason


def test_a_public_x_case_where_the_customer_then_wrote_a_dm_gets_a_text_survey():
    case = resolved_case("x", "mention")
    dm = Mention(platform="x", kind="dm", platform_id="d1", author=Author(id="cust"), text="DMing you",
                 created_at=iso(T0 + timedelta(minutes=90)))
    followed = with_status(with_follow_up(with_status(case, "open", iso(T0 + timedelta(minutes=80))), dm, "normal",
                                          iso(T0 + timedelta(minutes=90))), "resolved", iso(T0 + timedelta(hours=2)))
    decision = decide(followed, T0 + timedelta(hours=3))
    assert decision.action == "ask" and decision.message.style == "text" and not decision.message.options


def test_meta_windows_close_24_hours_after_the_customers_last_message():
    case = resolved_case("messenger", after=timedelta(hours=20))
    assert decide(case, T0 + timedelta(hours=20, minutes=30)).action == "wait"
    assert decide(case, T0 + timedelta(hours=23)).action == "ask"
    late = decide(case, T0 + timedelta(hours=25))
    assert late.action == "not_asked" and "24-hour" in late.reason
    # A later message from the customer keeps the window open.
    assert decide(case, T0 + timedelta(hours=25), last_customer_message_at=iso(T0 + timedelta(hours=19))).action == "ask"
    # WhatsApp may still ask with an approved template; X DMs have no such window.
    templated = csat.SurveySettings(whatsapp_template="csat_survey")
    whatsapp = decide(resolved_case("whatsapp", after=timedelta(hours=20)), T0 + timedelta(hours=25),
                      settings=templated)
    assert whatsapp.action == "ask" and whatsapp.message.style == "template"
    assert whatsapp.message.template == "csat_survey" and len(whatsapp.message.options) == 3
    assert decide(resolved_case("whatsapp", after=timedelta(hours=20)), T0 + timedelta(hours=25)).action == "not_asked"
    assert decide(resolved_case("x", "dm", after=timedelta(hours=20)), T0 + timedelta(days=3)).action == "ask"


@pytest.mark.parametrize("lang,style", [(lang, style) for lang in ("en", "ja") for style in csat.STYLES])
def test_every_survey_message_fits_the_platform_limits(lang, style):
    platform = {"quick_replies": "instagram", "reply_buttons": "whatsapp", "template": "whatsapp", "text": "x"}[style]
    case = replace(resolved_case(platform, "dm", lang=lang), case_id="c_" + "f" * 16)
    message = csat.survey_message(case, style, template="csat_survey")
    assert csat.message_problems(message) == []
    assert message.lang == lang and message.text
    for option in message.options:
        assert csat.parse_payload(option.payload) == (case.case_id, option.score)
        assert csat.parse_answer(option.title) == csat.SurveyAnswer(score=option.score)  # the title alone, typed
    if style == "quick_replies":
        assert [o.score for o in message.options] == [5, 4, 3, 2, 1]
    if style in ("reply_buttons", "template"):
        assert [o.score for o in message.options] == [5, 3, 1]


def test_the_limits_check_would_catch_a_title_too_long():
    message = csat.survey_message(resolved_case(), "quick_replies")
    too_long = replace(message, options=message.options[:1] + (csat.SurveyOption(4, "x" * 21, "csat:c:4"),))
    assert csat.message_problems(too_long) == ["title 'xxxxxxxxxxxxxxxxxxxxx' is 21 characters; at most 20"]
    assert csat.message_problems(replace(message, style="reply_buttons"))[0] == "5 options; reply_buttons allows 3"


def test_japanese_customers_are_asked_in_japanese():
    message = csat.survey_message(resolved_case(lang="ja"), "quick_replies")
    assert "いかがでしたか" in message.text and message.options[0].title == "⭐⭐⭐⭐⭐ とても満足"
    assert csat.survey_message(resolved_case(lang="und"), "text").lang == "en"


def test_an_answer_counts_while_the_answer_window_is_open():
    asked = iso(T0)
    assert csat.awaiting_answer(asked, iso(T0 + timedelta(hours=71)), SETTINGS)
    assert not csat.awaiting_answer(asked, iso(T0 + timedelta(hours=73)), SETTINGS)
    assert not csat.awaiting_answer(None, iso(T0), SETTINGS)


# ---- answers -----------------------------------------------------------------------

@pytest.mark.parametrize("text,score,comment", [
    ("5", 5, ""), ("１", 1, ""), ("５", 5, ""), ("4/5", 4, ""), ("4 / 5", 4, ""), ("4 out of 5", 4, ""),
    ("5 stars", 5, ""), ("5点", 5, ""), ("５点です", 5, ""), ("4つ星", 4, ""), ("星５つ", 5, ""),
    ("⭐⭐⭐⭐", 4, ""), ("★★★☆☆", 3, ""), ("⭐️⭐️⭐️⭐️⭐️ so quick", 5, "so quick"), ("5 ⭐", 5, ""),
    ("great", 5, ""), ("Great service!", 5, ""), ("EXCELLENT", 5, ""), ("good, thanks", 4, "thanks"),
    ("great thanks", 5, "thanks"), ("ok", 3, ""), ("not bad", 3, ""), ("meh.", 3, ""),
    ("not happy", 2, ""), ("Not happy at all", 2, ""), ("bad", 2, ""), ("terrible!!", 1, ""),
    ("最高", 5, ""), ("最高！ありがとうございました", 5, "ありがとうございました"), ("大変満足です", 5, ""),
    ("満足", 4, ""), ("普通です", 3, ""), ("まあまあかな", 3, ""), ("不満", 2, ""), ("不満足", 2, ""),
    ("満足できませんでした", 2, ""), ("満足していない", 2, ""), ("とても不満", 1, ""), ("最悪。二度と使わない", 1, "二度と使わない"),
    ("4 - the agent was kind but slow", 4, "the agent was kind but slow"), ("2: still no refund", 2, "still no refund"),
    ("5 - why did it take so long?", 5, "why did it take so long?"), ("3\nit was fine", 3, "it was fine"),
    ("4、対応が早かった", 4, "対応が早かった"), ("5 😊", 5, ""), ("😊 Good", 5, ""), ("😞 不満", 1, ""),
])
def test_typed_answers_in_english_and_japanese(text, score, comment):
    assert csat.parse_answer(text) == csat.SurveyAnswer(score=score, comment=comment, via="text")


@pytest.mark.parametrize("text", [
    "3 hours late and nobody cares", "I waited 3 hours", "3時間待ちました", "2つ質問があります", "5:30 flight cancelled",
    "4.5", "10/10", "4/10", "0", "6", "10", "5,000 yen refund", "☆☆☆", "⭐⭐⭐⭐⭐⭐",
    "good morning", "ok, I'll try that", "fine thanks", "great, but where is my refund?", "badly handled",
    "ありがとう", "不満があります", "最高ですが、返金はいつですか？", "thanks!", "", "   ", "hello",
])
def test_what_is_not_an_answer_is_an_ordinary_message(text):
    assert csat.parse_answer(text) is None


def test_a_tap_is_understood_from_its_payload_whatever_the_text():
    answer = csat.parse_answer("⭐⭐ Poor", payload=csat.survey_payload("c_123", 2))
    assert answer == csat.SurveyAnswer(score=2, comment="", via="button", case_id="c_123")
    assert csat.parse_answer(None, payload="csat:c_123:4").score == 4
    # Someone else's payload: the text decides.
    assert csat.parse_answer("great", payload="MENU_MAIN") == csat.SurveyAnswer(score=5)
    for bad in ("csat:c_1:6", "csat:c_1:0", "csat::5", "csat:c 1:5", "xcsat:c_1:5"):
        assert csat.parse_payload(bad) is None


# ---- settings ----------------------------------------------------------------------

def test_settings_default_and_round_trip():
    assert csat.validate_survey_settings({}) == SETTINGS
    settings = csat.validate_survey_settings({"enabled": False, "delay_minutes": 0, "answer_window_hours": 24,
                                              "whatsapp_template": "csat_survey"})
    assert csat.validate_survey_settings(settings.to_dict()) == settings


@pytest.mark.parametrize("body,message", [
    ([], "JSON object"),
    ({"delay": 5}, "unknown field 'delay'"),
    ({"enabled": "yes"}, "true or false"),
    ({"delay_minutes": -1}, "'delay_minutes' must be a whole number from 0 to 10,080"),
    ({"delay_minutes": 1.5}, "delay_minutes"),
    ({"delay_minutes": True}, "delay_minutes"),
    ({"answer_window_hours": 0}, "answer_window_hours"),
    ({"whatsapp_template": "CSAT Survey"}, "lowercase"),
])
def test_bad_settings_say_what_to_fix(body, message):
    with pytest.raises(BadRequest, match=message):
        csat.validate_survey_settings(body)
