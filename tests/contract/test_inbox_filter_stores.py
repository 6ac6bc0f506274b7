"""Inbox filters and hand-off loads, on the fakes and on the DynamoDB adapters (moto, indexes from
infra/template.yaml): full pages in order whatever a filter drops, never an empty page with more to come."""
from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.case import new_case, with_assignee
from chalicelib.domain.inbox_filter import UNASSIGNED, InboxFilter
from tests.fakes import mention

T0 = "2026-11-23T03:00:00.000000Z"


def a_case(n, *, team="support", priority="normal", category="complaint", tags=(), assignee=None,
           platform="x", lang="en", escalated=False):
    created = f"2026-11-23T03:{n // 60:02d}:{n % 60:02d}.000000Z"
    case = new_case(mention(str(1000 + n), author_id=f"a{n}", platform=platform, lang=lang),
                    {"priority": priority, "category": category, "tags": list(tags), "escalate": escalated},
                    team=team, assignee=assignee, now=created)
    return case


def every_page(read, limit):
    """All cases of a listing, page by page; asserts no page is short while more follow."""
    seen, after, pages = [], None, 0
    while True:
        page = read(limit, after)
        pages += 1
        assert len(page.positions) == len(page.cases)
        if page.more:
            assert len(page.cases) == limit, "a page with more to come must be full"
            after = page.positions[-1]
        seen.extend(page.cases)
        if not page.more:
            return seen, pages


@pytest.fixture
def crowded(stores):
    """40 cases of team support, a few of which match each rare filter; one of another team."""
    cases = stores["cases"]
    for n in range(40):
        cases.create(a_case(
            n, priority="urgent" if n % 10 == 3 else "normal",
            category="sales_lead" if n in (5, 17, 33) else "complaint",
            tags=("refund",) if n % 13 == 0 else ("baggage",),
            assignee="kana" if n in (2, 11, 29, 38) else None,
            platform="whatsapp" if n in (7, 8) else "x", lang="ja" if n == 21 else "en",
            escalated=n in (4, 36)))
    cases.create(a_case(99, team="vip", category="sales_lead", assignee="kana"))
    return cases


@pytest.mark.parametrize("order", ["newest", "priority", "due"])
@pytest.mark.parametrize("where,expected", [
    (InboxFilter(assignee="kana"), {2, 11, 29, 38}),
    (InboxFilter(assignee=UNASSIGNED), set(range(40)) - {2, 11, 29, 38}),
    (InboxFilter(category="sales_lead"), {5, 17, 33}),
    (InboxFilter(priority="urgent"), {3, 13, 23, 33}),
    (InboxFilter(priority="urgent", category="sales_lead"), {33}),
    (InboxFilter(tag="refund"), {0, 13, 26, 39}),
    (InboxFilter(platform="whatsapp"), {7, 8}),
    (InboxFilter(lang="ja"), {21}),
    (InboxFilter(escalated=True), {4, 36}),
    (InboxFilter(escalated=False, tag="refund", assignee=UNASSIGNED), {0, 13, 26, 39}),
    (InboxFilter(category="praise"), set()),
])
def test_filtered_listings_page_fully_in_order(crowded, where, expected, order):
    seen, pages = every_page(
        lambda limit, after: crowded.inbox_page("support", "open", order, limit, after, where=where), 2)
    numbers = [int(c.customer["id"][1:]) for c in seen]
    assert set(numbers) == expected and len(numbers) == len(expected)
    keys = [c.sort_key(order) for c in seen]
    assert keys == sorted(keys, reverse=order == "newest")
    assert pages == max(1, -(-len(expected) // 2))  # no trailing empty page


def test_a_filter_and_its_position_resume_where_they_left_off(crowded):
    where = InboxFilter(assignee=UNASSIGNED, priority="normal")
    first = crowded.inbox_page("support", "open", "priority", 5, None, where=where)
    rest = crowded.inbox_page("support", "open", "priority", 100, first.positions[-1], where=where)
    ids = [c.case_id for c in first.cases + rest.cases]
    assert len(ids) == len(set(ids)) == 32 and not rest.more


def test_a_case_whose_filtered_attribute_changed_leaves_the_listing(crowded):
    page = crowded.inbox_page("support", "open", "newest", 10, None, where=InboxFilter(category="sales_lead"))
    case = page.cases[0]
    assert crowded.save(replace(case, category="complaint"))
    again = crowded.inbox_page("support", "open", "newest", 10, None, where=InboxFilter(category="sales_lead"))
    assert case.case_id not in [c.case_id for c in again.cases] and len(again.cases) == 2


def test_a_person_may_assign_past_capacity_only_when_they_say_so(stores):
    cases, settings = stores["cases"], stores["settings"]
    settings.put_agent(Agent(agent_id="kana", teams=["support"], capacity=1, open_cases=1))
    case = a_case(1)
    cases.create(case)
    stored = cases.get(case.case_id)
    event = {"event": "assigned", "agent_id": "boss"}
    assert cases.assign(stored, with_assignee(stored, "kana", T0), event=event) == "full"
    assert settings.get_agent("kana").open_cases == 1
    assert cases.assign(stored, with_assignee(stored, "kana", T0), event=event, over_capacity=True) == "assigned"
    assert settings.get_agent("kana").open_cases == 2 and cases.get(case.case_id).assignee == "kana"
    # Handing it on moves the load: one less for kana, one more for aiko.
    settings.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=5))
    now = cases.get(case.case_id)
    assert cases.assign(now, with_assignee(now, "aiko", T0), event=event) == "assigned"
    assert settings.get_agent("kana").open_cases == 1 and settings.get_agent("aiko").open_cases == 1


@pytest.mark.parametrize("order", ["newest", "priority", "due"])
def test_an_agents_own_cases_page_from_their_own_entries(crowded, order):
    seen, pages = every_page(lambda limit, after: crowded.assignee_page(
        "kana", "open", order, limit, after, teams=["support", "vip"]), 1)
    assert sorted(int(c.customer["id"][1:]) for c in seen) == [2, 11, 29, 38, 99] and pages == 5
    keys = [c.sort_key(order) for c in seen]
    assert keys == sorted(keys, reverse=order == "newest")
    # Only the teams the reader may see, and the other filters still apply.
    support = crowded.assignee_page("kana", "open", order, 10, None, teams=["support"])
    assert sorted(int(c.customer["id"][1:]) for c in support.cases) == [2, 11, 29, 38] and not support.more
    refunds = crowded.assignee_page("kana", "open", order, 10, None, teams=["support", "vip"],
                                    where=InboxFilter(assignee="kana", tag="refund"))
    assert [int(c.customer["id"][1:]) for c in refunds.cases] == []
    assert crowded.assignee_page("kana", "resolved", order, 10, None, teams=["support"]).cases == []


def test_an_agents_listing_follows_status_and_assignee_changes(crowded):
    from chalicelib.domain.case import with_status

    mine = crowded.assignee_page("kana", "open", "newest", 10, None, teams=["support"]).cases
    resolved = with_status(mine[0], "resolved", "2026-11-23T05:00:00.000000Z")
    assert crowded.save(resolved)
    assert crowded.save(with_assignee(crowded.get(mine[1].case_id), None, T0))
    left = crowded.assignee_page("kana", "open", "priority", 10, None, teams=["support"]).cases
    assert {c.case_id for c in left} == {c.case_id for c in mine[2:]}
    done = crowded.assignee_page("kana", "resolved", "newest", 10, None, teams=["support"]).cases
    assert [c.case_id for c in done] == [mine[0].case_id]
