"""The triage corrections store's contract, on the in-memory fake and on DynamoDB (moto, from
infra/template.yaml) alike: one correction kept once, typed before/after values, periods oldest
first (or newest first), pages that join up, cursors it did not issue refused; a capped read
(``services.triage_models.read_corrections``) keeps the newest and says older ones were left out."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.feedback import Correction
from chalicelib.services import triage_models
from tests.fakes_triage import FakeFeedbackStore


@pytest.fixture(params=["fake", "dynamo"])
def feedback(request):
    if request.param == "fake":
        return FakeFeedbackStore()
    request.getfixturevalue("aws")
    from chalicelib.adapters.feedback_store import DynamoFeedbackStore

    return DynamoFeedbackStore("socialcare-test-settings")


def correction(mention_id="x:1", field="category", before="other", after="baggage", *, at="2026-11-23T03:00:00.000000Z",
               agent_id="a1", **extra):
    return Correction(mention_id=mention_id, field=field, before=before, after=after, agent_id=agent_id, at=at, **extra)


def test_a_correction_is_kept_once_with_its_values_typed(feedback):
    first = correction(text="my bag is lost 😢", lang="en", platform="x", case_id="c1")
    assert feedback.record_correction(first) is True
    assert feedback.record_correction(correction(text="my bag is lost 😢", lang="en", platform="x", case_id="c1")) is False
    assert feedback.record_correction(correction(field="case", before=False, after=True)) is True
    assert feedback.record_correction(correction(field="tags", before=[], after=["refund", "vip"], at="2026-11-23T04:00:00Z")) is True

    found, position = feedback.corrections(limit=10)

    assert position is None
    assert sorted((c.field, repr(c.before), repr(c.after)) for c in found) == [
        ("case", "False", "True"), ("category", "'other'", "'baggage'"), ("tags", "[]", "['refund', 'vip']")]
    assert found[-1].after == ["refund", "vip"]
    kept = next(c for c in found if c.field == "category")
    assert kept == first and kept.correction_id == first.correction_id
    assert next(c for c in found if c.field == "case").after is True


def test_a_period_is_inclusive_and_a_day_means_all_of_it(feedback):
    for at in ("2026-11-22T23:59:59Z", "2026-11-23T00:00:00Z", "2026-11-23T23:59:59.999999Z", "2026-11-24T00:00:00Z"):
        feedback.record_correction(correction(at=at))

    found, _ = feedback.corrections(since="2026-11-23", until="2026-11-23", limit=10)
    assert [c.at for c in found] == ["2026-11-23T00:00:00Z", "2026-11-23T23:59:59.999999Z"]
    found, _ = feedback.corrections(since="2026-11-23T23:59:59.999999Z", limit=10)
    assert [c.at for c in found] == ["2026-11-23T23:59:59.999999Z", "2026-11-24T00:00:00Z"]


def test_pages_join_up_oldest_first(feedback):
    for n in range(7):
        feedback.record_correction(correction(mention_id=f"x:{n}", at=f"2026-11-23T0{n}:00:00Z"))

    seen, position, pages = [], None, 0
    while True:
        found, position = feedback.corrections(limit=3, after=position)
        seen += [c.mention_id for c in found]
        pages += 1
        if position is None:
            break
    assert seen == [f"x:{n}" for n in range(7)]
    assert pages == 3
    found, position = feedback.corrections(limit=7)
    assert len(found) == 7 and position is None


def test_a_position_it_did_not_issue_is_refused(feedback):
    feedback.record_correction(correction())
    with pytest.raises(InvalidCursor):
        feedback.corrections(limit=5, after="bm90LWEtY3Vyc29y")


def test_newest_first_pages_join_up_and_a_position_keeps_its_direction(feedback):
    for n in range(7):
        feedback.record_correction(correction(mention_id=f"x:{n}", at=f"2026-11-23T0{n}:00:00Z"))

    seen, position = [], None
    while True:
        found, position = feedback.corrections(limit=3, after=position, newest_first=True)
        seen += [c.mention_id for c in found]
        if position is None:
            break
    assert seen == [f"x:{n}" for n in reversed(range(7))]
    found, _ = feedback.corrections(since="2026-11-23T02", until="2026-11-23T04", limit=10, newest_first=True)
    assert [c.mention_id for c in found] == ["x:4", "x:3", "x:2"]
    assert feedback.corrections(since="2027-01-01", limit=3, newest_first=True) == ([], None)

    _, newest = feedback.corrections(limit=3, newest_first=True)
    _, oldest = feedback.corrections(limit=3)
    with pytest.raises(InvalidCursor):
        feedback.corrections(limit=3, after=newest)
    with pytest.raises(InvalidCursor):
        feedback.corrections(limit=3, after=oldest, newest_first=True)


def test_a_capped_read_keeps_the_newest_and_says_older_ones_were_left_out(feedback, monkeypatch):
    monkeypatch.setattr(triage_models, "MAX_EXPORT", 5)
    monkeypatch.setattr(triage_models, "PAGE", 2)
    for n in range(8):
        feedback.record_correction(correction(mention_id=f"x:{n}", at=f"2026-11-23T0{n}:00:00Z"))
    deps = SimpleNamespace(feedback=feedback)

    read = triage_models.read_corrections(deps)

    assert [c.mention_id for c in read.corrections] == ["x:3", "x:4", "x:5", "x:6", "x:7"]  # oldest first
    assert read.older_left_out is True and read.read_from == "2026-11-23T03:00:00Z"
    assert "to=2026-11-23T03:00:00Z" in triage_models.left_out_note(read)
    # The older ones, asked for by the period the note names, and a period that fits: nothing left out.
    older = triage_models.read_corrections(deps, until=read.read_from)
    assert [c.mention_id for c in older.corrections] == ["x:0", "x:1", "x:2", "x:3"]
    assert older.older_left_out is False and triage_models.left_out_note(older) == ""
    exactly = triage_models.read_corrections(deps, since="2026-11-23T03")
    assert len(exactly.corrections) == 5 and exactly.older_left_out is False
