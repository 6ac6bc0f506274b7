"""Notifications on the fakes: who gets them, once per event, each person's own feed, and a topic that
may fail without losing the in-app copy."""
from __future__ import annotations

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.case import new_case
from chalicelib.domain.errors import BadRequest, InvalidCursor
from chalicelib.domain.notification import MAX_DETAIL
from chalicelib.services import notify
from tests.fakes import Clock, fake_deps, mention


@pytest.fixture
def clock():
    return Clock("2026-11-23T03:00:00.000000Z")


@pytest.fixture
def deps(clock):
    deps = fake_deps(clock)
    deps.settings.put_agent(Agent(agent_id="boss", teams=["support"], role="supervisor"))
    deps.settings.put_agent(Agent(agent_id="vboss", teams=["vip"], role="supervisor"))
    deps.settings.put_agent(Agent(agent_id="aiko", teams=["support"]))
    deps.settings.put_agent(Agent(agent_id="ben", teams=["support"]))
    return deps


def a_case(number, *, team="support", assignee="aiko", priority="normal"):
    return new_case(mention(f"{team}{number}", author_id=f"c{number}"), {"priority": priority}, team=team,
                    assignee=assignee, now="2026-11-23T03:00:00.000000Z")


def notify_many(deps, clock, count, **case_options):
    ids = []
    for number in range(count):
        clock.advance(minutes=1)
        sent = notify.notify(a_case(number, **case_options), "sla_warning", f"warning {number}", deps,
                             key=f"first_response:warning:{number}", now=deps.now())
        ids.append(sent.notification_id)
    return ids


def test_the_assignee_and_the_teams_supervisors_get_it_once_per_key(deps, clock):
    case = a_case(1, priority="urgent")
    first = notify.notify(case, "sla_breach", "late", deps, key="first_response:breach:t0", now=deps.now())
    clock.advance(minutes=5)
    again = notify.notify(case, "sla_breach", "late", deps, key="first_response:breach:t0", now=deps.now())
    assert first.notification_id == again.notification_id
    assert set(deps.notifications.feeds) == {"aiko", "boss"}  # not ben, not another team's supervisor
    assert all(len(feed) == 1 for feed in deps.notifications.feeds.values())
    assert [(n.priority, n.at) for n in deps.notifications.feeds["boss"].values()] == [
        ("urgent", "2026-11-23T03:00:00.000000Z")]
    assert [(n.reason, r) for n, r in deps.notifier.published] == [("sla_breach", ["aiko", "boss"])]
    other = notify.notify(case, "sla_breach", "late", deps, key="next_response:breach:t1", now=deps.now())
    assert other.notification_id != first.notification_id and len(deps.notifier.published) == 2


def test_an_unassigned_case_of_a_team_without_supervisors_reaches_every_supervisor(deps):
    notify.notify(a_case(1, team="night", assignee=None), "escalation", "look", deps, key="escalation",
                  now=deps.now())
    assert set(deps.notifications.feeds) == {"boss", "vboss"}


def test_the_detail_is_one_bounded_line(deps):
    sent = notify.notify(a_case(1), "escalation", "line one\nline two " + "x" * 2000, deps, key="k", now=deps.now())
    assert len(sent.detail) == MAX_DETAIL and sent.detail.startswith("line one line two") and "\n" not in sent.detail
    assert sent.detail.endswith("…")


def test_a_failing_topic_is_logged_and_counted_and_the_feed_keeps_its_copy(deps, monkeypatch):
    counted = []
    monkeypatch.setattr(notify, "count", lambda name, value=1: counted.append(name))
    deps.notifier.fail = True
    sent = notify.notify(a_case(1), "sla_warning", "soon", deps, key="k", now=deps.now())
    assert counted == ["NotificationsNotPublished"]
    assert sent.notification_id in deps.notifications.feeds["boss"]
    assert notify.list_notifications(deps.settings.get_agent("aiko"), {}, deps)["notifications"][0]["detail"] == "soon"


def test_each_person_lists_only_their_own_feed_newest_first_in_pages(deps, clock):
    ids = notify_many(deps, clock, 5)
    notify_many(deps, clock, 2, team="vip", assignee=None)  # vboss's, not boss's
    boss = deps.settings.get_agent("boss")
    seen, cursor = [], None
    while True:
        page = notify.list_notifications(boss, {"limit": "2", **({"cursor": cursor} if cursor else {})}, deps)
        seen.extend(page["notifications"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [n["notification_id"] for n in seen] == list(reversed(ids))
    assert all(n["read"] is False and n["team"] == "support" for n in seen)
    ben = deps.settings.get_agent("ben")  # in the team, but assigned none of them
    assert notify.list_notifications(ben, {}, deps) == {"notifications": [], "next_cursor": None}
    # Another person's cursor does not open their feed.
    boss_cursor = notify.list_notifications(boss, {"limit": "1"}, deps)["next_cursor"]
    with pytest.raises(InvalidCursor):
        notify.list_notifications(deps.settings.get_agent("vboss"), {"cursor": boss_cursor}, deps)


def test_marking_read_touches_only_the_callers_own_and_unread_lists_the_rest(deps, clock):
    ids = notify_many(deps, clock, 3)
    vip = notify_many(deps, clock, 1, team="vip", assignee=None)
    aiko, boss, vboss = (deps.settings.get_agent(a) for a in ("aiko", "boss", "vboss"))
    result = notify.mark_read(aiko, {"ids": [ids[0], ids[0], vip[0], "n_unknown"]}, deps)
    assert result == {"read": [ids[0]], "not_found": [vip[0], "n_unknown"]}
    assert [n["notification_id"] for n in notify.list_notifications(aiko, {"unread": "true"}, deps)["notifications"]] \
        == [ids[2], ids[1]]
    # aiko's read is hers: the same notification is still unread for the supervisor, and vboss's is untouched.
    assert len(notify.list_notifications(boss, {"unread": "true"}, deps)["notifications"]) == 3
    assert notify.list_notifications(vboss, {"unread": "true"}, deps)["notifications"][0]["read"] is False
    read = notify.list_notifications(aiko, {"unread": "false"}, deps)["notifications"][-1]
    assert read["notification_id"] == ids[0] and read["read"] is True and read["read_at"] == deps.now()


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"limit": "9" * 50},
                                    {"unread": "yes"}, {"cursor": "%%%"}])
def test_bad_listing_queries_are_400(deps, params):
    with pytest.raises(BadRequest):
        notify.list_notifications(deps.settings.get_agent("aiko"), params, deps)


@pytest.mark.parametrize("body", [None, [], {}, {"ids": []}, {"ids": "n_1"}, {"ids": [1]}, {"ids": [""]},
                                  {"ids": ["n_1"] * 101}, {"ids": ["n_1"], "all": True}, {"ids": ["x" * 129]}])
def test_bad_mark_read_bodies_are_400(deps, body):
    with pytest.raises(BadRequest):
        notify.mark_read(deps.settings.get_agent("aiko"), body, deps)
