"""QA audits over HTTP (supervisors only): the rubric and sampling settings, the weekly review queue,
and reviews. Each handler parses, calls one service and shapes the answer; the services refuse agents
(403) and bad input (400).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping, Tuple

from chalice import Blueprint, Response

from chalicelib.bootstrap import deps
from chalicelib.domain.agent import Agent
from chalicelib.entrypoints.http import api_errors, current_agent, json_body
from chalicelib.entrypoints.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib.services import qa
else:
    qa = lazy_module("chalicelib.services.qa")

qa_api = Blueprint(__name__)


def _agent() -> Agent:
    return current_agent(qa_api.current_request)


def _params() -> Mapping[str, str]:
    return qa_api.current_request.query_params or {}


def _saved(saved: Tuple[Dict[str, Any], bool]) -> Response:
    """The saved settings: 201 when none were saved before (the defaults applied), else 200."""
    document, created = saved
    return Response(body=document, status_code=201 if created else 200)


@qa_api.route("/admin/qa/rubric", methods=["GET"])
@api_errors
def get_qa_rubric():
    return qa.rubric_view(_agent(), deps())


@qa_api.route("/admin/qa/rubric", methods=["PUT"])
@api_errors
def put_qa_rubric():
    agent = _agent()
    return _saved(qa.save_rubric(agent, json_body(qa_api.current_request), deps()))


@qa_api.route("/admin/qa/sampling", methods=["GET"])
@api_errors
def get_qa_sampling():
    return qa.sampling_view(_agent(), deps())


@qa_api.route("/admin/qa/sampling", methods=["PUT"])
@api_errors
def put_qa_sampling():
    agent = _agent()
    return _saved(qa.save_sampling(agent, json_body(qa_api.current_request), deps()))


@qa_api.route("/qa/queue", methods=["GET"])
@api_errors
def get_qa_queue():
    return qa.queue(_agent(), _params(), deps())


@qa_api.route("/qa/reviews", methods=["POST"])
@api_errors
def post_qa_review():
    agent = _agent()
    return Response(body=qa.review(agent, json_body(qa_api.current_request), deps()), status_code=201)


@qa_api.route("/qa/reviews", methods=["GET"])
@api_errors
def get_qa_reviews():
    return qa.reviews(_agent(), _params(), deps())
