"""Labelled files a brand uploads for retraining (issue 14): ``POST /admin/triage-examples``.

The body is JSON lines in the shape ``GET /admin/triage-corrections?format=jsonl`` exports and the
``train`` command reads: one object a line with ``text``, ``label`` (``sentiment``, ``category``,
``case``, ``priority``, ``tags``: at least one) and optionally ``lang`` and ``platform``; other fields
(``id``, ``kind``, ``corrected_by``, ``corrected_at``) are ignored. Blank lines are skipped, and so is
the note an export opens with when older corrections were left out (``{"older_left_out": true, "note"}``).

- Bounded: at most ``MAX_BYTES`` (413 past it), ``MAX_LINES`` examples, ``MAX_TEXT`` characters of text.
- All or nothing: every line is checked before anything is kept; a 400 names the line(s) and what is
  wrong.
- Kept as corrections (``domain.feedback.Correction``) by the uploader, one per labelled field, on a
  synthetic mention id made from the text (``upload:<sha256 of the text>``), so the corrections export
  and retraining (``services/triage_models``) use them like the team's own corrections.
- Idempotent: a line whose labels are already what the corrections say for its text (the same file
  uploaded again, or an export of this deployment's corrections) adds nothing and is counted as
  ``already_known``; a line that changes a label records only the changed fields. It compares with the
  newest ``triage_models.MAX_EXPORT`` corrections; past that cap the answer says older ones were not
  compared (``older_left_out``, ``note``): a line only they knew is kept again, with the same label.
"""
from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Optional, Tuple, Union

from chalicelib.domain import limits
from chalicelib.domain.agent import Agent
from chalicelib.domain.errors import BadRequest, NotFound
from chalicelib.observability import count, logger
from chalicelib.ports import Deps

MAX_BYTES = 1024 * 1024        # 1 MiB a file
MAX_LINES = 2000               # examples a file
MAX_TEXT = 2000                # characters of one example's text
MAX_LINE_BYTES = 16 * 1024     # one line (the text is at most 8 KB of UTF-8; the rest is labels)
MAX_TAGS = 20
MAX_PROBLEMS = 5               # lines named in one 400
PREFIX = "upload:"
LABELS = ("sentiment", "category", "case", "priority", "tags")


class TooLarge(BadRequest):
    status = 413


def upload_id(text: str) -> str:
    return PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _label_problem(label: Any) -> Optional[str]:
    from chalicelib.services.triage_review import CATEGORIES, PRIORITIES, SENTIMENTS

    if not isinstance(label, dict) or not label:
        return "'label' must be an object with at least one of " + ", ".join(LABELS)
    unknown = sorted(set(label) - set(LABELS))
    if unknown:
        return f"'label' has unknown field(s) {', '.join(unknown)[:100]}; allowed: {', '.join(LABELS)}"
    for name, allowed in (("sentiment", SENTIMENTS), ("category", CATEGORIES), ("priority", PRIORITIES)):
        if name in label and label[name] not in allowed:
            return f"'label.{name}' must be one of {', '.join(allowed)}"
    if "case" in label and not isinstance(label["case"], bool):
        return "'label.case' must be true or false"
    if "tags" in label:
        tags = label["tags"]
        if not isinstance(tags, list) or len(tags) > MAX_TAGS or not all(
                isinstance(t, str) and 1 <= len(t) <= 40 and limits.text_problem(t, max_length=40) is None
                for t in tags):
            return f"'label.tags' must be a list of at most {MAX_TAGS} tags of 1 to 40 characters"
    return None


def _example(number: int, raw: bytes) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """(the example, None) or (None, what is wrong with line ``number``)."""
    try:
        value = limits.parse_json(raw, what=f"line {number}", max_bytes=MAX_LINE_BYTES)
    except BadRequest as err:
        return None, str(err)
    where = f"line {number}"
    if not isinstance(value, dict):
        return None, (f"{where} must be a JSON object (one example a line, as GET /admin/triage-corrections"
                      f"?format=jsonl exports), not {type(value).__name__}")
    text = value.get("text")
    if not isinstance(text, str) or not text.strip():
        return None, f"{where}: 'text' is missing or empty; each example needs the post's text"
    problem = limits.text_problem(text, max_length=MAX_TEXT, multiline=True)
    if problem:
        return None, f"{where}: 'text' {problem}"
    for name, most in (("lang", 16), ("platform", 32)):
        if name in value and value[name] is not None:
            if not isinstance(value[name], str) or limits.text_problem(value[name], max_length=most):
                return None, f"{where}: '{name}' must be text of at most {most} characters"
    label_problem = _label_problem(value.get("label"))
    if label_problem:
        return None, f"{where}: {label_problem}"
    text = text.strip()
    return {"id": upload_id(text), "source_id": value.get("id"), "text": text, "lang": value.get("lang") or "",
            "platform": value.get("platform") or "", "label": dict(value["label"])}, None


def _export_note(line: bytes) -> bool:
    """The first line of an export that left older corrections out: a note, not an example."""
    if b'"older_left_out"' not in line or b'"text"' in line:
        return False
    try:
        value = limits.parse_json(line, what="line", max_bytes=MAX_LINE_BYTES)
    except BadRequest:
        return False
    return isinstance(value, dict) and set(value) == {"older_left_out", "note"}


def parse_examples(raw: Union[bytes, str, None]) -> List[Dict[str, Any]]:
    """Every line checked; the examples, or a BadRequest (TooLarge: 413) naming what is wrong."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if not raw or not raw.strip():
        raise BadRequest("the body is empty; send JSON lines, one labelled example a line "
                         "({\"text\": ..., \"lang\": ..., \"label\": {\"sentiment\": ..., \"category\": ...}})")
    if len(raw) > MAX_BYTES:
        raise TooLarge(f"the body is {len(raw):,} bytes; at most {MAX_BYTES:,} (1 MiB) a file: split it and "
                       "upload the parts")
    lines = [(n, line) for n, line in enumerate(raw.split(b"\n"), start=1) if line.strip() and not _export_note(line)]
    if len(lines) > MAX_LINES:
        raise TooLarge(f"the body holds {len(lines):,} examples; at most {MAX_LINES:,} a file: split it and "
                       "upload the parts")
    examples, problems = [], []
    for number, line in lines:
        example, problem = _example(number, line)
        if problem:
            problems.append(problem)
            if len(problems) >= MAX_PROBLEMS:
                break
        elif example is not None:
            examples.append(example)
    if problems:
        raise BadRequest("nothing was kept; fix " + ("this line" if len(problems) == 1 else "these lines")
                         + ": " + "; ".join(problems))
    return examples


def _current_labels(deps: Deps) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, Any]]:
    """Per corrected mention id, its text and labels now (the latest correction of each field), and what the
    comparison left out (empty: nothing; else ``older_left_out`` and a ``note`` for the answer)."""
    from chalicelib.services.triage_models import MAX_EXPORT, read_corrections
    from chalicelib.triage.retrain import correction_labels

    read = read_corrections(deps)
    left_out: Dict[str, Any] = {}
    if read.older_left_out:
        left_out = {"older_left_out": True,
                    "note": f"compared with the newest {MAX_EXPORT:,} corrections only: older ones, made at or before "
                            f"{read.read_from}, were not read, so a line only they knew was kept again (with the "
                            "same label, so retraining learns nothing different)"}
    return {r["id"]: r for r in correction_labels(read.corrections)}, left_out


def upload(agent: Agent, raw: Union[bytes, str, None], deps: Deps) -> Dict[str, Any]:
    from chalicelib.domain.feedback import Correction
    from chalicelib.services.inbox import require_supervisor

    require_supervisor(agent)
    if deps.feedback is None:
        raise NotFound("triage corrections are not kept in this deployment, so examples cannot be uploaded")
    examples = parse_examples(raw)
    known, left_out = _current_labels(deps)
    now = deps.now()
    accepted = already = 0
    for example in examples:
        record = known.get(example["id"]) or {"label": {}}
        same_post = known.get(example["source_id"]) if isinstance(example["source_id"], str) else None
        if same_post is not None and same_post["text"] == example["text"]:
            if all(same_post["label"].get(k) == v for k, v in example["label"].items()):
                already += 1  # an export of this deployment's own corrections
                continue
        changed = {k: v for k, v in example["label"].items() if record["label"].get(k) != v}
        if not changed:
            already += 1
            continue
        for field, after in changed.items():
            deps.feedback.record_correction(Correction(
                mention_id=example["id"], field=field, before=record["label"].get(field), after=after,
                agent_id=agent.agent_id, at=now, text=example["text"], lang=example["lang"],
                platform=example["platform"]))
        # A later line of the same file with the same text sees this one.
        known[example["id"]] = {**record, "text": example["text"], "label": {**record["label"], **changed}}
        accepted += 1
    count("TriageExamplesUploaded", accepted)
    logger.info("triage examples uploaded", extra={"by": agent.agent_id, "accepted": accepted,
                                                   "already_known": already, **left_out})
    return {"accepted": accepted, "already_known": already, **left_out}

