"""Supervisors' routes for customers' rights: export everything held about a customer, or erase it.

The customer key is ``<platform>:<author id>`` (``x:42``); more identities of
the same person go in ``also`` (a comma-separated query value for the export,
a JSON list in the erasure's optional body).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from chalice import Blueprint, Response

from chalicelib.bootstrap import deps
from chalicelib.entrypoints.http import api_errors, current_agent, json_body
from chalicelib.entrypoints.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib.services import inbox, privacy
else:
    inbox = lazy_module("chalicelib.services.inbox")
    privacy = lazy_module("chalicelib.services.privacy")

privacy_api = Blueprint(__name__)


@privacy_api.route("/admin/customers/{customer_key}/export", methods=["GET"])
@api_errors
def export_customer(customer_key):
    inbox.require_supervisor(current_agent(privacy_api.current_request))
    params: Mapping[str, str] = privacy_api.current_request.query_params or {}
    return privacy.export_customer(customer_key, params, deps())


@privacy_api.route("/admin/customers/{customer_key}/erase", methods=["POST"])
@api_errors
def erase_customer(customer_key):
    request = privacy_api.current_request
    agent = current_agent(request)
    inbox.require_supervisor(agent)
    body = json_body(request) if request.raw_body else None  # the body is optional
    result = privacy.erase_customer(customer_key, body, agent_id=agent.agent_id, deps=deps())
    return Response(body=result, status_code=200 if result["status"] == "erased" else 202)
