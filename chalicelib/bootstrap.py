"""The composition root: real adapters, built lazily, once per container.

Handlers ask for ``deps()``; tests build a ``Deps`` of fakes (tests/fakes.py)
or of moto-backed adapters instead. Nothing here runs at import time.
"""
from __future__ import annotations

import functools
from typing import Optional

from chalicelib.config import Settings, settings
from chalicelib.ports import Deps


def build_deps(config: Optional[Settings] = None) -> Deps:
    from chalicelib.adapters.cost_store import DynamoCostStore
    from chalicelib.adapters.customer_store import DynamoCustomerStore
    from chalicelib.adapters.feedback_store import DynamoFeedbackStore
    from chalicelib.adapters.kpi_store import DynamoKpiStore, DynamoQaStore
    from chalicelib.adapters.media_store import S3MediaStore
    from chalicelib.adapters.model_store import DynamoS3ModelStore
    from chalicelib.adapters.models import S3ModelSource
    from chalicelib.adapters.notifications import DynamoNotificationStore, LogOnlyNotifier, SnsNotifier
    from chalicelib.adapters.platforms.clients import LazyPlatformClients
    from chalicelib.adapters.platforms.x_oauth import XOAuthClient
    from chalicelib.adapters.queues import SqsQueue
    from chalicelib.adapters.review_store import DynamoMentionReview
    from chalicelib.adapters.secrets import PlatformSecrets
    from chalicelib.adapters.settings_cache import CachedSettingsStore
    from chalicelib.adapters.stores import DynamoCaseStore, DynamoMentionStore
    from chalicelib.adapters.template_store import DynamoTemplateStore

    config = config or settings()
    secrets = PlatformSecrets(config.platform_secret_id)
    return Deps(
        config=config,
        cases=DynamoCaseStore(config.cases_table, config.settings_table),
        mentions=DynamoMentionStore(config.mentions_table),
        settings=CachedSettingsStore(config.settings_table),  # SLA, calendars, survey, QA: kept 60 s
        mentions_queue=SqsQueue(config.mentions_queue),
        triaged_queue=SqsQueue(config.triaged_queue),
        outbound_queue=SqsQueue(config.outbound_queue),
        dead_letters={
            "mentions": SqsQueue(config.mentions_dlq),
            "triaged": SqsQueue(config.triaged_dlq),
            "outbound": SqsQueue(config.outbound_dlq),
        },
        secrets=secrets,
        platforms=LazyPlatformClients(config.x_api_base_url, config.graph_api_base_url, secrets),
        models=S3ModelSource(),
        notifications=DynamoNotificationStore(config.cases_table),
        # On the settings table, not the cases table: the cases table's stream must not see them (kpi_store.py).
        kpis=DynamoKpiStore(config.settings_table),
        costs=DynamoCostStore(config.settings_table, config.stage),
        qa=DynamoQaStore(config.settings_table, retention_days=config.retention_cases_days),
        templates=DynamoTemplateStore(config.settings_table),  # canned replies, brand voice (issue 12)
        feedback=DynamoFeedbackStore(config.settings_table),  # triage corrections (issue 14)
        review=DynamoMentionReview(config.mentions_table),
        triage_models=DynamoS3ModelStore(config.settings_table, config.triage_models_bucket),
        customers=DynamoCustomerStore(config.settings_table),  # profiles and linked identities (issue 12)
        media=S3MediaStore(config.media_bucket) if config.media_bucket else None,  # inbound media (issue 12)
        notifier=SnsNotifier(config.notifications_topic_arn) if config.notifications_topic_arn else LogOnlyNotifier(),
        credentials=secrets,
        x_tokens=XOAuthClient(config.x_api_base_url),
    )


@functools.lru_cache(maxsize=1)
def deps() -> Deps:
    return build_deps()


def fetchers():
    """Which fetcher polls each source kind (push-only kinds have none)."""
    from chalicelib.adapters.platforms.fetchers import FETCHERS

    return FETCHERS
