"""Triage learning over HTTP (issue 14): no-case mentions to review, promote/confirm, the daily digest,
corrections export, model versions and rollback.

- ``GET /mentions?case=false[&day=&order=newest|negative&lang=&platform=&sentiment=&category=&limit=&cursor=]``
  (agents and supervisors): what triage left without a case, newest first (or, for one day, most negative
  first), ``{"mentions", "next_cursor"}``; a page may be short when a month had nothing: follow the cursor.
- ``POST /mentions/{id}/promote`` ``{"reason"?, "category"?, "priority"?, "sentiment"?}`` (agents and
  supervisors): 202, the case is opened through the triaged queue; 409 when it is a case already or
  was reviewed. ``POST /mentions/{id}/confirm``: it needed no case; off the list.
- ``GET /reports/triage-digest?day=`` (supervisors): the day's negative no-case mentions (default:
  yesterday, UTC).
- ``GET /admin/triage-corrections?from=&to=&format=json|jsonl`` (supervisors): the labelled examples.
- ``POST /admin/triage-examples`` (supervisors): a labelled file (JSON lines in the export's shape) kept
  as corrections, so that retraining learns from it; ``{"accepted", "already_known"}``.
- ``GET /admin/triage-models``, ``POST /admin/triage-models`` (retrain now),
  ``POST /admin/triage-models/{version}/activate`` (switch or roll back; ``baseline``: no learned
  version) (supervisors).

Each handler parses, calls one service (imported on first use: cold start) and shapes the answer.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from chalice import Blueprint, Response

from chalicelib.bootstrap import deps
from chalicelib.entrypoints.http import api_errors, current_agent, json_body
from chalicelib.entrypoints.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib.services import inbox, triage_models, triage_review
else:
    inbox = lazy_module("chalicelib.services.inbox")
    triage_models = lazy_module("chalicelib.services.triage_models")
    triage_review = lazy_module("chalicelib.services.triage_review")

triage_api = Blueprint(__name__)


def _agent() -> Any:
    return current_agent(triage_api.current_request)


def _supervisor() -> Any:
    agent = _agent()
    inbox.require_supervisor(agent)
    return agent


def _params() -> Mapping[str, str]:
    return triage_api.current_request.query_params or {}


def _optional_body() -> Any:
    request = triage_api.current_request
    return json_body(request) if request.raw_body else None


@triage_api.route("/mentions", methods=["GET"])
@api_errors
def list_mentions():
    return triage_review.list_no_case(_agent(), _params(), deps())


@triage_api.route("/mentions/{mention_id}/promote", methods=["POST"])
@api_errors
def promote_mention(mention_id):
    agent = _agent()
    return Response(body=triage_review.promote(agent, mention_id, _optional_body(), deps()), status_code=202)


@triage_api.route("/mentions/{mention_id}/confirm", methods=["POST"])
@api_errors
def confirm_mention(mention_id):
    return triage_review.confirm(_agent(), mention_id, deps())


@triage_api.route("/reports/triage-digest", methods=["GET"])
@api_errors
def triage_digest():
    return triage_review.digest_report(_agent(), _params(), deps())


@triage_api.route("/admin/triage-corrections", methods=["GET"])
@api_errors
def export_corrections():
    _supervisor()
    answer = triage_models.export_corrections(_params(), deps())
    if "jsonl" in answer:
        return Response(body=answer["jsonl"], status_code=200,
                        headers={"Content-Type": "application/x-ndjson; charset=utf-8",
                                 "Content-Disposition": 'attachment; filename="triage-corrections.jsonl"'})
    return answer


@triage_api.route("/admin/triage-examples", methods=["POST"],
                  content_types=["application/x-ndjson", "application/jsonl", "text/plain", "application/json"])
@api_errors
def upload_examples():
    from chalicelib.services import triage_examples

    agent = _supervisor()
    answer = triage_examples.upload(agent, triage_api.current_request.raw_body, deps())
    return Response(body=answer, status_code=201 if answer["accepted"] else 200)


@triage_api.route("/admin/triage-models", methods=["GET"])
@api_errors
def list_models():
    _supervisor()
    return triage_models.list_versions(deps())


@triage_api.route("/admin/triage-models", methods=["POST"])
@api_errors
def retrain_model():
    agent = _supervisor()
    body = _optional_body()
    activate = True
    if body is not None:
        if not isinstance(body, dict) or set(body) - {"activate"} or not isinstance(body.get("activate", True), bool):
            from chalicelib.domain.errors import BadRequest

            raise BadRequest("body must be empty or {\"activate\": true|false} (false: train and keep it inactive)")
        activate = body.get("activate", True)
    trained = triage_models.retrain(deps(), by=agent.agent_id, auto_activate=activate,
                                    max_posts=triage_models.REQUEST_MAX_TRAINING_POSTS)
    return Response(body=trained, status_code=201)


@triage_api.route("/admin/triage-models/{version}/activate", methods=["POST"])
@api_errors
def activate_model(version):
    agent = _supervisor()
    return triage_models.activate(agent, version, deps())
