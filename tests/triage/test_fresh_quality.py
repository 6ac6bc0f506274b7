"""Quality floors on the fresh labelled set (tests/data/README_fresh.md), reported apart
from the tuning sets. Figures before and after the work of issue 14: bench/README.md.

The set was written and labelled before triage was run on it. Its even-numbered lines
were then used to find errors; the odd-numbered ones only after the generic changes had
been measured on them (that held-out figure is in bench/README.md). The floors below are
what the built-in rules reach on the whole set minus a small margin, except complaint
recall, whose floor is the goal of issue 14.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.triage.evaluate import Figures, figures, format_figures

DATA = Path(__file__).resolve().parents[1] / "data"
LABELS = {"sentiment": ("negative", "neutral", "positive"),
          "category": ("complaint", "question", "product_feedback", "sales_lead", "praise",
                       "industry_discussion", "noise")}

# Floors per set: (complaint recall, complaints kept, case recall, case precision,
#                  sentiment macro-F1, negative recall, category accuracy)
FLOORS = {
    "en": Figures(0, 0.95, 0.95, 0.95, 0.88, 0.80, 0.93, 0.80),
    "ja": Figures(0, 0.95, 0.97, 0.95, 0.91, 0.86, 0.91, 0.84),
    "all": Figures(0, 0.95, 0.97, 0.95, 0.90, 0.84, 0.92, 0.82),
}


def read(name):
    with open(DATA / name, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def fresh():
    rows = {"en": read("triage_fresh_en.jsonl"), "ja": read("triage_fresh_ja.jsonl")}
    rows["all"] = rows["en"] + rows["ja"]
    return rows


def test_the_fresh_set_is_as_described(fresh):
    assert len(fresh["ja"]) >= 150 and len(fresh["en"]) >= 100
    ids = [r["id"] for r in fresh["all"]]
    assert len(ids) == len(set(ids))
    for lang in ("en", "ja"):
        for row in fresh[lang]:
            assert set(row) == {"id", "platform", "kind", "lang", "text", "label"}, row["id"]
            assert row["lang"] == lang and row["id"].startswith(f"fresh-{lang}-")
            assert set(row["label"]) == set(LABELS)
            assert all(row["label"][field] in values for field, values in LABELS.items()), row["id"]
        # Every category is represented, complaints most of all.
        categories = [r["label"]["category"] for r in fresh[lang]]
        assert set(categories) == set(LABELS["category"])
        assert max(set(categories), key=categories.count) == "complaint"


@pytest.mark.parametrize("name", ["en", "ja", "all"])
def test_builtin_rules_on_the_fresh_set(fresh, name):
    measured = figures(fresh[name])
    report = f"fresh {name}: {format_figures(measured)}"
    floor = FLOORS[name]
    for field in Figures._fields[1:]:
        assert getattr(measured, field) >= getattr(floor, field), f"{field} below {getattr(floor, field)}; {report}"
