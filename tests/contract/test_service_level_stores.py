"""Service levels in the stores (issue 11): the due inbox and its sla filters, the waiting queue,
assignment, the scheduler's due listing, away-message claims, presence, supervisors, team settings and
the notification feeds. The same tests on the fakes and on DynamoDB (moto, tables from
infra/template.yaml), so the in-memory behaviour the services are tested on is what DynamoDB does."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.away import AwaySettings
from chalicelib.domain.case import with_assignee, with_status
from chalicelib.domain.clock import parse_iso, to_iso
from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.hours import validate_calendar
from chalicelib.domain.notification import new_notification
from chalicelib.domain.sla import validate_policy
from tests.contract.test_stores import a_case

NOW = "2026-11-23T12:00:00.000000Z"


def at(minutes: float) -> str:
    """NOW moved by ``minutes`` (negative: before)."""
    return to_iso(parse_iso(NOW) + timedelta(minutes=minutes))


def every_page(fetch, limit):
    """Walk a listing to its end; every page but the last is full, and the last is never empty."""
    pages, after = [], None
    while True:
        page = fetch(limit, after)
        items = page.cases if hasattr(page, "cases") else page.case_ids
        assert len(page.positions) == len(items)
        pages.append(items)
        if not page.more:
            break
        assert len(items) == limit, "a page with more to come must be full"
        after = page.positions[-1]
    assert pages[-1] or len(pages) == 1, "no empty page after a page that said more follow"
    return [item for page in pages for item in page]


def a_sla_case(n, *, due=None, warning=None, next_at=None, priority="normal", team="support", created=None,
               assignee=None):
    case = a_case(str(1000 + n), team=team, priority=priority, author_id=str(500 + n),
                  created=created or at(-600 + n))
    return replace(case, sla_due_at=due, sla_warning_at=warning, sla_next_at=next_at, assignee=assignee)


@pytest.fixture
def inbox(stores):
    """30 open cases of support: breached, in warning, ok, and without any deadline; and some that must
    never show (another team, another status)."""
    cases = stores["cases"]
    made = []
    for n in range(30):
        kind = n % 4
        if kind == 0:    # breached; one exactly at now
            case = a_sla_case(n, due=NOW if n == 0 else at(-n), warning=at(-30 - n))
        elif kind == 1:  # in warning; one warned exactly now
            case = a_sla_case(n, due=at(60 + n), warning=NOW if n == 1 else at(-n))
        elif kind == 2:  # ok: warning still ahead
            case = a_sla_case(n, due=at(120 + n), warning=at(90 + n))
        else:            # no running clock
            case = a_sla_case(n)
        assert cases.create(case)
        made.append(case)
    assert cases.create(a_sla_case(40, due=at(-5), warning=at(-50), team="vip"))
    pending = a_sla_case(41, due=at(-5), warning=at(-50))
    assert cases.create(replace(pending, status="pending"))
    return made


@pytest.mark.parametrize("order", ["due", "newest", "priority"])
@pytest.mark.parametrize("sla", [None, "breached", "warning"])
def test_the_inbox_orders_and_filters_by_service_level_in_full_pages(stores, inbox, order, sla):
    cases = stores["cases"]
    expected = [c for c in inbox if sla is None or c.sla_state_at(NOW) == sla]
    expected.sort(key=lambda c: c.sort_key(order), reverse=order == "newest")
    for limit in (1, 4, 7, 30):
        seen = every_page(lambda n, after: cases.inbox_page("support", "open", order, n, after, sla=sla, now=NOW),
                          limit)
        assert [c.case_id for c in seen] == [c.case_id for c in expected], (order, sla, limit)
    assert len(expected) == {None: 30, "breached": 8, "warning": 8}[sla]
    if order == "due" and sla is None:  # what is due first, cases without a deadline last, oldest first
        assert seen[0].sla_due_at == min(c.sla_due_at for c in inbox if c.sla_due_at)
        assert [c.sla_due_at for c in seen[-7:]] == [None] * 7


def test_a_filtered_listing_that_matches_nothing_is_one_empty_page(stores, inbox):
    page = stores["cases"].inbox_page("support", "open", "due", 10, None, sla="breached", now=at(-24 * 60))
    assert page.cases == [] and page.positions == [] and not page.more


def test_the_due_inbox_refuses_a_position_it_did_not_issue(stores, inbox):
    cases = stores["cases"]
    with pytest.raises(InvalidCursor):
        cases.inbox_page("support", "open", "due", 5, "bm90LWEtcG9zaXRpb24", sla="breached", now=NOW)


# ---- the waiting queue and assignment ------------------------------------------------------------

def test_the_waiting_queue_is_due_first_then_priority_then_oldest_and_an_assigned_case_leaves_it(stores):
    cases, settings = stores["cases"], stores["settings"]
    settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=5))
    waiting = [
        a_sla_case(1, due=at(30), priority="low"),
        a_sla_case(2, due=at(30), priority="urgent"),
        a_sla_case(3, due=at(10), priority="low"),
        a_sla_case(4, priority="urgent"),                  # no deadline: after every deadline
        a_sla_case(5, priority="urgent", created=at(-900)),  # ... the oldest of those first
        a_sla_case(6, priority="high"),
        a_sla_case(7, due=at(30), priority="urgent", created=at(-900)),
    ]
    for case in waiting:
        assert cases.create(case)
    assert cases.create(a_sla_case(8, due=at(1), assignee="aiko"))                  # assigned
    assert cases.create(replace(a_sla_case(9, due=at(1)), status="pending"))        # waits on the customer
    assert cases.create(a_sla_case(10, due=at(1), team="vip"))                      # another team's
    expected = [c.case_id for c in sorted(waiting, key=lambda c: c.waiting_key)]
    for limit in (1, 3, 10):
        seen = every_page(lambda n, after: cases.waiting_page("support", n, after), limit)
        assert [c.case_id for c in seen] == expected

    first = cases.get(expected[0])
    assert cases.assign(first, with_assignee(first, "aiko", NOW), event={"event": "assigned"}) == "assigned"
    assert [c.case_id for c in every_page(lambda n, a: cases.waiting_page("support", n, a), 2)] == expected[1:]
    with pytest.raises(InvalidCursor):
        cases.waiting_page("support", 2, "bm90LWEtcG9zaXRpb24")


def test_assign_moves_the_case_and_both_loads_together_or_says_why_not(stores):
    cases, settings = stores["cases"], stores["settings"]
    settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=3))
    settings.put_agent(Agent(agent_id="ken", teams=["support"], capacity=1))
    case = replace(a_case("60", author_id="60"), assignee="aiko")
    assert cases.open_case(case, opened_event={"event": "opened"}).outcome == "opened"
    assert settings.get_agent("aiko").open_cases == 1

    before = cases.get(case.case_id)
    moved = with_assignee(before, "ken", NOW)
    assert cases.assign(before, moved, event={"event": "reassigned", "to": "ken"}) == "assigned"
    assert moved.version == before.version + 1
    stored = cases.get(case.case_id)
    assert stored.assignee == "ken" and stored.assigned_at == NOW and stored.version == before.version + 1
    assert settings.get_agent("aiko").open_cases == 0 and settings.get_agent("ken").open_cases == 1
    assert cases.active_case_for_customer(case.customer_key) == case.case_id  # the customer's pointer stays
    assert "reassigned" in [e["event"] for e in cases.history(case.case_id).events]

    # Read before the change above: stale, nothing moves.
    assert cases.assign(before, with_assignee(before, "aiko", NOW), event={"event": "x"}) == "stale"
    assert cases.get(case.case_id).assignee == "ken" and settings.get_agent("ken").open_cases == 1

    # Ken is full: the case stays where it is, and so do the loads.
    other = a_case("61", author_id="61")
    assert cases.open_case(other, opened_event={"event": "opened"}).outcome == "opened"
    waiting = cases.get(other.case_id)
    assert cases.assign(waiting, with_assignee(waiting, "ken", NOW), event={"event": "x"}) == "full"
    assert cases.get(other.case_id).assignee is None and settings.get_agent("ken").open_cases == 1
    assert cases.assign(waiting, with_assignee(waiting, "nobody", NOW), event={"event": "x"}) == "full"

    # From the queue to an agent: one more for her, nobody to release.
    assert cases.assign(waiting, with_assignee(waiting, "aiko", NOW), event={"event": "x"}) == "assigned"
    assert settings.get_agent("aiko").open_cases == 1

    # Back to the queue in another team: one less for her.
    current = cases.get(other.case_id)
    assert cases.assign(current, with_assignee(current, None, NOW, team="vip"), event={"event": "moved"}) == "assigned"
    assert cases.get(other.case_id).team == "vip" and settings.get_agent("aiko").open_cases == 0

    # A done case carries no load: handing it over moves none.
    done = cases.get(case.case_id)
    resolved = with_status(done, "resolved", at(1))
    assert cases.change_status(done, resolved, event={"event": "status_changed"})
    assert settings.get_agent("ken").open_cases == 0
    done = cases.get(case.case_id)
    assert cases.assign(done, with_assignee(done, "aiko", at(2)), event={"event": "x"}) == "assigned"
    assert settings.get_agent("aiko").open_cases == 0 and settings.get_agent("ken").open_cases == 0


def test_assign_still_moves_a_case_whose_previous_assignee_count_drifted_to_zero(stores):
    cases, settings = stores["cases"], stores["settings"]
    settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=3))
    settings.put_agent(Agent(agent_id="ken", teams=["support"], capacity=3))
    case = replace(a_case("62", author_id="62"), assignee="aiko")
    cases.open_case(case, opened_event={"event": "opened"})
    assert settings.adjust_open_cases("aiko", -1, at=NOW)  # drifted: her count no longer holds the case
    before = cases.get(case.case_id)
    assert cases.assign(before, with_assignee(before, "ken", NOW), event={"event": "x"}) == "assigned"
    assert settings.get_agent("aiko").open_cases == 0 and settings.get_agent("ken").open_cases == 1


# ---- the scheduler's listing ---------------------------------------------------------------------------

def test_due_for_check_lists_every_case_due_at_or_before_now_earliest_first(stores):
    cases = stores["cases"]
    due = [a_sla_case(1, next_at=at(-30)), a_sla_case(2, next_at=NOW), a_sla_case(3, next_at=at(-1)),
           a_sla_case(4, next_at=at(-0.001)), a_sla_case(5, next_at=at(-30), team="vip")]
    later = [a_sla_case(6, next_at=at(0.001)), a_sla_case(7, next_at=at(60)), a_sla_case(8)]
    for case in due + later:
        assert cases.create(case)
    expected = [c.case_id for c in sorted(due, key=lambda c: (c.sla_next_at, c.case_id))]
    for limit in (1, 2, 5, 50):
        assert every_page(lambda n, after: cases.due_for_check(NOW, n, after), limit) == expected
    assert cases.due_for_check(at(-120), 10).case_ids == []
    # Once checked, a case leaves the listing (its next look is later, or never).
    checked = cases.get(expected[0])
    assert cases.save(replace(checked, sla_next_at=None))
    assert cases.due_for_check(NOW, 10).case_ids == expected[1:]
    with pytest.raises(InvalidCursor):
        cases.due_for_check(NOW, 2, "bm90LWEtcG9zaXRpb24")


# ---- away messages -------------------------------------------------------------------------------

def test_a_customer_gets_one_away_message_per_period(stores):
    cases = stores["cases"]
    hour = 60
    assert cases.claim_away_message("x:42", case_id="c_1", at=NOW, not_since=at(-12 * hour))
    assert not cases.claim_away_message("x:42", case_id="c_2", at=at(5), not_since=at(5 - 12 * hour))
    # The same case again (its reply was not stored before a crash): it may claim.
    assert cases.claim_away_message("x:42", case_id="c_1", at=at(6), not_since=at(6 - 12 * hour))
    assert cases.claim_away_message("x:7", case_id="c_3", at=at(6), not_since=at(6 - 12 * hour))  # someone else
    # A period after the last one: again.
    assert not cases.claim_away_message("x:42", case_id="c_2", at=at(12 * hour), not_since=at(6))
    assert cases.claim_away_message("x:42", case_id="c_2", at=at(12 * hour + 7), not_since=at(7))
    # Erasing the customer forgets when they got one: the next case may claim at once.
    cases.forget_away_message("x:42")
    cases.forget_away_message("x:42")  # repeatable
    assert cases.claim_away_message("x:42", case_id="c_9", at=at(12 * hour + 8), not_since=at(8))


# ---- agents ------------------------------------------------------------------------------------------

def test_presence_is_the_agents_own_and_a_profile_edit_keeps_it(stores):
    settings = stores["settings"]
    settings.put_agent(Agent(agent_id="aiko", name="Aiko", teams=["support"], capacity=3))
    settings.adjust_open_cases("aiko", +1, at=at(-5))
    changed = settings.set_presence("aiko", "away", at=NOW)
    assert changed.presence == "away" and changed.presence_changed_at == NOW and changed.open_cases == 1
    # A supervisor's edit, made from a copy read before the presence changed.
    settings.put_agent(Agent(agent_id="aiko", name="Aiko T.", teams=["support", "vip"], capacity=5))
    stored = settings.get_agent("aiko")
    assert (stored.name, stored.capacity, stored.teams) == ("Aiko T.", 5, ["support", "vip"])
    assert stored.presence == "away" and stored.presence_changed_at == NOW and stored.open_cases == 1
    assert not stored.has_room
    assert settings.set_presence("nobody", "online", at=NOW) is None
    assert settings.get_agent("nobody") is None


def test_supervisors_are_listed_and_follow_role_changes(stores):
    settings = stores["settings"]
    settings.put_agent(Agent(agent_id="boss", teams=["leads"], role="supervisor"))
    settings.put_agent(Agent(agent_id="aiko", teams=["support"]))
    settings.put_agent(Agent(agent_id="lead", teams=["support", "vip"], role="supervisor"))
    assert [a.agent_id for a in settings.supervisors()] == ["boss", "lead"]
    settings.put_agent(Agent(agent_id="lead", teams=["support"], role="agent"))
    settings.put_agent(Agent(agent_id="aiko", teams=["support"], role="supervisor"))
    assert [a.agent_id for a in settings.supervisors()] == ["aiko", "boss"]


# ---- team settings, the policy, running facts -----------------------------------------------------------

def test_calendars_away_settings_and_the_policy_come_back_as_they_were_saved(stores):
    settings = stores["settings"]
    tokyo = validate_calendar({"time_zone": "Asia/Tokyo", "weekly": {"mon": [["09:00", "12:00"], ["13:00", "18:00"]],
                                                                     "sat": [["10:00", "14:00"]]},
                               "holidays": ["2026-12-31"], "exceptions": [{"date": "2026-12-26", "hours": [["10:00", "15:00"]]}]})
    london = validate_calendar({"time_zone": "Europe/London", "weekly": {"tue": [["08:00", "20:00"]]}})
    assert settings.get_team_calendar("support") is None and settings.team_calendars() == {}
    settings.put_team_calendar("support", tokyo, author="boss", at=NOW)
    settings.put_team_calendar("チーム", london, author="boss", at=NOW)  # a team nobody is in yet
    assert settings.get_team_calendar("support") == tokyo
    assert settings.team_calendars() == {"support": tokyo, "チーム": london}
    assert settings.delete_team_calendar("support") and not settings.delete_team_calendar("support")
    assert settings.team_calendars() == {"チーム": london}

    away = AwaySettings(enabled=False, templates={"en": "We are closed; back at 9.", "ja": "営業時間外です。"})
    assert settings.get_away_settings("support") is None
    settings.put_away_settings("support", away, author="boss", at=NOW)
    assert settings.get_away_settings("support") == away

    policy = validate_policy({"business_hours": True, "warning_ratio": 0.8,
                              "default": {"urgent": {"first_response": 30, "resolution": {"minutes": 480,
                                                                                           "business_hours": False,
                                                                                           "warning_ratio": 0.75}},
                                          "normal": {"first_response": 240}},
                              "overrides": [{"team": "vip", "targets": {"urgent": {"first_response": 15}},
                                             "actions": {"breach": ["notify", {"move_to_team": "escalations"}]}}],
                              "actions": {"warning": ["notify"], "breach": ["notify", "raise_priority", "reassign"]}})
    assert settings.get_sla_policy() is None
    settings.put_sla_policy(policy, author="boss", at=NOW)
    stored = settings.get_sla_policy()
    assert stored == policy and stored.to_dict() == policy.to_dict()
    assert stored.warning_ratio == 0.8 and type(stored.warning_ratio) is float
    assert stored.targets_for("urgent").resolution.warning_ratio == 0.75


def test_recent_first_responses_keep_the_latest_fifty_newest_first(stores):
    settings = stores["settings"]
    assert settings.recent_first_responses("support") == []
    for seconds in range(55):
        settings.record_first_response("support", seconds, at=at(seconds))
    settings.record_first_response("vip", 7, at=NOW)
    assert settings.recent_first_responses("support") == list(range(54, 4, -1))
    assert settings.recent_first_responses("vip") == [7]


def test_a_jobs_last_run_only_moves_forward(stores):
    settings = stores["settings"]
    assert settings.last_run("sla_tick") is None
    settings.record_run("sla_tick", NOW)
    settings.record_run("sla_tick", at(-1))  # a slow run that finished after a later one
    assert settings.last_run("sla_tick") == NOW
    settings.record_run("sla_tick", at(1))
    assert settings.last_run("sla_tick") == at(1) and settings.last_run("other") is None


# ---- notifications -----------------------------------------------------------------------------------------

def a_notification(n, *, minutes=None, reason="sla_warning"):
    return new_notification(f"c_{n:04d}", "support", reason, f"case {n} needs a first response",
                            key=f"{reason}:{n}", at=at(minutes if minutes is not None else n))


def test_notifications_are_added_once_and_listed_newest_first_in_full_pages(stores):
    feed = stores["notifications"]
    made = [a_notification(n) for n in range(12)]
    for notification in made:
        assert feed.add_notification("aiko", notification)
    assert not feed.add_notification("aiko", made[3])                              # a repeated delivery
    assert not feed.add_notification("aiko", replace(made[3], at=at(100)))        # raised again later: one
    assert feed.add_notification("ken", made[3])                                  # another person's feed
    newest_first = [n.notification_id for n in sorted(made, key=lambda n: n.at, reverse=True)]
    for limit in (1, 4, 5, 12, 20):
        seen, after, pages = [], None, 0
        while True:
            page = feed.notifications_page("aiko", limit=limit, after=after)
            pages += 1
            seen += [n.notification_id for n in page.notifications]
            if page.next_position is None:
                break
            assert len(page.notifications) == limit
            after = page.next_position
        assert seen == newest_first and pages == -(-12 // limit)
    assert feed.notifications_page("ken", limit=10).notifications == [made[3]]
    assert feed.notifications_page("nobody", limit=10).notifications == []
    first = feed.notifications_page("aiko", limit=4)
    with pytest.raises(InvalidCursor):
        feed.notifications_page("ken", limit=4, after=first.next_position)  # someone else's position
    with pytest.raises(InvalidCursor):
        feed.notifications_page("aiko", limit=4, after="bm90LWEtcG9zaXRpb24")


def test_marking_read_and_listing_only_unread_ones(stores):
    feed = stores["notifications"]
    made = [a_notification(n) for n in range(12)]
    for notification in made:
        feed.add_notification("aiko", notification)
    read = [made[n].notification_id for n in (0, 2, 5, 6, 11)]
    found = feed.mark_read("aiko", read + ["n_unknown"], at=at(30))
    assert found == read
    assert feed.mark_read("aiko", read[:1], at=at(40)) == read[:1]  # again: found, read when it was first read
    assert feed.mark_read("ken", read, at=at(40)) == []                # not in ken's feed
    everything = {n.notification_id: n for n in feed.notifications_page("aiko", limit=50).notifications}
    assert {i for i, n in everything.items() if n.read} == set(read)
    assert everything[read[0]].read_at == at(30)
    unread = [n.notification_id for n in sorted(made, key=lambda n: n.at, reverse=True) if n.notification_id not in read]
    for limit in (1, 3, 7):
        seen, after = [], None
        while True:
            page = feed.notifications_page("aiko", limit=limit, after=after, unread_only=True)
            seen += [n.notification_id for n in page.notifications]
            assert all(not n.read for n in page.notifications)
            if page.next_position is None:
                break
            assert len(page.notifications) == limit  # full, though read ones sit between
            after = page.next_position
        assert seen == unread
    # Every one read: one empty page, no position.
    feed.mark_read("aiko", [n.notification_id for n in made], at=at(50))
    page = feed.notifications_page("aiko", limit=3, unread_only=True)
    assert page.notifications == [] and page.next_position is None


# ---- what DynamoDB holds (the adapter's own concern: sparse index keys, no copies) ----------------------------

def test_sparse_index_keys_are_on_a_case_only_while_it_belongs_in_the_index(stores):
    cases = stores["cases"]
    if not hasattr(cases, "table"):
        pytest.skip("DynamoDB's items")
    import boto3

    def meta(case_id):
        return boto3.client("dynamodb", region_name="us-east-1").get_item(
            TableName=cases.table, Key={"pk": {"S": f"CASE#{case_id}"}, "sk": {"S": "META"}})["Item"]

    case = a_sla_case(1, due=at(30), warning=at(10), next_at=at(10))
    cases.create(case)
    item = meta(case.case_id)
    assert item["waiting_pk"] == {"S": "support"} and item["sla_due_pk"] == {"S": "SLA"}
    assert item["inbox_due_sk"]["S"] == f"{at(30)}#{case.created_at}#{case.case_id}"
    assert cases.get(case.case_id) == case  # the index attributes stay in the adapter
    stored = cases.get(case.case_id)
    assert cases.save(replace(stored, assignee="aiko", sla_next_at=None))
    item = meta(case.case_id)
    assert not {"waiting_pk", "waiting_sk", "sla_due_pk", "sla_next_sk"} & set(item)


def test_supervisors_saved_before_the_role_was_kept_are_found_and_indexed_by_the_next_profile_save(stores):
    settings = stores["settings"]
    if not hasattr(settings, "table"):
        pytest.skip("DynamoDB's items")
    import boto3

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    settings.put_agent(Agent(agent_id="boss", teams=["leads"], role="supervisor"))
    settings.put_agent(Agent(agent_id="aiko", teams=["support"]))
    for sk in ("INDEXED", "AGENT#boss"):  # as a table written before this version has it
        ddb.delete_item(TableName=settings.table, Key={"pk": {"S": "ROLE#supervisor"}, "sk": {"S": sk}})
    assert [a.agent_id for a in settings.supervisors()] == ["boss"]  # read from the teams, no write
    assert "Item" not in ddb.get_item(TableName=settings.table,
                                      Key={"pk": {"S": "ROLE#supervisor"}, "sk": {"S": "INDEXED"}})
    settings.put_agent(Agent(agent_id="ken", teams=["support"]))
    assert "Item" in ddb.get_item(TableName=settings.table,
                                  Key={"pk": {"S": "ROLE#supervisor"}, "sk": {"S": "AGENT#boss"}})
    assert [a.agent_id for a in settings.supervisors()] == ["boss"]
