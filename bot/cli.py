"""`loanbot` command line: the operator and trainer entry points."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.trainer.cli import add_commands as add_trainer_commands
from bot.training import ROOT, ModelPaths, ensure_model, is_stale, train


def _cmd_ensure_model(args: argparse.Namespace) -> int:
    ensure_model(ModelPaths(Path(args.models_dir)))
    return 0


def _cmd_model_status(args: argparse.Namespace) -> int:
    stale = is_stale(ModelPaths(Path(args.models_dir)))
    print("stale" if stale else "current")
    return 1 if stale else 0


def _cmd_train(args: argparse.Namespace) -> int:
    train(ModelPaths(Path(args.models_dir)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loanbot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, help_text in (
        ("ensure-model", _cmd_ensure_model, "train only if the training inputs changed"),
        ("model-status", _cmd_model_status, "print current/stale (exit 1 when stale)"),
        ("train", _cmd_train, "train unconditionally"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--models-dir", default=str(ROOT / "models"))
        cmd.set_defaults(func=func)
    add_trainer_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
