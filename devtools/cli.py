"""Operator CLI for dead letters and maintenance, against Azure or the local emulator alike.

Run it from a checkout (it is not part of the deployed app):

    python -m devtools.cli [--settings local.settings.json] dlq list [--queue sync]
    python -m devtools.cli dlq show sync 42
    python -m devtools.cli dlq replay sync [--seq 42 --seq 43] [--reason PermanentFailure]
    python -m devtools.cli dlq purge sync --reason BadMessage --yes
    python -m devtools.cli maintenance
    python -m devtools.cli keys issue --owner team-a     (see devtools/cli_keys.py)

Settings come from the environment; `--settings` (or ./local.settings.json when present)
fills in what the environment does not set.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from devtools.cli_keys import add_key_commands, needs_services, run_keys
from shared.config import Settings, read_local_settings
from shared.dead_letters import ActionReport, Selection
from shared.errors import ConveyorError
from shared.maintenance import run_maintenance
from shared.services import Services, build_services


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.cli", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--settings", type=Path, help="a local.settings.json to read Values from")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)

    dlq = commands.add_parser("dlq", help="dead-letter queues").add_subparsers(
        dest="action", required=True
    )
    listing = dlq.add_parser("list", help="dead letters grouped by reason")
    listing.add_argument("--queue", help="one queue only (default: every job queue)")
    listing.add_argument("--limit", type=int, default=100)

    show = dlq.add_parser("show", help="one dead letter with its body")
    show.add_argument("queue")
    show.add_argument("sequence_number", type=int)

    for name, text in (("replay", "send dead-lettered jobs again"), ("purge", "delete for good")):
        action = dlq.add_parser(name, help=text)
        action.add_argument("queue")
        action.add_argument("--seq", type=int, action="append", dest="sequence_numbers")
        action.add_argument("--reason", help="only dead letters with this DeadLetterReason")
        action.add_argument("--limit", type=int, default=100)
        if name == "purge":
            action.add_argument(
                "--yes", action="store_true", help="confirm: purge cannot be undone"
            )

    commands.add_parser("maintenance", help="reconcile rows with the DLQs; re-drive stuck jobs")
    add_key_commands(commands)
    return parser


def load_environment(settings_file: Path | None) -> None:
    candidate = settings_file or Path("local.settings.json")
    if settings_file is not None or candidate.exists():
        for name, value in read_local_settings(candidate).items():
            os.environ.setdefault(name, value)


async def run(args: argparse.Namespace, out: TextIO) -> int:
    if not needs_services(args):
        return await run_keys(None, args, out)
    services = await build_services(Settings.from_env(), ensure_resources=False)
    try:
        if args.command == "keys":
            await services.api_keys.ensure_table()
            return await run_keys(services, args, out)
        if args.command == "maintenance":
            return await _maintenance(services, args, out)
        return await _dlq(services, args, out)
    finally:
        await services.aclose()


async def _dlq(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    tools = services.dead_letters
    actor = f"cli:{getpass.getuser()}"
    if args.action == "list":
        queues = [args.queue] if args.queue else list(tools.queue_names)
        grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for queue in queues:
            for entry in await tools.peek(queue, limit=args.limit):
                grouped.setdefault(queue, {}).setdefault(entry.reason or "(none)", []).append(
                    entry.as_dict()
                )
        if args.json:
            json.dump(grouped, out, indent=2, default=str)
            out.write("\n")
            return 0
        for queue in queues:
            by_reason = grouped.get(queue, {})
            total = sum(len(v) for v in by_reason.values())
            out.write(f"{queue}: {total} dead letter(s)\n")
            for reason, entries in sorted(by_reason.items()):
                out.write(f"  {reason}: {len(entries)}\n")
                for item in entries:
                    out.write(
                        f"    #{item['sequence_number']} job {item['job_id']} "
                        f"attempt {item['attempt']}: {item['description']}\n"
                    )
        return 0
    if args.action == "show":
        shown = await tools.show(args.queue, args.sequence_number)
        json.dump(shown.as_dict(), out, indent=2, default=str)
        out.write("\n")
        return 0

    selection = Selection(
        sequence_numbers=frozenset(args.sequence_numbers) if args.sequence_numbers else None,
        reason=args.reason,
        limit=args.limit,
    )

    def progress(done: int, scanned: int) -> None:
        if not args.json:
            out.write(f"\r{args.action}: {done} done, {scanned} scanned")
            out.flush()

    if args.action == "replay":
        report = await tools.replay(args.queue, selection, actor=actor, progress=progress)
    else:
        report = await tools.purge(
            args.queue, selection, actor=actor, confirm=args.yes, progress=progress
        )
    _print_report(report, args.json, out)
    return 1 if report.failed else 0


async def _maintenance(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    report = await run_maintenance(services.dead_letters, services.sweeper)
    json.dump(report.as_dict(), out, indent=None if args.json else 2)
    out.write("\n")
    return 0


def _print_report(report: ActionReport, as_json: bool, out: TextIO) -> None:
    if as_json:
        json.dump(report.as_dict(), out, indent=2)
        out.write("\n")
        return
    out.write(f"\n{report.action} on {report.queue}: {len(report.done)} done")
    out.write(f", {len(report.skipped)} skipped, {len(report.failed)} failed\n")
    for sequence, why in sorted(report.skipped.items()):
        out.write(f"  skipped #{sequence}: {why}\n")
    for sequence, why in sorted(report.failed.items()):
        out.write(f"  FAILED #{sequence}: {why}\n")


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    try:
        load_environment(args.settings)
        return asyncio.run(run(args, out))
    except ConveyorError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
