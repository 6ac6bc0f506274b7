"""The command line, run as a user would: python -m chalicelib.triage."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chalicelib.triage import load_model

ROOT = Path(__file__).resolve().parents[2]


def run(args, stdin=""):
    return subprocess.run([sys.executable, "-m", "chalicelib.triage", *args], input=stdin.encode("utf-8"),
                          capture_output=True, cwd=ROOT, timeout=120)


def lines(stdout: bytes):
    return [json.loads(line) for line in stdout.decode("utf-8").splitlines()]


def test_classifies_json_lines_in_order_and_reports_bad_lines_on_stderr():
    stdin = "\n".join([
        json.dumps({"id": "a", "text": "@AcmeAir 3 hours on hold and still no bag"}),
        "{not json",
        json.dumps({"id": "b", "text": "@SoraAir_JP 欠航で返金もない。最悪", "lang": "ja"}),
        json.dumps({"text": "no id here"}),
        json.dumps({"id": "c", "text": 42}),
        json.dumps({"id": "d", "text": "@pal look at this", "platform": "instagram", "kind": "comment",
                    "author": {"handle": "pal", "verified": False, "followers": 3}}),
        "",
    ])
    done = run([], stdin)
    assert done.returncode == 0
    out = lines(done.stdout)
    assert [o["id"] for o in out] == ["a", "b", "d"]
    assert {"id", "sentiment", "sentiment_score", "category", "tags", "priority", "case", "lang", "why"} <= set(out[0])
    assert (out[0]["sentiment"], out[1]["lang"], out[2]["category"]) == ("negative", "ja", "noise")
    errors = done.stderr.decode("utf-8").splitlines()
    assert len(errors) == 3
    assert "line 2" in errors[0]
    assert "line 4" in errors[1] and "id" in errors[1]
    assert "id c" in errors[2] and "text" in errors[2]


def test_rules_file_changes_the_outcome(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"influencer_threshold": 50, "rules": [
        {"id": "bags", "when": {"text_contains": ["bag"]}, "then": {"route_team": "baggage"}}]}))
    stdin = json.dumps({"id": "1", "text": "where is my bag", "author": {"handle": "a", "followers": 60}}) + "\n"
    out = lines(run(["--rules", str(rules)], stdin).stdout)[0]
    assert out["team"] == "baggage"
    assert "influencer" in out["tags"]


def test_invalid_rules_file_is_refused_with_the_reason(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"id": "x", "when": {}, "then": {"set_category": "bogus"}}]}))
    done = run(["--rules", str(rules)], json.dumps({"id": "1", "text": "hi"}) + "\n")
    assert done.returncode == 2
    assert "rule 'x'" in done.stderr.decode() and "set_category" in done.stderr.decode()


def test_train_then_classify_with_the_model(tmp_path, training_file):
    model_path = tmp_path / "model.json.gz"
    done = subprocess.run([sys.executable, "-m", "chalicelib.triage", "train", "--out", str(model_path),
                           str(training_file)], capture_output=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert "sentiment + category" in done.stderr.decode()
    again = tmp_path / "again.json.gz"
    subprocess.run([sys.executable, "-m", "chalicelib.triage", "train", "--out", str(again), str(training_file)],
                   capture_output=True, cwd=ROOT, timeout=120, check=True)
    assert model_path.read_bytes() == again.read_bytes()  # seeded: same data, same file

    model = load_model(model_path.read_bytes())
    assert model.covers("en") and not model.covers("ja")
    stdin = "\n".join(json.dumps(m) for m in [
        {"id": "n", "text": "@shop my lamp never arrived"},
        {"id": "p", "text": "@shop love the new sofa, thank you!"},
        {"id": "j", "text": "@shop 最悪。返金して"},
    ]) + "\n"
    out = {o["id"]: o for o in lines(run(["--model", str(model_path)], stdin).stdout)}
    assert out["n"]["sentiment"] == "negative"
    assert out["p"]["sentiment"] == "positive"
    assert any(reason.startswith("model:") for reason in out["n"]["why"])
    assert not any(reason.startswith("model:") for reason in out["j"]["why"])  # Japanese: rules decide
    assert out["j"]["sentiment"] == "negative"


def test_train_reports_unusable_input(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "only one label", "label": {"sentiment": "negative"}}\nnot json\n')
    done = subprocess.run([sys.executable, "-m", "chalicelib.triage", "train", "--out", str(tmp_path / "m"),
                           str(data)], capture_output=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert "skipped" in done.stderr.decode() and "two different sentiment labels" in done.stderr.decode()
