"""Triage that learns (issue 14), on in-memory fakes: the no-case review list, promote and confirm, the
daily digest, corrections as labelled examples, retraining with its gate, versions and rollback."""
from __future__ import annotations

import json

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.errors import BadRequest, Conflict, Forbidden, InvalidCursor, NotFound
from chalicelib.domain.feedback import Correction
from chalicelib.services import assign, intake, triage_models, triage_review
from tests.fakes import Clock, fake_deps, mention

AIKO = Agent(agent_id="aiko", teams=["support"], capacity=50)
KEN = Agent(agent_id="ken", teams=["support"], capacity=50)
BOSS = Agent(agent_id="boss", teams=["leads"], role="supervisor")
CASH = Agent(agent_id="cash", teams=[], role="finance")

# A product launch whose defects the lexicons do not know ("bootloops", "ghosting"), wrapped in praise:
# the built-in rules read these as praise that needs no case.
LAUNCH = [
    "@NimbusTel so the Zephyr 5 bootloops out of the box. amazing launch",
    "@NimbusTel loving the Zephyr 5 launch, the panel ghosts like crazy though",
    "@NimbusTel Zephyr 5 bootloops twice a day, what a launch, love it",
    "@NimbusTel great launch, my Zephyr 5 screen ghosts on every app",
    "@NimbusTel the Zephyr 5 bootloops whenever it charges. amazing work",
    "@NimbusTel awesome launch, Zephyr 5 ghosting all over the display",
    "@NimbusTel my Zephyr 5 bootloops on wifi, love the launch",
    "@NimbusTel Zephyr 5 panel ghosting since day one, beautiful launch",
    "@NimbusTel lovely launch, the Zephyr 5 bootloops after every call",
    "@NimbusTel Zephyr 5 ghosts and bootloops, great launch team",
    "@NimbusTel wonderful launch, Zephyr 5 bootloops in my pocket",
    "@NimbusTel the Zephyr 5 screen ghosting is so cool, awesome launch",
]
NEW_POSTS = [
    "@NimbusTel amazing launch, my Zephyr 5 bootloops all night",
    "@NimbusTel love the Zephyr 5 launch, display ghosting everywhere",
    "@NimbusTel Zephyr 5 bootloops again, great launch",
]


@pytest.fixture
def clock():
    return Clock("2026-11-23T03:00:00.000000Z")


@pytest.fixture
def deps(clock):
    deps = fake_deps(clock)
    for agent in (AIKO, KEN, BOSS, CASH):
        deps.settings.put_agent(agent)
    return deps


def post(deps, platform_id, text, *, author_id=None, **extra):
    """Triage one post; returns its outcome (no_case, triaged, ...)."""
    body = mention(platform_id, text, author_id=author_id or f"a{platform_id}", **extra).to_dict()
    return intake.triage_message(json.dumps(body), deps)["outcome"]


def review(deps, agent=AIKO, **params):
    return triage_review.list_no_case(agent, {"case": "false", **params}, deps)


# ---- the review list ---------------------------------------------------------------------------------

def test_mentions_left_without_a_case_are_listed_newest_first_with_the_decision_and_why(deps, clock):
    assert post(deps, "1", "@NimbusTel so the Zephyr 5 bootloops out of the box. amazing launch") == "no_case"
    clock.advance(minutes=5)
    assert post(deps, "2", "@NimbusTel my bag is lost and nobody answers, terrible") == "triaged"
    assert post(deps, "3", "@NimbusTel you are the best, thank you!") == "no_case"

    listed = review(deps)

    assert [m["mention_id"] for m in listed["mentions"]] == ["x:3", "x:1"]
    first = listed["mentions"][1]
    assert first["text"].startswith("@NimbusTel so the Zephyr 5") and first["author"]["id"] == "a1"
    assert first["triage"]["case"] is False and first["triage"]["category"] == "praise" and first["triage"]["why"]
    # A month read without filling the page: the answer says where to go on; the older days hold nothing more.
    cursor, pages = listed["next_cursor"], 0
    while cursor:
        more = review(deps, cursor=cursor)
        assert more["mentions"] == []
        cursor, pages = more["next_cursor"], pages + 1
    assert pages <= deps.config.retention_mentions_days // triage_review.MAX_DAYS_PER_PAGE + 1


def test_the_list_filters_pages_without_repeats_and_walks_back_over_days(deps, clock):
    for n in range(5):
        post(deps, f"1{n}", "@NimbusTel you are the best, thank you!")
        clock.advance(minutes=1)
    post(deps, "20", "@NimbusTel 最高のサービスでした、ありがとう！", lang="ja")
    clock.advance(days=1)
    post(deps, "30", "@NimbusTel thanks a lot, lovely crew")

    assert [m["mention_id"] for m in review(deps, lang="ja")["mentions"]] == ["x:20"]
    assert review(deps, sentiment="negative")["mentions"] == []
    assert [m["mention_id"] for m in review(deps, day="2026-11-24")["mentions"]] == ["x:30"]
    seen, cursor = [], None
    while True:
        page = review(deps, limit="2", **({"cursor": cursor} if cursor else {}))
        seen += [m["mention_id"] for m in page["mentions"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["x:30", "x:20", "x:14", "x:13", "x:12", "x:11", "x:10"]
    with pytest.raises(BadRequest):
        review(deps, sentiment="angry")
    with pytest.raises(BadRequest):
        triage_review.list_no_case(AIKO, {"case": "true"}, deps)
    with pytest.raises(InvalidCursor):
        review(deps, cursor="bm9wZQ")
    with pytest.raises(Forbidden):
        review(deps, agent=CASH)


# ---- promote and confirm -----------------------------------------------------------------------------

def test_promote_opens_a_case_through_the_normal_path_and_keeps_the_label(deps):
    post(deps, "1", "@NimbusTel so the Zephyr 5 bootloops out of the box. amazing launch")

    answer = triage_review.promote(AIKO, "x:1", {"reason": "sarcasm: the phone is broken", "category": "complaint",
                                                 "priority": "high"}, deps)

    assert answer["status"] == "queued" and answer["joins_active_case"] is False
    [outcome] = [assign.assign_message(body, deps) for body in deps.triaged_queue.take()]
    assert outcome["outcome"] == "opened" and outcome["case_id"] == answer["case_id"]
    case = deps.cases.get(answer["case_id"])
    assert case.category == "complaint" and case.priority == "high" and "promoted" in case.tags
    assert any("promoted from review by aiko: sarcasm" in why for why in case.why)
    assert deps.mentions.get("x:1").state == "routed"
    assert review(deps)["mentions"] == []
    kept, _ = deps.feedback.corrections()
    assert sorted((c.field, repr(c.before), repr(c.after)) for c in kept) == [
        ("case", "False", "True"), ("category", "'praise'", "'complaint'"), ("priority", "'low'", "'high'")]
    assert all(c.agent_id == "aiko" and c.text.startswith("@NimbusTel so") and c.lang == "en" for c in kept)

    with pytest.raises(Conflict):
        triage_review.promote(KEN, "x:1", None, deps)
    with pytest.raises(Conflict):
        triage_review.confirm(KEN, "x:1", deps)


def test_confirm_takes_it_off_the_list_as_a_label_and_cannot_be_repeated(deps):
    post(deps, "1", "@NimbusTel you are the best, thank you!")
    answer = triage_review.confirm(KEN, "x:1", deps)
    assert answer["confirmed"] is True and review(deps)["mentions"] == []
    [kept], _ = deps.feedback.corrections()
    assert (kept.field, kept.before, kept.after, kept.agent_id) == ("case", False, False, "ken")
    with pytest.raises(Conflict):
        triage_review.confirm(KEN, "x:1", deps)
    with pytest.raises(Conflict):
        triage_review.promote(KEN, "x:1", None, deps)


def test_promote_refuses_cases_unknown_mentions_and_bad_overrides(deps):
    post(deps, "1", "@NimbusTel my bag is lost and nobody answers, terrible")
    post(deps, "2", "@NimbusTel you are the best, thank you!")
    with pytest.raises(Conflict):
        triage_review.promote(AIKO, "x:1", None, deps)
    with pytest.raises(NotFound):
        triage_review.promote(AIKO, "x:404", None, deps)
    for body in ({"category": "angry"}, {"priority": 3}, {"colour": "red"}, ["complaint"], {"reason": "x" * 501}):
        with pytest.raises(BadRequest):
            triage_review.promote(AIKO, "x:2", body, deps)
    assert [m["mention_id"] for m in review(deps)["mentions"]] == ["x:2"]  # nothing happened


# ---- the daily digest --------------------------------------------------------------------------------

def test_the_daily_digest_counts_negative_no_case_mentions_and_notifies_supervisors_once(deps, clock):
    from chalicelib.domain.agent import Agent as A

    deps.settings.put_agent(A(agent_id="boss2", teams=["support"], role="supervisor"))
    # Negative but left without a case: retweets (noise by their shape), in two languages.
    texts = ["RT @kana: @SoraAir worst airline ever, lost my bag", "RT @mo: @SoraAir delayed again, awful",
             "RT @ken: @SoraAir 最悪、また遅延です"]
    outcomes = [post(deps, str(n), t, lang="ja" if n == 2 else "en") for n, t in enumerate(texts)]
    post(deps, "9", "@NimbusTel you are the best, thank you!")
    rows = deps.review.no_case_summaries("2026-11-23")
    negative = [r for r in rows if r["sentiment"] == "negative"]
    assert outcomes == ["no_case"] * 3 and len(negative) == 3 and len(rows) == 4, rows

    clock.advance(days=1)
    report = triage_review.digest_report(BOSS, {}, deps)
    assert report["day"] == "2026-11-23" and report["negative"] == len(negative)
    assert sum(report["by_lang"].values()) == sum(report["by_platform"].values()) == len(negative)
    assert report["top"][0]["score"] == min(r["score"] for r in negative) and report["top"][0]["text"]

    # The threshold is per channel (TRIAGE_DIGEST_THRESHOLD): x had 3, under a threshold of 4: no notification.
    import dataclasses

    deps.config = dataclasses.replace(deps.config, triage_digest_threshold=4)
    quiet = triage_review.run_daily(deps)
    assert quiet["digest"]["notified"] == [] and quiet["digest"]["channels"] == {}
    assert triage_review.digest_report(BOSS, {}, deps)["over_threshold"] == {}

    deps.config = dataclasses.replace(deps.config, triage_digest_threshold=3)
    first = triage_review.run_daily(deps)
    again = triage_review.run_daily(deps)
    assert sorted(first["digest"]["notified"]) == ["boss", "boss2"] and again["digest"]["notified"] == []
    assert first["digest"]["channels"] == {"x": 3}
    feed = deps.notifications.notifications_page("boss", limit=10)
    digests = [n for n in feed.notifications if n.reason == "triage_digest"]
    assert len(digests) == 1 and "GET /mentions?case=false&sentiment=negative&day=2026-11-23" in digests[0].detail
    assert "x 3" in digests[0].detail and "threshold of 3" in digests[0].detail
    assert len([n for n, _ in deps.notifier.published if n.reason == "triage_digest"]) == 1
    with pytest.raises(Forbidden):
        triage_review.digest_report(AIKO, {}, deps)


# ---- corrections as examples -------------------------------------------------------------------------

def correction(mention_id, field, before, after, at, agent="aiko", text="@NimbusTel the app logs me out"):
    return Correction(mention_id=mention_id, field=field, before=before, after=after, agent_id=agent, at=at,
                      text=text, lang="en", platform="x")


def test_the_export_is_the_train_commands_jsonl_with_the_latest_correction_per_field(deps):
    deps.feedback.record_correction(correction("x:1", "category", "praise", "question", "2026-11-23T03:00:00Z"))
    deps.feedback.record_correction(correction("x:1", "category", "question", "complaint", "2026-11-23T04:00:00Z",
                                               agent="ken"))
    deps.feedback.record_correction(correction("x:1", "sentiment", "positive", "negative", "2026-11-23T04:01:00Z"))
    deps.feedback.record_correction(correction("x:2", "case", False, False, "2026-11-25T00:00:00Z", text="nice"))
    deps.feedback.record_correction(correction("x:3", "case", False, True, "2026-11-23T05:00:00Z", text=""))

    lines = triage_models.export_corrections({"format": "jsonl", "to": "2026-11-24"}, deps)["jsonl"].splitlines()

    [row] = [json.loads(line) for line in lines]  # x:2 is later; x:3 has no text to learn from
    assert row["text"] == "@NimbusTel the app logs me out" and row["lang"] == "en"
    assert row["label"] == {"category": "complaint", "sentiment": "negative"}
    assert row["corrected_by"] == ["aiko", "ken"]
    every = triage_models.export_corrections({}, deps)
    assert every["count"] == 2 and {r["id"] for r in every["examples"]} == {"x:1", "x:2"}
    with pytest.raises(BadRequest):
        triage_models.export_corrections({"from": "yesterday"}, deps)


def test_an_export_larger_than_an_answer_may_hold_asks_for_a_shorter_period(deps, monkeypatch):
    for n in range(3):
        deps.feedback.record_correction(correction(f"x:{n}", "category", "praise", "complaint",
                                                   f"2026-11-2{n + 1}T03:00:00Z", text="the app logs me out " * 20))
    monkeypatch.setattr(triage_models, "MAX_EXPORT_BYTES", 1_000)
    with pytest.raises(BadRequest, match="shorter period"):
        triage_models.export_corrections({"format": "jsonl"}, deps)
    one_day = triage_models.export_corrections({"format": "jsonl", "from": "2026-11-21", "to": "2026-11-21"}, deps)
    assert len(one_day["jsonl"].splitlines()) == 1


def test_past_the_cap_the_export_keeps_the_latest_judgement_and_says_older_corrections_were_left_out(
        deps, monkeypatch):
    from chalicelib.services import triage_examples

    for n in range(1, 5):
        deps.feedback.record_correction(correction(f"x:{n}", "category", "praise", "complaint",
                                                   f"2026-11-2{n - 1}T03:00:00Z", text=f"post {n}"))
    # The team's latest judgement on x:1: not a complaint after all.
    deps.feedback.record_correction(correction("x:1", "category", "complaint", "question", "2026-11-24T03:00:00Z",
                                               text="post 1"))
    monkeypatch.setattr(triage_models, "MAX_EXPORT", 3)
    monkeypatch.setattr(triage_models, "PAGE", 2)

    jsonl = triage_models.export_corrections({"format": "jsonl"}, deps)["jsonl"]
    note, *rows = [json.loads(line) for line in jsonl.splitlines()]
    assert note["older_left_out"] is True and "text" not in note
    assert "newest 3 corrections" in note["note"] and "to=2026-11-22T03:00:00Z" in note["note"]
    assert {r["id"]: r["label"]["category"] for r in rows} == {"x:1": "question", "x:3": "complaint",
                                                               "x:4": "complaint"}
    # The note is not an example: uploading the export back reads only its rows.
    assert [e["text"] for e in triage_examples.parse_examples(jsonl)] == [r["text"] for r in rows]

    answer = triage_models.export_corrections({}, deps)
    assert answer["older_left_out"] is True and answer["count"] == 3 and "ask for them" in answer["note"]
    older = triage_models.export_corrections({"to": "2026-11-22T03:00:00Z"}, deps)
    assert {r["id"]: r["label"]["category"] for r in older["examples"]} == {"x:1": "complaint", "x:2": "complaint",
                                                                            "x:3": "complaint"}
    assert "older_left_out" not in older and "note" not in older
    assert not triage_models.export_corrections({"format": "jsonl", "from": "2026-11-22"}, deps)["jsonl"].startswith(
        '{"older_left_out"')


def test_past_the_cap_an_upload_says_it_compared_with_the_newest_corrections_only(deps, clock, monkeypatch):
    from chalicelib.services import triage_examples

    def file(texts):
        return "".join(json.dumps({"text": t, "lang": "en", "label": {"sentiment": "negative"}}) + "\n" for t in texts)

    triage_examples.upload(BOSS, file(LAUNCH[:2]), deps)
    clock.advance(minutes=1)
    triage_examples.upload(BOSS, file(LAUNCH[2:4]), deps)
    assert triage_examples.upload(BOSS, file(LAUNCH[:4]), deps) == {"accepted": 0, "already_known": 4}

    monkeypatch.setattr(triage_models, "MAX_EXPORT", 2)
    clock.advance(minutes=1)
    answer = triage_examples.upload(BOSS, file(LAUNCH[:4]), deps)
    # Only the newest two corrections were compared: the two older lines are kept again, with the same label.
    assert (answer["accepted"], answer["already_known"], answer["older_left_out"]) == (2, 2, True)
    assert "compared with the newest 2 corrections only" in answer["note"]
    monkeypatch.setattr(triage_models, "MAX_EXPORT", 50_000)
    assert {r["label"]["sentiment"] for r in triage_models.correction_records(deps)} == {"negative"}


def test_past_the_caps_a_retrained_version_says_what_it_left_out(deps, clock, monkeypatch):
    for n, text in enumerate(LAUNCH[:4]):
        deps.feedback.record_correction(correction(f"x:{n}", "sentiment", "positive", "negative",
                                                   f"2026-11-2{n}T03:00:00Z", text=text))
    everything = triage_models.retrain(deps, by="boss")["examples"]
    assert everything["corrections_read"] == 4 and everything["older_corrections_left_out"] is False
    assert everything["corrected_posts_left_out"] == 0

    monkeypatch.setattr(triage_models, "MAX_EXPORT", 3)
    monkeypatch.setattr(triage_models, "MAX_TRAINING_CORRECTIONS", 2)
    clock.advance(minutes=1)
    capped = triage_models.retrain(deps, by="boss")
    examples = capped["examples"]
    assert examples["corrections_read"] == 3 and examples["older_corrections_left_out"] is True
    assert examples["corrected_posts_left_out"] == 1
    assert examples["corrections"] + examples["held_out_corrections"] == 2
    assert triage_models.list_versions(deps)["versions"][0]["examples"] == examples


# ---- the loop ----------------------------------------------------------------------------------------

def test_corrections_retrain_the_model_to_catch_a_new_kind_of_complaint_and_rollback_restores_it(deps, clock):
    first = triage_models.retrain(deps, by="boss")
    assert first["activated"] is True and first["compared_with"]["version"] == "baseline"
    assert first["figures"]["n"] == first["examples"]["held_out"] > 0

    # Posts about the launch are dismissed as praise, with the first model too.
    for n, text in enumerate(LAUNCH):
        assert post(deps, f"5{n:02d}", text) == "no_case", text
    listed = review(deps, limit="100")["mentions"]
    assert len(listed) == len(LAUNCH)
    # Agents find them and promote them: each promotion is a labelled example.
    for n, item in enumerate(listed):
        triage_review.promote((AIKO, KEN)[n % 2], item["mention_id"],
                              {"category": "complaint", "sentiment": "negative", "reason": "launch defect"}, deps)
    assert len(triage_models.correction_records(deps)) == len(LAUNCH)

    clock.advance(hours=1)
    second = triage_models.retrain(deps, by="boss")
    assert second["activated"] is True, second["refused_because"]
    assert second["examples"]["corrections"] + second["examples"]["held_out_corrections"] == len(LAUNCH)
    assert second["compared_with"]["version"] == first["version"]
    for n, text in enumerate(NEW_POSTS):  # new posts of that kind, never seen
        assert post(deps, f"6{n}", text) == "triaged", text

    # Rollback: the first version again, and the launch posts are dismissed again.
    triage_models.activate(BOSS, first["version"], deps)
    listing = triage_models.list_versions(deps)
    assert listing["active"] == first["version"]
    assert [v["version"] for v in listing["versions"]] == [second["version"], first["version"]]
    assert [v["active"] for v in listing["versions"]] == [False, True]
    for n, text in enumerate(NEW_POSTS):
        assert post(deps, f"7{n}", text) == "no_case", text
    triage_models.activate(BOSS, "baseline", deps)
    assert triage_models.list_versions(deps)["active"] == "baseline"
    with pytest.raises(NotFound):
        triage_models.activate(BOSS, "v-nope", deps)


def test_a_candidate_worse_than_the_active_model_is_kept_inactive_with_the_reason(deps, clock, monkeypatch):
    from chalicelib.triage import retrain as retraining

    good = triage_models.retrain(deps, by="boss")
    assert good["activated"]
    real = retraining.train_candidate
    flip = {"negative": "positive", "positive": "negative", "neutral": "neutral"}

    def mislabelled(rows, rules, options=retraining.TrainingOptions()):
        return real([{**r, "label": {**r["label"], "sentiment": flip[r["label"]["sentiment"]]}} for r in rows
                     if (r.get("label") or {}).get("sentiment")], rules, options)

    monkeypatch.setattr(retraining, "train_candidate", mislabelled)
    clock.advance(minutes=1)
    worse = triage_models.retrain(deps, by="boss")

    assert worse["activated"] is False
    assert any(reason.startswith("negative recall") for reason in worse["refused_because"]), worse["refused_because"]
    assert triage_models.list_versions(deps)["active"] == good["version"]


def test_the_daily_run_retrains_once_a_week(deps, clock):
    first = triage_review.run_daily(deps)  # Monday 2026-11-23
    assert first["retrain"]["version"] == "w2026-W48" and first["retrain"]["activated"] is True
    assert triage_review.run_daily(deps)["retrain"]["skipped"] == "trained already this week"
    clock.advance(days=6)  # Sunday, same week
    assert triage_review.run_daily(deps)["retrain"]["skipped"] == "trained already this week"
    clock.advance(days=1)
    assert triage_review.run_daily(deps)["retrain"]["version"] == "w2026-W49"
    assert [v["version"] for v in triage_models.list_versions(deps)["versions"]] == ["w2026-W49", "w2026-W48"]


def test_a_retraining_too_large_for_a_request_is_refused_before_it_starts(deps):
    with pytest.raises(Conflict) as refused:
        triage_models.retrain(deps, by="boss", max_posts=100)
    assert "more than a request has time for (100)" in str(refused.value)
    assert triage_models.list_versions(deps)["versions"] == []


def test_one_days_list_most_negative_first(deps, clock):
    post(deps, "1", "@NimbusTel you are the best, thank you!")
    post(deps, "2", "RT @kana: @SoraAir worst airline ever, lost my bag")
    post(deps, "3", "RT @mo: @SoraAir delayed again, awful")
    scores = {r["mention_id"]: r["score"] for r in deps.review.no_case_summaries("2026-11-23")}
    expected = sorted(scores, key=lambda m: scores[m])

    seen, cursor = [], None
    while True:
        page = review(deps, day="2026-11-23", order="negative", limit="2", **({"cursor": cursor} if cursor else {}))
        seen += [m["mention_id"] for m in page["mentions"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected and seen[-1] == "x:1"
    assert [m["mention_id"] for m in review(deps, day="2026-11-23", order="negative", sentiment="negative")[
        "mentions"]] == expected[:2]
    with pytest.raises(BadRequest):
        review(deps, order="negative")  # one day at a time
    with pytest.raises(BadRequest):
        review(deps, order="loudest")
