"""Issue 12 through the real Chalice app on moto: inbound media kept and shown, images attached to
replies, and what may be sent outside the platform's standard window.

WhatsApp files are copied at triage into the stack's MediaBucket (created by infra/template.yaml on moto);
the Graph and X clients are the in-memory fakes of tests/fakes.py, so what was sent can be read back.
"""
from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.bootstrap import deps
from tests.fakes import FakeGraph, FakeX, StaticPlatforms
from tests.test_app import open_case, send, team  # noqa: F401  (team is a fixture)

JSON = {"Content-Type": "application/json"}
T0 = "2026-11-23T03:00:00Z"
PHONE = "106540352242922"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000
BUCKET = "socialcare-test-media-123456789012"


@pytest.fixture
def world(app_module):
    """The clock, the fake platforms and the stack's media bucket, as every service sees them."""
    from chalicelib.adapters.media_store import S3MediaStore

    state = {"now": "2026-11-23T03:05:00.000000Z"}
    wired = deps()
    wired.now = lambda: state["now"]
    graph, x = FakeGraph(), FakeX()
    wired.platforms = StaticPlatforms(wired.platforms, x=x, graph=graph)
    wired.media = S3MediaStore(BUCKET)
    return {"clock": state, "graph": graph, "x": x, "module": app_module}


def whatsapp(platform_id, *, media=None, text="", created_at=T0, author_id="819012345678"):
    return {"platform": "whatsapp", "kind": "dm", "platform_id": platform_id, "text": text, "created_at": created_at,
            "source_id": f"whatsapp:{PHONE}", "conversation_id": author_id,
            "author": {"id": author_id, "name": "Kana"}, **({"media": media} if media else {})}


def messenger(platform_id, text, *, created_at=T0, author_id="5550010"):
    return {"platform": "messenger", "kind": "dm", "platform_id": platform_id, "text": text,
            "created_at": created_at, "source_id": "messenger:104857600213455", "conversation_id": author_id,
            "author": {"id": author_id, "name": "Jess Nomad"}}


def case_of(client, headers, platform):
    listed = client.http.get("/cases?status=open", headers=headers).json_body["cases"]
    return next(case for case in listed if case["platform"] == platform)


def post(client, path, headers, body):
    return client.http.post(path, headers={**headers, **JSON}, body=json.dumps(body))


def test_the_stack_has_a_private_encrypted_media_bucket_that_expires_files_with_their_cases(app_module):
    import sys

    from tests.conftest import ROOT

    sys.path.insert(0, str(ROOT / "infra"))
    import merge

    bucket = merge.load(ROOT / "infra" / "template.yaml")["Resources"]["MediaBucket"]
    properties = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    retention = next(r for r in properties["LifecycleConfiguration"]["Rules"] if r["Id"] == "retention")
    assert retention["ExpirationInDays"] == deps().config.retention_cases_days
    # Created on moto with the stack, and named where the deploy writes it into the stage (MEDIA_BUCKET).
    assert boto3.client("s3", region_name="us-east-1").head_bucket(Bucket=BUCKET)


def test_a_whatsapp_photo_is_copied_at_intake_shown_in_the_case_and_opened_by_a_short_lived_link(
        client, team, world):  # noqa: F811
    media_id = "1375642123456789"
    world["graph"].media_files[media_id] = (JPEG, "image/jpeg")
    photo = {"type": "image", "platform_media_id": media_id, "mime": "image/jpeg",
             "caption": "my suitcase arrived broken, the handle is torn off"}
    open_case(world["module"], whatsapp("wamid.HBgM1", media=[photo], text=photo["caption"]))

    case = case_of(client, team["aiko"], "whatsapp")
    detail = client.http.get(f"/cases/{case['case_id']}", headers=team["aiko"]).json_body
    [shown] = detail["media"]
    assert shown["type"] == "image" and shown["copied"] is True and shown["size"] == len(JPEG)
    assert shown["caption"].startswith("my suitcase")

    link = client.http.get(shown["link"], headers=team["aiko"])
    assert link.status_code == 200, link.body
    assert link.json_body["source"] == "bucket" and BUCKET in link.json_body["url"]
    assert link.json_body["expires_at"].startswith("2026-11-23T03:10:00")  # five minutes
    # The bucket holds the very bytes WhatsApp served, although its URL has long expired.
    [obj] = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=BUCKET)["Contents"]
    stored = boto3.client("s3", region_name="us-east-1").get_object(Bucket=BUCKET, Key=obj["Key"])
    assert stored["Body"].read() == JPEG and stored["ContentType"] == "image/jpeg"

    missing = client.http.get(f"/cases/{case['case_id']}/media/md_0000000000000000", headers=team["aiko"])
    assert missing.status_code == 404 and "no media" in missing.json_body["error"]
    assert client.http.get(f"/cases/{case['case_id']}/media/x", headers=team["aiko"]).status_code == 404


def test_a_failed_copy_keeps_the_message_and_the_reference_and_is_retried_when_opened(client, team, world):  # noqa: F811
    photo = {"type": "image", "platform_media_id": "999", "mime": "image/jpeg", "caption": "broken suitcase handle"}
    open_case(world["module"], whatsapp("wamid.HBgM2", media=[photo], text=photo["caption"]))
    case = case_of(client, team["aiko"], "whatsapp")
    [shown] = client.http.get(f"/cases/{case['case_id']}", headers=team["aiko"]).json_body["media"]
    assert shown["copied"] is False and "does not exist" in shown["error"]

    world["graph"].media_files["999"] = (JPEG, "image/jpeg")  # WhatsApp serves it again
    link = client.http.get(shown["link"], headers=team["aiko"])
    assert link.status_code == 200 and link.json_body["source"] == "bucket"


def test_reply_options_outside_messengers_window_and_the_human_agent_tag(client, team, world):  # noqa: F811
    open_case(world["module"], messenger("m_1", "My bag never arrived, please help"))
    case = case_of(client, team["aiko"], "messenger")
    world["clock"]["now"] = "2026-11-24T09:00:00.000000Z"   # 30 hours after the customer's message

    options = client.http.get(f"/cases/{case['case_id']}/reply-options", headers=team["aiko"]).json_body
    by_how = {option["how"]: option for option in options["options"]}
    assert by_how["standard"]["allowed"] is False and by_how["standard"]["until"] == "2026-11-24T03:00:00Z"
    assert by_how["human_agent"]["allowed"] is True and by_how["human_agent"]["until"] == "2026-11-30T03:00:00Z"
    assert by_how["human_agent"]["send_with"] == {"tag": "HUMAN_AGENT"}

    refused = post(client, f"/cases/{case['case_id']}/replies", team["aiko"], {"text": "So sorry, we found it."})
    assert refused.status_code == 409 and "HUMAN_AGENT" in refused.json_body["error"]
    assert "2026-11-30T03:00:00Z" in refused.json_body["error"]

    tagged = post(client, f"/cases/{case['case_id']}/replies", team["aiko"],
                  {"text": "So sorry, we found it.", "tag": "HUMAN_AGENT"})
    assert tagged.status_code == 202, tagged.body
    send(world["module"])
    assert world["graph"].extras[-1]["tag"] == "HUMAN_AGENT"

    world["clock"]["now"] = "2026-12-01T03:00:01.000000Z"   # past 7 days: nothing until the customer writes
    late = post(client, f"/cases/{case['case_id']}/replies", team["aiko"], {"text": "Hello?", "tag": "HUMAN_AGENT"})
    assert late.status_code == 409 and "writes again" in late.json_body["error"]
    wrong = post(client, f"/cases/{case['case_id']}/replies", team["aiko"], {"text": "Hi", "tag": "ACCOUNT_UPDATE"})
    assert wrong.status_code == 400


def test_whatsapp_after_24_hours_lists_the_accounts_templates_and_sends_one_with_variables(
        client, team, world, monkeypatch):  # noqa: F811
    world["graph"].templates = [
        {"name": "case_follow_up", "language": "en", "category": "UTILITY", "variables": 2,
         "body": "Hello {{1}}, there is news on your request {{2}}. Reply to this message to continue."}]
    monkeypatch.setattr(deps(), "config", deps().config.__class__(**{**deps().config.__dict__,
                                                                     "whatsapp_waba_id": "102290129340398"}))
    open_case(world["module"], whatsapp("wamid.HBgM3", text="Where is my refund?"))
    case = case_of(client, team["aiko"], "whatsapp")
    world["clock"]["now"] = "2026-11-25T03:00:00.000000Z"

    options = client.http.get(f"/cases/{case['case_id']}/reply-options", headers=team["aiko"]).json_body
    by_how = {option["how"]: option for option in options["options"]}
    assert by_how["standard"]["allowed"] is False
    [listed] = by_how["whatsapp_template"]["templates"]
    assert listed["name"] == "case_follow_up" and listed["variables"] == 2

    free = post(client, f"/cases/{case['case_id']}/replies", team["aiko"], {"text": "Your refund is on its way"})
    assert free.status_code == 409 and "whatsapp_template" in free.json_body["error"]
    short = post(client, f"/cases/{case['case_id']}/replies", team["aiko"],
                 {"whatsapp_template": {"name": "case_follow_up", "language": "en", "variables": ["Kana"]}})
    assert short.status_code == 400 and "takes 2 variables" in short.json_body["error"]

    sent = post(client, f"/cases/{case['case_id']}/replies", team["aiko"],
                {"whatsapp_template": {"name": "case_follow_up", "language": "en", "variables": ["Kana", "R-77"]}})
    assert sent.status_code == 202, sent.body
    assert sent.json_body["text"].startswith("Hello Kana, there is news on your request R-77")
    send(world["module"])
    extra = world["graph"].extras[-1]
    assert extra["template"] == {"name": "case_follow_up", "language": "en"}
    assert extra["template_variables"] == ["Kana", "R-77"]
    assert world["graph"].template_calls == 1   # listed once, then from the container's cache


def test_an_image_goes_with_an_x_reply_and_an_instagram_comment_reply_refuses_one(client, team, world):  # noqa: F811
    from tests.test_app import mention

    open_case(world["module"], mention("1800000000000000001", "@SoraAir my bag is lost at HND, please help"))
    case = case_of(client, team["aiko"], "x")
    path = f"/cases/{case['case_id']}/replies"
    image = {"url": "https://cdn.example.com/claim-form.png"}
    assert post(client, path, team["aiko"], {"text": "Here is the form", "attachment": image}).status_code == 202
    send(world["module"])
    assert world["x"].uploads == [(image["url"], False)]
    assert world["x"].media_sent[-1][0] == "reply"

    for bad, why in (({"url": "http://cdn.example.com/a.png"}, "https://"),
                     ({"url": "https://cdn.example.com/a.exe"}, ".jpg or .png"),
                     ({"media_id": "md_0000000000000000"}, "no media"),
                     ({"url": "https://cdn.example.com/a.png", "mime": "image/gif"}, "JPEG and PNG")):
        answer = post(client, path, team["aiko"], {"text": "Another", "attachment": bad})
        assert answer.status_code == 400 and why in answer.json_body["error"], answer.body

    ig_comment = {"platform": "instagram", "kind": "comment", "platform_id": "17900000000000001",
                  "text": "My bag is lost, please help", "created_at": T0, "source_id": "instagram:17841405822304911",
                  "conversation_id": "17800000000000001", "author": {"id": "17840000000000009", "handle": "ayaka"}}
    open_case(world["module"], ig_comment)
    ig = case_of(client, team["aiko"], "instagram")
    refused = post(client, f"/cases/{ig['case_id']}/replies", team["aiko"], {"text": "Sorry!", "attachment": image})
    assert refused.status_code == 400 and "text only" in refused.json_body["error"]
    options = client.http.get(f"/cases/{ig['case_id']}/reply-options", headers=team["aiko"]).json_body
    assert options["attachments"]["public"] is False
