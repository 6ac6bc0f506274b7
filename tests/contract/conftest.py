"""``stores``: every contract test runs once on the in-memory fakes and once on the moto-backed adapters."""
from __future__ import annotations

import pytest

from tests.fakes import (
    FakeCaseStore,
    FakeKpiStore,
    FakeMentionStore,
    FakeNotificationStore,
    FakeQaStore,
    FakeQueue,
    FakeSettingsStore,
)


@pytest.fixture(params=["fake", "dynamo"])
def stores(request):
    if request.param == "fake":
        settings = FakeSettingsStore()
        return {"cases": FakeCaseStore(settings), "mentions": FakeMentionStore(), "settings": settings,
                "queue": FakeQueue(), "notifications": FakeNotificationStore(), "kpis": FakeKpiStore(),
                "qa": FakeQaStore()}
    request.getfixturevalue("aws")
    from chalicelib.adapters.kpi_store import DynamoKpiStore, DynamoQaStore
    from chalicelib.adapters.notifications import DynamoNotificationStore
    from chalicelib.adapters.queues import SqsQueue
    from chalicelib.adapters.stores import DynamoCaseStore, DynamoMentionStore, DynamoSettingsStore

    return {"cases": DynamoCaseStore("socialcare-test-cases", "socialcare-test-settings"),
            "mentions": DynamoMentionStore("socialcare-test-mentions"),
            "settings": DynamoSettingsStore("socialcare-test-settings"), "queue": SqsQueue("socialcare-test-mentions"),
            "notifications": DynamoNotificationStore("socialcare-test-cases"),
            "kpis": DynamoKpiStore("socialcare-test-settings"), "qa": DynamoQaStore("socialcare-test-settings")}
