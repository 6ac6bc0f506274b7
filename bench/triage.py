"""Triage engine: throughput against VADER, and quality on the labelled sets.

    .venv/bin/python bench/triage.py [--data ../shared/data/airline-tweets-dev.jsonl] [--folds 5]

Prints, in one run:

* throughput (mentions/s) of ``classify`` with the built-in rules, with a
  model trained on the dev file, and of VADER's ``polarity_scores`` on the
  same texts, with the ratios (goal, issue 14: all of classify at least as fast
  as VADER's sentiment alone with the built-in rules, at least half as fast with
  a model);
* built-in sentiment quality on the dev file (macro-F1, recall of negative);
* the learned model's quality by k-fold cross-validation on the dev file;
* sentiment and category figures on the Japanese set (split into the lines
  the lexicon was tuned on and two batches written afterwards), and category
  accuracy on the English category set;
* the figures a support lead reads (complaint recall, cases opened, sentiment,
  category) on the fresh labelled set of issue 14, apart from the tuning sets,
  per language and per half (odd lines: errors not looked at until the first
  round of changes had been measured on them).

Sections whose inputs are missing (the dev file lives outside the repository;
vaderSentiment is a bench-only dependency) are skipped with a message.
Throughput is the best of ``--rounds`` passes after a warm-up pass (the
model's per-word cache is warm, as it is in a Lambda after its first
minutes), one mention at a time, on one core. The passes of classify and
VADER take turns and are timed in process CPU time, so other work on the
machine moves both alike and the ratios hold even when the absolute figures
do not.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.triage import classify, load_default_rules  # noqa: E402
from chalicelib.triage.engine import prepare  # noqa: E402
from chalicelib.triage.evaluate import figures, format_figures  # noqa: E402
from chalicelib.triage.lang import detect_language  # noqa: E402
from chalicelib.triage.learn import cross_validate, score, train_records  # noqa: E402
from chalicelib.triage.model import TrainingOptions  # noqa: E402
from chalicelib.triage.text import clean, english_tokens  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "airline-tweets-dev.jsonl"
JA_SET = ROOT / "tests" / "data" / "triage_ja.jsonl"
EN_SET = ROOT / "tests" / "data" / "triage_en.jsonl"
FRESH_SETS = {"en": ROOT / "tests" / "data" / "triage_fresh_en.jsonl",
              "ja": ROOT / "tests" / "data" / "triage_fresh_ja.jsonl"}
# Lines of the Japanese set written after the lexicon was tuned (see bench/README.md).
JA_BATCHES = (("tuned on (ja-001..171)", lambda i: not i.startswith(("ja-h", "ja-g", "ja-k"))),
              ("batch 1 (ja-h*: written later, errors then used)", lambda i: i.startswith("ja-h")),
              ("batch 2 (ja-g*: never inspected, held out)", lambda i: i.startswith("ja-g")),
              ("batch 3 (ja-k*: written after 2, errors then used)", lambda i: i.startswith("ja-k")),
              ("all", lambda i: True))


def read_jsonl(path: Path) -> List[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def throughput(function: Callable[[dict], object], items: Sequence[dict], rounds: int) -> float:
    return interleaved([function], items, rounds)[0]


def interleaved(functions: Sequence[Callable[[dict], object]], items: Sequence[dict], rounds: int) -> List[float]:
    """Items per second of each function: best of ``rounds`` passes, the functions taking turns."""
    for function in functions:
        for item in items:  # warm-up: lexicons compiled, caches filled
            function(item)
    best = [float("inf")] * len(functions)
    for _ in range(rounds):
        for k, function in enumerate(functions):
            start = time.process_time()
            for item in items:
                function(item)
            best[k] = min(best[k], time.process_time() - start)
    return [len(items) / b for b in best]


def line(label: str, value: str) -> None:
    print(f"  {label:<52} {value}")


def sentiment_line(name: str, gold: Sequence[str], predicted: Sequence[str]) -> None:
    s = score(gold, predicted)
    per = "  ".join(f"{k[:3]} P{v[0]:.2f} R{v[1]:.2f}" for k, v in s.per_label.items())
    line(name, f"macro-F1 {s.macro_f1:.3f}  recall(neg) {s.recall_negative:.3f}  acc {s.accuracy:.3f}  n={s.n}  [{per}]")


def bench_speed(dev: Optional[List[dict]], rounds: int, model) -> None:
    print("Throughput (one mention at a time, best of %d rounds)" % rounds)
    rules = load_default_rules()
    if dev:
        mentions = [{"id": r["id"], "platform": "x", "kind": "mention", "lang": r.get("lang", "en"),
                     "text": r["text"], "author": {"id": r["id"], "handle": r["author"]["handle"]}} for r in dev]
        source = f"dev file ({len(mentions)} tweets)"
    else:
        mentions = read_jsonl(JA_SET) + read_jsonl(EN_SET)
        source = f"tests/data JA+EN sets ({len(mentions)} posts; dev file absent)"
    print(f"  texts: {source}")
    functions: List[Callable[[dict], object]] = [lambda m: classify(m, rules)]
    if model is not None:
        functions.append(lambda m: classify(m, rules, model))
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        analyzer = None
    else:
        analyzer = SentimentIntensityAnalyzer()
        functions.append(lambda m: analyzer.polarity_scores(m["text"]))
    speeds = interleaved(functions, mentions, rounds)
    builtin = speeds[0]
    line("classify, built-in rules", f"{builtin:8.0f} mentions/s")
    learned = None
    if model is not None:
        learned = speeds[1]
        line("classify, with model", f"{learned:8.0f} mentions/s")
    if analyzer is None:
        line("VADER", "skipped: pip install -r requirements-bench.txt")
        return
    vader = speeds[-1]
    line("VADER polarity_scores", f"{vader:8.0f} texts/s")
    bench_stages(mentions, rounds, rules, model, vader)
    line("ratio built-in / VADER", f"{builtin / vader:.2f}x (goal >= 1)")
    if learned is not None:
        line("ratio with model / VADER", f"{learned / vader:.2f}x (goal >= 0.5)")
    # Longer posts (Facebook comments, DMs): VADER's cost grows faster with length than ours.
    longer = [dict(mentions[i], text=" ".join(x["text"] for x in mentions[i:i + 4]))
              for i in range(0, len(mentions) - 4, 4)]
    long_speeds = interleaved(functions, longer, rounds)
    chars = sum(len(m["text"]) for m in longer) // max(1, len(longer))
    line(f"longer posts (~{chars} chars): built-in / VADER", f"{long_speeds[0] / long_speeds[-1]:.2f}x")
    if model is not None:
        line(f"longer posts (~{chars} chars): with model / VADER", f"{long_speeds[1] / long_speeds[-1]:.2f}x")


def bench_stages(mentions: Sequence[dict], rounds: int, rules, model, vader: float) -> None:
    """Cumulative cost of the stages of classify, in microseconds per mention.

    Shows what a faster triage would have to give up: the first stage is what
    any triage pays before it decides anything.
    """
    def read(mention: dict) -> None:
        cleaned = clean(mention["text"])
        tokens = english_tokens(cleaned.lower) if cleaned.text.isascii() else None
        detect_language(cleaned.text, mention.get("lang"), tokens)

    stages = [("read: clean, words, language", read),
              ("+ lexicon scan, sentiment, noise, category", lambda m: prepare(m, rules)),
              ("+ tags, rules, priority, case, why (= built-in)", lambda m: classify(m, rules))]
    if model is not None:
        stages.append(("+ model (= with model)", lambda m: classify(m, rules, model)))
    print("  where the time goes (cumulative, per mention):")
    for label, function in stages:
        line("  " + label, f"{1e6 / throughput(function, mentions, rounds):6.1f} us")
    line("  VADER polarity_scores (the built-in goal)", f"{1e6 / vader:6.1f} us")


def bench_dev_quality(dev: List[dict], folds: int) -> None:
    print("Sentiment on the dev file (airline tweets)")
    rules = load_default_rules()
    gold = [r["label"]["sentiment"] for r in dev]
    sentiment_line("built-in rules (goal F1>=0.65, neg>=0.85)", gold, [classify(r, rules).sentiment for r in dev])
    half = [r for i, r in enumerate(dev) if i % 2 == 1]
    sentiment_line("built-in, odd lines (errors never inspected)", [r["label"]["sentiment"] for r in half],
                   [classify(r, rules).sentiment for r in half])
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        analyzer = SentimentIntensityAnalyzer()

        def vader_label(text: str) -> str:
            compound = analyzer.polarity_scores(text)["compound"]
            return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"

        sentiment_line("VADER (compound +-0.05)", gold, [vader_label(r["text"]) for r in dev])
    except ImportError:
        pass
    started = time.perf_counter()
    result, _ = cross_validate(dev, folds, TrainingOptions(), rules)
    per = "  ".join(f"{k[:3]} P{v[0]:.2f} R{v[1]:.2f}" for k, v in result.per_label.items())
    line(f"learned, {folds}-fold CV (goal F1>=0.75, neg>=0.90)",
         f"macro-F1 {result.macro_f1:.3f}  recall(neg) {result.recall_negative:.3f}  acc {result.accuracy:.3f}"
         f"  n={result.n}  [{per}]  ({time.perf_counter() - started:.0f} s)")


def bench_labelled_sets() -> None:
    rules = load_default_rules()
    print("Japanese set (tests/data/triage_ja.jsonl), built-in rules")
    rows = read_jsonl(JA_SET)
    for name, selected in JA_BATCHES:
        subset = [r for r in rows if selected(r["id"])]
        results = [classify(r, rules) for r in subset]
        sentiment_line(name, [r["label"]["sentiment"] for r in subset], [x.sentiment for x in results])
        accuracy = sum(r["label"]["category"] == x.category for r, x in zip(subset, results)) / len(subset)
        line("", f"category accuracy {accuracy:.3f}")
    print("English category set (tests/data/triage_en.jsonl), built-in rules")
    rows = read_jsonl(EN_SET)
    results = [classify(r, rules) for r in rows]
    sentiment_line("sentiment", [r["label"]["sentiment"] for r in rows], [x.sentiment for x in results])
    accuracy = sum(r["label"]["category"] == x.category for r, x in zip(rows, results)) / len(rows)
    line("category accuracy", f"{accuracy:.3f}  n={len(rows)}")


def bench_fresh_set() -> None:
    """The fresh set of issue 14, apart from the sets the rules were tuned on."""
    print("Fresh labelled set (tests/data/triage_fresh_*.jsonl), built-in rules")
    rules = load_default_rules()
    rows = {lang: read_jsonl(path) for lang, path in FRESH_SETS.items()}
    rows["all"] = rows["en"] + rows["ja"]
    for name, subset in rows.items():
        line(name, format_figures(figures(subset, rules)))
        for half, parity in (("even lines (errors used)", 0), ("odd lines (held out until measured)", 1)):
            part = [r for r in subset if int(r["id"].rsplit("-", 1)[1]) % 2 == parity]
            line("  " + half, format_figures(figures(part, rules)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled airline tweets (JSON lines)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    dev = read_jsonl(args.data) if args.data.exists() else None
    if dev is None:
        print(f"dev file {args.data} not found: skipping the model, dev-file quality and cross-validation\n")
    model = train_records(dev, TrainingOptions()) if dev else None
    bench_speed(dev, args.rounds, model)
    print()
    if dev:
        bench_dev_quality(dev, args.folds)
        print()
    bench_labelled_sets()
    print()
    bench_fresh_set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
