"""Notifications that reach a person: an in-app feed per person and the notifications topic (SNS).

Who gets one: the case's assignee and the supervisors of its team, or every supervisor when the
team has none (an escalation must never reach nobody). The same event on the same case is one
notification (its id comes from the case and a key, e.g. the SLA crossing), so raising it again,
after a crash or from a concurrent run, adds nothing to any feed and publishes nothing again.

The feed is the record; the topic is for e-mail or chat integrations. It is published once the
feeds hold the notification, and only when this call added it somewhere: a failed publish is logged
and counted (an alarm can watch ``NotificationsNotPublished``), never raised, so the in-app copy
and the work that raised it stand.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from chalicelib.domain.agent import Agent
from chalicelib.domain.case import Case
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.limits import MAX_ID_LENGTH, page_limit
from chalicelib.domain.notification import MAX_DETAIL, Notification, new_notification
from chalicelib.observability import count, logger
from chalicelib.ports import Deps

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_MARK_READ = 100


def recipients_for(case: Case, deps: Deps) -> List[str]:
    """The assignee, then the team's supervisors (every supervisor when the team has none)."""
    supervisors = deps.settings.supervisors()
    chosen = [s.agent_id for s in supervisors if case.team in s.teams] or [s.agent_id for s in supervisors]
    ordered = ([case.assignee] if case.assignee else []) + chosen
    return list(dict.fromkeys(ordered))


def notify(case: Case, reason: str, detail: str, deps: Deps, *, key: str, now: str,
           recipients: Optional[List[str]] = None) -> Notification:
    """Tell the people of ``case`` about ``reason``; the same ``key`` on the same case is one notification.

    ``recipients``: these people only (an @mention in a note, the agent a case was handed to)."""
    notification = new_notification(case.case_id, case.team, reason, _bounded(detail), key=key, at=now,
                                     priority=case.priority)
    recipients = list(dict.fromkeys(recipients)) if recipients is not None else recipients_for(case, deps)
    added = False
    if deps.notifications is not None:
        for recipient in recipients:
            added = deps.notifications.add_notification(recipient, notification) or added
    # Nobody to put it in a feed for: the topic is then the only way it reaches anyone.
    if deps.notifier is not None and (added or not recipients or deps.notifications is None):
        try:
            deps.notifier.publish(notification, recipients)
        except Exception as err:  # noqa: BLE001 - the in-app copy is kept; the topic is best effort
            count("NotificationsNotPublished")
            logger.error("notification not published to the topic",
                         extra={"notification_id": notification.notification_id, "case_id": case.case_id,
                                "reason": reason, "error": str(err)[:300]})
    return notification


def _bounded(detail: str) -> str:
    text = " ".join(str(detail).split())  # one line: it may end up in an e-mail subject or a chat message
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL - 1] + "…"


def list_notifications(agent: Agent, params: Mapping[str, str], deps: Deps) -> Dict[str, Any]:
    """The caller's own feed, newest first (``?unread=true``, ``limit`` 1..100, ``cursor``).

    A supervisor's feed holds their teams' notifications (they are recipients of them); nobody
    can name another person's feed.
    """
    limit = _limit(params.get("limit", str(DEFAULT_LIMIT)))
    unread = params.get("unread", "false")
    if unread not in ("true", "false"):
        raise BadRequest("query 'unread' must be 'true' or 'false'")
    cursor = params.get("cursor") or None
    if deps.notifications is None:
        return {"notifications": [], "next_cursor": None}
    # The store checks the cursor: one it did not issue for this person is an InvalidCursor (400).
    page = deps.notifications.notifications_page(agent.agent_id, limit=limit, after=cursor,
                                                 unread_only=unread == "true")
    return {"notifications": [n.public_view() for n in page.notifications], "next_cursor": page.next_position}


def _limit(raw: Any) -> int:
    return page_limit(raw, MAX_LIMIT)


def mark_read(agent: Agent, body: Any, deps: Deps) -> Dict[str, Any]:
    """Mark notifications of the caller's own feed read: ``{"ids": [...]}`` (1 to 100).

    Answers which were read (now or before) and which the caller's feed does not hold: another
    person's notification is never touched.
    """
    ids = body.get("ids") if isinstance(body, dict) and set(body) == {"ids"} else None
    if (not isinstance(ids, list) or not 1 <= len(ids) <= MAX_MARK_READ
            or not all(isinstance(i, str) and 0 < len(i) <= MAX_ID_LENGTH for i in ids)):
        raise BadRequest(f'body must be {{"ids": [...]}} with 1 to {MAX_MARK_READ} notification ids')
    wanted = list(dict.fromkeys(ids))
    found = (deps.notifications.mark_read(agent.agent_id, wanted, at=deps.now())
             if deps.notifications is not None else [])
    known = set(found)
    return {"read": [i for i in wanted if i in known], "not_found": [i for i in wanted if i not in known]}
