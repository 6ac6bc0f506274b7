"""Canned replies (domain/templates.py, services/templates.py) and the brand-voice gate on replies
(services/brand_voice.py through services/reply.py), on in-memory fakes with an injected clock."""
from __future__ import annotations

import json
import re

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.brand_voice import BrandVoiceBlocked
from chalicelib.domain.case import new_case
from chalicelib.domain.errors import BadRequest, Forbidden, InvalidCursor, NotFound
from chalicelib.domain.hours import validate_calendar
from chalicelib.domain.templates import Template, render, validate_template
from chalicelib.services import brand_voice, reply, templates
from tests.fakes import Clock, fake_deps, mention

BOSS = Agent(agent_id="boss", name="Sato Boss", teams=["leads"], role="supervisor")
AIKO = Agent(agent_id="aiko", name="Aiko Tanaka", teams=["support"])
LOST_BAG = {"team": "support", "name": "Lost bag",
            "bodies": {"en": "Hi {customer.name|there}, sorry about your bag. We are back {team.next_open}.\n"
                             "- {agent.initials}",
                       "ja": "{customer.name}、ご迷惑をおかけし申し訳ございません。{team.next_open}以降にご連絡します。"},
            "tags": ["baggage"]}


@pytest.fixture
def deps():
    deps = fake_deps(Clock("2026-11-23T03:00:00.000000Z"))  # a Monday, 12:00 in Tokyo
    deps.settings.put_agent(AIKO)
    deps.settings.put_agent(BOSS)
    return deps


def open_case(deps, *, lang="en", name="kana_t", sentiment="negative", category="complaint", platform_id="100"):
    post = mention(platform_id, lang=lang, handle=name, source_id="x:mentions:1500")
    case = new_case(post, {"category": category, "sentiment": sentiment}, team="support", assignee="aiko",
                    now=deps.now())
    deps.cases.create(case)
    return case


# ---- the template itself -------------------------------------------------------------------------

@pytest.mark.parametrize("change, words", [
    ({"bodies": {"en": "Hi {customer.nmae}"}}, "unknown variable {customer.nmae} (did you mean {customer.name}?)"),
    ({"bodies": {"en": "Hi {order.id}"}}, "unknown variable {order.id}"),
    ({"bodies": {"en": "Hi {customer.name"}}, "unbalanced '{'"),
    ({"bodies": {"fr": "Bonjour"}}, "unknown language 'fr'"),
    ({"bodies": {"en": "  "}}, "bodies.en is empty"),
    ({"bodies": {"en": "x" * 2001}}, "at most 2,000"),
    ({"bodies": {}}, "field 'bodies'"),
    ({"team": "a#b"}, "field 'team'"),
    ({"name": ""}, "field 'name'"),
    ({"tags": ["x" * 41]}, "each tag"),
    ({"colour": "red"}, "unknown field 'colour'"),
])
def test_a_bad_template_is_refused_at_save_time_with_what_to_fix(change, words):
    with pytest.raises(BadRequest, match=re.escape(words)):
        validate_template("lost-bag", {**LOST_BAG, **change}, author="boss", at="t")


def test_template_ids_are_short_lowercase_slugs():
    for bad in ("Lost Bag", "", "-x", "x" * 65, "ü"):
        with pytest.raises(BadRequest, match="template id"):
            validate_template(bad, LOST_BAG, author="boss", at="t")


def test_variables_and_fallbacks_render_in_one_pass():
    body = "Hi {customer.name|friend}, I'm {agent.name}. {{case.id}} is {case.id}; back {team.next_open}"
    text = render(body, "en", {"customer.name": None, "agent.name": "Aiko", "case.id": "c_1"})
    assert text == "Hi friend, I'm Aiko. {case.id} is c_1; back on our next business day"
    assert render("{customer.name}、{team.next_open}", "ja", {}) == "お客様、次の営業日"
    # A value holding a variable is not rendered again.
    assert render("Hi {customer.name}", "en", {"customer.name": "{case.id}"}) == "Hi {case.id}"


def test_the_variables_a_template_uses_are_listed():
    template = validate_template("lost-bag", LOST_BAG, author="boss", at="t")
    assert template.variables == ["customer.name", "agent.initials", "team.next_open"]
    assert template.langs == ["en", "ja"]


# ---- supervisors keep them, agents list theirs ---------------------------------------------------

def save(deps, template_id, **change):
    return templates.save(BOSS, template_id, {**LOST_BAG, **change}, deps)


def test_saving_twice_replaces_and_keeps_the_usage_count(deps):
    view, created = save(deps, "lost-bag")
    assert created and view["usage"] == 0 and view["updated_by"] == "boss"
    deps.templates.count_use("lost-bag", "support")
    view, created = save(deps, "lost-bag", name="Lost bag (v2)")
    assert not created and view["name"] == "Lost bag (v2)" and view["usage"] == 1


def test_only_supervisors_manage_templates(deps):
    with pytest.raises(Forbidden):
        templates.save(AIKO, "lost-bag", LOST_BAG, deps)
    with pytest.raises(Forbidden):
        templates.admin_list(AIKO, {}, deps)
    with pytest.raises(NotFound):
        templates.delete(BOSS, "nope", deps)


def test_lists_are_paged_across_teams_in_full_pages_with_a_lang_filter(deps):
    for index in range(5):
        save(deps, f"s-{index}")
    save(deps, "v-0", team="vip")
    save(deps, "v-1", team="vip", bodies={"ja": "申し訳ございません。"})
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = templates.admin_list(BOSS, params, deps)
        pages += 1
        assert page["templates"], "a cursor never leads to an empty page"
        seen += [t["template_id"] for t in page["templates"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["s-0", "s-1", "s-2", "s-3", "s-4", "v-0", "v-1"] and pages == 3
    english = templates.admin_list(BOSS, {"lang": "en", "team": "vip"}, deps)
    assert [t["template_id"] for t in english["templates"]] == ["v-0"]
    # Exactly full at a team's end, with nothing after: no cursor.
    assert templates.admin_list(BOSS, {"limit": "5", "team": "support"}, deps)["next_cursor"] is None


def test_a_cursor_for_another_listing_is_refused(deps):
    for index in range(3):
        save(deps, f"s-{index}")
    cursor = templates.admin_list(BOSS, {"limit": "1"}, deps)["next_cursor"]
    with pytest.raises(InvalidCursor):
        templates.admin_list(BOSS, {"limit": "1", "lang": "ja", "cursor": cursor}, deps)
    with pytest.raises(BadRequest, match="'lang'"):
        templates.admin_list(BOSS, {"lang": "fr"}, deps)


def test_agents_list_only_their_teams_templates(deps):
    save(deps, "s-0")
    save(deps, "v-0", team="vip")
    mine = templates.agent_list(AIKO, {}, deps)
    assert [t["template_id"] for t in mine["templates"]] == ["s-0"]
    with pytest.raises(Forbidden, match="not in team 'vip'"):
        templates.agent_list(AIKO, {"team": "vip"}, deps)


# ---- replies from templates -------------------------------------------------------------------------

def test_a_reply_from_a_template_is_rendered_for_the_case_and_counted(deps):
    save(deps, "lost-bag")
    deps.settings.put_team_calendar("support", validate_calendar(
        {"time_zone": "Asia/Tokyo", "weekly": {"mon": [["09:00", "12:00"], ["13:00", "18:00"]]}}), author="b", at="t")
    case = open_case(deps, name="Kana")
    queued = reply.request_reply(case, {"template_id": "lost-bag"}, agent_id="aiko", deps=deps)
    assert queued["text"] == ("Hi Kana, sorry about your bag. We are back Monday 23 November at 13:00 (JST).\n"
                              "- AT")
    assert queued["template_id"] == "lost-bag"
    assert deps.templates.get_template("lost-bag").usage == 1
    assert len(deps.outbound_queue.take()) == 1
    japanese, _, _ = templates.render_for_case(open_case(deps, lang="ja", name="佐藤", platform_id="101"), AIKO,
                                               {"template_id": "lost-bag"}, deps)
    assert japanese == "佐藤様、ご迷惑をおかけし申し訳ございません。11月23日(月) 13:00以降にご連絡します。"
    # The agent's own edit of a template goes out as written, and still counts as a use of it.
    edited = reply.request_reply(case, {"template_id": "lost-bag", "text": "Sorry Kana, found it!"},
                                 agent_id="aiko", deps=deps)
    assert edited["text"] == "Sorry Kana, found it!" and edited["template_id"] == "lost-bag"
    assert deps.templates.get_template("lost-bag").usage == 2


def test_a_japanese_case_gets_the_japanese_body_and_a_missing_name_its_fallback(deps):
    save(deps, "lost-bag")
    case = open_case(deps, lang="ja", name="")
    text, _, lang = templates.render_for_case(case, AIKO, {"template_id": "lost-bag"}, deps)
    assert lang == "ja" and text.startswith("お客様、ご迷惑をおかけし") and "次の営業日以降" in text
    text, _, lang = templates.render_for_case(case, AIKO, {"template_id": "lost-bag", "lang": "en",
                                                           "variables": {"customer.name": "Kana"}}, deps)
    assert lang == "en" and text.startswith("Hi Kana,")


def test_template_request_errors(deps):
    save(deps, "lost-bag", bodies={"en": "Sorry, {customer.name}."})
    save(deps, "vip-only", team="vip")
    case = open_case(deps)
    with pytest.raises(NotFound, match="template 'nope' does not exist"):
        reply.request_reply(case, {"template_id": "nope"}, agent_id="aiko", deps=deps)
    with pytest.raises(BadRequest, match="no 'ja' text"):
        reply.request_reply(case, {"template_id": "lost-bag", "lang": "ja"}, agent_id="aiko", deps=deps)
    with pytest.raises(BadRequest, match="unknown variable 'order.id'"):
        reply.request_reply(case, {"template_id": "lost-bag", "variables": {"order.id": "1"}}, agent_id="aiko",
                            deps=deps)
    with pytest.raises(Forbidden, match="team 'vip'"):
        reply.request_reply(case, {"template_id": "vip-only"}, agent_id="aiko", deps=deps)
    assert deps.outbound_queue.take() == [] and deps.templates.get_template("lost-bag").usage == 0


# ---- the brand-voice gate ------------------------------------------------------------------------------

def test_a_blocking_finding_is_a_409_naming_it_and_nothing_is_queued(deps):
    case = open_case(deps)
    with pytest.raises(BrandVoiceBlocked) as refused:
        reply.request_reply(case, {"text": "Sorry! Call us on 090-1234-5678"}, agent_id="aiko", deps=deps)
    assert refused.value.status == 409 and "personal_data" in str(refused.value)
    [finding] = refused.value.extra["findings"]
    assert finding["rule"] == "personal_data" and finding["kind"] == "phone" and finding["span"] == [18, 31]
    assert deps.outbound_queue.take() == []


def test_an_override_reason_lets_it_through_and_is_recorded_on_the_reply_and_in_the_history(deps):
    case = open_case(deps)
    queued = reply.request_reply(case, {"text": "Sorry! Call us on 090-1234-5678",
                                        "override_reason": "the customer asked for the desk's number"},
                                 agent_id="aiko", deps=deps)
    override = queued["brand_voice"]["override"]
    assert override["by"] == "aiko" and override["reason"] == "the customer asked for the desk's number"
    assert [f["rule"] for f in override["findings"]] == ["personal_data"]
    history = deps.cases.history(case.case_id).events
    [event] = [e for e in history if e["event"] == "brand_voice_override"]
    assert event["agent_id"] == "aiko" and event["reply_id"] == queued["reply_id"]
    assert event["findings"][0]["rule"] == "personal_data"
    assert [json.loads(b)["reply_id"] for b in deps.outbound_queue.take()] == [queued["reply_id"]]


def test_warnings_do_not_block_and_are_kept_on_the_reply(deps):
    case = open_case(deps)
    queued = reply.request_reply(case, {"text": "We are checking 🙂"}, agent_id="aiko", deps=deps)
    assert [w["rule"] for w in queued["brand_voice"]["warnings"]] == ["emoji", "apology"]
    assert "override" not in queued["brand_voice"]


def test_supervisor_rules_apply_at_once(deps):
    brand_voice.save(BOSS, {"banned": [{"phrase": "unfortunately", "severity": "block"}],
                            "signature": {"enabled": True, "severity": "block", "pattern": "- {agent.initials}$"}},
                     deps)
    case = open_case(deps, sentiment="neutral", category="question")
    with pytest.raises(BrandVoiceBlocked) as refused:
        reply.request_reply(case, {"text": "Unfortunately not."}, agent_id="aiko", deps=deps)
    assert [f["rule"] for f in refused.value.extra["findings"]] == ["banned", "signature"]
    queued = reply.request_reply(case, {"text": "Yes, it is.\n- AT"}, agent_id="aiko", deps=deps)
    assert queued["delivery_status"] == "queued" and "brand_voice" not in queued


def test_the_check_shows_findings_and_the_rendered_template_without_storing_anything(deps):
    save(deps, "lost-bag", bodies={"en": "Hi {customer.name}, call 03-1234-5678"})
    case = open_case(deps, name="Kana", sentiment="neutral", category="question")
    answer = brand_voice.check_reply(AIKO, case, {"template_id": "lost-bag"}, deps)
    assert answer["rendered"] == "Hi Kana, call 03-1234-5678" and answer["ok"] is False
    assert [(f["rule"], f["span"]) for f in answer["findings"]] == [("personal_data", [14, 26])]
    private = brand_voice.check_reply(AIKO, case, {"template_id": "lost-bag", "mode": "private"}, deps)
    assert private["ok"] is True and private["findings"] == []
    assert deps.templates.get_template("lost-bag").usage == 0 and deps.outbound_queue.take() == []
    with pytest.raises(BadRequest, match="'text'"):
        brand_voice.check_reply(AIKO, case, {"mode": "public"}, deps)


def test_a_template_object_round_trips():
    template = Template(template_id="t", team="support", name="T", bodies={"en": "Hi"}, tags=["a"], usage=3)
    assert Template.from_dict(template.to_dict()) == template
