"""Retraining speed (issue 14): time and peak memory of one retraining run for N examples.

    .venv/bin/python bench/retrain.py [--corrections 0 500 2000] [--json]

Each run is a fresh process (its peak RSS is the run's own): the shipped base data
(chalicelib/triage/data, 459 posts) plus N corrections (the fresh sets' posts, repeated
under new ids, each carrying the sentiment and category labels a promotion records), split
and weighted as ``services/triage_models.retrain`` does, trained, then the candidate and the
rules alone scored on the held-out share. Figures: wall time of training and of scoring,
the model's gzip size, the process's peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_run(corrections: int) -> dict:
    sys.path.insert(0, ROOT)
    from chalicelib.triage import load_default_rules
    from chalicelib.triage.retrain import base_records, gate_figures, split, train_candidate

    fresh = []
    for name in ("triage_fresh_en.jsonl", "triage_fresh_ja.jsonl"):
        with open(os.path.join(ROOT, "tests", "data", name), encoding="utf-8") as handle:
            fresh += [json.loads(line) for line in handle if line.strip()]
    rows = [{**fresh[i % len(fresh)], "id": f"x:c{i}"} for i in range(corrections)]
    rules = load_default_rules()
    data = split(base_records(), rows)
    started = time.perf_counter()
    model = train_candidate(data.train, rules)
    trained = time.perf_counter() - started
    started = time.perf_counter()
    gate_figures(data.held_out, rules, model)
    gate_figures(data.held_out, rules, None)
    scored = time.perf_counter() - started
    return {"corrections": corrections, "trained_on": len(data.train), "held_out": len(data.held_out),
            "train_seconds": round(trained, 2), "score_seconds": round(scored, 2),
            "model_kb": round(len(model.to_bytes()) / 1024), "peak_rss_mb":
            round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corrections", type=int, nargs="+", default=[0, 500, 2000])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one_run(args.child)))
        return 0
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print("corrections  trained on  held out  train s  score s  model KB  peak RSS MB")
    for n in args.corrections:
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], check=True, capture_output=True, text=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(row) if args.json else
              f"{row['corrections']:>11}  {row['trained_on']:>10}  {row['held_out']:>8}  {row['train_seconds']:>7}  "
              f"{row['score_seconds']:>7}  {row['model_kb']:>8}  {row['peak_rss_mb']:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
