"""Away messages: outside the team's hours the customer hears when it opens, in their language, once
per period, only where the platform allows it; on fakes with an injected clock."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.away import (
    DEFAULT_BUSY_TEMPLATES,
    DEFAULT_TEMPLATES,
    LANGS,
    AwaySettings,
    away_channel,
    away_reply_id,
    customer_name,
    format_duration,
    render,
    render_template,
    validate_away,
    validate_template,
    worst_case_values,
)
from chalicelib.domain.case import ReplyTarget, new_case
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.hours import validate_calendar
from chalicelib.domain.text_limits import weighted_length
from chalicelib.services import away
from chalicelib.services.reply import deliver_reply
from tests.fakes import Clock, fake_deps, mention

# Friday 20 November 2026, 23:50 in Tokyo; Monday 23 November is a holiday (Labour Thanksgiving Day).
FRIDAY_NIGHT = "2026-11-20T14:50:00.000000Z"
TEAM = "support"
LEAD = Agent(agent_id="lead", teams=[TEAM], role="supervisor")


def tokyo_calendar():
    return validate_calendar({"time_zone": "Asia/Tokyo",
                              "weekly": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                              "holidays": ["2026-11-23"]})


@pytest.fixture
def clock():
    return Clock(FRIDAY_NIGHT)


@pytest.fixture
def deps(clock):
    deps = fake_deps(clock)
    deps.settings.put_team_calendar(TEAM, tokyo_calendar(), author="lead", at=clock.now())
    away.save_away(LEAD, TEAM, {"enabled": True, "period_hours": 24}, deps)
    return deps


_serial = iter(range(1000, 10 ** 6))


def open_case(deps, *, lang="en", platform="x", kind="mention", author_id="42", posted_at=None,
              category="complaint", **extra):
    post = mention(str(next(_serial)), platform=platform, kind=kind, author_id=author_id, lang=lang,
                   created_at=posted_at or deps.now(),
                   source_id={"x": "x:mentions:1500"}.get(platform, f"{platform}:PAGE1"), **extra)
    case = new_case(post, {"priority": "high", "category": category, "lang": lang}, team=TEAM, assignee=None,
                    now=deps.now())
    assert deps.cases.create(case)
    return case, post


def events(deps, case, name):
    return [e for e in deps.cases.events.get(case.case_id, []) if e.get("event") == name]


# ---- the example from the issue -----------------------------------------------------

def test_a_japanese_complaint_late_on_the_friday_before_a_holiday_hears_we_open_on_tuesday(deps):
    case, post = open_case(deps, lang="ja")

    reply = away.maybe_acknowledge(case, post, deps, deps.now())

    assert reply is not None
    assert reply.text.startswith("kana_t様、")
    assert "11月24日(火) 9:00以降" in reply.text  # Monday is a holiday: Tuesday 09:00 Tokyo time
    assert weighted_length(reply.text) <= 280
    assert (reply.automatic, reply.agent_id, reply.mode, reply.delivery_status) == (True, "socialcare", "public",
                                                                                   "queued")
    assert deps.cases.get_reply(case.case_id, reply.reply_id) == reply
    assert [json.loads(b) for b in deps.outbound_queue.bodies] == [{"case_id": case.case_id,
                                                                    "reply_id": reply.reply_id}]
    [event] = events(deps, case, "away_message_queued")
    assert (event["reply_id"], event["because"], event["lang"]) == (reply.reply_id, "closed", "ja")


def test_an_english_customer_reads_the_opening_in_english_with_the_team_time_zone(deps):
    case, post = open_case(deps, lang="en")

    reply = away.maybe_acknowledge(case, post, deps, deps.now())

    assert reply is not None
    assert reply.text.startswith("Hi kana_t, thanks")
    assert "back Tuesday 24 November at 09:00 (JST)" in reply.text
    assert "within one business day" in reply.text  # no first responses recorded yet


def test_delivering_the_away_message_does_not_count_as_the_first_response(deps):
    case, post = open_case(deps)
    reply = away.maybe_acknowledge(case, post, deps, deps.now())
    [body] = deps.outbound_queue.take()

    outcome = deliver_reply(body, deps)

    assert outcome["outcome"] == "sent"
    assert deps.platforms.fake_x.posted == [("reply", post.platform_id, reply.text)]
    stored = deps.cases.get(case.case_id)
    assert (stored.first_response_at, stored.response_count) == (None, 0)
    assert deps.settings.recent_first_responses(TEAM) == []  # not a sample of how fast agents answer
    assert deps.cases.get_reply(case.case_id, reply.reply_id).delivery_status == "sent"


# ---- when it goes out -------------------------------------------------------------------

def test_nothing_while_the_team_is_open(deps, clock):
    clock.moment = datetime(2026, 11, 24, 0, 10, tzinfo=timezone.utc)  # Tuesday 09:10 Tokyo: open
    case, post = open_case(deps)

    assert away.maybe_acknowledge(case, post, deps, deps.now()) is None
    assert deps.outbound_queue.bodies == [] and events(deps, case, "away_message_skipped") == []


def test_nothing_without_settings_or_when_disabled_or_without_a_calendar(clock):
    deps = fake_deps(clock)
    deps.settings.put_team_calendar(TEAM, tokyo_calendar(), author="lead", at=clock.now())
    case, post = open_case(deps)
    assert away.maybe_acknowledge(case, post, deps, deps.now()) is None  # no settings: no away message

    away.save_away(LEAD, TEAM, {"enabled": False}, deps)
    assert away.maybe_acknowledge(case, post, deps, deps.now()) is None

    away.save_away(LEAD, TEAM, {"enabled": True}, deps)
    deps.settings.delete_team_calendar(TEAM)  # always open: never closed
    assert away.maybe_acknowledge(case, post, deps, deps.now()) is None
    assert deps.outbound_queue.bodies == []


def test_never_for_noise_even_when_a_rule_opened_a_case(deps):
    case, post = open_case(deps, category="noise")

    assert away.maybe_acknowledge(case, post, deps, deps.now()) is None


def test_busy_teams_send_the_busy_message_while_open_when_the_typical_wait_is_over_the_threshold(clock):
    deps = fake_deps(clock)  # no calendar: always open
    away.save_away(LEAD, TEAM, {"when": "closed_or_busy", "busy_threshold_minutes": 120}, deps)
    for seconds in (3 * 3600, 2 * 3600, 4 * 3600):
        deps.settings.record_first_response(TEAM, seconds, at=clock.now())
    case, post = open_case(deps)

    reply = away.maybe_acknowledge(case, post, deps, deps.now())

    assert reply is not None and "busier than usual" in reply.text and "about 3 hours" in reply.text
    assert events(deps, case, "away_message_queued")[0]["because"] == "busy"


def test_not_busy_below_the_threshold(clock):
    deps = fake_deps(clock)
    away.save_away(LEAD, TEAM, {"when": "closed_or_busy", "busy_threshold_minutes": 240}, deps)
    for seconds in (3 * 3600, 2 * 3600, 4 * 3600):
        deps.settings.record_first_response(TEAM, seconds, at=clock.now())
    case, post = open_case(deps)

    assert away.maybe_acknowledge(case, post, deps, deps.now()) is None


def test_the_typical_reply_time_is_the_median_of_recent_first_responses(deps):
    for seconds in (1200, 1100, 1300, 86400):  # one very slow case does not move the median
        deps.settings.record_first_response(TEAM, seconds, at=deps.now())
    case, post = open_case(deps, lang="ja")

    reply = away.maybe_acknowledge(case, post, deps, deps.now())

    assert "現在の返信の目安は約20分です" in reply.text


@pytest.mark.parametrize("seconds,en,ja", [
    (None, "within one business day", "1営業日以内"),
    (40, "about a minute", "約1分"),
    (7 * 60 + 10, "about 7 minutes", "約7分"),
    (21 * 60, "about 20 minutes", "約20分"),
    (63 * 60, "about an hour", "約1時間"),
    (2.5 * 3600, "about 3 hours", "約3時間"),
    (30 * 3600, "about a day", "約1日"),
    (3 * 86400, "about 3 days", "約3日"),
    (20 * 86400, "a week or more", "1週間以上"),
])
def test_durations_read_the_way_a_person_says_them(seconds, en, ja):
    assert (format_duration(seconds, "en"), format_duration(seconds, "ja")) == (en, ja)


# ---- once per customer per period, once per case ------------------------------------------

def test_one_away_message_per_customer_per_period(deps, clock):
    first, post = open_case(deps)
    assert away.maybe_acknowledge(first, post, deps, deps.now()) is not None

    clock.advance(hours=2)
    second, post2 = open_case(deps)  # the same customer, another case within the period
    assert away.maybe_acknowledge(second, post2, deps, deps.now()) is None

    clock.advance(hours=23)  # Sunday 00:50 Tokyo: still closed, and the period has passed
    third, post3 = open_case(deps)
    assert away.maybe_acknowledge(third, post3, deps, deps.now()) is not None
    assert len(deps.outbound_queue.bodies) == 2


def test_a_follow_up_or_a_redelivery_makes_no_second_message(deps, clock):
    case, post = open_case(deps)
    reply = away.maybe_acknowledge(case, post, deps, deps.now())
    [body] = deps.outbound_queue.take()
    deliver_reply(body, deps)

    clock.advance(minutes=5)
    follow_up = mention(str(next(_serial)), created_at=deps.now())
    assert away.maybe_acknowledge(case, follow_up, deps, deps.now()) is None
    assert away.maybe_acknowledge(case, post, deps, deps.now()) is None
    assert deps.outbound_queue.bodies == []
    assert [r for (c, _r), r in deps.cases.replies.items() if c == case.case_id] == [
        deps.cases.get_reply(case.case_id, reply.reply_id)]


def test_a_redelivery_after_a_crash_between_the_claim_and_the_reply_still_acknowledges(deps):
    case, post = open_case(deps)
    # The first attempt claimed the customer's period, then died before storing the reply.
    assert deps.cases.claim_away_message(case.customer_key, case_id=case.case_id, at=deps.now(),
                                         not_since="2026-11-19T14:50:00.000000Z")

    reply = away.maybe_acknowledge(case, post, deps, deps.now())

    assert reply is not None and reply.reply_id == away_reply_id(case.case_id)
    other, post2 = open_case(deps)  # the claim still counts for the customer's other cases
    assert away.maybe_acknowledge(other, post2, deps, deps.now()) is None


def test_a_redelivery_after_a_crash_before_queueing_queues_the_stored_reply(deps):
    case, post = open_case(deps)
    deps.outbound_queue.fail_next_sends = 1
    with pytest.raises(ConnectionError):
        away.maybe_acknowledge(case, post, deps, deps.now())
    assert deps.outbound_queue.bodies == []

    again = away.maybe_acknowledge(case, post, deps, deps.now())

    assert again is not None and again.delivery_status == "queued"
    assert [json.loads(b)["reply_id"] for b in deps.outbound_queue.bodies] == [again.reply_id]
    assert len(events(deps, case, "away_message_queued")) == 1


# ---- only where the platform allows it ----------------------------------------------------

def test_never_an_unsolicited_dm_on_x(deps):
    case, post = open_case(deps, addressed_to_brand=False)  # found by search: it did not mention us

    assert away.maybe_acknowledge(case, post, deps, deps.now()) is None

    [event] = events(deps, case, "away_message_skipped")
    assert "unsolicited DM" in event["reason"]
    assert deps.outbound_queue.bodies == [] and deps.cases.replies == {}
    tagged, post2 = open_case(deps)  # the skipped case did not use up the customer's period
    assert away.maybe_acknowledge(tagged, post2, deps, deps.now()).mode == "public"


def test_x_dms_only_in_a_conversation_the_customer_started(deps):
    case, post = open_case(deps, kind="dm")

    reply = away.maybe_acknowledge(case, post, deps, deps.now())

    assert reply.mode == "private"
    deliver_reply(deps.outbound_queue.take()[0], deps)
    assert deps.platforms.fake_x.posted == [("dm", "42", reply.text)]


def test_messenger_outside_24_hours_is_skipped_with_the_reason(deps):
    case, post = open_case(deps, platform="messenger", kind="dm", posted_at="2026-11-19T13:00:00Z")

    assert away.maybe_acknowledge(case, post, deps, deps.now()) is None

    [event] = events(deps, case, "away_message_skipped")
    assert "Messenger's 24-hour window" in event["reason"] and "25 hours old" in event["reason"]


NOW = "2026-11-20T14:50:00.000000Z"


@pytest.mark.parametrize("platform,kind,addressed,posted,expected", [
    ("x", "mention", True, NOW, "public"),
    ("x", "reply", True, NOW, "public"),
    ("x", "mention", False, NOW, None),
    ("x", "dm", True, NOW, "private"),
    ("messenger", "dm", True, "2026-11-19T15:00:00Z", "private"),
    ("messenger", "dm", True, "2026-11-19T14:49:00Z", None),
    ("instagram", "dm", True, "2026-11-19T14:49:00Z", None),
    ("whatsapp", "dm", True, "2026-11-20T10:00:00Z", "private"),
    ("whatsapp", "dm", True, "2026-11-18T10:00:00Z", None),
    ("facebook", "comment", True, "2026-11-01T10:00:00Z", "public"),
    ("instagram", "reply", True, NOW, "public"),
])
def test_platform_rules(platform, kind, addressed, posted, expected):
    target = ReplyTarget(platform=platform, kind=kind, platform_id="1", author_id="42",
                         addressed_to_brand=addressed)

    mode, reason = away_channel(target, customer_posted_at=posted, now=NOW)

    assert mode == expected and reason


# ---- templates -------------------------------------------------------------------

@pytest.mark.parametrize("body,message", [
    ({"templates": {"en": "Back {next_opening}"}}, "unknown variable {next_opening} (did you mean {next_open}?)"),
    ({"templates": {"en": "Back {next_open"}}, "unbalanced '{' at position 5"),
    ({"templates": {"en": "Back } soon"}}, "unbalanced '}'"),
    ({"templates": {"ja": "ご連絡ありがとうございます。" * 11}}, "as X counts them"),
    ({"templates": {"en": "See https://example.com/" + "é" * 500}}, "bytes (UTF-8)"),  # X counts a URL as 23
    ({"templates": {"fr": "Bonjour"}}, "unknown language 'fr'"),
    ({"templates": {"en": "   "}}, "is empty"),
    ({"busy_templates": {"en": "Back {next_open}"}}, "not known while the team is open"),
    ({"period_hours": 0}, "'period_hours' must be a whole number from 1 to 720"),
    ({"period_hours": 721}, "'period_hours'"),
    ({"when": "always"}, "'when' must be 'closed'"),
    ({"enabled": "yes"}, "'enabled' must be true or false"),
    ({"colour": "red"}, "unknown field 'colour'"),
    ([], "must be a JSON object"),
])
def test_bad_settings_are_refused_with_what_to_fix(body, message):
    with pytest.raises(BadRequest) as err:
        validate_away(body)
    assert message in str(err.value)


def test_a_japanese_template_that_fits_in_characters_but_not_as_x_counts_them_is_refused():
    template = "あ" * 150  # 150 characters, 300 as X counts them
    with pytest.raises(BadRequest, match="shorten it by"):
        validate_template(template, "templates.ja", lang="ja")
    validate_template("a" * 150, "templates.en", lang="en")


@pytest.mark.parametrize("lang", LANGS)
def test_the_default_templates_fit_every_platform_with_the_longest_values(lang):
    for template in (DEFAULT_TEMPLATES[lang], DEFAULT_BUSY_TEMPLATES[lang]):
        validate_template(template, "default", lang=lang)
        assert weighted_length(render_template(template, worst_case_values(lang))) <= 280


def test_literal_braces_and_values_are_filled_in_once():
    settings = AwaySettings(templates={"en": "{{hours}} {customer_name}: {typical_reply}"})
    assert render(settings, "en", {"customer_name": "Kana", "typical_reply": "{next_open}"}) == \
        "{hours} Kana: {next_open}"


@pytest.mark.parametrize("customer,lang,expected", [
    ({"name": "Kana Tanaka"}, "en", "Kana Tanaka"),
    ({"name": "田中"}, "ja", "田中様"),
    ({"name": "田中さん"}, "ja", "田中さん"),
    ({"name": "", "handle": "kana_t"}, "ja", "kana_t様"),
    ({}, "en", "there"),
    ({}, "ja", "お客様"),
    ({"name": "Win a prize @SomeoneElse"}, "en", "there"),  # an automated post must not tag anyone
    ({"name": "x" * 40}, "en", "there"),
    ({"name": "名" * 20}, "ja", "お客様"),
])
def test_customer_names_and_their_fallbacks(customer, lang, expected):
    assert customer_name(customer, lang) == expected


# ---- supervisors ----------------------------------------------------------------------

def test_saved_settings_round_trip_and_the_view_previews_the_message(clock):
    deps = fake_deps(clock)
    deps.settings.put_team_calendar(TEAM, tokyo_calendar(), author="lead", at=clock.now())
    body = {"enabled": True, "when": "closed_or_busy", "busy_threshold_minutes": 90, "period_hours": 48,
            "templates": {"en": "Hi {customer_name}! Back {next_open}. {{sorry}}"}}

    view = away.save_away(LEAD, TEAM, body, deps)

    stored = deps.settings.get_away_settings(TEAM)
    assert AwaySettings.from_dict(json.loads(json.dumps(stored.to_dict()))) == stored
    assert (view["configured"], view["when"], view["period_hours"]) == (True, "closed_or_busy", 48)
    assert view["custom"]["templates"] == ["en"] and view["templates"]["ja"] == DEFAULT_TEMPLATES["ja"]
    assert view["preview"]["en"]["closed"] == "Hi there! Back Tuesday 24 November at 09:00 (JST). {sorry}"
    assert "11月24日(火) 9:00" in view["preview"]["ja"]["closed"]


def test_the_preview_of_an_open_team_names_its_next_opening_not_now(clock):
    clock.moment = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)  # Tuesday 12:00 Tokyo: open
    deps = fake_deps(clock)
    deps.settings.put_team_calendar(TEAM, tokyo_calendar(), author="lead", at=clock.now())

    view = away.away_view(TEAM, deps)

    assert view["configured"] is False and view["enabled"] is False
    assert "back Wednesday 25 November at 09:00 (JST)" in view["preview"]["en"]["closed"]


def test_a_bad_team_name_is_refused(deps):
    with pytest.raises(BadRequest, match="team name"):
        away.save_away(LEAD, "a#b", {}, deps)
