"""The in-memory ``CustomerStore`` (ports.py): what adapters/customer_store.py does on DynamoDB, in dicts.

``tests/contract/test_customer_store.py`` holds both to the same assertions; ``fake_deps`` wires this one.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Set

from chalicelib.domain.customer import FieldDefinition, Identity, Profile, normal_handle


class FakeCustomerStore:
    def __init__(self) -> None:
        self.identity_items: Dict[str, Identity] = {}
        self.links: Dict[str, Dict[str, str]] = {}          # customer id -> {customer key: linked_at}
        self.profiles: Dict[str, Profile] = {}
        self.audits: Dict[str, List[Dict[str, Any]]] = {}  # customer id -> entries, oldest first
        self.handles: Dict[str, Set[str]] = {}             # normalized handle -> customer keys
        self.definitions: List[FieldDefinition] = []
        self.writes = 0                                    # how many write requests the store got

    def identity(self, customer_key: str, *, consistent: bool = True) -> Optional[Identity]:
        found = self.identity_items.get(customer_key)
        return copy.deepcopy(found) if found else None

    def record_identity(self, seen: Identity, *, case_id: Optional[str] = None, at: str) -> bool:
        self.writes += 1
        if case_id:
            seen.last_case_id, seen.last_case_at = case_id, at
        known = self.identity_items.get(seen.customer_key)
        for handle in seen.handles:
            self.handles.setdefault(handle, set()).add(seen.customer_key)
        if known is None:
            self.identity_items[seen.customer_key] = copy.deepcopy(seen)
            self.links.setdefault(seen.home_customer_id, {})[seen.customer_key] = at
            return True
        known.handle, known.name = seen.handle, seen.name
        known.handles = sorted(set(known.handles) | set(seen.handles))
        if case_id:
            known.last_case_id, known.last_case_at = case_id, at
        return False

    def identities(self, customer_id: str) -> List[Identity]:
        return [copy.deepcopy(self.identity_items.get(k) or Identity(customer_key=k, customer_id=customer_id))
                for k in sorted(self.links.get(customer_id, {}))]

    def keys_by_handle(self, handle: str, *, platform: Optional[str] = None, limit: int) -> List[str]:
        keys = sorted(self.handles.get(normal_handle(handle), set()))
        return [k for k in keys if not platform or k.startswith(platform + ":")][:limit]

    def profile(self, customer_id: str) -> Optional[Profile]:
        found = self.profiles.get(customer_id)
        return copy.deepcopy(found) if found else None

    def save_profile(self, profile: Profile) -> bool:
        self.writes += 1
        stored = self.profiles.get(customer_id := profile.customer_id)
        if (stored.version if stored else 0) != profile.version:
            return False
        saved = copy.deepcopy(profile)
        saved.version += 1
        saved.merged_into = stored.merged_into if stored else None
        self.profiles[customer_id] = saved
        profile.version += 1
        return True

    def _meta(self, customer_id: str) -> Profile:
        return self.profiles.setdefault(customer_id, Profile(customer_id=customer_id))

    def _movable(self, identity: Identity) -> bool:
        known = self.identity_items.get(identity.customer_key)
        return known is None or known.customer_id == identity.customer_id

    def _move(self, identity: Identity, to_id: str, at: str) -> None:
        known = self.identity_items.setdefault(identity.customer_key, Identity(customer_key=identity.customer_key,
                                                                                customer_id=to_id))
        known.customer_id = to_id
        self.links.get(identity.customer_id, {}).pop(identity.customer_key, None)
        self.links.setdefault(to_id, {})[identity.customer_key] = at

    def link(self, target_id: str, other_id: str, identities: List[Identity], *, audit: Dict[str, Any]) -> bool:
        self.writes += 1
        if not all(self._movable(i) for i in identities):
            return False
        for identity in identities:
            self._move(identity, target_id, audit["at"])
        self._meta(other_id).merged_into = target_id
        for customer_id in (target_id, other_id):
            self.audits.setdefault(customer_id, []).append(dict(audit))
        return True

    def unlink(self, identity: Identity, *, audit: Dict[str, Any]) -> bool:
        self.writes += 1
        if not self._movable(identity):
            return False
        home, current = identity.home_customer_id, identity.customer_id
        self._move(identity, home, audit["at"])
        self._meta(home).merged_into = None
        for customer_id in (current, home):
            self.audits.setdefault(customer_id, []).append(dict(audit))
        return True

    def audit_trail(self, customer_id: str, *, limit: int) -> List[Dict[str, Any]]:
        return [dict(a) for a in reversed(self.audits.get(customer_id, []))][:limit]

    def field_definitions(self) -> List[FieldDefinition]:
        return list(self.definitions)

    def put_field_definitions(self, definitions: List[FieldDefinition], *, author: str, at: str) -> None:
        self.definitions = list(definitions)

    def forget_identity(self, customer_key: str) -> int:
        deleted = 0
        identity = self.identity_items.pop(customer_key, None)
        deleted += int(identity is not None)
        home = Identity(customer_key=customer_key, customer_id="").home_customer_id
        profiles = {home} | ({identity.customer_id} if identity else set())
        for handle in (identity.handles if identity else []):
            if customer_key in self.handles.get(handle, set()):
                self.handles[handle].discard(customer_key)
                deleted += 1
        for customer_id in profiles:
            if self.links.get(customer_id, {}).pop(customer_key, None) is not None:
                deleted += 1
            if not self.links.get(customer_id):
                deleted += int(self.profiles.pop(customer_id, None) is not None)
                deleted += len(self.audits.pop(customer_id, []))
                self.links.pop(customer_id, None)
            else:
                kept = [a for a in self.audits.get(customer_id, []) if customer_key not in a.get("customer_keys", [])]
                deleted += len(self.audits.get(customer_id, [])) - len(kept)
                self.audits[customer_id] = kept
        return deleted
