"""The CustomerStore: the same behaviour on the fake (tests/fakes_customers.py) and on DynamoDB (moto)."""
from __future__ import annotations

import pytest

from chalicelib.domain.customer import FieldDefinition, Identity, Profile, customer_id_for, seen_identity
from tests.fakes_customers import FakeCustomerStore

T0 = "2026-11-23T03:00:00.000000Z"
T1 = "2026-11-23T04:00:00.000000Z"


@pytest.fixture(params=["fake", "dynamo"])
def store(request):
    if request.param == "fake":
        return FakeCustomerStore()
    request.getfixturevalue("aws")
    from chalicelib.adapters.customer_store import DynamoCustomerStore

    return DynamoCustomerStore("socialcare-test-settings")


def seen(key, handle="kana_t", name="Kana"):
    return seen_identity(key, handle=handle, name=name, at=T0)


def audit(action, customer_id, other, keys):
    return {"action": action, "by": "aiko", "at": T1, "customer_id": customer_id, "other_customer_id": other,
            "customer_keys": keys}


def test_an_identity_is_recorded_once_then_only_its_handle_and_newest_case_change(store):
    assert store.identity("facebook:7") is None
    assert store.record_identity(seen("facebook:7"), case_id="c_1", at=T0) is True
    again = store.record_identity(seen("facebook:7", handle="@Kana_New", name="Kana T"), case_id="c_2", at=T1)
    assert again is False
    known = store.identity("facebook:7")
    assert known.customer_id == customer_id_for("facebook:7")
    assert (known.handle, known.name, known.last_case_id, known.first_seen_at) == ("@Kana_New", "Kana T", "c_2", T0)
    assert [i.customer_key for i in store.identities(customer_id_for("facebook:7"))] == ["facebook:7"]
    # Found by every handle it was seen with, case and '@' aside, on its platform only when narrowed.
    assert store.keys_by_handle("KANA_T", limit=10) == ["facebook:7"]
    assert store.keys_by_handle("kana_new", platform="facebook", limit=10) == ["facebook:7"]
    assert store.keys_by_handle("kana_new", platform="x", limit=10) == []


def test_a_merge_links_identities_and_an_unmerge_sends_one_home_each_audited_on_both(store):
    store.record_identity(seen("facebook:7"), case_id="c_1", at=T0)
    store.record_identity(seen("whatsapp:8190001", handle="", name="Kana"), case_id="c_2", at=T0)
    fb, wa = customer_id_for("facebook:7"), customer_id_for("whatsapp:8190001")
    assert store.save_profile(Profile(customer_id=wa, tags=["VIP"], notes="prefers Japanese")) is True

    assert store.link(fb, wa, store.identities(wa), audit=audit("merge", fb, wa, ["whatsapp:8190001"])) is True
    assert sorted(i.customer_key for i in store.identities(fb)) == ["facebook:7", "whatsapp:8190001"]
    assert store.identities(wa) == []
    assert store.identity("whatsapp:8190001").customer_id == fb
    merged = store.profile(wa)
    assert merged.merged_into == fb and merged.tags == ["VIP"]  # nothing moved: its notes stay where they were
    assert store.audit_trail(fb, limit=5)[0]["action"] == store.audit_trail(wa, limit=5)[0]["action"] == "merge"
    # A stale merge (the identity moved meanwhile) changes nothing.
    assert store.link(fb, wa, [Identity(customer_key="whatsapp:8190001", customer_id=wa)],
                      audit=audit("merge", fb, wa, ["whatsapp:8190001"])) is False

    wa_identity = store.identity("whatsapp:8190001")
    assert store.unlink(wa_identity, audit=audit("unmerge", fb, wa, ["whatsapp:8190001"])) is True
    assert [i.customer_key for i in store.identities(fb)] == ["facebook:7"]
    assert [i.customer_key for i in store.identities(wa)] == ["whatsapp:8190001"]
    assert store.profile(wa).merged_into is None and store.profile(wa).tags == ["VIP"]
    assert [a["action"] for a in store.audit_trail(fb, limit=5)] == ["unmerge", "merge"]
    assert store.unlink(wa_identity, audit=audit("unmerge", fb, wa, ["whatsapp:8190001"])) is False


def test_profiles_are_saved_over_their_version_and_never_lose_merged_into(store):
    cid = customer_id_for("x:42")
    assert store.profile(cid) is None
    first = Profile(customer_id=cid, tags=["tier-1"], fields={"membership_number": "SA-1"}, updated_by="aiko",
                    updated_at=T0)
    assert store.save_profile(first) is True and first.version == 1
    assert store.save_profile(Profile(customer_id=cid, tags=["late"])) is False  # written over version 0: stale
    stored = store.profile(cid)
    assert (stored.tags, stored.fields, stored.version) == (["tier-1"], {"membership_number": "SA-1"}, 1)


def test_field_definitions_are_kept_whole(store):
    assert store.field_definitions() == []
    defs = [FieldDefinition(name="membership_number", label="Membership number", max_length=12),
            FieldDefinition(name="miles", label="Miles", type="number")]
    store.put_field_definitions(defs, author="boss", at=T0)
    assert store.field_definitions() == defs


def test_forgetting_an_identity_removes_its_records_and_a_profile_it_leaves_empty(store):
    store.record_identity(seen("facebook:7"), case_id="c_1", at=T0)
    store.record_identity(seen("whatsapp:81", handle="", name="Kana"), case_id="c_2", at=T0)
    fb, wa = customer_id_for("facebook:7"), customer_id_for("whatsapp:81")
    store.save_profile(Profile(customer_id=fb, tags=["VIP"], notes="call back Tuesdays"))
    store.link(fb, wa, store.identities(wa), audit=audit("merge", fb, wa, ["whatsapp:81"]))

    assert store.forget_identity("whatsapp:81") > 0
    assert store.identity("whatsapp:81") is None
    assert [i.customer_key for i in store.identities(fb)] == ["facebook:7"]
    assert all("whatsapp:81" not in a["customer_keys"] for a in store.audit_trail(fb, limit=10))
    assert store.profile(fb).notes == "call back Tuesdays"  # still the Facebook identity's profile

    assert store.forget_identity("facebook:7") > 0
    assert store.profile(fb) is None and store.identities(fb) == [] and store.audit_trail(fb, limit=10) == []
    assert store.keys_by_handle("kana_t", limit=10) == []
    assert store.forget_identity("facebook:7") == 0  # repeatable
