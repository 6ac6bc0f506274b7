"""CSAT surveys end to end on fakes with an injected clock: a resolved case's customer is asked once,
after the delay, over their own conversation; their answer lands on the case and in the KPIs, and
never opens a case."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from itertools import count

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.case import new_case
from chalicelib.domain.clock import parse_iso, to_iso
from chalicelib.domain.csat import SurveySettings, survey_payload
from chalicelib.domain.mention import Mention
from chalicelib.services import csat, inbox, intake, sla
from chalicelib.services.reply import deliver_reply
from tests.fakes import Clock, FakeGraph, fake_deps, mention, use_platforms

T0 = "2026-11-23T03:00:00.000000Z"
TEAM = "support"
LEAD = Agent(agent_id="lead", teams=[TEAM], role="supervisor")
ALL_YEAR = ("2026-01-01", "2026-12-31")
_serial = count(5000)


class RecordingGraph(FakeGraph):
    """The fake Graph client, also keeping what each message carried besides its text."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = []

    def send_message(self, platform, account_id, recipient_id, text, *, reply_to_message_id=None, options=None,
                     template=None):
        self.sent.append({"platform": platform, "to": recipient_id, "text": text, "options": options,
                          "template": template, "quoted": reply_to_message_id})
        return super().send_message(platform, account_id, recipient_id, text,
                                    reply_to_message_id=reply_to_message_id, options=options, template=template)


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def deps(clock):
    deps = fake_deps(clock)
    use_platforms(deps, graph=RecordingGraph())
    return deps


def later(clock, **delta):
    clock.advance(**delta)
    return clock.now()


def open_case(deps, *, platform="messenger", kind="dm", author_id="psid-1", lang="en", category="question",
              tags=(), assignee="aiko"):
    post = mention(str(next(_serial)), "My ticket shows the wrong name, can you fix it?", platform=platform,
                   kind=kind, author_id=author_id, lang=lang, created_at=deps.now(),
                   source_id="x:dms:1500" if platform == "x" else f"{platform}:PAGE1")
    case = new_case(post, {"priority": "normal", "category": category, "lang": lang, "tags": list(tags)},
                    team=TEAM, assignee=assignee, now=deps.now())
    assert deps.cases.create(case)
    return case, post


def resolve(deps, case):
    inbox.change_status(LEAD, case.case_id, {"status": "resolved"}, deps)
    return deps.cases.get(case.case_id)


def message_from(post, text, *, at, payload=""):
    """The customer's next message in the conversation of ``post``."""
    return Mention(platform=post.platform, kind="dm", platform_id=f"mid.{next(_serial)}", author=post.author,
                   text=text, created_at=at, source_id=post.source_id, lang=post.lang,
                   conversation_id=post.author.id, reply_payload=payload)


def triage(deps, message):
    return intake.triage_message(json.dumps(message.to_dict()), deps)


def customer_writes(deps, post, text, *, payload=""):
    """The customer's next message, now, through the triage stage: (outcome, message)."""
    message = message_from(post, text, at=deps.now(), payload=payload)
    return triage(deps, message), message


def counters(deps, dimension, key):
    """Every counter of one KPI key over the year, summed over its days."""
    total = {}
    for row in deps.kpis.kpi_rows(dimension, *ALL_YEAR):
        if row["key"] == key:
            for name, value in row.items():
                if name not in ("day", "dimension", "key"):
                    total[name] = total.get(name, 0) + value
    return total


def survey_replies(deps, case):
    return [r for (case_id, _rid), r in deps.cases.replies.items() if case_id == case.case_id]


def events(deps, case, name):
    return [e for e in deps.cases.events.get(case.case_id, []) if e.get("event") == name]


def ask(deps, clock, case, *, minutes=60):
    """Resolve the case and let the tick run once its survey moment has come."""
    resolve(deps, case)
    later(clock, minutes=minutes)
    return sla.run_tick(deps)


# ---- asking ---------------------------------------------------------------------------------

def test_a_resolved_messenger_case_gets_one_quick_reply_survey_after_the_delay(deps, clock):
    case, post = open_case(deps)
    resolved = resolve(deps, case)
    # The survey moment is the case's next look: the tick finds it through the index, no Scan.
    assert resolved.sla_next_at == to_iso(parse_iso(resolved.resolved_at) + timedelta(minutes=60))

    later(clock, minutes=59)
    assert sla.run_tick(deps)["surveys"] == {"asked": 0, "not_asked": 0}
    assert deps.outbound_queue.bodies == []

    later(clock, minutes=1)
    assert sla.run_tick(deps)["surveys"] == {"asked": 1, "not_asked": 0}
    [reply] = survey_replies(deps, case)
    assert (reply.automatic, reply.mode, reply.delivery_status, reply.agent_id) == (True, "private", "queued",
                                                                                   "socialcare")
    assert [o["title"] for o in reply.options] == ["⭐⭐⭐⭐⭐ Excellent", "⭐⭐⭐⭐ Good", "⭐⭐⭐ OK", "⭐⭐ Poor",
                                                   "⭐ Very poor"]
    assert reply.options[0]["id"] == survey_payload(case.case_id, 5)
    stored = deps.cases.get(case.case_id)
    assert (stored.csat_status, stored.csat_asked_at, stored.csat_agent) == ("asked", clock.now(), "aiko")
    assert stored.sla_next_at is None  # decided: the tick never looks at it again
    assert deps.cases.survey_awaiting(post.customer_key, now=clock.now()) == case.case_id
    assert counters(deps, "agent", "aiko")["csat_asked"] == 1

    # Once: later ticks leave it alone.
    later(clock, hours=2)
    sla.run_tick(deps)
    assert len(deps.outbound_queue.bodies) == 1 and len(survey_replies(deps, case)) == 1

    # Delivered as quick replies to the customer's conversation, and it is no response of an agent's.
    [body] = deps.outbound_queue.take()
    assert deliver_reply(body, deps)["outcome"] == "sent"
    [sent] = deps.platforms.graph().sent
    assert (sent["platform"], sent["to"], sent["quoted"]) == ("messenger", post.author.id, None)
    assert sent["options"] == reply.options and sent["text"].startswith("How did we do?")
    assert deps.cases.get(case.case_id).first_response_at is None


def test_a_japanese_customer_is_asked_in_japanese(deps, clock):
    case, _post = open_case(deps, lang="ja", author_id="psid-ja")
    ask(deps, clock, case)
    [reply] = survey_replies(deps, case)
    assert reply.text.startswith("今回の対応はいかがでしたか") and reply.options[0]["title"] == "⭐⭐⭐⭐⭐ とても満足"


def test_an_x_public_post_is_not_asked_and_is_counted_so(deps, clock):
    case, _post = open_case(deps, platform="x", kind="mention", author_id="x-1")
    assert ask(deps, clock, case)["surveys"] == {"asked": 0, "not_asked": 1}
    stored = deps.cases.get(case.case_id)
    assert (stored.csat_status, stored.sla_next_at) == ("not_asked", None)
    assert survey_replies(deps, case) == [] and deps.outbound_queue.bodies == []
    assert counters(deps, "channel", "x")["csat_not_asked"] == 1
    assert "no unsolicited DMs" in events(deps, case, "csat_not_asked")[0]["reason"]
    sla.run_tick(deps)
    assert counters(deps, "channel", "x")["csat_not_asked"] == 1  # counted once


def test_an_x_dm_case_gets_a_plain_text_survey(deps, clock):
    case, post = open_case(deps, platform="x", kind="dm", author_id="x-2")
    ask(deps, clock, case)
    [reply] = survey_replies(deps, case)
    assert reply.options == [] and reply.template is None
    assert reply.text.startswith("How did we do? Reply with a number from 1 (poor) to 5")
    [body] = deps.outbound_queue.take()
    assert deliver_reply(body, deps)["outcome"] == "sent"
    assert deps.platforms.x().posted == [("dm", post.author.id, reply.text)]


def test_whatsapp_gets_three_reply_buttons_inside_the_window_and_a_template_or_nothing_outside_it(deps, clock):
    case, _post = open_case(deps, platform="whatsapp", author_id="8180")
    ask(deps, clock, case)
    [reply] = survey_replies(deps, case)
    assert [o["title"] for o in reply.options] == ["😊 Good", "😐 OK", "😞 Not good"] and reply.template is None

    late, _post = open_case(deps, platform="whatsapp", author_id="8181")
    ask(deps, clock, late, minutes=25 * 60)  # the customer's last message is more than 24 hours old
    assert deps.cases.get(late.case_id).csat_status == "not_asked"

    deps.settings.put_survey_settings(SurveySettings(whatsapp_template="csat_survey"), author="lead", at=clock.now())
    templated, _post = open_case(deps, platform="whatsapp", author_id="8182", lang="ja")
    ask(deps, clock, templated, minutes=25 * 60)
    [reply] = survey_replies(deps, templated)
    assert reply.template == {"name": "csat_survey", "language": "ja"} and len(reply.options) == 3


def test_an_opted_out_customer_is_not_asked_but_counted_and_noise_is_skipped_without_a_look(deps, clock):
    opted, _post = open_case(deps, tags=["no_survey"], author_id="psid-2")
    noise, _post = open_case(deps, category="noise", author_id="psid-3")
    assert resolve(deps, noise).sla_next_at is None  # nothing to decide: the tick never comes for it
    assert ask(deps, clock, opted)["surveys"] == {"asked": 0, "not_asked": 1}
    assert deps.cases.get(opted.case_id).csat_status == "not_asked"
    assert deps.cases.get(noise.case_id).csat_status is None
    assert counters(deps, "category", "noise") == {}
    assert counters(deps, "category", "question")["csat_not_asked"] == 1
    assert deps.outbound_queue.bodies == []


def test_surveys_turned_off_leave_resolved_cases_without_a_look(deps, clock):
    deps.settings.put_survey_settings(SurveySettings(enabled=False), author="lead", at=clock.now())
    case, _post = open_case(deps)
    assert resolve(deps, case).sla_next_at is None
    later(clock, days=2)
    sla.run_tick(deps)
    assert deps.cases.get(case.case_id).csat_status is None and deps.outbound_queue.bodies == []


def test_a_case_reopened_before_its_survey_is_asked_after_it_is_resolved_again(deps, clock):
    case, _post = open_case(deps)
    resolve(deps, case)
    later(clock, minutes=30)
    inbox.change_status(LEAD, case.case_id, {"status": "open"}, deps)
    later(clock, minutes=40)
    sla.run_tick(deps)
    assert survey_replies(deps, case) == []
    ask(deps, clock, case)
    assert len(survey_replies(deps, case)) == 1 and deps.cases.get(case.case_id).csat_status == "asked"


def test_a_queue_outage_leaves_the_survey_due_and_the_next_tick_sends_that_one_survey(deps, clock):
    case, _post = open_case(deps)
    resolve(deps, case)
    later(clock, minutes=60)
    deps.outbound_queue.fail_next_sends = 1
    assert sla.run_tick(deps)["errors"] == 1
    assert deps.cases.get(case.case_id).csat_status is None  # not recorded: still due
    assert len(survey_replies(deps, case)) == 1  # stored, queued on the next try

    later(clock, minutes=1)
    assert sla.run_tick(deps)["surveys"]["asked"] == 1
    stored = deps.cases.get(case.case_id)
    [reply] = survey_replies(deps, case)
    assert stored.csat_status == "asked" and stored.csat_asked_at == reply.created_at
    assert counters(deps, "agent", "aiko")["csat_asked"] == 1

    # However often the message is queued, the platform gets it once.
    [body] = deps.outbound_queue.take()
    assert deliver_reply(body, deps)["outcome"] == "sent"
    assert deliver_reply(body, deps)["outcome"] == "already_sent"
    assert len(deps.platforms.graph().sent) == 1


def test_a_survey_queued_before_a_crash_is_recorded_as_asked_even_if_the_case_reopened_meanwhile(deps, clock):
    case, _post = open_case(deps)
    resolved = resolve(deps, case)
    later(clock, minutes=60)
    # A tick stored and queued the survey, then the case was reopened before it could save.
    csat.survey_case(deps.cases.get(case.case_id), deps, clock.now())
    assert deps.cases.save(replace(resolved, status="open", resolved_at=None, sla_next_at=None))
    later(clock, minutes=5)
    inbox.change_status(LEAD, case.case_id, {"status": "resolved"}, deps)
    later(clock, hours=25)  # by now Messenger's window has closed: it could not be asked any more
    sla.run_tick(deps)
    stored = deps.cases.get(case.case_id)
    # The stored survey is the proof it was asked: recorded so, never asked twice, never "not asked".
    assert stored.csat_status == "asked" and len(survey_replies(deps, case)) == 1
    assert "csat_not_asked" not in counters(deps, "agent", "aiko")
    assert counters(deps, "agent", "aiko")["csat_asked"] == 1


# ---- answers --------------------------------------------------------------------------------

@pytest.mark.parametrize("text,payload,score,comment,via", [
    ("5", "", 5, None, "text"),
    ("⭐⭐⭐⭐ quick and kind, thank you", "", 4, "quick and kind, thank you", "text"),
    ("最高でした！対応が早くて助かりました", "", 5, "対応が早くて助かりました", "text"),
    ("不満です。返金がまだです", "", 2, "返金がまだです", "text"),
    ("⭐⭐ Poor", "PAYLOAD", 2, None, "button"),
])
def test_the_answer_is_stored_on_the_case_with_its_comment_and_agent_and_never_opens_a_case(
        deps, clock, text, payload, score, comment, via):
    case, post = open_case(deps)
    ask(deps, clock, case)
    later(clock, minutes=10)
    tapped = survey_payload(case.case_id, score) if payload else ""

    outcome, message = customer_writes(deps, post, text, payload=tapped)

    assert outcome == {"mention_id": message.id, "outcome": "csat_answer", "case_id": case.case_id, "score": score,
                       "via": via}
    stored = deps.cases.get(case.case_id)
    assert (stored.csat_status, stored.csat_score, stored.csat_comment, stored.csat_agent, stored.csat_answered_at) \
        == ("answered", score, comment, "aiko", clock.now())
    assert deps.triaged_queue.bodies == []  # never triaged, never a case
    record = deps.mentions.get(message.id)
    assert (record.state, record.case_id) == ("csat_answer", case.case_id)
    assert message.id in [m.id for m in deps.cases.mentions[case.case_id].values()]  # in the case's history
    assert events(deps, case, "csat_answered")[0]["score"] == score
    agent_row = counters(deps, "agent", "aiko")
    assert (agent_row["csat_responses"], agent_row["csat_score_sum"], agent_row.get("csat_satisfied", 0)) == (
        1, score, int(score >= 4))
    assert deps.cases.survey_awaiting(post.customer_key, now=clock.now()) is None


def test_the_answer_rates_the_agent_who_resolved_it_even_after_the_case_moved_on(deps, clock):
    case, post = open_case(deps)
    ask(deps, clock, case)
    deps.cases.save(replace(deps.cases.get(case.case_id), assignee="ken"))
    customer_writes(deps, post, "4")
    assert counters(deps, "agent", "aiko")["csat_responses"] == 1 and counters(deps, "agent", "ken") == {}


def test_a_redelivered_answer_is_counted_once_and_a_second_answer_is_an_ordinary_message(deps, clock):
    case, post = open_case(deps)
    ask(deps, clock, case)
    first, message = customer_writes(deps, post, "5! thanks")
    again = triage(deps, message)
    assert (first["outcome"], again["outcome"]) == ("csat_answer", "duplicate")

    second, _message = customer_writes(deps, post, "1")  # no survey awaits them any more
    assert second["outcome"] in ("triaged", "no_case")
    assert deps.cases.get(case.case_id).csat_score == 5
    assert counters(deps, "agent", "aiko")["csat_responses"] == 1


def test_an_answer_stored_before_a_crash_is_settled_by_the_redelivery(deps, clock):
    case, post = open_case(deps)
    ask(deps, clock, case)
    update = deps.mentions.update

    def crash_on_settling(mention_id, *, state, **fields):
        if state == "csat_answer":
            raise RuntimeError("the Lambda timed out")
        return update(mention_id, state=state, **fields)

    deps.mentions.update = crash_on_settling
    message = message_from(post, "4 - great help", at=clock.now())
    with pytest.raises(RuntimeError):
        triage(deps, message)
    assert deps.cases.get(case.case_id).csat_status == "answered"
    assert deps.cases.survey_awaiting(post.customer_key, now=clock.now()) == case.case_id  # still awaited

    deps.mentions.update = update
    redelivered = triage(deps, message)

    assert redelivered["outcome"] == "csat_answer" and deps.triaged_queue.bodies == []
    assert deps.mentions.get(message.id).state == "csat_answer"
    assert counters(deps, "agent", "aiko")["csat_responses"] == 1
    assert deps.cases.survey_awaiting(post.customer_key, now=clock.now()) is None


def test_a_message_that_is_not_an_answer_is_triaged_and_the_survey_still_waits_for_one(deps, clock):
    case, post = open_case(deps)
    ask(deps, clock, case)
    outcome, _message = customer_writes(deps, post, "Also, my bag never arrived at Haneda. Where is it?")
    assert outcome["outcome"] == "triaged" and len(deps.triaged_queue.bodies) == 1
    assert customer_writes(deps, post, "3")[0]["outcome"] == "csat_answer"


def test_only_a_message_that_rates_something_asks_whether_a_survey_awaits(deps, clock):
    # Issue 17: the look-up was one read per message triaged; a message that rates nothing cannot answer
    # a survey, awaited or not, so it is triaged without it.
    case, post = open_case(deps)
    ask(deps, clock, case)
    looked_up = []
    awaiting = deps.cases.survey_awaiting
    deps.cases.survey_awaiting = lambda key, *, now: looked_up.append(key) or awaiting(key, now=now)

    assert customer_writes(deps, post, "Also, my bag never arrived at Haneda. Where is it?")[0]["outcome"] == "triaged"
    chatter, message = customer_writes(deps, post, "thanks!")
    assert chatter["outcome"] == "no_case" and deps.mentions.get(message.id).state == "no_case"
    assert looked_up == []
    answer, _message = customer_writes(deps, post, "4 - great help")
    assert answer["outcome"] == "csat_answer" and answer["case_id"] == case.case_id
    assert looked_up and set(looked_up) == {post.customer_key}


def test_a_message_after_the_answer_window_triages_normally(deps, clock):
    case, post = open_case(deps)
    ask(deps, clock, case)
    later(clock, hours=73)  # the default window is 72 hours
    outcome, message = customer_writes(deps, post, "5")
    assert outcome["outcome"] in ("triaged", "no_case")
    assert deps.mentions.get(message.id).state == outcome["outcome"]
    assert deps.cases.get(case.case_id).csat_status == "asked"
    assert "csat_responses" not in counters(deps, "agent", "aiko")


def test_a_tap_on_another_cases_survey_does_not_rate_the_awaited_one(deps, clock):
    case, post = open_case(deps)
    ask(deps, clock, case)
    outcome, _message = customer_writes(deps, post, "⭐⭐⭐⭐⭐ Excellent", payload=survey_payload("c_other", 5))
    assert outcome["outcome"] != "csat_answer"
    assert deps.cases.get(case.case_id).csat_status == "asked"


def test_a_message_written_before_the_survey_was_asked_is_not_its_answer(deps, clock):
    case, post = open_case(deps)
    ask(deps, clock, case)
    outcome = triage(deps, message_from(post, "5", at=T0))  # delivered late, written at the case's start
    assert outcome["outcome"] != "csat_answer" and deps.cases.get(case.case_id).csat_status == "asked"


def test_settings_are_for_supervisors_to_replace_whole_and_explain_themselves(deps):
    view = csat.settings_view(deps)
    assert (view["configured"], view["enabled"], view["delay_minutes"]) == (False, True, 60)
    saved = csat.save_settings(LEAD, {"delay_minutes": 5, "whatsapp_template": "csat_survey"}, deps)
    assert (saved["configured"], saved["delay_minutes"], saved["answer_window_hours"]) == (True, 5, 72)
    assert deps.settings.get_survey_settings() == SurveySettings(delay_minutes=5, whatsapp_template="csat_survey")
    assert not any("whatsapp_template" in note for note in saved["notes"])
