"""Retraining from the team's corrections (issue 14): the data, the held-out split and the gate.

Pure: no AWS, no clock. ``services/triage_models.py`` feeds it the corrections and stores the result.

- Base data: the labelled posts shipped in ``data/`` (``base_*.jsonl``, the same shape as the
  ``train`` command's input), so a retrained model never knows less than a first one would.
- Corrections: one record per corrected mention, its labels the latest correction of each field
  (``services/triage_models.correction_records``); repeated ``CORRECTION_WEIGHT`` times in training,
  since they are the brand's own posts, and recent.
- Held out: a fixed share of each (by a hash of the post's id, so the same post is always on the
  same side), never trained on; the candidate and the current model are scored on the same rows.
- Gate: the candidate is activated only when it is not worse than the current model on any of
  macro-F1 of sentiment, negative recall and case recall (a figure with no labelled row counts as
  equal); otherwise it is kept, inactive, with the reasons.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .engine import classify
from .evaluate import NO_CASE_CATEGORIES
from .learn import score, train_records
from .model import SENTIMENT_LABELS, Model, TrainingOptions
from .rules import RuleSet

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
HELD_OUT_SHARE = 5        # one post in five is held out
CORRECTION_WEIGHT = 3     # a corrected post counts as three base posts
GATED = ("sentiment_macro_f1", "negative_recall", "case_recall")


def base_records() -> List[Dict[str, Any]]:
    """The labelled posts shipped with the package (``data/base_*.jsonl``)."""
    rows: List[Dict[str, Any]] = []
    for name in sorted(os.listdir(DATA_DIR)):
        if name.startswith("base_") and name.endswith(".jsonl"):
            with open(os.path.join(DATA_DIR, name), encoding="utf-8") as handle:
                rows.extend(json.loads(line) for line in handle if line.strip())
    return rows


def held_out(record_id: str) -> bool:
    digest = hashlib.sha256(str(record_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % HELD_OUT_SHARE == 0


class Split(NamedTuple):
    train: List[Mapping[str, Any]]
    held_out: List[Mapping[str, Any]]
    counts: Dict[str, int]


def split(base: Sequence[Mapping[str, Any]], corrections: Sequence[Mapping[str, Any]]) -> Split:
    base_train = [r for r in base if not held_out(r["id"])]
    corr_train = [r for r in corrections if not held_out(r["id"])]
    held = [r for r in base if held_out(r["id"])] + [r for r in corrections if held_out(r["id"])]
    counts = {"base": len(base_train), "corrections": len(corr_train), "held_out": len(held),
              "held_out_corrections": len(corrections) - len(corr_train)}
    return Split(base_train + corr_train * CORRECTION_WEIGHT, held, counts)


def train_candidate(rows: Sequence[Mapping[str, Any]], rules: RuleSet,
                    options: TrainingOptions = TrainingOptions()) -> Model:
    return train_records(rows, options, rules)


def wants_case(label: Mapping[str, Any]) -> Optional[bool]:
    """Whether the post should have become a case: said outright, or by its category; None: not labelled."""
    if isinstance(label.get("case"), bool):
        return label["case"]
    category = label.get("category")
    return category not in NO_CASE_CATEGORIES if isinstance(category, str) and category else None


def gate_figures(rows: Sequence[Mapping[str, Any]], rules: RuleSet, model: Optional[Model]) -> Dict[str, Any]:
    """The gated figures (and a few more) of ``model`` (None: the rules alone) on labelled rows; a row may
    carry only some labels (a correction of one field): each figure counts the rows labelled for it."""
    results = [classify(r, rules, model) for r in rows]
    labels = [r.get("label") or {} for r in rows]
    sentiment = [(lab["sentiment"], x.sentiment) for lab, x in zip(labels, results)
                 if lab.get("sentiment") in SENTIMENT_LABELS]
    cases = [(bool(wants_case(lab)), x.case) for lab, x in zip(labels, results) if wants_case(lab) is not None]
    categories = [(lab["category"], x.category) for lab, x in zip(labels, results) if lab.get("category")]
    scores = score([g for g, _ in sentiment], [p for _, p in sentiment]) if sentiment else None
    wanted = [p for g, p in cases if g]
    opened = [g for g, p in cases if p]
    return {
        "n": len(rows),
        "sentiment_macro_f1": round(scores.macro_f1, 4) if scores else None,
        "negative_recall": round(scores.recall_negative, 4)
        if scores and any(g == "negative" for g, _ in sentiment) else None,
        "case_recall": round(sum(wanted) / len(wanted), 4) if wanted else None,
        "case_precision": round(sum(opened) / len(opened), 4) if opened else None,
        "category_accuracy": round(sum(g == p for g, p in categories) / len(categories), 4) if categories else None,
        "labelled": {"sentiment": len(sentiment), "case": len(cases), "category": len(categories)},
    }


def worse_on(candidate: Mapping[str, Any], current: Mapping[str, Any]) -> List[str]:
    """Why the candidate must not replace the current model (empty: it may)."""
    reasons = []
    for name in GATED:
        new, old = candidate.get(name), current.get(name)
        if new is not None and old is not None and new < old:
            reasons.append(f"{name.replace('_', ' ')} {new:.3f} < {old:.3f} of the current model on the same "
                           f"{candidate.get('n', 0)} held-out posts")
    return reasons


def correction_labels(corrections: Iterable[Any]) -> List[Dict[str, Any]]:
    """Corrections (oldest first) to one labelled record per mention: the latest correction of each field wins;
    the text, language and platform of the latest correction that has them."""
    by_mention: Dict[str, Dict[str, Any]] = {}
    for c in corrections:
        record = by_mention.setdefault(c.mention_id, {"id": c.mention_id, "text": "", "lang": "", "platform": "",
                                                      "label": {}, "corrected_by": [], "corrected_at": ""})
        record["label"][c.field] = c.after
        for name in ("text", "lang", "platform"):
            if getattr(c, name):
                record[name] = getattr(c, name)
        if c.agent_id not in record["corrected_by"]:
            record["corrected_by"].append(c.agent_id)
        record["corrected_at"] = max(record["corrected_at"], c.at)
    return list(by_mention.values())


def timed_training(rows: Sequence[Mapping[str, Any]], rules: RuleSet) -> Tuple[Model, float]:
    import time

    started = time.perf_counter()
    model = train_candidate(rows, rules)
    return model, time.perf_counter() - started
