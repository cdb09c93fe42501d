"""The development API keys `make run` prints: made once, kept in .local/ (ignored by git),
and added to API_KEYS (as hashes) for the local host, beside any keys the settings name."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from shared.auth.api_keys import ApiKeyRecord, hash_key, key_id_of, new_key, setting_entry

API_KEYS = "API_KEYS"
DEV_OWNER = "dev"
DEV_ADMIN_OWNER = "dev-admin"


@dataclass(frozen=True)
class DevKeys:
    path: Path
    key: str
    admin_key: str

    def records(self) -> list[ApiKeyRecord]:
        return [
            _record(self.key, DEV_OWNER, admin=False),
            _record(self.admin_key, DEV_ADMIN_OWNER, admin=True),
        ]

    def export(self) -> None:
        """Add the keys to API_KEYS in this process's environment (children inherit it)."""
        raw = os.environ.get(API_KEYS, "").strip() or "[]"
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError:
            return  # the app reports the bad setting itself, naming it
        if not isinstance(entries, list):
            return
        mine = {record.id for record in self.records()}
        entries = [e for e in entries if not (isinstance(e, dict) and e.get("id") in mine)]
        entries += [setting_entry(record) for record in self.records()]
        os.environ[API_KEYS] = json.dumps(entries)


def load_dev_keys(path: Path) -> DevKeys:
    """The keys kept at `path`, made there first if it does not hold two valid keys."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        keys = DevKeys(path, str(stored["key"]), str(stored["admin_key"]))
        if key_id_of(keys.key) and key_id_of(keys.admin_key):
            return keys
    except (OSError, ValueError, KeyError, TypeError):
        pass
    keys = DevKeys(path, new_key("devkey01")[1], new_key("devadmin")[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": keys.key, "admin_key": keys.admin_key}), encoding="utf-8")
    path.chmod(0o600)
    return keys


def _record(key: str, owner: str, *, admin: bool) -> ApiKeyRecord:
    key_id = key_id_of(key)
    assert key_id is not None
    return ApiKeyRecord(id=key_id, owner=owner, sha256=hash_key(key), admin=admin)
