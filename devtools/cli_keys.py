"""`python -m devtools.cli keys ...`: issue, list and revoke API keys in the key table.

    python -m devtools.cli keys issue --owner team-a [--admin] [--limit 60] [--note "..."]
    python -m devtools.cli keys list
    python -m devtools.cli keys revoke <id>
    python -m devtools.cli keys hash <key>      # the API_KEYS entry for a key you already have

`issue` prints the key once (store it in a secret store) and the API_KEYS entry that would
accept it from settings instead of the table. Against Azure this signs in with your own
identity (az login), which needs the Storage Table Data Contributor role (operator access).
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from shared.auth.api_keys import ApiKeyRecord, hash_key, key_id_of, new_key, setting_entry
from shared.services import Services


def add_key_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="API keys: issue, list, revoke").add_subparsers(
        dest="action", required=True
    )
    issue = keys.add_parser("issue", help="make a key and store its hash in the key table")
    issue.add_argument("--owner", required=True, help="whose jobs the key submits and sees")
    issue.add_argument("--admin", action="store_true", help="may use /api/admin")
    issue.add_argument("--limit", type=int, help="submits per minute per job type (0: none)")
    issue.add_argument("--note", default="", help="what the key is for")
    keys.add_parser("list", help="keys in the key table (never the keys themselves)")
    revoke = keys.add_parser("revoke", help="stop a key working (within the key cache time)")
    revoke.add_argument("key_id")
    hashed = keys.add_parser("hash", help="the API_KEYS entry for an existing key")
    hashed.add_argument("key")
    hashed.add_argument("--owner", required=True)
    hashed.add_argument("--admin", action="store_true")


def needs_services(args: argparse.Namespace) -> bool:
    return not (args.command == "keys" and args.action == "hash")


async def run_keys(services: Services | None, args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "hash":
        key_id = key_id_of(args.key)
        if key_id is None:
            out.write("error: not a Conveyor API key (cvy_<id>_<secret>)\n")
            return 2
        record = ApiKeyRecord(key_id, args.owner, hash_key(args.key), admin=args.admin)
        _dump(setting_entry(record), out)
        return 0
    assert services is not None
    table = services.api_keys
    if args.action == "issue":
        if args.limit is not None and args.limit < 0:
            out.write("error: --limit must be 0 (no limit) or more\n")
            return 2
        key_id, key = new_key()
        record = await table.add(
            ApiKeyRecord(
                id=key_id,
                owner=args.owner,
                sha256=hash_key(key),
                admin=args.admin,
                submits_per_minute=args.limit,
                description=args.note,
            )
        )
        _dump({**record.public(), "key": key, "api_keys_entry": setting_entry(record)}, out)
        return 0
    if args.action == "list":
        _dump([record.public() for record in await table.all()], out)
        return 0
    _dump((await table.revoke(args.key_id)).public(), out)
    return 0


def _dump(value: Any, out: TextIO) -> None:
    json.dump(value, out, indent=2)
    out.write("\n")
