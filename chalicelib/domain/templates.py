"""Canned replies ("templates") as data per team, in English and Japanese, with variables. Pure.

A supervisor keeps them (``PUT /admin/templates/{template_id}``): a name, the team whose agents use
it, one body per language ("en", "ja"), and tags to find it by. A body may use these variables:

- ``{customer.name}``: the customer's display name (with 様 in Japanese);
- ``{agent.name}``, ``{agent.initials}``: the agent sending the reply;
- ``{case.id}``: the case's id;
- ``{team.next_open}``: when the case's team next opens, in the team's own time zone, written the
  way a reader of the language writes a date.

A variable may carry its own fallback, ``{customer.name|there}``, used when the value is unknown;
without one the language's default fallback applies (``FALLBACKS``), so a message never reads
"Hi ,". ``{{`` and ``}}`` write a literal brace. A variable this module does not know is refused
when the template is saved, never discovered when a customer reads it.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.domain.agent import valid_team_name
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.limits import text_problem

LANGS = ("en", "ja")
VARIABLES = ("customer.name", "agent.name", "agent.initials", "case.id", "team.next_open")
MAX_BODY_CHARS = 2000
MAX_NAME_CHARS = 100
MAX_TAGS = 20
MAX_TAG_CHARS = 40
MAX_FALLBACK_CHARS = 100
MAX_TEMPLATE_ID = 64
MAX_VALUE_CHARS = 200  # a value a reply request supplies for a variable
_FIELDS = ("team", "name", "bodies", "tags")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# "{{", "}}", a variable with an optional "|fallback", or a brace left alone (an error).
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}|]*)(?:\|([^{}]*))?\}|[{}]")
_EXAMPLE = ('e.g. {"team": "support", "name": "Lost bag", "bodies": {"en": "Hi {customer.name|there}, sorry '
            'about your bag. - {agent.name}", "ja": "{customer.name}、ご迷惑をおかけし申し訳ございません。"}, '
            '"tags": ["baggage"]}')

FALLBACKS: Mapping[str, Mapping[str, str]] = {
    "en": {"customer.name": "there", "agent.name": "the team", "agent.initials": "", "case.id": "",
           "team.next_open": "on our next business day"},
    "ja": {"customer.name": "お客様", "agent.name": "担当者", "agent.initials": "", "case.id": "",
           "team.next_open": "次の営業日"},
}


@dataclass
class Template:
    template_id: str
    team: str
    name: str
    bodies: Dict[str, str]
    tags: List[str] = field(default_factory=list)
    usage: int = 0
    updated_at: str = ""
    updated_by: str = ""

    @property
    def langs(self) -> List[str]:
        return [lang for lang in LANGS if lang in self.bodies]

    @property
    def variables(self) -> List[str]:
        """The variables its bodies use, in the order of VARIABLES."""
        used = {name for body in self.bodies.values() for name, _ in variables_of(body)}
        return [name for name in VARIABLES if name in used]

    def to_dict(self) -> Dict[str, Any]:
        return {"template_id": self.template_id, "team": self.team, "name": self.name, "bodies": dict(self.bodies),
                "tags": list(self.tags), "usage": self.usage, "updated_at": self.updated_at,
                "updated_by": self.updated_by}

    def public_view(self) -> Dict[str, Any]:
        return {**self.to_dict(), "langs": self.langs, "variables": self.variables}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Template":
        return cls(template_id=str(data["template_id"]), team=str(data["team"]), name=str(data.get("name") or ""),
                   bodies={str(k): str(v) for k, v in dict(data.get("bodies") or {}).items() if k in LANGS},
                   tags=[str(t) for t in data.get("tags") or []], usage=int(data.get("usage") or 0),
                   updated_at=str(data.get("updated_at") or ""), updated_by=str(data.get("updated_by") or ""))


# ---- validation ------------------------------------------------------------------

def validate_template_id(template_id: Any) -> str:
    if not isinstance(template_id, str) or not _ID.fullmatch(template_id):
        raise BadRequest(f"the template id must be 1 to {MAX_TEMPLATE_ID} lowercase letters, digits, '-' or '_', "
                         "starting with a letter or digit, e.g. 'lost-bag'")
    return template_id


def validate_template(template_id: Any, body: Any, *, author: str, at: str) -> Template:
    """A supervisor's template (the whole of it), or a BadRequest saying what to fix."""
    template_id = validate_template_id(template_id)
    if not isinstance(body, dict):
        raise BadRequest(f"the template must be a JSON object, {_EXAMPLE}")
    unknown = [key for key in body if key not in _FIELDS]
    if unknown:
        raise BadRequest(f"unknown field '{str(unknown[0])[:40]}'; a template has {', '.join(_FIELDS)}")
    team = body.get("team")
    if not valid_team_name(team):
        raise BadRequest("field 'team' is required: the team whose agents use the template, 1 to 64 printable "
                         "characters without '#'")
    name = body.get("name")
    problem = text_problem(name, max_length=MAX_NAME_CHARS)
    if problem or not str(name).strip():
        raise BadRequest(f"field 'name' is required: what agents see in the list, 1 to {MAX_NAME_CHARS} characters"
                         + (f" (it {problem})" if problem else ""))
    bodies = body.get("bodies")
    if not isinstance(bodies, dict) or not bodies:
        raise BadRequest(f"field 'bodies' must be an object of language to text with 'en', 'ja' or both, {_EXAMPLE}")
    for lang, text in bodies.items():
        if lang not in LANGS:
            raise BadRequest(f"bodies: unknown language '{str(lang)[:16]}'; templates are written in 'en' and 'ja'")
        validate_body(text, f"bodies.{lang}")
    tags = body.get("tags", [])
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise BadRequest(f"field 'tags' must be a list of at most {MAX_TAGS} short strings")
    for tag in tags:
        problem = text_problem(tag, max_length=MAX_TAG_CHARS)
        if problem or not str(tag).strip():
            raise BadRequest(f"each tag must be 1 to {MAX_TAG_CHARS} characters on one line")
    return Template(template_id=template_id, team=str(team), name=str(name).strip(), bodies=dict(bodies),
                    tags=list(dict.fromkeys(t.strip() for t in tags)), updated_at=at, updated_by=author)


def validate_body(text: Any, where: str) -> None:
    problem = text_problem(text, max_length=MAX_BODY_CHARS, multiline=True)
    if problem:
        raise BadRequest(f"{where} {problem}")
    if not text.strip():
        raise BadRequest(f"{where} is empty; write the reply, or leave the language out")
    for match in _TOKEN.finditer(text):
        token, name, fallback = match.group(0), match.group(1), match.group(2)
        if token in ("{{", "}}"):
            continue
        if name is None:
            raise BadRequest(f"{where} has an unbalanced '{token}' at position {match.start()}; variables are "
                             "written {customer.name} (or {customer.name|fallback}), a literal brace as {{ or }}")
        if name.strip() not in VARIABLES:
            close = difflib.get_close_matches(name.strip(), VARIABLES, n=1)
            hint = f" (did you mean {{{close[0]}}}?)" if close else ""
            raise BadRequest(f"{where} uses an unknown variable {{{name[:40]}}}{hint}; a template may use "
                             + ", ".join("{" + v + "}" for v in VARIABLES))
        if fallback is not None and len(fallback) > MAX_FALLBACK_CHARS:
            raise BadRequest(f"{where}: the fallback of {{{name}}} is {len(fallback)} characters; "
                             f"at most {MAX_FALLBACK_CHARS}")


def variables_of(text: str) -> List[Tuple[str, Optional[str]]]:
    """(variable, fallback or None) for each variable a body uses."""
    return [(m.group(1).strip(), m.group(2)) for m in _TOKEN.finditer(text) if m.group(1) is not None]


def validate_values(values: Any) -> Dict[str, str]:
    """The ``variables`` of a reply request: values for known variables, replacing what socialcare knows."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise BadRequest('field \'variables\' must be an object such as {"customer.name": "Kana"}')
    result: Dict[str, str] = {}
    for name, value in values.items():
        if name not in VARIABLES:
            raise BadRequest(f"variables: unknown variable '{str(name)[:40]}'; known are {', '.join(VARIABLES)}")
        problem = text_problem(value, max_length=MAX_VALUE_CHARS)
        if problem:
            raise BadRequest(f"variables.{name} {problem}")
        result[name] = value
    return result


# ---- rendering -------------------------------------------------------------------

def choose_lang(template: Template, wanted: Optional[str], case_lang: str) -> str:
    """The body to send: the one asked for (400 when missing), else the case's language, else any."""
    if wanted is not None:
        if wanted not in LANGS:
            raise BadRequest("field 'lang' must be 'en' or 'ja'")
        if wanted not in template.bodies:
            raise BadRequest(f"template '{template.template_id}' has no '{wanted}' text; it has "
                             f"{', '.join(template.langs)}")
        return wanted
    preferred = "ja" if (case_lang or "").lower().split("-")[0] == "ja" else "en"
    if preferred in template.bodies:
        return preferred
    return template.langs[0]


def render(text: str, lang: str, values: Mapping[str, Optional[str]]) -> str:
    """One pass: a value that itself holds "{case.id}" stays as written. A missing or empty value
    takes the variable's own fallback, else the language's."""
    defaults = FALLBACKS["ja" if lang == "ja" else "en"]

    def fill(match: "re.Match[str]") -> str:
        token, name, fallback = match.group(0), match.group(1), match.group(2)
        if token in ("{{", "}}"):
            return token[0]
        if name is None:
            return token
        name = name.strip()
        value = values.get(name)
        if value:
            return value
        return fallback if fallback is not None else defaults.get(name, "")
    return _TOKEN.sub(fill, text)


def initials(name: str) -> str:
    """"Kana Tanaka" -> "KT"; a name without spaces (Japanese) -> its first character."""
    words = [w for w in (name or "").split() if w]
    if not words:
        return ""
    if len(words) == 1:
        return words[0][:1].upper()
    return "".join(w[0] for w in words[:3]).upper()
