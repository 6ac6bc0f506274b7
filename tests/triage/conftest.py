"""Shared helpers for the triage tests: a small generated training set."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_FILE = ROOT.parent / "shared" / "data" / "airline-tweets-dev.jsonl"

_NEGATIVE = ["my {thing} never arrived", "still waiting on my {thing} refund", "the {thing} broke after a day",
             "worst {thing} ever, so disappointed", "{thing} delayed again and nobody answers"]
_NEUTRAL = ["do you sell the {thing} in blue?", "what time does the {thing} desk open?",
            "is the {thing} available in Canada?", "how do I change my {thing} order?"]
_POSITIVE = ["love the new {thing}, thank you!", "the {thing} team was amazing", "great {thing}, arrived early",
             "thanks for the quick {thing} help"]
_THINGS = ["bag", "jacket", "phone", "blender", "ticket", "sofa", "lamp", "voucher", "router"]
_CATEGORY = {"negative": "complaint", "neutral": "question", "positive": "praise"}


def generated_examples():
    rows = []
    for sentiment, templates in (("negative", _NEGATIVE), ("neutral", _NEUTRAL), ("positive", _POSITIVE)):
        for template, thing in itertools.product(templates, _THINGS):
            rows.append({"text": "@shop " + template.format(thing=thing),
                         "label": {"sentiment": sentiment, "category": _CATEGORY[sentiment]}})
    return rows


@pytest.fixture
def generated_rows():
    return generated_examples()


@pytest.fixture
def dev_rows():
    """The labelled airline tweets, or a skip: they live outside the repository."""
    if not DEV_FILE.exists():
        pytest.skip(f"dev data not found at {DEV_FILE}")
    with open(DEV_FILE, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture
def training_file(tmp_path):
    path = tmp_path / "train.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for row in generated_examples():
            out.write(json.dumps(row) + "\n")
    return path
