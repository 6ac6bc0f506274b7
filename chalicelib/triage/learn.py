"""Training data to model examples, and cross-validation. Used by the CLI and the bench."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .engine import prepare
from .model import SENTIMENT_LABELS, Example, Model, TrainingOptions, rule_features, train, units_of
from .rules import RuleSet, load_default_rules


def to_example(record: Mapping[str, Any], rules: RuleSet) -> Example:
    label = record.get("label") or {}
    if not isinstance(label, Mapping):
        label = {}
    sentiment = label.get("sentiment")
    category = label.get("category")
    p = prepare(record, rules)
    spaced = p.signals.tokens is not None
    units = units_of(p.signals.tokens or (), spaced, p.cleaned.lower)
    extra = rule_features(p.signals, p.sentiment, p.category)
    return Example(units, extra, spaced, p.lang,
                   sentiment if sentiment in SENTIMENT_LABELS else None,
                   category if isinstance(category, str) and category else None)


def train_records(records: Sequence[Mapping[str, Any]], options: TrainingOptions = TrainingOptions(),
                  rules: Optional[RuleSet] = None) -> Model:
    rules = rules or load_default_rules()
    return train([to_example(r, rules) for r in records], options)


class Scores(NamedTuple):
    macro_f1: float
    recall_negative: float
    per_label: Dict[str, Tuple[float, float, float]]  # precision, recall, F1
    accuracy: float
    n: int


def score(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] = SENTIMENT_LABELS) -> Scores:
    per_label = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = (precision, recall, f1)
    macro = sum(v[2] for v in per_label.values()) / len(per_label)
    accuracy = sum(1 for g, p in zip(gold, predicted) if g == p) / len(gold) if gold else 0.0
    recall_negative = per_label.get("negative", (0.0, 0.0, 0.0))[1]
    return Scores(macro, recall_negative, per_label, accuracy, len(gold))


def cross_validate(records: Sequence[Mapping[str, Any]], folds: int = 5,
                   options: TrainingOptions = TrainingOptions(), rules: Optional[RuleSet] = None,
                   progress=None) -> Tuple[Scores, List[Tuple[str, str]]]:
    """k-fold CV of sentiment: (pooled scores over all folds, [(gold, predicted)])."""
    from .engine import classify

    rules = rules or load_default_rules()
    labelled = [r for r in records if (r.get("label") or {}).get("sentiment") in SENTIMENT_LABELS]
    examples = [to_example(r, rules) for r in labelled]
    pairs: List[Tuple[str, str]] = []
    for fold in range(folds):
        train_set = [e for i, e in enumerate(examples) if i % folds != fold]
        model = train(train_set, options)
        for i, record in enumerate(labelled):
            if i % folds == fold:
                pairs.append((record["label"]["sentiment"], classify(record, rules, model).sentiment))
        if progress:
            progress(fold + 1, folds)
    return score([g for g, _ in pairs], [p for _, p in pairs]), pairs
