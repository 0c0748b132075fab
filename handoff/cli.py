"""Admin commands for the gateway store.

    python -m handoff.cli create-agent --username u --display-name 名字 \
        --skills general,fraud --role agent [--max-sessions 3] [--password-stdin]
    python -m handoff.cli list-agents

The password comes from stdin (--password-stdin, first line) or an interactive prompt; never
from the command line, where it would land in shell history and `ps`.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TextIO

from handoff.errors import HandoffError
from handoff.policy import Policy
from handoff.service import HandoffService
from handoff.settings import Settings
from handoff.store import Store


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m handoff.cli", description=__doc__.split(
        "\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-agent", help="add an agent, supervisor or trainer")
    create.add_argument("--username", required=True)
    create.add_argument("--display-name", required=True, help="shown to borrowers, e.g. 小王")
    create.add_argument("--skills", default="", help="comma-separated, e.g. general,fraud")
    create.add_argument("--role", default="agent", choices=["agent", "supervisor", "trainer"])
    create.add_argument("--max-sessions", type=int, default=None)
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin")
    commands.add_parser("list-agents", help="print all agents")
    return parser


def _read_password(from_stdin: bool, stdin: TextIO) -> str:
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码 / password: ")
    if getpass.getpass("再次输入 / again: ") != first:
        raise HandoffError("passwords differ")
    return first


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None,
         stdout: TextIO | None = None) -> int:
    """Run one command; returns the process exit code (2 = bad input or config)."""
    args = _parser().parse_args(argv)
    out = stdout or sys.stdout
    try:
        settings = Settings.from_env()
        service = HandoffService(
            Store(settings.db_url), Policy.load(settings.policy_file), settings,
            lambda: datetime.now(timezone.utc),
        )
        if args.command == "create-agent":
            password = _read_password(args.password_stdin, stdin or sys.stdin)
            agent = service.create_agent(
                args.username, args.display_name, password,
                [s for s in args.skills.split(",") if s.strip()], args.role, args.max_sessions,
            )
            print(f"created {agent.agent_id} ({agent.display_name}) role={agent.role} "
                  f"skills={','.join(agent.skills) or '-'} max_sessions={agent.max_sessions}",
                  file=out)
        else:
            for agent in service.list_agents():
                print(f"{agent.agent_id}\t{agent.display_name}\t{agent.role}\t"
                      f"{','.join(agent.skills) or '-'}\t{agent.max_sessions}\t{agent.presence}",
                      file=out)
    except HandoffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
