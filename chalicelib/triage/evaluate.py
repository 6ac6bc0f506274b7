"""Figures of triage on a labelled set, as a support lead reads them.

Used by the quality tests and the bench, so both report the same numbers.
Labels are ``label.sentiment`` and ``label.category``; whether a post should
become a case follows from its category, as ``decide_case`` says (noise, plain
praise and industry discussion do not).
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional, Sequence

from .engine import TriageResult, classify
from .learn import score
from .rules import RuleSet, load_default_rules

NO_CASE_CATEGORIES = frozenset(("noise", "praise", "industry_discussion"))


class Figures(NamedTuple):
    n: int
    complaint_recall: float    # labelled complaints that triage calls a complaint
    complaints_kept: float     # labelled complaints that open a case (none is dismissed)
    case_recall: float         # posts that should become a case and do
    case_precision: float      # cases opened that should be
    sentiment_macro_f1: float
    negative_recall: float
    category_accuracy: float


def should_be_case(label: Mapping[str, Any]) -> bool:
    return label["category"] not in NO_CASE_CATEGORIES


def figures(rows: Sequence[Mapping[str, Any]], rules: Optional[RuleSet] = None, model: Any = None) -> Figures:
    rules = rules or load_default_rules()
    results = [classify(r, rules, model) for r in rows]
    return figures_of(rows, results)


def figures_of(rows: Sequence[Mapping[str, Any]], results: Sequence[TriageResult]) -> Figures:
    labels = [r["label"] for r in rows]
    complaints = [x for label, x in zip(labels, results) if label["category"] == "complaint"]
    wanted = [x for label, x in zip(labels, results) if should_be_case(label)]
    opened = [label for label, x in zip(labels, results) if x.case]
    sentiment = score([label["sentiment"] for label in labels], [x.sentiment for x in results])
    return Figures(
        n=len(rows),
        complaint_recall=_share(x.category == "complaint" for x in complaints),
        complaints_kept=_share(x.case for x in complaints),
        case_recall=_share(x.case for x in wanted),
        case_precision=_share(should_be_case(label) for label in opened),
        sentiment_macro_f1=sentiment.macro_f1,
        negative_recall=sentiment.recall_negative,
        category_accuracy=_share(label["category"] == x.category for label, x in zip(labels, results)),
    )


def _share(flags) -> float:
    flags = list(flags)
    return sum(1 for f in flags if f) / len(flags) if flags else 0.0


def format_figures(f: Figures) -> str:
    return ("complaint recall %.3f  kept %.3f  case R %.3f P %.3f  sentiment F1 %.3f neg R %.3f  "
            "category %.3f  n=%d" % (f.complaint_recall, f.complaints_kept, f.case_recall, f.case_precision,
                                     f.sentiment_macro_f1, f.negative_recall, f.category_accuracy, f.n))
