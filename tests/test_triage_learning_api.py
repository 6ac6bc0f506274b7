"""Triage that learns (issue 14) through the real Chalice app on moto: the no-case review list, promote
(a case through the triaged queue) and confirm, the digest, the corrections export, retraining into the
model bucket, versions and rollback; who may do what; bad input answered 4xx with a reason."""
from __future__ import annotations

import json

import pytest

from chalicelib.bootstrap import deps
from chalicelib.domain.paging import encode_cursor
from tests.api import call, frozen_clock
from tests.test_app import assign, mention, team, triage  # noqa: F401  (team is a fixture)

JSON = {"Content-Type": "application/json"}
MODEL_BUCKET = "socialcare-test-models-123456789012"
T0 = "2026-11-23T03:00:00.000000Z"
PRAISE = "@SoraAir you are the best, thank you!"
SARCASM = "@SoraAir so the Zephyr 5 bootloops out of the box. amazing launch"
RETWEET = "RT @kana: @SoraAir worst airline ever, lost my bag"


@pytest.fixture
def models_bucket(aws, monkeypatch):
    """The stack's model bucket, as the deploy names it to the functions (versioned, as the template says)."""
    import boto3

    boto3.client("s3", region_name="us-east-1").put_bucket_versioning(
        Bucket=MODEL_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    monkeypatch.setenv("TRIAGE_MODELS_BUCKET", MODEL_BUCKET)
    return MODEL_BUCKET


@pytest.fixture
def clock(app_module):
    return frozen_clock(T0)




def listed(client, headers, query="case=false"):
    answer = client.http.get(f"/mentions?{query}", headers=headers)
    assert answer.status_code == 200, answer.body
    return [m["mention_id"] for m in answer.json_body["mentions"]]


def test_review_promote_confirm_and_the_labels_they_leave(models_bucket, client, app_module, team, clock):  # noqa: F811
    aiko, ken, boss = team["aiko"], team["ken"], team["boss"]
    triage(app_module, mention("1", SARCASM, author_id="51"), mention("2", PRAISE, author_id="52"),
           mention("3", RETWEET, author_id="53"))

    assert sorted(listed(client, aiko)) == ["x:1", "x:2", "x:3"]
    assert listed(client, ken, "case=false&sentiment=negative") == ["x:3"]
    assert listed(client, ken, "case=false&day=2026-11-22") == []
    page = client.http.get("/mentions?case=false&limit=1", headers=aiko).json_body
    assert len(page["mentions"]) == 1 and page["next_cursor"]
    shown = client.http.get("/mentions?case=false&category=praise", headers=aiko).json_body["mentions"]
    assert {m["mention_id"] for m in shown} == {"x:1", "x:2"}
    sarcasm = next(m for m in shown if m["mention_id"] == "x:1")
    assert sarcasm["text"] == SARCASM and sarcasm["triage"]["case"] is False and sarcasm["triage"]["why"]

    promoted = call(client, "POST", "/mentions/x:1/promote", aiko,
                    {"reason": "the phone is broken", "category": "complaint", "priority": "high"})
    assert promoted.status_code == 202, promoted.body
    case_id = promoted.json_body["case_id"]
    assign(app_module)
    detail = client.http.get(f"/cases/{case_id}", headers=aiko)
    assert detail.status_code == 200, detail.body
    case = detail.json_body["case"]
    assert case["category"] == "complaint" and case["priority"] == "high" and "promoted" in case["tags"]
    again = call(client, "POST", "/mentions/x:1/promote", ken)
    assert again.status_code == 409 and "already" in again.json_body["error"]

    assert call(client, "POST", "/mentions/x:2/confirm", ken).status_code == 200
    assert call(client, "POST", "/mentions/x:2/confirm", ken).status_code == 409
    assert listed(client, aiko) == ["x:3"]

    export = client.http.get("/admin/triage-corrections?format=jsonl", headers=boss)
    assert export.status_code == 200 and export.headers["Content-Type"].startswith("application/x-ndjson")
    rows = {json.loads(line)["id"]: json.loads(line) for line in export.body.decode().splitlines()}
    assert rows["x:1"]["label"] == {"case": True, "category": "complaint", "priority": "high"}
    assert rows["x:1"]["text"] == SARCASM and rows["x:1"]["lang"] == "en"
    assert rows["x:2"]["label"] == {"case": False} and rows["x:2"]["corrected_by"] == ["ken"]
    assert client.http.get("/admin/triage-corrections", headers=aiko).status_code == 403

    clock["now"] = "2026-11-24T00:10:00.000000Z"
    digest = client.http.get("/reports/triage-digest", headers=boss)
    assert digest.status_code == 200, digest.body
    assert digest.json_body["day"] == "2026-11-23" and digest.json_body["negative"] == 1
    assert digest.json_body["top"][0]["mention_id"] == "x:3" and digest.json_body["by_platform"] == {"x": 1}
    assert client.http.get("/reports/triage-digest", headers=aiko).status_code == 403


def test_bad_review_requests_say_what_to_fix(models_bucket, client, app_module, team, clock):  # noqa: F811
    aiko = team["aiko"]
    triage(app_module, mention("1", PRAISE, author_id="51"))
    for query, words in (("", "case"), ("case=true", "GET /cases"), ("case=false&sentiment=angry", "sentiment"),
                         ("case=false&day=23-11-2026", "YYYY-MM-DD"), ("case=false&limit=0", "limit"),
                         ("case=false&cursor=bm9wZQ", "cursor"),
                         # Forged positions: a day that is no day, a key no index entry can have.
                         ("case=false&cursor=" + encode_cursor({"day": "2026-11-2x"}), "cursor"),
                         ("case=false&day=2026-11-23&cursor=" + encode_cursor({"day": "2026-11-23", "pos": encode_cursor(
                             {"d": "2026-11-23", "k": "x#" + "9" * 400})}), "cursor")):
        answer = client.http.get(f"/mentions?{query}", headers=aiko)
        assert answer.status_code == 400 and words in answer.json_body["error"], (query, answer.body)
    for body in ({"category": "angry"}, {"colour": "red"}, ["x"]):
        answer = call(client, "POST", "/mentions/x:1/promote", aiko, body)
        assert answer.status_code == 400, (body, answer.body)
    assert call(client, "POST", "/mentions/x:404/promote", aiko).status_code == 404
    assert listed(client, aiko) == ["x:1"]


def test_retraining_into_the_model_bucket_versions_and_rollback(models_bucket, client, app_module, team, clock):  # noqa: F811
    boss, aiko = team["boss"], team["aiko"]
    assert call(client, "POST", "/admin/triage-models", aiko).status_code == 403

    trained = call(client, "POST", "/admin/triage-models", boss)
    assert trained.status_code == 201, trained.body
    version = trained.json_body["version"]
    assert trained.json_body["activated"] is True and trained.json_body["uri"].startswith(f"s3://{MODEL_BUCKET}/")
    assert trained.json_body["figures"]["n"] > 0 and trained.json_body["compared_with"]["version"] == "baseline"
    listing = client.http.get("/admin/triage-models", headers=boss).json_body
    assert listing["active"] == version and listing["versions"][0]["active"] is True

    # The triage stage uses it: the active version's model is loaded from the bucket.
    from chalicelib.services.intake import current_model

    assert current_model(deps()) is not None

    rolled = call(client, "POST", "/admin/triage-models/baseline/activate", boss)
    assert rolled.status_code == 200 and rolled.json_body["previous"] == version
    assert client.http.get("/admin/triage-models", headers=boss).json_body["active"] == "baseline"
    deps().caches.clear()
    assert current_model(deps()) is None
    assert call(client, "POST", "/admin/triage-models/v-nope/activate", boss).status_code == 404
    assert call(client, "POST", "/admin/triage-models", boss, {"activate": "yes"}).status_code == 400
