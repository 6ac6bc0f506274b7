"""Triage that learns (issue 14): corrections as labelled examples, retraining, versions and rollback.

- ``export_corrections``: the team's corrections in a period, one JSON line per corrected post in the
  shape ``python -m chalicelib.triage train`` reads (``text``, ``lang``, ``label``), the latest
  correction of each field winning.
- Read with a cap (``MAX_EXPORT`` corrections), newest first: past it the OLDEST are left out, never
  the team's latest judgement, and whoever reads says so (``read_corrections``): the export (a note,
  and in ``jsonl`` a first line without ``text`` that ``train`` and the upload skip), retraining (the
  version's ``examples``) and the upload's de-duplication (its answer).
- ``retrain``: trains a candidate on the shipped base data and the corrections
  (``chalicelib.triage.retrain``), scores it and the current model on the same held-out posts, stores
  it as a new version (bytes in the model bucket, figures beside them) and activates it only when it
  is not worse on macro-F1, negative recall and case recall; otherwise it stays inactive and says why.
  On demand (``POST /admin/triage-models``) and weekly (``run_weekly``: one version per ISO week).
- ``activate``: a supervisor switches to any version, or back to ``baseline`` (TRIAGE_MODEL_URI, or
  the rules alone): the rollback. The triage stage (``intake.current_model``) re-reads which version
  is active at most once a minute per container and keeps each loaded model by its uri.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from chalicelib.domain.agent import Agent
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import BadRequest, Conflict, NotFound, Unavailable
from chalicelib.observability import logger
from chalicelib.ports import Deps

if TYPE_CHECKING:
    from chalicelib.domain.feedback import Correction
    from chalicelib.triage import Model

ACTIVE_TTL_SECONDS = 60
# Training time grows with the posts trained on (bench/retrain.py: 18-42 ms a post on one shared core). A
# request must answer inside the API function's 25 s (1024 MB, about 0.6 of a vCPU); the weekly run has its
# function's 300 s (1769 MB, one vCPU) and trains on at most the latest MAX_TRAINING_CORRECTIONS corrected posts.
REQUEST_MAX_TRAINING_POSTS = 600
MAX_TRAINING_CORRECTIONS = 1000
BASELINE = "baseline"          # no learned version: TRIAGE_MODEL_URI if set, else the rules alone
MAX_EXPORT = 50_000            # corrections read for one export or one training run
PAGE = 500
_ACTIVE_CACHE = "triage_model_active"


# ---- the triage stage's view -----------------------------------------------------------------------

def active_model_uri(deps: Deps) -> Optional[str]:
    """The uri of the activated model version (None: baseline), re-read at most once a minute."""
    store = deps.triage_models
    if store is None:
        return None
    cache = deps.caches.setdefault(_ACTIVE_CACHE, {})
    now_epoch = deps.epoch()
    if cache and now_epoch - cache["loaded_at"] < ACTIVE_TTL_SECONDS:
        return cache["uri"]
    record = store.active()
    uri = record.get("uri") if record else None
    cache.update(uri=uri, loaded_at=now_epoch)
    return uri


# ---- corrections as examples -------------------------------------------------------------------------

def _day_bound(raw: Optional[str], name: str) -> str:
    if raw in (None, ""):
        return ""
    try:
        parse_iso(raw if "T" in str(raw) else f"{raw}T00:00:00Z")
    except (TypeError, ValueError):
        raise BadRequest(f"query '{name}' must be a day (YYYY-MM-DD) or an ISO time") from None
    return str(raw)


class CorrectionsRead(NamedTuple):
    corrections: List["Correction"]   # oldest first: the newest MAX_EXPORT of the period
    older_left_out: bool              # the cap was reached: corrections older than the first were not read

    @property
    def read_from(self) -> str:
        """The time of the oldest correction read (empty: none)."""
        return self.corrections[0].at if self.corrections else ""


def read_corrections(deps: Deps, *, since: str = "", until: str = "") -> CorrectionsRead:
    """The newest ``MAX_EXPORT`` corrections of the period, oldest first, and whether older ones were left out.

    Read newest first, so a cap drops the oldest, never the team's latest judgement; counting the ones left
    out would mean reading all of them (no bound), so the reader says that some were, and from when it read."""
    if deps.feedback is None:
        return CorrectionsRead([], False)
    newest: List["Correction"] = []
    position: Optional[str] = None
    while True:
        # The port (ports.TriageFeedbackStore) does not name ``newest_first`` yet; both stores take it.
        page, position = deps.feedback.corrections(
            since=since, until=until, limit=min(PAGE, MAX_EXPORT - len(newest)), after=position, newest_first=True)
        newest.extend(page)
        if position is None or len(newest) >= MAX_EXPORT:
            return CorrectionsRead(newest[:MAX_EXPORT][::-1], position is not None)


def all_corrections(deps: Deps, *, since: str = "", until: str = "") -> List["Correction"]:
    return read_corrections(deps, since=since, until=until).corrections


def labelled_records(corrections: List["Correction"]) -> List[Dict[str, Any]]:
    """One labelled record per corrected post that has its text (the latest correction per field wins)."""
    from chalicelib.triage.retrain import correction_labels

    return [r for r in correction_labels(corrections) if r["text"]]


def correction_records(deps: Deps, *, since: str = "", until: str = "") -> List[Dict[str, Any]]:
    return labelled_records(all_corrections(deps, since=since, until=until))


def left_out_note(read: CorrectionsRead) -> str:
    """What a capped read left out and how to ask for it (empty: nothing was left out)."""
    if not read.older_left_out:
        return ""
    return (f"only the newest {MAX_EXPORT:,} corrections were read: older ones, made at or before "
            f"{read.read_from}, were left out; ask for them with 'to={read.read_from}' (and 'from', YYYY-MM-DD) "
            "and join the parts")


MAX_EXPORT_BYTES = 5_000_000


def export_corrections(params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    since, until = _day_bound(params.get("from"), "from"), _day_bound(params.get("to"), "to")
    if since and until and until < since:
        raise BadRequest("query 'to' is before 'from'")
    fmt = params.get("format") or "json"
    if fmt not in ("json", "jsonl"):
        raise BadRequest("query 'format' must be json or jsonl")
    read = read_corrections(deps, since=since, until=until)
    records = labelled_records(read.corrections)
    note = left_out_note(read)
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
    size = sum(len(line.encode("utf-8")) for line in lines)
    if size > MAX_EXPORT_BYTES:
        # Lambda answers at most 6 MB: a period this large is asked for in parts, never cut silently.
        raise BadRequest(f"the export of this period is {size / 1e6:.1f} MB ({len(records)} examples), over the "
                         f"{MAX_EXPORT_BYTES // 1_000_000} MB an answer may hold; ask for a shorter period with "
                         "'from' and 'to' (YYYY-MM-DD) and join the parts")
    left_out = {"older_left_out": True, "note": note} if note else {}
    if fmt == "jsonl":
        # The note is a first line without 'text': the train command skips it (saying so), the upload ignores it.
        head = json.dumps(left_out, ensure_ascii=False) + "\n" if left_out else ""
        return {"jsonl": head + "".join(lines)}
    return {"examples": records, "count": len(records), "from": since or None, "to": until or None, **left_out}


# ---- training ----------------------------------------------------------------------------------------

def _current(deps: Deps) -> Tuple[str, Optional["Model"]]:
    """(version name, model or None) the triage stage uses now."""
    from chalicelib.triage import load_model

    store = deps.triage_models
    record = store.active() if store is not None else None
    if record:
        return record["version"], load_model(deps.models.load(record["uri"]))
    if deps.config.triage_model_uri:
        return BASELINE, load_model(deps.models.load(deps.config.triage_model_uri))
    return BASELINE, None


def retrain(deps: Deps, *, by: str, trigger: str = "on_demand", version: Optional[str] = None,
            auto_activate: bool = True, max_posts: Optional[int] = None) -> Dict[str, Any]:
    """Train, evaluate against the current model, store the version; activate it when it is not worse.

    ``max_posts``: refuse (409) rather than train on more posts than that (a request's time budget)."""
    from chalicelib.services.rules import current_rules
    from chalicelib.triage.retrain import base_records, gate_figures, split, timed_training, worse_on

    store = deps.triage_models
    if store is None:
        raise Unavailable("model versions are not kept in this deployment")
    now = deps.now()
    version = version or "v" + now[:19].replace("-", "").replace(":", "").replace("T", "-")
    if version == BASELINE or store.get_version(version) is not None:
        raise Conflict(f"model version {version} exists already; try again in a second")
    rules = current_rules(deps)
    read = read_corrections(deps)
    corrected = sorted(labelled_records(read.corrections), key=lambda r: r["corrected_at"])
    corrections = corrected[-MAX_TRAINING_CORRECTIONS:]
    data = split(base_records(), corrections)
    if max_posts is not None and len(data.train) > max_posts:
        raise Conflict(f"retraining now would train on {len(data.train)} posts ({len(corrections)} corrected), more "
                       f"than a request has time for ({max_posts}); the triage_daily schedule retrains once a week "
                       "with more time, or train by hand on GET /admin/triage-corrections?format=jsonl")
    try:
        candidate, seconds = timed_training(data.train, rules)
    except ValueError as err:
        raise BadRequest(f"training failed, nothing stored: {err}") from None
    current_version, current_model = _current(deps)
    candidate_figures = gate_figures(data.held_out, rules, candidate)
    current_figures = gate_figures(data.held_out, rules, current_model)
    reasons = worse_on(candidate_figures, current_figures)
    record = {
        "version": version, "created_at": now, "created_by": by, "trigger": trigger,
        # What the caps left out: older corrections not read (MAX_EXPORT), older corrected posts not trained on.
        "examples": {**data.counts, "corrections_read": len(read.corrections),
                     "older_corrections_left_out": read.older_left_out,
                     "corrected_posts_left_out": len(corrected) - len(corrections)},
        "training_seconds": round(seconds, 2),
        "figures": candidate_figures,
        "compared_with": {"version": current_version, "figures": current_figures},
        "activated": False, "refused_because": reasons,
    }
    blob = candidate.to_bytes()
    record["bytes"] = len(blob)
    stored = store.add_version(record, blob)
    if stored is None:
        raise Conflict(f"model version {version} exists already")
    if auto_activate and not reasons:
        store.activate(version, by=by, at=now)
        deps.caches.pop(_ACTIVE_CACHE, None)
        stored["activated"] = True
    logger.info("triage model retrained", extra={"version": version, "activated": stored["activated"],
                                                   "refused_because": reasons, "examples": record["examples"]})
    return {**stored, "active": stored["activated"]}


def run_weekly(deps: Deps) -> Dict[str, Any]:
    """The scheduled retraining: one version per ISO week (``w2026-W48``); a second run that week does nothing."""
    store = deps.triage_models
    if store is None:
        return {"skipped": "no model store"}
    year, week, _ = parse_iso(deps.now()).isocalendar()
    version = f"w{year}-W{week:02d}"
    if store.get_version(version) is not None:
        return {"version": version, "skipped": "trained already this week"}
    try:
        result = retrain(deps, by="schedule", trigger="schedule", version=version)
    except (BadRequest, Conflict, ValueError) as err:
        logger.warning("scheduled triage retraining skipped", extra={"version": version, "reason": str(err)[:300]})
        return {"version": version, "skipped": str(err)}
    return {"version": version, "activated": result["activated"], "refused_because": result["refused_because"]}


# ---- versions and rollback -------------------------------------------------------------------------

def list_versions(deps: Deps) -> Dict[str, Any]:
    store = deps.triage_models
    if store is None:
        return {"versions": [], "active": BASELINE}
    active = store.active()
    active_version = active["version"] if active else BASELINE
    versions = [{**v, "active": v["version"] == active_version} for v in store.list_versions()]
    return {"versions": versions, "active": active_version,
            "activated_by": active.get("activated_by") if active else None,
            "activated_at": active.get("activated_at") if active else None}


def activate(agent: Agent, version: str, deps: Deps) -> Dict[str, Any]:
    store = deps.triage_models
    if store is None:
        raise Unavailable("model versions are not kept in this deployment")
    now = deps.now()
    if version != BASELINE:
        record = store.get_version(version)
        if record is None:
            raise NotFound(f"no model version {version}; GET /admin/triage-models lists them")
    previous = store.active()
    store.activate(version, by=agent.agent_id, at=now)
    deps.caches.pop(_ACTIVE_CACHE, None)
    return {"active": version, "previous": previous["version"] if previous else BASELINE,
            "activated_by": agent.agent_id, "activated_at": now,
            "note": "triage uses it within a minute (each container re-reads the active version once a minute)"}

