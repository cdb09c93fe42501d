"""`python -m devtools.cli intake`: show, pause and resume submits of a job type.

    python -m devtools.cli intake [show]
    python -m devtools.cli intake pause sync --reason "CRM maintenance until 14:00"
    python -m devtools.cli intake resume sync

It writes the same switch the admin route does (the `switches` table), with an audit entry.
"""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any, TextIO

from shared.jobs import JobType
from shared.services import Services


def add_intake_parser(commands: Any) -> None:
    intake = commands.add_parser("intake", help="pause or resume submits of a job type")
    actions = intake.add_subparsers(dest="action")
    actions.add_parser("show", help="every type's switch (the default)")
    for name, text in (("pause", "refuse submits of a type (503)"), ("resume", "accept again")):
        action = actions.add_parser(name, help=text)
        action.add_argument("type", choices=JobType.names())
        if name == "pause":
            action.add_argument("--reason", help="shown to callers whose submits are refused")


async def run_intake(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    actor = f"cli:{getpass.getuser()}"
    if args.action in ("pause", "resume"):
        paused = args.action == "pause"
        reason = getattr(args, "reason", None)
        job_type = JobType(args.type)
        await services.audit.record(actor, f"intake.{args.action}", job_type.value, reason=reason)
        await services.intake.set(job_type, paused=paused, reason=reason, actor=actor)
    switches = [s.as_dict() for s in await services.intake.all()]
    if args.json:
        json.dump({"switches": switches}, out, indent=2)
        out.write("\n")
        return 0
    for switch in switches:
        state = "PAUSED" if switch["paused"] else "open"
        line = f"{switch['type']:<10} {state:<7}"
        if switch["paused"] and switch["reason"]:
            line += f" {switch['reason']}"
        if switch["changed_by"]:
            line += f"  (by {switch['changed_by']} at {switch['changed_at']})"
        out.write(line + "\n")
    out.write(f"every instance follows a change within {services.intake.cache_seconds:g} s\n")
    return 0
