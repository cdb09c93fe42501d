"""API keys: `cvy_<id>_<secret>`, stored only as SHA-256 hashes, compared in constant time.

The id part names the record, so a lookup is one dictionary or Table read and never a scan.
The secret has 256 bits of entropy, so a plain SHA-256 (not a slow password hash) is the
right tool: nothing can be brute-forced from the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

PREFIX = "cvy"
KEY_PATTERN = re.compile(r"^cvy_([a-z0-9]{4,32})_([A-Za-z0-9_-]{20,200})$")
ID_PATTERN = re.compile(r"^[a-z0-9]{4,32}$")


@dataclass(frozen=True)
class ApiKeyRecord:
    """What is stored about a key: never the key itself."""

    id: str
    owner: str
    sha256: str
    admin: bool = False
    submits_per_minute: int | None = None  # None: the global limit; 0: none
    description: str = ""
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def matches(self, presented_key: str) -> bool:
        return hmac.compare_digest(self.sha256, hash_key(presented_key))

    def public(self) -> dict[str, Any]:
        """The record as operators may see it (the hash stays inside)."""
        return {
            "id": self.id,
            "owner": self.owner,
            "admin": self.admin,
            "submits_per_minute": self.submits_per_minute,
            "description": self.description,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }

    def revoked(self, at: datetime) -> ApiKeyRecord:
        return replace(self, revoked_at=at)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(presented_key: str) -> str | None:
    """The record id inside a well-formed key; None for anything else."""
    match = KEY_PATTERN.match(presented_key)
    return match.group(1) if match else None


def new_key(key_id: str | None = None) -> tuple[str, str]:
    """A fresh (id, key). Show the key once; store only `hash_key(key)`."""
    key_id = key_id or secrets.token_hex(6)
    if not ID_PATTERN.match(key_id):
        raise ValueError("a key id is 4 to 32 characters of a-z and 0-9")
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def record_from_setting(entry: Any) -> ApiKeyRecord:
    """One element of the API_KEYS setting: {"id", "owner", "sha256", "admin"?,
    "submits_per_minute"?, "description"?}."""
    if not isinstance(entry, dict):
        raise ValueError("each API_KEYS entry is an object {id, owner, sha256, ...}")
    unknown = set(entry) - {"id", "owner", "sha256", "admin", "submits_per_minute", "description"}
    if unknown:
        raise ValueError(f"unknown API_KEYS fields: {', '.join(sorted(unknown))}")
    key_id, owner, digest = entry.get("id"), entry.get("owner"), entry.get("sha256")
    if not isinstance(key_id, str) or not ID_PATTERN.match(key_id):
        raise ValueError(f"API_KEYS id {key_id!r} must be 4 to 32 characters of a-z and 0-9")
    if not isinstance(owner, str) or not owner.strip():
        raise ValueError(f"API_KEYS entry {key_id!r} needs an owner")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"API_KEYS entry {key_id!r}: sha256 must be 64 hex digits")
    limit = entry.get("submits_per_minute")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"API_KEYS entry {key_id!r}: submits_per_minute must be >= 0")
    return ApiKeyRecord(
        id=key_id,
        owner=owner.strip(),
        sha256=digest,
        admin=entry.get("admin") is True,
        submits_per_minute=limit,
        description=str(entry.get("description", "")),
    )


def setting_entry(record: ApiKeyRecord) -> dict[str, Any]:
    """The API_KEYS element for a record (what `record_from_setting` reads back)."""
    entry: dict[str, Any] = {"id": record.id, "owner": record.owner, "sha256": record.sha256}
    if record.admin:
        entry["admin"] = True
    if record.submits_per_minute is not None:
        entry["submits_per_minute"] = record.submits_per_minute
    if record.description:
        entry["description"] = record.description
    return entry
