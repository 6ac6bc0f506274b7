"""Triage feedback: an agent's correction of what triage decided, kept as a labeled example.

Agents correct triage as they work a case (category, tags, priority, sentiment) and when they
review mentions triage left without a case (promote: it needed one; confirm: it did not). Each
correction is one ``Correction``; the triage learning loop (issue 14) exports them as labeled
examples and retrains on them.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

# What a correction can be about.
CORRECTION_FIELDS = ("category", "tags", "priority", "sentiment", "case")


@dataclass(frozen=True)
class Correction:
    mention_id: str            # the post whose triage is corrected (a case's first mention)
    field: str                 # one of CORRECTION_FIELDS
    before: Any                # what triage (or the last edit) said
    after: Any                 # what the agent says it is
    agent_id: str
    at: str                    # ISO time of the correction
    case_id: Optional[str] = None
    text: str = ""             # the customer's words, the example's input (empty when not known)
    lang: str = ""
    platform: str = ""

    @property
    def correction_id(self) -> str:
        """The same correction recorded twice (a retried request) is one correction."""
        raw = "|".join([self.mention_id, self.field, repr(self.before), repr(self.after), self.agent_id, self.at])
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]

    def to_dict(self) -> Dict[str, Any]:
        return {**asdict(self), "correction_id": self.correction_id}

    def __post_init__(self) -> None:
        if self.field not in CORRECTION_FIELDS:
            raise ValueError(f"a correction is about one of {', '.join(CORRECTION_FIELDS)}, not {self.field!r}")
