"""Issue 12 on the wire: inbound media in each platform's real shapes, and replies that carry an image,
a HUMAN_AGENT tag or a WhatsApp template, sent by the real clients to the fake servers over HTTP."""
from __future__ import annotations

import time

import pytest

from chalicelib.adapters.platforms.http import HttpClient
from chalicelib.adapters.platforms.meta import GraphClient, MetaRequestError
from chalicelib.adapters.platforms.meta_webhooks import normalize_delivery
from chalicelib.adapters.platforms.x import XClient, XRequestError
from chalicelib.domain.mention import InvalidMention, Mention
from local.fake_graph import FakeGraph, messaging_delivery, whatsapp_media_delivery
from local.fake_x import FakeX

TOKEN = "test-page-token"
PAGE, IG, PHONE, WABA = "104857600213455", "17841405822304911", "106540352242922", "102290129340398"
NOW = 1_795_000_000  # 2026-11-18
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 3000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 500


def only(payload):
    mentions, skipped = normalize_delivery(payload, now="2026-11-20T00:00:00Z")
    assert len(mentions) == 1, skipped
    return mentions[0]


# ---- inbound: webhooks ----------------------------------------------------------------------

def test_a_whatsapp_photo_keeps_its_media_id_type_and_caption_and_the_caption_is_its_text():
    delivery = whatsapp_media_delivery(WABA, PHONE, wa_id="819012345678", name="Kana", wamid="wamid.HBgM1",
                                       media_id="1375642123456789", caption="荷物が壊れていました", timestamp=NOW)
    mention = only(delivery)
    [photo] = mention.media
    assert (photo.type, photo.platform_media_id, photo.mime) == ("image", "1375642123456789", "image/jpeg")
    assert mention.text == photo.caption == "荷物が壊れていました" and mention.lang == "ja"
    # The queued shape carries it, and reads back the same.
    assert Mention.from_dict(mention.to_dict()).media == mention.media


def test_a_voice_note_a_document_and_a_sticker_are_kept_without_text():
    voice = only(whatsapp_media_delivery(WABA, PHONE, wa_id="8190", name="", wamid="wamid.V", media_id="11",
                                         kind="audio", mime_type="audio/ogg; codecs=opus", voice=True, timestamp=NOW))
    assert voice.text == "" and voice.media[0].type == "voice" and voice.media[0].mime.startswith("audio/ogg")
    document = only(whatsapp_media_delivery(WABA, PHONE, wa_id="8190", name="", wamid="wamid.D", media_id="12",
                                            kind="document", mime_type="application/pdf", filename="receipt.pdf",
                                            caption="the receipt", timestamp=NOW))
    assert (document.media[0].type, document.media[0].filename) == ("file", "receipt.pdf")
    sticker = only(whatsapp_media_delivery(WABA, PHONE, wa_id="8190", name="", wamid="wamid.S", media_id="13",
                                           kind="sticker", mime_type="image/webp", timestamp=NOW))
    assert sticker.media[0].type == "sticker"


def test_messenger_and_instagram_attachments_are_kept_even_without_text_and_links_are_not():
    url = "https://scontent.xx.fbcdn.net/v/t1.15752-9/bag.jpg?_nc_cat=1&oh=abc"
    photo_only = only(messaging_delivery("page", PAGE, sender_id="5550010", mid="m_1", text=None,
                                         timestamp_ms=NOW * 1000,
                                         attachments=[{"type": "image", "payload": {"url": url}}]))
    assert photo_only.text == "" and [(m.type, m.url) for m in photo_only.media] == [("image", url)]

    both = only(messaging_delivery("instagram", IG, sender_id="17840000000000009", mid="aWdfZAG1", text="see this",
                                   timestamp_ms=NOW * 1000, attachments=[
                                       {"type": "video", "payload": {"url": "https://lookaside.fbsbx.com/ig/v.mp4"}},
                                       {"type": "audio", "payload": {"url": "https://cdn.fbsbx.com/a.mp4"}},
                                       {"type": "image", "payload": {"url": "https://x.fbcdn.net/s.png",
                                                                     "sticker_id": 369239263222822}}]))
    assert [m.type for m in both.media] == ["video", "audio", "sticker"] and both.text == "see this"

    mentions, skipped = normalize_delivery(messaging_delivery(
        "page", PAGE, sender_id="5550010", mid="m_2", text=None, timestamp_ms=NOW * 1000,
        attachments=[{"type": "fallback", "payload": {"url": "https://example.com/article"}}]))
    assert mentions == [] and "attachments: fallback" in skipped[0]


def test_a_facebook_comment_with_a_photo_keeps_the_photo():
    value = {"item": "comment", "verb": "add", "comment_id": "1234_5678", "post_id": f"{PAGE}_1234",
             "from": {"id": "6000", "name": "Jess"}, "message": "my bag after your flight",
             "photo": "https://scontent.xx.fbcdn.net/v/t39.30808-6/photo.jpg", "created_time": NOW}
    mention = only({"object": "page", "entry": [{"id": PAGE, "time": NOW,
                                                 "changes": [{"field": "feed", "value": value}]}]})
    assert [(m.type, m.url) for m in mention.media] == [("image", value["photo"])]


def test_media_lists_are_bounded_and_checked_like_every_other_field():
    base = {"platform": "whatsapp", "kind": "dm", "platform_id": "wamid.1", "text": "", "created_at":
            "2026-11-18T00:00:00Z", "author": {"id": "8190"}}
    item = {"type": "image", "platform_media_id": "1"}
    assert len(Mention.from_dict({**base, "media": [item] * 10}).media) == 10
    for bad, why in (([item] * 11, "at most 10"), ([{"type": "hologram", "url": "https://a/b"}], r"media\[0\]\.type"),
                     ([{"type": "image", "url": "javascript:alert(1)"}], r"http\(s\)"),
                     ([{"type": "image"}], "needs a url"), ({"type": "image"}, "must be a list"),
                     ([{"type": "image", "url": "https://a/b", "size": -1}], "size")):
        with pytest.raises(InvalidMention, match=why):
            Mention.from_dict({**base, "media": bad})
    # A mention without media keeps the shape it always had.
    assert "media" not in Mention.from_dict(base).to_dict()


# ---- inbound: X ----------------------------------------------------------------------------

@pytest.fixture
def fake_x():
    server = FakeX(bearer_token="bearer", user_token="user").start()
    yield server
    server.stop()


def x_client(fake: FakeX) -> XClient:
    return XClient(fake.url, "bearer", "user", http=HttpClient(base_url=fake.url, sleep=lambda s: None, timeout=5))


def test_x_mentions_carry_their_photos_and_video_frames_from_includes_media(fake_x):
    fake_x.add_post("kana_t", "@SoraAir the trolley broke my bag", media=[
        {"type": "photo", "alt_text": "a torn suitcase"}, {"type": "video"}])
    [mention] = x_client(fake_x).mentions_page(fake_x.brand_user_id).mentions
    photo, video = mention.media
    assert photo.type == "image" and photo.url.startswith("https://pbs.twimg.com/media/")
    assert photo.caption == "a torn suitcase"
    assert video.type == "video" and "video_thumb" in video.url
    sent = fake_x.requests[-1]["query"]
    assert "attachments.media_keys" in sent["expansions"] and "url" in sent["media.fields"]


# ---- outbound: X ---------------------------------------------------------------------------

def test_an_x_reply_uploads_the_image_then_posts_with_its_media_id(fake_x, monkeypatch):
    from chalicelib.adapters.platforms import meta

    post = fake_x.add_post("kana_t", "@SoraAir where is my bag?")
    monkeypatch.setattr(meta, "download", lambda url, **kw: PNG)
    client = x_client(fake_x)
    media_id = client.upload_image_url("https://cdn.example.com/form.png")
    reply_id = client.reply(post["id"], "Here is the claim form", media_ids=[media_id])
    upload, reply = fake_x.posted[-2:]
    assert upload["kind"] == "media_upload" and upload["media_type"] == "image/png" and upload["size"] == len(PNG)
    assert reply["id"] == reply_id and reply["media_ids"] == [media_id]
    # A DM carries one image; an id X never issued is refused.
    dm = fake_x.add_user("kana_t")
    client.send_dm(dm["id"], "And a photo", media_id=client.upload_image(JPEG, "image/jpeg", for_dm=True))
    assert fake_x.posted[-1]["kind"] == "dm" and len(fake_x.posted[-1]["media_ids"]) == 1
    with pytest.raises(XRequestError, match="media IDs are invalid"):
        client.reply(post["id"], "Another form", media_ids=["123"])
    monkeypatch.setattr(meta, "download", lambda url, **kw: b"GIF89a....")
    with pytest.raises(XRequestError, match="not a JPEG or PNG"):
        client.upload_image_url("https://cdn.example.com/anim.png")


# ---- Graph: media, images, tags, templates -------------------------------------------------

@pytest.fixture
def graph():
    server = FakeGraph(access_token=TOKEN).start()
    yield server
    server.stop()


def graph_client(fake: FakeGraph) -> GraphClient:
    base_url = fake.url + "/v21.0"
    return GraphClient(base_url, TOKEN, http=HttpClient(base_url=base_url, sleep=lambda s: None, timeout=5))


def test_a_whatsapp_media_file_is_fetched_by_id_then_downloaded_with_the_token(graph):
    media_id = graph.add_whatsapp_media(JPEG, "image/jpeg")
    data, mime = graph_client(graph).media_file(media_id, max_bytes=16 * 1024 * 1024)
    assert (data, mime) == (JPEG, "image/jpeg")
    download = graph.requests[-1]
    assert download["path"].endswith(f"/_media_download/{media_id}") and download["auth"] == "header"
    with pytest.raises(MetaRequestError, match="copies at most 100"):
        graph_client(graph).media_file(media_id, max_bytes=100)


def test_images_go_by_url_on_messenger_whatsapp_and_facebook_comments(graph):
    client = graph_client(graph)
    graph.add_customer_message("messenger", "5550010", "my bag", name="Jess Nomad", created_time=time.time())
    graph.add_customer_message("whatsapp", "819012345678", "my bag", created_time=time.time())
    image = {"url": "https://cdn.example.com/claim.jpg"}

    client.send_message("messenger", PAGE, "5550010", "Here is the form", attachment=image)
    attachment, text = graph.posted[-2:]
    assert attachment["kind"] == "attachment" and attachment["attachment_url"] == image["url"]
    assert text["text"] == "Here is the form"

    client.send_message("whatsapp", PHONE, "819012345678", "Here is the form", attachment=image)
    assert graph.posted[-1]["type"] == "image" and graph.posted[-1]["image"] == {"link": image["url"]}
    assert graph.posted[-1]["text"] == "Here is the form"   # the caption

    comment = graph.add_page_comment("my bag is broken", author_id="6000")
    client.reply_to_comment("facebook", comment["id"], "Sorry! Here is the form", attachment_url=image["url"])
    assert graph.posted[-1]["attachment_url"] == image["url"]
    with pytest.raises(MetaRequestError, match="text only"):
        client.reply_to_comment("instagram", "17900000000000001", "Sorry", attachment_url=image["url"])


def test_human_agent_tag_reaches_past_24_hours_and_templates_carry_their_variables(graph):
    client = graph_client(graph)
    graph.add_customer_message("messenger", "5550010", "my bag", name="Jess", created_time=time.time() - 30 * 3600)
    with pytest.raises(MetaRequestError) as refused:
        client.send_message("messenger", PAGE, "5550010", "Found it")
    assert refused.value.window_closed
    client.send_message("messenger", PAGE, "5550010", "Found it", tag="HUMAN_AGENT")
    assert graph.posted[-1]["tag"] == "HUMAN_AGENT" and graph.posted[-1]["messaging_type"] == "MESSAGE_TAG"

    templates = {(t["name"], t["language"]): t for t in client.message_templates(WABA)}
    follow_up = templates[("case_follow_up", "en")]
    assert follow_up["variables"] == 2 and "{{1}}" in follow_up["body"]

    graph.add_customer_message("whatsapp", "819012345678", "hi", created_time=time.time() - 48 * 3600)
    client.send_message("whatsapp", PHONE, "819012345678", "[template]",
                        template={"name": "case_follow_up", "language": "en"}, template_variables=["Kana", "R-77"])
    assert graph.posted[-1]["template"] == {"name": "case_follow_up", "language": "en", "variables": ["Kana", "R-77"]}
    with pytest.raises(MetaRequestError, match="Number of parameters does not match"):
        client.send_message("whatsapp", PHONE, "819012345678", "[template]",
                            template={"name": "case_follow_up", "language": "en"}, template_variables=["Kana"])


def test_an_x_dm_with_a_photo_keeps_it(fake_x):
    fake_x.add_dm("kana_t", "this is what arrived", media=[{"type": "photo"}])
    page = x_client(fake_x).dm_events_page(brand_user_id=fake_x.brand_user_id)
    [dm] = [m for m in page.mentions if m.text == "this is what arrived"]
    assert [m.type for m in dm.media] == ["image"] and dm.media[0].url.startswith("https://pbs.twimg.com/")


# ---- polled copies keep their files too (whichever of the webhook and the poll arrives first) ---------

def test_a_polled_messenger_photo_without_text_is_kept_with_its_file():
    from chalicelib.adapters.platforms.meta import MESSAGE_FIELDS, _direct_message_mention

    assert "attachments{" in MESSAGE_FIELDS, "polling asks Graph for the files"
    message = {"id": "m_polled1", "from": {"id": "7301", "name": "Ken"}, "created_time": "2026-11-23T09:20:00+0000",
               "message": "", "attachments": {"data": [
                   {"id": "att1", "mime_type": "image/jpeg", "name": "bag.jpg", "size": 48213,
                    "image_data": {"url": "https://scontent.xx.fbcdn.net/v/bag.jpg", "preview_url": "https://x/p.jpg"}},
                   {"id": "att2", "mime_type": "audio/mpeg", "name": "voice.mp3", "file_url": "https://cdn.fbsbx.com/v/voice.mp3"},
                   {"id": "att3", "mime_type": "image/png"}]}}   # no URL: nothing to keep
    mention = _direct_message_mention(message, "messenger", "messenger:1")
    assert mention.text == ""
    assert [(m.type, m.url, m.mime) for m in mention.media] == [
        ("image", "https://scontent.xx.fbcdn.net/v/bag.jpg", "image/jpeg"),
        ("audio", "https://cdn.fbsbx.com/v/voice.mp3", "audio/mpeg")]
    assert mention.media[0].filename == "bag.jpg" and mention.media[0].size == 48213
    # A message with neither words nor files is still refused.
    import pytest

    with pytest.raises(TypeError):
        _direct_message_mention({"id": "m_2", "from": {"id": "7301"}, "created_time": "2026-11-23T09:20:00+0000"},
                                "messenger", "messenger:1")


def test_a_polled_facebook_comment_keeps_its_photo():
    from chalicelib.adapters.platforms.meta import COMMENT_FIELDS, _feed_comment_mention

    assert "attachment{" in COMMENT_FIELDS
    comment = {"id": "1_5", "message": "Look at my suitcase", "from": {"id": "555", "name": "Ken"},
               "created_time": "2026-11-23T09:20:00+0000",
               "attachment": {"type": "photo", "url": "https://www.facebook.com/photo.php?fbid=1",
                              "media": {"image": {"src": "https://scontent.xx.fbcdn.net/v/suitcase.jpg",
                                                  "height": 720, "width": 960}}}}
    mention = _feed_comment_mention(comment, "PAGE_1", "facebook:PAGE")
    assert [(m.type, m.url) for m in mention.media] == [("image", "https://scontent.xx.fbcdn.net/v/suitcase.jpg")]
    sticker = {**comment, "attachment": {"type": "sticker", "media": {"image": {"src": "https://x/s.png"}}}}
    assert _feed_comment_mention(sticker, "PAGE_1", "facebook:PAGE").media == []


def test_an_image_delivered_then_its_text_failing_is_ambiguous_never_sent_again(graph, monkeypatch):
    """Messenger takes an image and its text as two messages: when the text fails after the image went,
    the reply must not be retried as if nothing was sent (the customer would get the image twice)."""
    from chalicelib.adapters.platforms.meta import MetaAmbiguous, MetaTransientError

    client = graph_client(graph)
    graph.add_customer_message("messenger", "5550010", "my bag", name="Jess Nomad", created_time=time.time())
    real_call, calls = client._call, []

    def text_times_out(method, path, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise MetaTransientError("Graph API unreachable: timed out")
        return real_call(method, path, **kwargs)

    monkeypatch.setattr(client, "_call", text_times_out)
    with pytest.raises(MetaAmbiguous, match="image was sent"):
        client.send_message("messenger", PAGE, "5550010", "Here is the form",
                            attachment={"url": "https://cdn.example.com/claim.jpg"})
    assert [p["kind"] for p in graph.posted] == ["attachment"]
