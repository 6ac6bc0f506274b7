"""How long customers' data is kept: the rules behind every ``expires_at`` (DynamoDB TTL).

Periods are settings (``RETENTION_MENTIONS_DAYS``, ``RETENTION_CASES_DAYS``);
these functions only turn them into moments, so that every writer agrees.

- A **mention record** (the dedupe record with the normalized post and its
  triage decision) expires a fixed period after it was received. The
  platform's raw payload is never stored at all (``Mention.to_dict`` leaves
  it out), so it needs no period of its own.
- A **case** never expires while it is active (open or pending), however
  quiet it is: an agent may still be working on it. Once it is resolved or
  closed, the case and everything under it (the posts, events, replies, the
  receipts of sent replies and its entry in the customer's ledger) expire a
  fixed period after its last activity, which is ``updated_at``: the moment
  it was resolved or closed, or the customer's last follow-up. A resolved case
  that is reopened is active again and loses its expiry; closing it again
  starts the period anew.

DynamoDB deletes an expired item within days of its ``expires_at`` (not to
the second), and removes it from every index with it.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from chalicelib.domain.case import Case

SECONDS_PER_DAY = 86_400
# Defaults: a little over a year for what was merely heard, two years for what was handled.
DEFAULT_MENTIONS_DAYS = 400
DEFAULT_CASES_DAYS = 730
MIN_DAYS = 1
MAX_DAYS = 36_500  # a hundred years: anything longer is a typo, not a policy


def check_days(name: str, days: int) -> int:
    """``days`` when it is a usable retention period; ValueError naming the setting otherwise."""
    if isinstance(days, bool) or not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"{name} must be a whole number of days from {MIN_DAYS} to {MAX_DAYS}, not {days!r}")
    return days


def mention_expires_at(received_epoch: int, days: int) -> int:
    """When a mention record received at ``received_epoch`` (epoch seconds) expires."""
    return int(received_epoch) + days * SECONDS_PER_DAY


def last_activity(case: Case) -> Optional[datetime]:
    """The moment a case last changed for the customer: its ``updated_at`` (None when it is not a time)."""
    try:
        moment = datetime.fromisoformat(case.updated_at.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def case_expires_at(case: Case, days: int, *, now_epoch: Optional[float] = None) -> Optional[int]:
    """When every item of ``case`` expires (epoch seconds); None while it is active: it never ages out then.

    A done case whose ``updated_at`` is not a time counts from ``now_epoch`` (the moment it is
    written), so that it still ages out; without ``now_epoch``, ValueError.
    """
    if case.active:
        return None
    moment = last_activity(case)
    if moment is not None:
        start = moment.timestamp()
    elif now_epoch is not None:
        start = now_epoch
    else:
        raise ValueError(f"case {case.case_id}: updated_at {case.updated_at!r} is not an ISO time")
    return int(start) + days * SECONDS_PER_DAY


def retained_until(expires_at: Optional[int]) -> Optional[str]:
    """``expires_at`` as the ISO time people read (None: kept while the case is active)."""
    if expires_at is None:
        return None
    return datetime.fromtimestamp(int(expires_at), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
