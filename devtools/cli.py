"""Operator CLI for dead letters and maintenance, against Azure or the local emulator alike.

Run it from a checkout (it is not part of the deployed app):

    python -m devtools.cli [--settings local.settings.json] dlq list [--queue sync]
    python -m devtools.cli dlq show sync 42
    python -m devtools.cli dlq replay sync [--seq 42 --seq 43] [--reason PermanentFailure]
    python -m devtools.cli dlq purge sync --reason BadMessage --yes
    python -m devtools.cli dlq replay callbacks --seq 7   (a callback delivery, sent again)
    python -m devtools.cli maintenance
    python -m devtools.cli callbacks redeliver JOB_ID   (a given-up callback, from attempt 1)
    python -m devtools.cli keys issue --owner team-a     (see devtools/cli_keys.py)
    python -m devtools.cli jobs top [--interval 5] [--window 60] [--once]

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
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from devtools.cli_intake import add_intake_parser, run_intake
from devtools.cli_keys import add_key_commands, needs_services, run_keys
from devtools.progress import ProgressBar
from devtools.top import overview, render
from shared.config import Settings, read_local_settings
from shared.dead_letter_records import ActionReport, Selection
from shared.dead_letters import MAX_SCAN
from shared.errors import ConveyorError
from shared.jobs import require_job_id, utcnow
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
    listing.add_argument("--queue", help="one queue only (default: every queue, callbacks too)")
    listing.add_argument("--limit", type=int, default=100)

    show = dlq.add_parser("show", help="one dead letter with its body")
    show.add_argument("queue")
    show.add_argument("sequence_number", type=int)

    for name, text in (("replay", "send dead letters again"), ("purge", "delete for good")):
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
    callbacks = commands.add_parser("callbacks", help="completion callbacks").add_subparsers(
        dest="action", required=True
    )
    redeliver = callbacks.add_parser(
        "redeliver", help="deliver a finished job's callback again, from attempt 1"
    )
    redeliver.add_argument("job_id")
    add_key_commands(commands)

    jobs = commands.add_parser("jobs", help="jobs in the table").add_subparsers(
        dest="action", required=True
    )
    top = jobs.add_parser("top", help="counts by status per type, run times, failures; live")
    top.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes")
    top.add_argument("--window", type=float, default=60.0, help="minutes of finished jobs")
    top.add_argument("--once", action="store_true", help="print once and exit")
    add_intake_parser(commands)
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
        if args.command == "jobs":
            return await _top(services, args, out)
        if args.command == "intake":
            return await run_intake(services, args, out)
        if args.command == "callbacks":
            return await _redeliver(services, args, out)
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

    bar = ProgressBar(f"{args.action} {args.queue}", await _selected(services, args, selection))
    if args.action == "replay":
        report = await tools.replay(args.queue, selection, actor=actor, progress=bar.update)
    else:
        report = await tools.purge(
            args.queue, selection, actor=actor, confirm=args.yes, progress=bar.update
        )
    bar.close()
    _print_report(report, args.json, out)
    return 1 if report.failed else 0


async def _selected(services: Services, args: argparse.Namespace, selection: Selection) -> int:
    """How many dead letters the action will take (a peek: nothing is locked), for the bar."""
    if args.action == "purge" and not args.yes:
        return 0  # refused before anything is read
    entries = await services.dead_letters.peek(args.queue, limit=MAX_SCAN)
    return min(selection.limit, sum(1 for entry in entries if selection.matches(entry)))


async def _top(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    """Print the overview every `--interval` seconds (once with `--once`) until Ctrl-C."""
    live = not args.once and out.isatty()
    while True:
        now = utcnow()
        since = now - timedelta(minutes=args.window)
        view = overview(await services.store.list_for_overview(since=since), since)
        if args.json:
            json.dump(view.as_dict(), out)
            out.write("\n")
        else:
            out.write(("\x1b[H\x1b[2J" if live else "") + render(view, now))
        out.flush()
        if args.once:
            return 0
        await asyncio.sleep(max(args.interval, 0.5))


async def _maintenance(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    report = await run_maintenance(
        services.dead_letters, services.sweeper, services.store, services.queue_depths
    )
    json.dump(report.as_dict(), out, indent=None if args.json else 2)
    out.write("\n")
    return 0


async def _redeliver(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    require_job_id(args.job_id)
    await services.audit.record(f"cli:{getpass.getuser()}", "callback.redeliver", args.job_id)
    job, queued = await services.store.start_over(args.job_id)
    json.dump({"job_id": job.id, "queued": queued}, out, indent=None if args.json else 2)
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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
