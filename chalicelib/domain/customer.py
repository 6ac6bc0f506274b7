"""One customer across channels: a profile, its linked identities, and the rules for linking them.

An **identity** is one account of a person on one platform: ``<platform>:<platform user id>`` (the
``customer_key`` every case and mention already carries), with the handle and name it was last seen with.
A **profile** (``customer_id``) gathers identities, plus what agents keep about the person: tags
(``tier-1``, ``VIP``), free-form notes, and fields a supervisor defines (a membership number).

Every identity has a profile without any write: ``customer_id_for(customer_key)`` derives one
deterministically (its *home* profile). Merging links another profile's identities to this one; it moves
nothing else: the other profile's tags, notes and fields stay where they were (shown on it as
``merged_into``), and unmerging an identity sends it back to its home profile. Pure rules, no storage.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from chalicelib.domain.clock import parse_iso
from chalicelib.domain.errors import BadRequest, Conflict, NotFound
from chalicelib.domain.limits import text_problem

PLATFORMS = ("x", "facebook", "instagram", "messenger", "whatsapp")  # as domain/mention.py
MAX_IDENTITIES = 20       # identities one profile may link (a merge beyond it is refused)
MAX_TAGS = 20
MAX_TAG_CHARS = 40
MAX_NOTES_CHARS = 4000
MAX_FIELDS = 30           # field definitions a supervisor may make
MAX_FIELD_LABEL_CHARS = 80
MAX_FIELD_LENGTH = 1000   # the longest a string field may be defined to hold
MAX_NUMBER = 10 ** 15     # numbers a field holds: whole or decimal, within +/- this
MAX_KEY_CHARS = 1 + 12 + 128  # "<platform>:<author id>"
FIELD_TYPES = ("string", "number")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_CUSTOMER_ID = re.compile(r"cu_[0-9a-f]{16}")
KEY_EXAMPLE = "'<platform>:<platform user id>', such as 'x:42'"


def customer_id_for(customer_key: str) -> str:
    """The identity's home profile id: the same for the same key, everywhere, with nothing stored."""
    return "cu_" + hashlib.sha256(customer_key.encode("utf-8")).hexdigest()[:16]


def is_customer_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_CUSTOMER_ID.fullmatch(value))


def normal_handle(handle: str) -> str:
    """How handles are compared: without a leading '@', case-folded."""
    return handle.strip().lstrip("@").casefold()


def check_customer_key(value: Any, where: str = "'customer_key'") -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be a customer key {KEY_EXAMPLE}")
    platform, colon, user_id = value.partition(":")
    if not colon or platform not in PLATFORMS:
        raise BadRequest(f"{where} must be a customer key {KEY_EXAMPLE}; platforms: {', '.join(PLATFORMS)}")
    if not 0 < len(user_id) <= 128 or not user_id.isprintable() or any(c.isspace() for c in user_id):
        raise BadRequest(f"{where}: the user id after '{platform}:' must be 1 to 128 printable characters "
                         "without spaces")
    return value


@dataclass
class Identity:
    """One platform account of a customer, as last seen; ``customer_id`` is the profile it is linked to."""

    customer_key: str
    customer_id: str
    handle: str = ""
    name: str = ""
    handles: List[str] = field(default_factory=list)  # every handle seen (normalized), for lookups
    first_seen_at: Optional[str] = None
    last_case_id: Optional[str] = None   # the newest case opened for this identity
    last_case_at: Optional[str] = None

    @property
    def platform(self) -> str:
        return self.customer_key.partition(":")[0]

    @property
    def platform_user_id(self) -> str:
        return self.customer_key.partition(":")[2]

    @property
    def home_customer_id(self) -> str:
        return customer_id_for(self.customer_key)

    @property
    def merged(self) -> bool:
        """Linked to a profile other than its home one."""
        return self.customer_id != self.home_customer_id

    def view(self) -> Dict[str, Any]:
        return {"customer_key": self.customer_key, "platform": self.platform,
                "platform_user_id": self.platform_user_id, "handle": self.handle, "name": self.name,
                "first_seen_at": self.first_seen_at, "home_customer_id": self.home_customer_id,
                "linked": self.merged}

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Identity":
        return cls(customer_key=str(data["customer_key"]), customer_id=str(data["customer_id"]),
                   handle=str(data.get("handle") or ""), name=str(data.get("name") or ""),
                   handles=sorted(str(h) for h in data.get("handles") or []),
                   first_seen_at=data.get("first_seen_at"), last_case_id=data.get("last_case_id"),
                   last_case_at=data.get("last_case_at"))


def seen_identity(customer_key: str, *, handle: str, name: str, at: str) -> Identity:
    """An identity as first seen on a post: linked to its home profile."""
    handles = [normal_handle(handle)] if handle.strip().lstrip("@") else []
    return Identity(customer_key=customer_key, customer_id=customer_id_for(customer_key), handle=handle,
                    name=name, handles=handles, first_seen_at=at)


@dataclass
class Profile:
    """What agents keep about a customer; ``merged_into`` when its identities were linked elsewhere."""

    customer_id: str
    tags: List[str] = field(default_factory=list)
    notes: str = ""
    fields: Dict[str, Union[str, int, float]] = field(default_factory=dict)
    merged_into: Optional[str] = None
    updated_at: Optional[str] = None
    updated_by: Optional[str] = None
    version: int = 0

    def view(self) -> Dict[str, Any]:
        return {"tags": list(self.tags), "notes": self.notes, "fields": dict(self.fields),
                "merged_into": self.merged_into, "updated_at": self.updated_at, "updated_by": self.updated_by}

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Profile":
        return cls(customer_id=str(data["customer_id"]), tags=[str(t) for t in data.get("tags") or []],
                   notes=str(data.get("notes") or ""), fields=dict(data.get("fields") or {}),
                   merged_into=data.get("merged_into"), updated_at=data.get("updated_at"),
                   updated_by=data.get("updated_by"), version=int(data.get("version") or 0))


# ---- supervisor-defined fields ----------------------------------------------------------------

@dataclass(frozen=True)
class FieldDefinition:
    name: str
    label: str
    type: str = "string"
    max_length: int = 200   # strings: characters; numbers: ignored

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FieldDefinition":
        return cls(name=str(data["name"]), label=str(data["label"]), type=str(data.get("type") or "string"),
                   max_length=int(data.get("max_length") or 200))


def validate_field_definitions(body: Any) -> List[FieldDefinition]:
    """``{"fields": [{"name", "label", "type": "string"|"number", "max_length"}]}``; BadRequest naming the item."""
    if not isinstance(body, dict) or set(body) != {"fields"} or not isinstance(body["fields"], list):
        raise BadRequest('body must be {"fields": [{"name", "label", "type", "max_length"}, ...]}')
    items = body["fields"]
    if len(items) > MAX_FIELDS:
        raise BadRequest(f"'fields' holds {len(items)} definitions; at most {MAX_FIELDS}")
    seen: set = set()
    out: List[FieldDefinition] = []
    for index, item in enumerate(items):
        where = f"'fields' item {index + 1}"
        if not isinstance(item, dict) or set(item) - {"name", "label", "type", "max_length"}:
            raise BadRequest(f"{where} must be an object with name, label, type and max_length only")
        name = item.get("name")
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise BadRequest(f"{where}: 'name' must be 1 to 40 lowercase letters, digits or '_', starting "
                             "with a letter (such as 'membership_number')")
        if name in seen:
            raise BadRequest(f"{where}: the name '{name}' is defined twice")
        seen.add(name)
        label = item.get("label", name)
        problem = text_problem(label, max_length=MAX_FIELD_LABEL_CHARS)
        if problem or not label.strip():
            raise BadRequest(f"{where}: 'label' {problem or 'must not be blank'}")
        kind = item.get("type", "string")
        if kind not in FIELD_TYPES:
            raise BadRequest(f"{where}: 'type' must be one of {', '.join(FIELD_TYPES)}")
        max_length = item.get("max_length", 200)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 1 <= max_length <= MAX_FIELD_LENGTH:
            raise BadRequest(f"{where}: 'max_length' must be a whole number from 1 to {MAX_FIELD_LENGTH}")
        out.append(FieldDefinition(name=name, label=label, type=kind, max_length=max_length))
    return out


# ---- profile edits ----------------------------------------------------------------------------

def validate_profile_patch(body: Any, definitions: List[FieldDefinition]) -> Dict[str, Any]:
    """The changes of ``PATCH /customers/{id}``: any of tags (the whole list), notes (the whole text) and
    fields (the named ones set; null removes one). BadRequest naming the part that is wrong."""
    allowed = ("tags", "notes", "fields")
    if not isinstance(body, dict) or not body or set(body) - set(allowed):
        raise BadRequest("body must be a JSON object with any of 'tags' (a list), 'notes' (text) and 'fields' "
                         "(an object of the fields a supervisor defined, see GET /admin/customer-fields)")
    changes: Dict[str, Any] = {}
    if "tags" in body:
        changes["tags"] = _tags(body["tags"])
    if "notes" in body:
        notes = body["notes"] if body["notes"] is not None else ""
        problem = text_problem(notes, max_length=MAX_NOTES_CHARS, multiline=True)
        if problem:
            raise BadRequest(f"'notes' {problem}")
        changes["notes"] = notes
    if "fields" in body:
        changes["fields"] = _field_values(body["fields"], definitions)
    return changes


def _tags(value: Any) -> List[str]:
    if not isinstance(value, list):
        raise BadRequest(f"'tags' must be a list of up to {MAX_TAGS} tags, such as [\"tier-1\", \"VIP\"]")
    if len(value) > MAX_TAGS:
        raise BadRequest(f"'tags' holds {len(value)} tags; at most {MAX_TAGS}")
    tags: List[str] = []
    for index, tag in enumerate(value):
        problem = text_problem(tag, max_length=MAX_TAG_CHARS)
        if problem or not tag.strip():
            raise BadRequest(f"'tags' item {index + 1} {problem or 'must not be blank'}")
        if tag.strip() not in tags:
            tags.append(tag.strip())
    return tags


def _field_values(value: Any, definitions: List[FieldDefinition]) -> Dict[str, Any]:
    """Field name -> value (None: remove it), each checked against its definition."""
    if not isinstance(value, dict):
        raise BadRequest("'fields' must be an object of field name -> value")
    known = {d.name: d for d in definitions}
    out: Dict[str, Any] = {}
    for name, raw in value.items():
        definition = known.get(name)
        if definition is None:
            names = ", ".join(sorted(known)) or "none yet; a supervisor defines them at /admin/customer-fields"
            raise BadRequest(f"'fields.{name[:40]}' is not a defined customer field (defined: {names})")
        if raw is None:
            out[name] = None
        elif definition.type == "number":
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not -MAX_NUMBER <= raw <= MAX_NUMBER:
                raise BadRequest(f"'fields.{name}' ({definition.label}) must be a number within +/-{MAX_NUMBER:,}")
            out[name] = raw
        else:
            problem = text_problem(raw, max_length=definition.max_length)
            if problem:
                raise BadRequest(f"'fields.{name}' ({definition.label}) {problem}")
            out[name] = raw
    return out


def apply_patch(profile: Profile, changes: Mapping[str, Any], *, by: str, at: str) -> Profile:
    fields_now = dict(profile.fields)
    for name, value in (changes.get("fields") or {}).items():
        if value is None:
            fields_now.pop(name, None)
        else:
            fields_now[name] = value
    return Profile(customer_id=profile.customer_id, tags=list(changes.get("tags", profile.tags)),
                   notes=changes.get("notes", profile.notes), fields=fields_now, merged_into=profile.merged_into,
                   updated_at=at, updated_by=by, version=profile.version)


# ---- merge and unmerge --------------------------------------------------------------------------

def check_merge(target_id: str, other_id: str, target: List[Identity], other: List[Identity]) -> None:
    """Refuses (BadRequest, NotFound, Conflict) a merge these rules forbid."""
    if target_id == other_id:
        raise BadRequest("a profile cannot be merged with itself; name the other customer's customer_id")
    if not target:
        raise NotFound(f"customer '{target_id}' has no identities to merge into")
    if not other:
        raise NotFound(f"customer '{other_id}' has no identities (it may have been merged already)")
    if len(target) + len(other) > MAX_IDENTITIES:
        raise Conflict(f"together they would link {len(target) + len(other)} identities; a profile links at most "
                       f"{MAX_IDENTITIES}")


def check_unmerge(customer_id: str, identity: Optional[Identity], key: str) -> Identity:
    if identity is None or identity.customer_id != customer_id:
        raise NotFound(f"identity '{key}' is not linked to customer '{customer_id}'")
    if not identity.merged:
        raise Conflict(f"identity '{key}' belongs to this profile from the start; unmerge it from the profile it "
                       "was merged into, or merge it elsewhere")
    return identity


def audit_entry(action: str, *, by: str, at: str, customer_id: str, other_customer_id: str,
                customer_keys: List[str]) -> Dict[str, Any]:
    """What a merge or unmerge leaves on both profiles: who, when, what."""
    return {"action": action, "by": by, "at": at, "customer_id": customer_id,
            "other_customer_id": other_customer_id, "customer_keys": list(customer_keys)}


def unmerge_key(body: Any) -> str:
    """The identity ``POST /customers/{id}/unmerge`` names: ``customer_key``, or ``platform`` + ``platform_id``."""
    if isinstance(body, dict) and set(body) == {"customer_key"}:
        return check_customer_key(body["customer_key"])
    if isinstance(body, dict) and set(body) == {"platform", "platform_id"}:
        return check_customer_key(f"{body['platform']}:{body['platform_id']}", "'platform' and 'platform_id'")
    raise BadRequest('body must be {"customer_key": "<platform>:<platform user id>"} or '
                     '{"platform": ..., "platform_id": ...}')


def reopen_window_open(resolved_at: Optional[str], now: str, hours: int) -> bool:
    """Whether a case resolved at ``resolved_at`` is still within the reopen window at ``now``."""
    if not resolved_at or hours <= 0:
        return False
    return parse_iso(now) - parse_iso(resolved_at) <= timedelta(hours=hours)


def split_keys(keys: List[str], own: str) -> Tuple[str, List[str]]:
    """The mention's own key first, then the linked others (each once)."""
    return own, [k for k in dict.fromkeys(keys) if k != own]
