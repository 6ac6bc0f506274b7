"""The media store contract, on the in-memory fake and on S3 (moto, the bucket infra/template.yaml makes)."""
from __future__ import annotations

import urllib.parse

import pytest

from tests.fakes import FakeMediaStore

BUCKET = "socialcare-test-media-123456789012"
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


@pytest.fixture(params=["fake", "s3"])
def store(request):
    if request.param == "fake":
        return FakeMediaStore()
    request.getfixturevalue("aws")
    from chalicelib.adapters.media_store import S3MediaStore

    return S3MediaStore(BUCKET)


def test_a_file_is_stored_found_again_read_back_and_linked_for_a_while(store):
    assert store.find("whatsapp:wamid.HBgM1", 0) is None
    ref = store.put("whatsapp:wamid.HBgM1", 0, PHOTO, content_type="image/jpeg")
    assert store.find("whatsapp:wamid.HBgM1", 0) == ref
    assert store.find("whatsapp:wamid.HBgM1", 1) is None and store.find("whatsapp:wamid.other", 0) is None
    assert store.read(ref, max_bytes=len(PHOTO)) == PHOTO
    with pytest.raises(ValueError):
        store.read(ref, max_bytes=10)
    link = urllib.parse.urlsplit(store.url(ref, expires_in=300))
    assert link.scheme == "https" and link.path.endswith(ref) and link.query  # signed: no public object
    # Repeatable: the same mention and position name the same file, overwritten, never a second one.
    assert store.put("whatsapp:wamid.HBgM1", 0, PHOTO[:100], content_type="image/jpeg") == ref
    assert store.read(ref, max_bytes=len(PHOTO)) == PHOTO[:100]


def test_keys_do_not_carry_platform_ids_and_foreign_references_are_refused(store):
    ref = store.put("whatsapp:819012345678", 2, b"x", content_type="application/pdf")
    assert "819012345678" not in ref
    with pytest.raises(ValueError):
        store.url("../secrets/platforms", expires_in=60)


def test_erasure_forgets_every_file_of_a_mention_and_no_other(store):
    kept = store.put("whatsapp:wamid.keep", 0, b"keep", content_type="image/jpeg")
    for index in range(3):
        store.put("whatsapp:wamid.gone", index, b"gone", content_type="image/jpeg")
    store.forget("whatsapp:wamid.gone")
    store.forget("whatsapp:wamid.gone")  # repeatable
    assert all(store.find("whatsapp:wamid.gone", index) is None for index in range(3))
    assert store.find("whatsapp:wamid.keep", 0) == kept
