"""SQS batches: each record handled on its own, bad input dead-lettered with its reason."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from chalicelib.domain.errors import PermanentFailure
from chalicelib.observability import count, logger
from chalicelib.ports import DeadLetterQueue


class BatchRetry(Exception):
    """Some records failed for a passing reason: SQS delivers the batch again.

    Chalice does not configure ReportBatchItemFailures on its SQS event
    sources, so a partial-failure answer would be ignored and the failed
    records deleted. Failing the whole batch is safe because every stage is
    idempotent (dedupe by mention id, deterministic case ids, conditional
    reply claims).
    """


def correlation_id(body: str) -> Optional[str]:
    """The mention or case a message is about, so one id follows it through every stage's logs."""
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    nested = data.get("mention")
    mention: Dict[str, Any] = nested if isinstance(nested, dict) else data
    if mention.get("platform") and mention.get("platform_id"):
        return f"{mention['platform']}:{mention['platform_id']}"
    return data.get("case_id")


def process_sqs_batch(raw_event: Dict[str, Any], handle: Callable[[str], Dict[str, Any]], *,
                      dead_letter: DeadLetterQueue, origin: str, metric: str) -> List[Dict[str, Any]]:
    """Run ``handle`` on each record's body.

    A PermanentFailure (bad input) goes to the dead-letter queue with its
    reason at once instead of blocking the batch five times; anything else
    fails the batch so SQS retries it, and after maxReceiveCount the
    redrive policy parks the record in the same dead-letter queue.
    """
    # Imported here: the batch utility is heavy and HTTP handlers never need it.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    def record_handler(record: Any) -> Dict[str, Any]:
        logger.append_keys(message_id=record.message_id)
        logger.set_correlation_id(correlation_id(record.body))
        try:
            result = handle(record.body)
        except PermanentFailure as err:
            logger.error("message dead-lettered", extra={"reason": str(err), "origin": origin})
            dead_letter.dead_letter(record.body, str(err), origin=origin)
            count("DeadLettered")
            return {"outcome": "dead_lettered", "reason": str(err)}
        logger.info(f"{metric} done", extra=result)
        count(metric)
        return result

    processor = BatchProcessor(event_type=EventType.SQS)
    with processor(raw_event.get("Records", []), record_handler):
        processed = processor.process()
    failures = [(result, record) for status, result, record in processed if status == "fail"]
    if failures:
        for reason, record in failures:
            logger.warning("record failed; batch will be retried",
                           extra={"reason": str(reason), "about": correlation_id(record["body"])})
        raise BatchRetry(f"{len(failures)} of {len(processed)} records failed: {failures[0][0]}")
    return [result for _status, result, _record in processed]
