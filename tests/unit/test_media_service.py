"""Issue 12 services on fakes: WhatsApp files copied at intake (and what happens when that fails), images
attached to replies from the case's own files, and the reply windows per platform."""
from __future__ import annotations

import pytest

from chalicelib.domain import windows
from chalicelib.domain.case import new_case
from chalicelib.domain.errors import BadRequest, Conflict
from chalicelib.domain.media import MAX_COPY_BYTES, MediaItem, media_id
from chalicelib.services import intake, media, reply
from tests.fakes import Clock, FakeQueue, fake_deps, mention

JPEG = b"\xff\xd8\xff\xe0" + b"\x03" * 1000


@pytest.fixture
def clock():
    return Clock("2026-11-23T03:05:00.000000Z")


@pytest.fixture
def deps(clock):
    return fake_deps(clock, outbound_queue=FakeQueue("outbound", visibility_seconds=180, max_receives=5))


def whatsapp_photo(**item):
    photo = MediaItem(**{"type": "image", "platform_media_id": "555", "mime": "image/jpeg",
                         "caption": "broken handle", **item})
    return mention("wamid.HBgM1", "broken handle", platform="whatsapp", kind="dm", author_id="819012345678",
                   source_id="whatsapp:PHONE1", media=[photo])


def open_case(deps, post):
    case = new_case(post, {"priority": "normal"}, team="support", assignee="aiko", now=deps.now())
    deps.cases.create(case)
    deps.cases.add_mention(case.case_id, post, at=post.created_at)
    return case


def test_intake_copies_a_whatsapp_file_to_the_bucket_with_its_size(deps):
    deps.platforms.graph().media_files["555"] = (JPEG, "image/jpeg")
    [kept] = intake.complete(whatsapp_photo(), deps).media
    assert kept.stored and kept.size == len(JPEG) and not kept.error
    assert deps.media.read(kept.stored, max_bytes=MAX_COPY_BYTES) == JPEG


@pytest.mark.parametrize("trouble, why", [
    ("gone", "does not exist"),
    ("too_big", "at most 16777216"),
    ("bucket_down", "media bucket is unavailable"),
    ("no_bucket", "no media bucket is configured"),
])
def test_a_failed_copy_keeps_the_message_with_the_reference_and_the_reason(deps, trouble, why):
    graph = deps.platforms.graph()
    if trouble != "gone":
        graph.media_files["555"] = (b"\x00" * (MAX_COPY_BYTES + 1) if trouble == "too_big" else JPEG, "image/jpeg")
    if trouble == "bucket_down":
        deps.media.fail_puts = 1
    if trouble == "no_bucket":
        deps.media = None
    completed = intake.complete(whatsapp_photo(), deps)
    [kept] = completed.media
    assert kept.platform_media_id == "555" and not kept.stored and why in kept.error
    assert completed.text == "broken handle"
    completed.validate(deps.now())  # still a mention the queue takes


def test_files_of_other_platforms_are_kept_as_their_urls(deps):
    post = mention("1800", "@SoraAir look", media=[MediaItem(type="image", url="https://pbs.twimg.com/media/a.jpg")])
    assert intake.complete(post, deps) is post


def test_an_image_of_the_case_goes_with_a_reply_as_a_link_the_platform_can_fetch(deps):
    deps.platforms.graph().media_files["555"] = (JPEG, "image/jpeg")
    post = intake.complete(whatsapp_photo(), deps)
    case = open_case(deps, post)
    [listed] = media.case_media(case.case_id, [post])
    assert listed["media_id"] == media_id(post.id, 0) and listed["copied"] is True

    reply.request_reply(case, {"text": "Is this the damage?", "attachment": {"media_id": listed["media_id"]}},
                        agent_id="aiko", deps=deps)
    [message] = deps.outbound_queue.take()
    assert reply.deliver_reply(message, deps)["outcome"] == "sent"
    [extra] = deps.platforms.graph().extras
    assert extra["attachment"]["url"].startswith("https://media.example/inbound/")
    assert "expires_in=3600" in extra["attachment"]["url"]


def test_a_file_that_is_not_an_image_cannot_be_attached(deps):
    voice = mention("wamid.V", "", platform="whatsapp", kind="dm", author_id="8190", source_id="whatsapp:PHONE1",
                    media=[MediaItem(type="voice", platform_media_id="9")])
    case = open_case(deps, voice)
    with pytest.raises(BadRequest, match="names a voice"):
        reply.request_reply(case, {"text": "Thanks", "attachment": {"media_id": media_id(voice.id, 0)}},
                            agent_id="aiko", deps=deps)


def test_a_private_reply_to_a_comment_goes_within_7_days_and_a_public_one_any_time(deps, clock):
    post = mention("1234_5678", "my bag is broken", platform="facebook", kind="comment", source_id="facebook:PAGE1")
    case = open_case(deps, post)
    clock.advance(days=8)
    options = {o["how"]: o for o in windows.reply_options(case, deps.now())["options"]}
    assert options["reply"]["allowed"] and not options["private_reply"]["allowed"]
    with pytest.raises(Conflict, match="reply publicly"):
        reply.request_reply(case, {"text": "We sent you a message", "mode": "private"}, agent_id="aiko", deps=deps)
    assert reply.request_reply(case, {"text": "So sorry!"}, agent_id="aiko", deps=deps)["delivery_status"] == "queued"


def test_the_window_runs_from_the_customers_latest_message_not_the_first(deps, clock):
    first = mention("m_1", "my bag", platform="messenger", kind="dm", source_id="messenger:PAGE1",
                    author_id="5550010", created_at="2026-11-20T03:00:00Z")
    case = open_case(deps, first)
    later = mention("m_2", "any news?", platform="messenger", kind="dm", source_id="messenger:PAGE1",
                    author_id="5550010", created_at="2026-11-23T01:00:00Z")
    from chalicelib.domain.case import with_follow_up

    joined = with_follow_up(case, later, "normal", deps.now())
    assert windows.last_customer_message(joined).isoformat().startswith("2026-11-23T01:00")
    windows.check_send(joined, "private", {}, deps.now())   # two hours ago: a standard message
    with pytest.raises(Conflict, match="HUMAN_AGENT"):
        windows.check_send(case, "private", {}, deps.now())  # three days ago: the tag only


def test_tags_and_templates_only_where_the_platform_has_them(deps):
    x_case = open_case(deps, mention("1800", "@SoraAir help"))
    with pytest.raises(BadRequest, match="Messenger and Instagram direct messages"):
        reply.request_reply(x_case, {"text": "Hi", "tag": "HUMAN_AGENT"}, agent_id="aiko", deps=deps)
    with pytest.raises(BadRequest, match="for WhatsApp conversations"):
        reply.request_reply(x_case, {"text": "Hi", "whatsapp_template": {"name": "a", "language": "en"}},
                            agent_id="aiko", deps=deps)
    assert windows.render_template("Hello {{1}}, case {{2}} {{3}}", ["Kana", "R-1"]) == "Hello Kana, case R-1 {{3}}"


def test_erasing_a_customer_removes_the_copies_of_their_files(deps):
    import json

    from chalicelib.domain.agent import Agent
    from chalicelib.services import assign, privacy

    deps.settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=5))
    deps.platforms.graph().media_files["555"] = (JPEG, "image/jpeg")
    post = whatsapp_photo(caption="my bag is lost and the handle is broken, terrible service")
    post = mention(post.platform_id, post.media[0].caption, platform="whatsapp", kind="dm", author_id="819012345678",
                   source_id="whatsapp:PHONE1", media=post.media)
    assert intake.triage_message(json.dumps(post.to_dict()), deps)["outcome"] == "triaged"
    for body in deps.triaged_queue.take():
        assign.assign_message(body, deps)
    assert len(deps.media.files) == 1
    answer = privacy.erase_customer("whatsapp:819012345678", {}, agent_id="boss", deps=deps)
    assert answer["status"] == "erased" and deps.media.files == {}


def test_a_photo_sent_alone_in_a_dm_reaches_an_agent_but_a_wordless_public_one_does_not(deps):
    import json

    photo = MediaItem(type="image", url="https://scontent.xx.fbcdn.net/v/bag.jpg", mime="image/jpeg")
    dm = mention("m_photo1", "", platform="messenger", kind="dm", author_id="7301", source_id="messenger:1",
                 media=[photo], lang="")
    answer = intake.triage_message(json.dumps(dm.to_dict()), deps)
    assert answer["outcome"] == "triaged", answer
    assert any("no words" in why for why in answer["triage"]["why"])
    [queued] = [json.loads(body) for body in deps.triaged_queue.bodies]
    assert queued["mention"]["media"][0]["url"] == photo.url
    # The same photo under a public post, with no words and not addressed to anyone: no case from that alone.
    public = mention("1_9", "", platform="facebook", kind="comment", author_id="7302", source_id="facebook:1",
                     media=[photo], lang="")
    assert intake.triage_message(json.dumps(public.to_dict()), deps)["outcome"] == "no_case"
