"""Measure's entry points: the cases table's stream in (``measure_batch``), reports out (``GET /reports/kpis``,
JSON, or CSV with ``format=csv``).

Who sees which rows is the service's rule (``services/measure.py``): agents their own agent row,
supervisors their teams' rows and their agents' rows.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping

from chalice import Blueprint, Response

from chalicelib.bootstrap import deps
from chalicelib.entrypoints.http import api_errors, current_agent
from chalicelib.entrypoints.lazy import lazy_module
from chalicelib.observability import logger
from chalicelib.ports import CaseChange, Deps

if TYPE_CHECKING:
    from chalicelib.services import measure
else:
    measure = lazy_module("chalicelib.services.measure")

reports_api = Blueprint(__name__)


@reports_api.route("/reports/kpis", methods=["GET"])
@api_errors
def get_kpis():
    agent = current_agent(reports_api.current_request)
    params: Mapping[str, str] = reports_api.current_request.query_params or {}
    report = measure.kpi_report(agent, params, deps())
    if report.csv is None:
        return report.body
    # The file name is ours (group_by and days already checked), never a client's text.
    return Response(body=report.csv, status_code=200,
                    headers={"Content-Type": "text/csv; charset=utf-8",
                             "Content-Disposition": f'attachment; filename="{report.filename}"'})


class StreamRetry(Exception):
    """Some changes failed and the mapping does not read item failures: the whole batch comes again."""


def measure_batch(records: List[Dict[str, Any]], deps: Deps, *, report_item_failures: bool) -> Dict[str, Any]:
    """A batch of the cases stream (Lambda's ``Records``) into the KPI aggregates.

    A stream shard is read in order: Lambda takes the earliest sequence number reported in
    ``batchItemFailures`` as its checkpoint and delivers again from there, the changes after it too
    (their tokens were applied, so they count once). Where the event source mapping does not read item
    failures (ReportBatchItemFailures off), Lambda would take any answer as success, so a failure fails
    the whole batch instead.
    """
    # Imported here: the API's routes in this module never need the stream's image reader.
    from chalicelib.adapters.streams import case_change

    changes: List[CaseChange] = []
    sequence: List[str] = []  # the record each change came from
    unreadable: List[str] = []
    for record in records:
        number = str(record.get("dynamodb", {}).get("SequenceNumber", ""))
        try:
            change = case_change(record)
        except Exception:  # noqa: BLE001 - reported like any failure; the alarm on iterator age shows a stuck one
            logger.exception("a cases stream record could not be read", extra={"sequence_number": number})
            unreadable.append(number)
            continue
        if change is not None:
            changes.append(change)
            sequence.append(number)
    outcome = measure.record_changes(changes, deps)
    failed = unreadable + [sequence[failure["index"]] for failure in outcome["failed"]]
    logger.info("case changes measured", extra={**{k: v for k, v in outcome.items() if k != "failed"},
                                                 "records": len(records), "failed_records": len(failed)})
    if not failed:
        return {"batchItemFailures": []}
    if not report_item_failures:
        raise StreamRetry(f"{len(failed)} of {len(records)} records failed; the batch will be delivered again")
    earliest = min(failed, key=_order)
    return {"batchItemFailures": [{"itemIdentifier": earliest}]}


def _order(sequence_number: str) -> int:
    # Sequence numbers are decimal strings of varying length: compared as numbers, not as text.
    return int(sequence_number) if sequence_number.isdigit() else 0
