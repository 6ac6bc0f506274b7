"""In-memory fakes of the triage learning ports (issue 14): corrections kept as labeled examples.

``tests/contract/test_triage_feedback_store.py`` runs the same assertions on these and on the DynamoDB adapters.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.feedback import Correction
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.ports import StoredMention


class FakeFeedbackStore:
    """Corrections by ``correction_id``, listed oldest first (by time, then id), or newest first
    (``newest_first``), as the DynamoDB store pages them."""

    def __init__(self) -> None:
        self.kept: Dict[str, Correction] = {}

    def record_correction(self, correction: Correction) -> bool:
        if correction.correction_id in self.kept:
            return False
        self.kept[correction.correction_id] = correction
        return True

    def corrections(self, *, since: str = "", until: str = "", limit: int = 100,
                    after: Optional[str] = None,
                    newest_first: bool = False) -> Tuple[List[Correction], Optional[str]]:
        ordered = sorted((c for c in self.kept.values()
                          if (not since or c.at >= since) and (not until or c.at <= until + "~")),
                         key=lambda c: (c.at, c.correction_id), reverse=newest_first)
        start = 0
        if after is not None:
            state = decode_cursor(after)
            if (set(state) != ({"at", "id", "newest"} if newest_first else {"at", "id"})
                    or not isinstance(state.get("at"), str) or not isinstance(state.get("id"), str)):
                raise InvalidCursor("not a position in the triage corrections; start again without it")
            mark = (state["at"], state["id"])
            start = next((i for i, c in enumerate(ordered)
                          if ((c.at, c.correction_id) < mark if newest_first else (c.at, c.correction_id) > mark)),
                         len(ordered))
        page = ordered[start:start + max(1, limit)]
        more = start + len(page) < len(ordered)
        last = page[-1] if page else None
        position = {"at": last.at, "id": last.correction_id, **({"newest": True} if newest_first else {})} if last else {}
        return page, (encode_cursor(position) if last and more else None)


class FakeMentionReview:
    """The no-case review list over a FakeMentionStore (its ``review_at``), as the mentions table's sparse index."""

    def __init__(self, mentions: Any) -> None:
        self.mentions = mentions
        self.outcomes: Dict[str, Dict[str, str]] = {}  # mention id -> outcome, by, at

    def _summary(self, mention_id: str) -> Dict[str, Any]:
        triage = self.mentions.records[mention_id].triage or {}
        score = triage.get("sentiment_score")
        return {"mention_id": mention_id, "at": self.mentions.review_at[mention_id],
                "lang": str(triage.get("lang") or ""), "platform": mention_id.split(":", 1)[0],
                "sentiment": str(triage.get("sentiment") or ""), "category": str(triage.get("category") or ""),
                "score": round(float(score), 4) if isinstance(score, (int, float)) else 0.0}

    def _day(self, day: str) -> List[Dict[str, Any]]:
        rows = [self._summary(m) for m, at in self.mentions.review_at.items() if at[:10] == day]
        return sorted(rows, key=lambda r: f"{r['at']}#{r['mention_id']}", reverse=True)

    def no_case_page(self, day: str, *, limit: int, after: Optional[str] = None,
                     filters: Optional[Mapping[str, str]] = None) -> Tuple[List[StoredMention], Optional[str]]:
        rows = self._day(day)
        if after is not None:
            state = decode_cursor(after)
            if set(state) != {"d", "k"} or state["d"] != day or not isinstance(state["k"], str) or "#" not in state["k"]:
                raise InvalidCursor("query 'cursor' is not a position in this day's review list; start again without it")
            rows = [r for r in rows if f"{r['at']}#{r['mention_id']}" < state["k"]]
        wanted = {k: v for k, v in (filters or {}).items() if v}
        matching = [r for r in rows if all(r.get(k) == v for k, v in wanted.items())]
        page = matching[:max(1, limit)]
        more = len(matching) > len(page)
        position = encode_cursor({"d": day, "k": f"{page[-1]['at']}#{page[-1]['mention_id']}"}) if more else None
        return [s for s in (self.mentions.stored(r["mention_id"]) for r in page) if s is not None], position

    def no_case_summaries(self, day: str) -> List[Dict[str, Any]]:
        return self._day(day)

    def settle_review(self, mention_id: str, *, outcome: str, by: str, at: str) -> bool:
        if mention_id not in self.mentions.review_at:
            return False
        del self.mentions.review_at[mention_id]
        self.outcomes[mention_id] = {"outcome": outcome, "by": by, "at": at}
        return True


class FakeModelStore:
    """Model versions in memory; their bytes go to a FakeModels (the ModelSource the triage stage reads)."""

    def __init__(self, models: Any) -> None:
        self.models = models
        self.records: Dict[str, Dict[str, Any]] = {}
        self.pointer: Optional[Dict[str, str]] = None

    def add_version(self, version: Dict[str, Any], blob: bytes) -> Optional[Dict[str, Any]]:
        if version["version"] in self.records:
            return None
        uri = f"mem://triage/{version['version']}"
        self.models.blobs[uri] = bytes(blob)
        self.records[version["version"]] = json.loads(json.dumps({**version, "uri": uri}))
        return copy.deepcopy(self.records[version["version"]])

    def get_version(self, version: str) -> Optional[Dict[str, Any]]:
        return copy.deepcopy(self.records.get(version))

    def list_versions(self) -> List[Dict[str, Any]]:
        return sorted((copy.deepcopy(r) for r in self.records.values()),
                      key=lambda r: (r.get("created_at", ""), r["version"]), reverse=True)

    def active(self) -> Optional[Dict[str, Any]]:
        if self.pointer is None or self.pointer["version"] not in self.records:
            return None
        return {**copy.deepcopy(self.records[self.pointer["version"]]),
                "activated_by": self.pointer["by"], "activated_at": self.pointer["at"]}

    def activate(self, version: str, *, by: str, at: str) -> None:
        self.pointer = {"version": version, "by": by, "at": at}
