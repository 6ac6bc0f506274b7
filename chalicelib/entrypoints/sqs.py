"""SQS batches: each record on its own; one bad record never punishes its batch-mates.

- Bad input (``PermanentFailure``) goes to the dead-letter queue at once,
  with its reason, and the record counts as done.
- A record that may succeed later (``RetryLater``, or any other error) is
  reported in ``batchItemFailures``: with ReportBatchItemFailures on the event
  source mapping only it returns to the queue; ``RetryLater`` also sets when.
- Where the mapping does not report item failures (Lambda would delete every
  record of a batch that returns), any failure fails the whole batch instead,
  which is safe because every stage is idempotent.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol

from chalicelib.domain.errors import PermanentFailure, RetryLater
from chalicelib.observability import count, logger
from chalicelib.ports import DeadLetterQueue


class RedeliveringQueue(Protocol):
    def retry_later(self, receipt_handle: str, seconds: int) -> None: ...


class BatchRetry(Exception):
    """Some records failed for a passing reason and item failures are not reported: retry the batch."""


class BatchResponse(Dict[str, Any]):
    """What Lambda reads (``{"batchItemFailures": [...]}``); ``results`` holds each record's outcome for
    logs and the local runner, and is not part of the JSON answer."""

    results: List[Dict[str, Any]]


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


def process_sqs_batch(raw_event: Dict[str, Any], handle: Callable[[str, int], Dict[str, Any]], *,
                      dead_letter: DeadLetterQueue, queue: RedeliveringQueue, origin: str, metric: str,
                      report_item_failures: bool, metered: Optional[Mapping[str, str]] = None) -> BatchResponse:
    """Run ``handle(body, receive_count)`` on each record.

    Cost metering: the batch's SQS receive and delete are counted, each record's AWS and platform usage
    is attributed to its channel, and ``metered`` maps outcomes to the usage counters they add (mentions
    processed, cases opened) that make the cost per mention and per case.
    """
    # Imported here: the batch utility is heavy and HTTP handlers never need it.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    from chalicelib.adapters import metering

    metering.sqs_batch(raw_event)

    results: Dict[str, Dict[str, Any]] = {}

    def record_handler(record: Any) -> Dict[str, Any]:
        logger.append_keys(message_id=record.message_id)
        logger.set_correlation_id(correlation_id(record.body))
        receive_count = _receive_count(record)
        try:
            with metering.attributed(metering.channel_of_message(record.body)):
                result = handle(record.body, receive_count)
        except PermanentFailure as err:
            logger.error("message dead-lettered", extra={"reason": str(err), "origin": origin})
            dead_letter.dead_letter(record.body, str(err), origin=origin)
            count("DeadLettered")
            result = {"outcome": "dead_lettered", "reason": str(err)}
        except RetryLater as err:
            results[record.message_id] = {"outcome": "retry_later", "reason": str(err),
                                          "delay_seconds": err.delay_seconds}
            _set_delay(queue, record.receipt_handle, err.delay_seconds)
            raise
        except Exception as err:
            results[record.message_id] = {"outcome": "retry", "reason": f"{type(err).__name__}: {err}"[:500]}
            raise
        logger.debug(f"{metric} done", extra=result)  # each record at DEBUG; the batch's summary at INFO, below
        count(metric)
        results[record.message_id] = result
        return result

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    records = raw_event.get("Records", [])
    with processor(records, record_handler):
        processor.process()
    failures = [{"itemIdentifier": str(f["itemIdentifier"])} for f in processor.response().get("batchItemFailures", [])]
    for failure in failures:
        logger.warning("record will be delivered again", extra={**results.get(failure["itemIdentifier"], {}),
                                                                 "failed_message_id": failure["itemIdentifier"]})
    if failures and not report_item_failures:
        raise BatchRetry(f"{len(failures)} of {len(records)} records failed; the batch will be delivered again")
    response = BatchResponse(batchItemFailures=list(failures))
    response.results = [results.get(r.get("messageId", ""), {}) for r in records]
    # One line a batch, not one a record: log bytes are billed, and the ids are in the DEBUG lines.
    logger.remove_keys(["message_id"])
    logger.set_correlation_id(None)
    logger.info(f"{metric} batch", extra={"records": len(records), "failed": len(failures), "outcomes": dict(
        Counter(str(result.get("outcome", "?")) for result in response.results))})
    if metered:
        metering.count_outcomes(response.results, metered)
    return response


def _receive_count(record: Any) -> int:
    try:
        return max(1, int(record.attributes.approximate_receive_count))
    except (TypeError, ValueError, AttributeError):
        return 1


def _set_delay(queue: RedeliveringQueue, receipt_handle: str, seconds: int) -> None:
    """Best effort: if the visibility change fails, the record comes back after the queue's own timeout."""
    if seconds <= 0:
        return
    try:
        queue.retry_later(receipt_handle, seconds)
    except Exception as err:  # noqa: BLE001 - never lose the record over a scheduling hint
        logger.warning("could not delay the record's next delivery", extra={"reason": str(err)[:300]})
