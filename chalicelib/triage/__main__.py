"""Command line: triage JSON lines, or train a model.

    python -m chalicelib.triage [--rules FILE] [--model FILE] < mentions.jsonl > triaged.jsonl
    python -m chalicelib.triage train --out MODEL [--seed N ...] FILE...

Classifying reads one JSON object per line (at least ``id`` and ``text``;
optionally ``platform``, ``kind``, ``lang``, ``author``) and writes one JSON
line per mention, in input order. A bad line is reported on stderr with its
id or line number and skipped; the exit status stays 0.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, Sequence, TextIO

from .engine import classify
from .model import TrainingOptions, load_model
from .rules import RuleError, RuleSet, load_default_rules

EXIT_USAGE = 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "train":
        return train_command(args[1:])
    return classify_command(args)


# --- classify ---------------------------------------------------------------------------

def classify_command(argv: List[str], stdin=None, stdout: Optional[TextIO] = None,
                     stderr: Optional[TextIO] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.triage",
        description="Triage mentions: JSON lines on stdin, one JSON line per mention on stdout. "
                    "Use 'train' as the first argument to train a model.")
    parser.add_argument("--rules", metavar="FILE", help="rule set JSON (default: the shipped rules)")
    parser.add_argument("--model", metavar="FILE", help="model file written by 'train'")
    args = parser.parse_args(argv)
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else _utf8(sys.stdout)
    stderr = stderr if stderr is not None else _utf8(sys.stderr)
    try:
        rules = _load_rules(args.rules) if args.rules else load_default_rules()
        model = load_model(args.model) if args.model else None
    except (OSError, ValueError) as err:
        stderr.write(f"error: {err}\n")
        return EXIT_USAGE
    for number, raw in enumerate(stdin, 1):
        line = raw.decode("utf-8", errors="strict") if isinstance(raw, bytes) else raw
        if not line.strip():
            continue
        mention_id = None
        try:
            mention = json.loads(line)
            if not isinstance(mention, dict):
                raise ValueError("a line must be a JSON object")
            mention_id = mention.get("id")
            if mention_id is None or mention_id == "":
                raise ValueError("field 'id' is missing")
            if not isinstance(mention.get("text"), str):
                raise ValueError("field 'text' is missing or not a string")
            result = classify(mention, rules, model).to_dict()
        except (ValueError, TypeError, UnicodeDecodeError) as err:
            where = f"id {mention_id}" if mention_id not in (None, "") else f"line {number}"
            stderr.write(f"error: {where}: {err}\n")
            continue
        stdout.write(json.dumps({"id": mention_id, **result}, ensure_ascii=False) + "\n")
    stdout.flush()
    return 0


def _load_rules(path: str) -> RuleSet:
    with open(path, encoding="utf-8") as handle:
        try:
            document = json.load(handle)
        except ValueError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
    try:
        return RuleSet.from_dict(document)
    except RuleError as err:
        raise ValueError(f"{path}: {err}") from err


def _utf8(stream: TextIO) -> TextIO:
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(encoding="utf-8")
    return stream


# --- train -------------------------------------------------------------------------------

def train_command(argv: List[str], stderr: Optional[TextIO] = None) -> int:
    defaults = TrainingOptions()
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.triage train",
        description="Train a model from JSON lines with 'text' and 'label': {'sentiment', 'category'?}.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="training data, JSON lines")
    parser.add_argument("--out", required=True, metavar="MODEL",
                        help="model file to write (gzip JSON; plain JSON if it ends in .json)")
    parser.add_argument("--rules", metavar="FILE", help="rule set whose lexicon feeds the model")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--bits", type=int, default=defaults.bits, help="2**bits hash buckets")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--negative-bias", type=float, default=defaults.negative_bias,
                        help="added to the negative class at prediction; higher catches more complaints")
    args = parser.parse_args(argv)
    stderr = stderr if stderr is not None else _utf8(sys.stderr)
    if not 10 <= args.bits <= 24:
        stderr.write("error: --bits must be between 10 and 24\n")
        return EXIT_USAGE
    from .learn import train_records

    try:
        rules = _load_rules(args.rules) if args.rules else load_default_rules()
    except (OSError, ValueError) as err:
        stderr.write(f"error: {err}\n")
        return EXIT_USAGE
    records = []
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as handle:
                records.extend(_training_records(handle, path, stderr))
        except OSError as err:
            stderr.write(f"error: {err}\n")
            return EXIT_USAGE
    options = TrainingOptions(bits=args.bits, epochs=args.epochs, learning_rate=args.learning_rate,
                              seed=args.seed, negative_bias=args.negative_bias)
    try:
        model = train_records(records, options, rules)
    except ValueError as err:
        stderr.write(f"error: {err}\n")
        return EXIT_USAGE
    model.save(args.out)
    info = model.info
    heads = "sentiment" + (f" + category ({', '.join(model.category.labels)})" if model.category else "")
    stderr.write(f"trained {heads} on {info['sentiment_examples']} posts; languages covered: "
                 f"{', '.join(sorted(model.langs)) or 'none'}; wrote {args.out}\n")
    return 0


def _training_records(lines, source: str, stderr: TextIO):
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            stderr.write(f"skipped {source}:{number}: not JSON ({err})\n")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            stderr.write(f"skipped {source}:{number}: needs an object with a 'text' string\n")
            continue
        yield record


if __name__ == "__main__":
    sys.exit(main())
