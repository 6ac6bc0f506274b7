"""Customers over HTTP (issue 12): profiles, merge/unmerge, search by handle or platform id, supervisor-defined fields.

    GET   /customers?handle=kana_t[&platform=x]     find customers by handle (or ?platform=x&platform_id=42)
    GET   /customers/{id}[?limit=&cursor=]           the profile: identities, tags, notes, fields, audit, cases
    PATCH /customers/{id}                            {"tags": [...], "notes": "...", "fields": {...}}
    POST  /customers/{id}/merge                      {"customer_id": "<other profile>"}: link its identities here
    POST  /customers/{id}/unmerge                    {"customer_key": "<platform>:<user id>"}: send one back
    GET   /admin/customer-fields                     the fields supervisors defined
    PUT   /admin/customer-fields                     {"fields": [{"name", "label", "type", "max_length"}]}

The services are imported on first use (cold start: services/customers.py loads with the first request).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from chalice import Blueprint

from chalicelib.bootstrap import deps
from chalicelib.entrypoints.http import api_errors, current_agent, json_body
from chalicelib.entrypoints.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib.services import customers
else:
    customers = lazy_module("chalicelib.services.customers")

customers_api = Blueprint(__name__)


def _query() -> Mapping[str, str]:
    return customers_api.current_request.query_params or {}


@customers_api.route("/customers", methods=["GET"])
@api_errors
def find_customers():
    return customers.find_customers(current_agent(customers_api.current_request), _query(), deps())


@customers_api.route("/customers/{customer_id}", methods=["GET"])
@api_errors
def get_customer(customer_id):
    return customers.get_customer(current_agent(customers_api.current_request), customer_id, _query(), deps())


@customers_api.route("/customers/{customer_id}", methods=["PATCH"])
@api_errors
def update_customer(customer_id):
    agent = current_agent(customers_api.current_request)
    return customers.update_customer(agent, customer_id, json_body(customers_api.current_request), deps())


@customers_api.route("/customers/{customer_id}/merge", methods=["POST"])
@api_errors
def merge_customer(customer_id):
    agent = current_agent(customers_api.current_request)
    return customers.merge(agent, customer_id, json_body(customers_api.current_request), deps())


@customers_api.route("/customers/{customer_id}/unmerge", methods=["POST"])
@api_errors
def unmerge_customer(customer_id):
    agent = current_agent(customers_api.current_request)
    return customers.unmerge(agent, customer_id, json_body(customers_api.current_request), deps())


@customers_api.route("/admin/customer-fields", methods=["GET"])
@api_errors
def get_customer_fields():
    return customers.field_definitions(current_agent(customers_api.current_request), deps())


@customers_api.route("/admin/customer-fields", methods=["PUT"])
@api_errors
def put_customer_fields():
    agent = current_agent(customers_api.current_request)
    return customers.save_field_definitions(agent, json_body(customers_api.current_request), deps())
