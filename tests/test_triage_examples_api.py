"""Labelled files a brand uploads for retraining (issue 14), through the real Chalice app on moto:
``POST /admin/triage-examples`` keeps them as corrections the export and retraining use; a file uploaded
twice adds nothing; a bad line is refused with its number; only supervisors may upload."""
from __future__ import annotations

import json

from chalicelib.bootstrap import deps
from tests.test_app import mention, team, triage  # noqa: F401  (team is a fixture)
from tests.test_triage_learning_api import clock, models_bucket  # noqa: F401  (fixtures)
from tests.unit.test_triage_learning import LAUNCH, NEW_POSTS

NDJSON = {"Content-Type": "application/x-ndjson"}


def lines(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def upload(client, headers, body, content_type=NDJSON):
    return client.http.post("/admin/triage-examples", headers={**headers, **content_type},
                            body=body.encode("utf-8") if isinstance(body, str) else body)


def exported(client, headers):
    answer = client.http.get("/admin/triage-corrections?format=jsonl", headers=headers)
    assert answer.status_code == 200, answer.body
    return [json.loads(line) for line in answer.body.decode().splitlines()]


def state(mention_id):
    return deps().mentions.stored(mention_id).state


LAUNCH_FILE = lines({"id": f"launch-{n}", "platform": "x", "kind": "mention", "lang": "en", "text": text,
                     "label": {"sentiment": "negative", "category": "complaint"}} for n, text in enumerate(LAUNCH))


def test_an_uploaded_file_teaches_retraining_a_new_kind_of_complaint(models_bucket, client, app_module, team,  # noqa: F811
                                                                      clock):  # noqa: F811
    boss = team["boss"]
    # Before: posts about the launch are dismissed as praise.
    triage(app_module, mention("50", NEW_POSTS[0], author_id="50"))
    assert state("x:50") == "no_case"

    answer = upload(client, boss, LAUNCH_FILE)
    assert answer.status_code == 201, answer.body
    assert answer.json_body == {"accepted": len(LAUNCH), "already_known": 0}
    rows = exported(client, boss)
    assert sorted(r["text"] for r in rows) == sorted(LAUNCH)
    assert all(r["id"].startswith("upload:") and r["corrected_by"] == ["boss"] and r["lang"] == "en"
               and r["label"] == {"sentiment": "negative", "category": "complaint"} for r in rows)

    # The same file again, and the export of what is kept, add nothing.
    again = upload(client, boss, LAUNCH_FILE, {"Content-Type": "text/plain; charset=utf-8"})
    assert again.status_code == 200 and again.json_body == {"accepted": 0, "already_known": len(LAUNCH)}
    export_body = client.http.get("/admin/triage-corrections?format=jsonl", headers=boss).body
    echoed = upload(client, boss, export_body, {"Content-Type": "application/json"})
    assert echoed.json_body == {"accepted": 0, "already_known": len(LAUNCH)}
    assert len(exported(client, boss)) == len(LAUNCH)

    # Retraining learns from them: the launch posts are corrections it trains on (or holds out).
    clock["now"] = "2026-11-23T04:00:00.000000Z"
    trained = client.http.post("/admin/triage-models", headers={**boss, "Content-Type": "application/json"})
    assert trained.status_code == 201, trained.body
    assert trained.json_body["activated"] is True, trained.json_body["refused_because"]
    examples = trained.json_body["examples"]
    assert examples["corrections"] + examples["held_out_corrections"] == len(LAUNCH)
    # New posts of that kind, never seen, now become cases.
    triage(app_module, *(mention(f"6{n}", text, author_id=f"6{n}") for n, text in enumerate(NEW_POSTS)))
    assert [state(f"x:6{n}") for n in range(len(NEW_POSTS))] == ["triaged"] * len(NEW_POSTS)

    # A later file that changes a label records only that change.
    relabel = lines([{"text": LAUNCH[0], "label": {"sentiment": "negative", "category": "product_feedback"}},
                     {"text": LAUNCH[1], "label": {"sentiment": "negative"}}])
    assert upload(client, boss, relabel).json_body == {"accepted": 1, "already_known": 1}
    by_text = {r["text"]: r for r in exported(client, boss)}
    assert by_text[LAUNCH[0]]["label"]["category"] == "product_feedback"


def test_past_the_cap_the_newest_are_kept_and_every_reader_says_older_ones_were_left_out(
        models_bucket, client, app_module, team, clock, monkeypatch):  # noqa: F811
    from chalicelib.services import triage_models

    boss = team["boss"]
    older, newer = LAUNCH[:6], LAUNCH[6:]
    assert upload(client, boss, lines({"text": t, "lang": "en", "label": {"sentiment": "negative",
                                                                           "category": "complaint"}}
                                      for t in older)).status_code == 201
    clock["now"] = "2026-11-23T04:00:00.000000Z"
    assert upload(client, boss, lines({"text": t, "lang": "en", "label": {"sentiment": "negative",
                                                                           "category": "complaint"}}
                                      for t in newer)).status_code == 201
    monkeypatch.setattr(triage_models, "MAX_EXPORT", 2 * len(newer))  # two corrections a post

    # The export: the newest posts, after a first line that says older ones were left out and how to ask.
    note, *rows = exported(client, boss)
    assert note["older_left_out"] is True and "to=2026-11-23T04:00:00" in note["note"]
    assert sorted(r["text"] for r in rows) == sorted(newer)
    answer = client.http.get("/admin/triage-corrections", headers=boss).json_body
    assert answer["count"] == len(newer) and answer["older_left_out"] is True
    earlier = client.http.get("/admin/triage-corrections?to=2026-11-23T03:59:59Z", headers=boss).json_body
    assert sorted(r["text"] for r in earlier["examples"]) == sorted(older) and "older_left_out" not in earlier

    # The export uploaded back: its note is skipped, its rows are known, and the answer says what it compared.
    echoed = upload(client, boss, client.http.get("/admin/triage-corrections?format=jsonl", headers=boss).body)
    assert echoed.status_code == 200, echoed.body
    assert (echoed.json_body["accepted"], echoed.json_body["already_known"]) == (0, len(newer))
    assert echoed.json_body["older_left_out"] is True and "compared with the newest" in echoed.json_body["note"]

    # Retraining learns from the newest and its version says older corrections were left out.
    clock["now"] = "2026-11-23T05:00:00.000000Z"
    trained = client.http.post("/admin/triage-models", headers={**boss, "Content-Type": "application/json"})
    assert trained.status_code == 201, trained.body
    examples = trained.json_body["examples"]
    assert examples["older_corrections_left_out"] is True and examples["corrections_read"] == 2 * len(newer)
    assert examples["corrections"] + examples["held_out_corrections"] == len(newer)
    listed = client.http.get("/admin/triage-models", headers=boss).json_body["versions"]
    assert listed[0]["examples"]["older_corrections_left_out"] is True


def test_bad_files_are_refused_naming_the_line_and_keep_nothing(models_bucket, client, app_module, team):  # noqa: F811
    boss, aiko = team["boss"], team["aiko"]
    good = json.dumps({"text": "@NimbusTel my Zephyr 5 bootloops", "lang": "en", "label": {"sentiment": "negative"}})
    for bad, words in (
        ("{not json", "line 2 is not valid JSON"),
        (json.dumps({"text": "hi", "label": {"sentiment": "angry"}}), "line 2: 'label.sentiment' must be one of"),
        (json.dumps({"lang": "en", "label": {"sentiment": "negative"}}), "line 2: 'text' is missing"),
        (json.dumps({"text": "x" * 2001, "label": {"case": True}}), "line 2: 'text' is 2,001 characters"),
        (json.dumps({"text": "hi", "label": {"case": "yes"}}), "line 2: 'label.case' must be true or false"),
        (json.dumps({"text": "hi", "label": {}}), "line 2: 'label' must be an object"),
        (json.dumps({"text": "hi", "label": {"sentimnet": "negative"}}), "unknown field(s) sentimnet"),
        (json.dumps([good]), "line 2 must be a JSON object"),
    ):
        answer = upload(client, boss, good + "\n" + bad + "\n")
        assert answer.status_code == 400 and words in answer.json_body["error"], (bad[:40], answer.body)
    several = upload(client, boss, "\n".join([good, "[]", "", good, "{}"]))
    assert several.status_code == 400
    assert "line 2" in several.json_body["error"] and "line 5" in several.json_body["error"]
    assert upload(client, boss, b"\xff\xfe\n").status_code == 400
    assert upload(client, boss, "").status_code == 400
    assert exported(client, boss) == []

    too_big = upload(client, boss, (good + "\n") * (1024 * 1024 // len(good) + 1))
    assert too_big.status_code == 413 and "1 MiB" in too_big.json_body["error"]
    too_many = upload(client, boss, "{}\n" * 2001)
    assert too_many.status_code == 413 and "2,000" in too_many.json_body["error"]

    assert upload(client, aiko, good).status_code == 403
    assert exported(client, boss) == []
    assert upload(client, boss, good).json_body == {"accepted": 1, "already_known": 0}
