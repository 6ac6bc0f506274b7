"""In-memory TemplateStore (ports.TemplateStore): behaves as adapters/template_store.py does; the contract
suite (tests/contract/test_template_store.py) runs the same assertions on both."""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.paging import decode_cursor, encode_cursor
from chalicelib.domain.templates import LANGS, MAX_TEMPLATE_ID, Template


class FakeTemplateStore:
    def __init__(self) -> None:
        self.templates: Dict[str, Template] = {}  # by id
        self.teams: set = set()
        self.brand_voice: Optional[Dict[str, Any]] = None

    def get_template(self, template_id: str) -> Optional[Template]:
        found = self.templates.get(template_id)
        return copy.deepcopy(found) if found else None

    def put_template(self, template: Template) -> bool:
        old = self.templates.get(template.template_id)
        saved = copy.deepcopy(template)
        saved.usage = old.usage if old else 0
        self.templates[template.template_id] = saved
        self.teams.add(template.team)
        return old is None

    def delete_template(self, template_id: str) -> Optional[Template]:
        return self.templates.pop(template_id, None)

    def templates_page(self, team: str, *, lang: Optional[str] = None, limit: int = 50,
                       after: Optional[str] = None) -> Tuple[List[Template], Optional[str]]:
        if lang is not None and lang not in LANGS:
            raise ValueError(f"unknown language {lang!r}")
        start = ""
        if after:
            state = decode_cursor(after)
            last = state.get("i")
            if state.get("t") != team or not isinstance(last, str) or not 0 < len(last) <= MAX_TEMPLATE_ID:
                raise InvalidCursor("query 'cursor' is not one this API issued for these templates; "
                                    "start again without it")
            start = last
        matching = sorted((t for t in self.templates.values()
                           if t.team == team and t.template_id > start and (lang is None or lang in t.bodies)),
                          key=lambda t: t.template_id)
        page = [copy.deepcopy(t) for t in matching[:limit]]
        position = encode_cursor({"t": team, "i": page[-1].template_id}) if len(matching) > limit else None
        return page, position

    def template_teams(self) -> List[str]:
        return sorted(self.teams)

    def count_use(self, template_id: str, team: str) -> None:
        found = self.templates.get(template_id)
        if found is not None and found.team == team:
            found.usage += 1

    def get_brand_voice(self) -> Optional[Dict[str, Any]]:
        return copy.deepcopy(self.brand_voice)

    def put_brand_voice(self, rules: Dict[str, Any], *, author: str, at: str) -> None:
        self.brand_voice = {"rules": copy.deepcopy(rules), "updated_by": author, "updated_at": at}
