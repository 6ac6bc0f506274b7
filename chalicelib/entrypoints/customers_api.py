"""Customers over HTTP (issue 12): profiles, merge/unmerge, search by handle or platform id, supervisor-defined fields."""
from __future__ import annotations

from chalice import Blueprint

customers_api = Blueprint(__name__)
