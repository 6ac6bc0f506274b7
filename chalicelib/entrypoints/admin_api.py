"""Supervisors' routes: triage rules, sources, agents. Rules and sources are data."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.bootstrap import deps
from chalicelib.domain import source as sources
from chalicelib.domain.agent import validate_agent_id
from chalicelib.entrypoints.http import api_errors, current_agent, json_body
from chalicelib.entrypoints.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib.services import inbox, rules
    from chalicelib.services.listen import push
else:
    inbox = lazy_module("chalicelib.services.inbox")
    rules = lazy_module("chalicelib.services.rules")
    push = lazy_module("chalicelib.services.listen.push")

admin_api = Blueprint(__name__)


def _supervisor():
    agent = current_agent(admin_api.current_request)
    inbox.require_supervisor(agent)
    return agent


@admin_api.route("/admin/triage-rules", methods=["GET"])
@api_errors
def get_triage_rules():
    _supervisor()
    return rules.rules_view(deps().settings)


@admin_api.route("/admin/triage-rules", methods=["PUT"])
@api_errors
def put_triage_rules():
    agent = _supervisor()
    saved = rules.save_validated(deps().settings, json_body(admin_api.current_request),
                                 author=agent.agent_id, now=deps().now())
    return Response(body=saved, status_code=201)


@admin_api.route("/admin/triage-rules/versions", methods=["GET"])
@api_errors
def list_triage_rule_versions():
    _supervisor()
    return {"versions": rules.rule_versions(deps().settings)}


@admin_api.route("/sources", methods=["GET"])
@api_errors
def list_sources():
    current_agent(admin_api.current_request)
    return {"sources": [sources.status_view(s) for s in deps().settings.list_sources()]}


@admin_api.route("/admin/sources", methods=["PUT"])
@api_errors
def put_source():
    _supervisor()
    source = sources.validate_source(json_body(admin_api.current_request))  # whole, before any read or write
    existing = deps().settings.get_source(source["source_id"]) or {}
    deps().settings.put_source({**existing, **source})
    push.forget_sources(deps())  # this container's webhook sees the change at once (others within a minute)
    return Response(body=sources.status_view({**existing, **source}), status_code=200 if existing else 201)


@admin_api.route("/admin/agents/{agent_id}", methods=["PUT"])
@api_errors
def put_agent(agent_id):
    _supervisor()
    validate_agent_id(agent_id)
    agent, _created = inbox.save_agent(agent_id, json_body(admin_api.current_request), deps())
    return agent.public_view()
