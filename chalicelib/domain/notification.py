"""Notifications: what reaches a person when something needs them (an SLA warning or breach, an
escalation). Kept per recipient in an in-app feed (``GET /notifications``) and published to an SNS
topic for e-mail or chat integrations. Pure data."""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional

# Why a notification was sent.
REASONS = ("sla_warning", "sla_breach", "escalation", "unassigned", "mention", "assigned",
           "triage_digest")  # triage_digest: the day's negative mentions left without a case (issue 14)
MAX_DETAIL = 500


@dataclass
class Notification:
    notification_id: str
    case_id: str
    team: str
    reason: str
    detail: str
    at: str
    priority: str = "normal"
    read_at: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Notification":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def read(self) -> bool:
        return self.read_at is not None

    def public_view(self) -> Dict[str, Any]:
        view = self.to_dict()
        view["read"] = self.read
        return view


def notification_id_for(case_id: str, key: str) -> str:
    """Deterministic: the same event on the same case is one notification, however often it is raised."""
    return "n_" + hashlib.sha256(f"{case_id}|{key}".encode("utf-8")).hexdigest()[:20]


def new_notification(case_id: str, team: str, reason: str, detail: str, *, key: str, at: str,
                     priority: str = "normal") -> Notification:
    if reason not in REASONS:
        raise ValueError(f"unknown notification reason {reason!r}")
    return Notification(notification_id=notification_id_for(case_id, key), case_id=case_id, team=team,
                        reason=reason, detail=detail[:MAX_DETAIL], at=at, priority=priority)
