"""TemplateStore: the same assertions on the in-memory fake and on DynamoDB (moto, the real template)."""
from __future__ import annotations

import pytest

from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.templates import Template
from tests.fakes_templates import FakeTemplateStore


@pytest.fixture(params=["fake", "dynamo"])
def store(request):
    if request.param == "fake":
        return FakeTemplateStore()
    request.getfixturevalue("aws")
    from chalicelib.adapters.template_store import DynamoTemplateStore

    return DynamoTemplateStore("socialcare-test-settings")


def template(template_id, team="support", **extra):
    values = {"name": template_id.title(), "bodies": {"en": f"Hi from {template_id}"}, "tags": ["a"],
              "updated_at": "2026-11-23T03:00:00Z", "updated_by": "boss", **extra}
    return Template(template_id=template_id, team=team, **values)


def test_a_template_is_saved_read_by_id_replaced_and_deleted(store):
    assert store.get_template("lost-bag") is None
    assert store.put_template(template("lost-bag", bodies={"en": "Hi", "ja": "こんにちは"})) is True
    found = store.get_template("lost-bag")
    assert found == template("lost-bag", bodies={"en": "Hi", "ja": "こんにちは"})
    assert store.put_template(template("lost-bag", name="Renamed")) is False
    assert store.get_template("lost-bag").name == "Renamed"
    removed = store.delete_template("lost-bag")
    assert removed is not None and removed.name == "Renamed"
    assert store.get_template("lost-bag") is None and store.delete_template("lost-bag") is None
    assert store.templates_page("support")[0] == []


def test_usage_is_added_atomically_and_survives_saves_and_moves(store):
    store.put_template(template("lost-bag"))
    for _ in range(3):
        store.count_use("lost-bag", "support")
    store.put_template(template("lost-bag", name="v2"))
    assert store.get_template("lost-bag").usage == 3
    store.put_template(template("lost-bag", team="vip"))   # moved to another team
    moved = store.get_template("lost-bag")
    assert moved.team == "vip" and moved.usage == 3
    assert store.templates_page("support")[0] == []
    assert [t.template_id for t in store.templates_page("vip")[0]] == ["lost-bag"]
    store.count_use("gone", "support")   # nothing there: nothing happens
    assert store.get_template("gone") is None


def test_a_teams_templates_come_in_id_order_pages_with_a_lang_filter(store):
    for index in range(5):
        store.put_template(template(f"t-{index}", bodies={"en": "Hi"} if index % 2 else {"ja": "はい"}))
    store.put_template(template("other", team="vip"))
    first, position = store.templates_page("support", limit=2)
    assert [t.template_id for t in first] == ["t-0", "t-1"] and position
    second, position = store.templates_page("support", limit=2, after=position)
    third, last = store.templates_page("support", limit=2, after=position)
    assert [t.template_id for t in second + third] == ["t-2", "t-3", "t-4"] and last is None
    japanese, more = store.templates_page("support", lang="ja", limit=2)
    assert [t.template_id for t in japanese] == ["t-0", "t-2"] and more
    rest, end = store.templates_page("support", lang="ja", limit=2, after=more)
    assert [t.template_id for t in rest] == ["t-4"] and end is None
    exact, none = store.templates_page("support", lang="en", limit=2)
    assert [t.template_id for t in exact] == ["t-1", "t-3"] and none is None
    assert store.template_teams() == ["support", "vip"]
    with pytest.raises(InvalidCursor):
        store.templates_page("vip", after=position)   # a position from another team's listing


def test_the_brand_voice_document_is_kept_whole(store):
    assert store.get_brand_voice() is None
    rules = {"banned": [{"phrase": "calm down", "severity": "block"}],
             "personal_data": {"order_pattern": None, "allow": []}}
    store.put_brand_voice(rules, author="boss", at="2026-11-23T03:00:00Z")
    assert store.get_brand_voice() == {"rules": rules, "updated_by": "boss", "updated_at": "2026-11-23T03:00:00Z"}
