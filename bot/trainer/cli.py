"""`loanbot` trainer commands: inbox, new-intent, check-data, train-candidate, compare, deploy,
switch-model. docs/trainers.md walks through them in order."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from bot.training import ROOT, ModelPaths

if TYPE_CHECKING:  # imported lazily at run time: `loanbot model-status` must stay fast
    from bot.trainer.deploy import SwitchResult
    from bot.trainer.inbox import InboxItem
    from bot.trainer.rasa_api import RasaApi
    from handoff.settings import Settings
    from handoff.store import Store


def _settings() -> Settings:
    from handoff.settings import Settings

    return Settings.from_env(os.environ)


def _rasa_apis(args: argparse.Namespace) -> list[RasaApi]:
    """--rasa-url, or every instance the gateway routes to (HANDOFF_RASA_URLS)."""
    from bot.trainer.rasa_api import RasaApi

    settings = _settings()
    token = args.rasa_token or settings.rasa_token
    urls = [args.rasa_url] if args.rasa_url else list(settings.rasa_urls or (settings.rasa_url,))
    return [RasaApi(url, token) for url in urls]


def _rasa_api(args: argparse.Namespace) -> RasaApi:
    """--rasa-url, or the first instance (HANDOFF_RASA_URL)."""
    return _rasa_apis(args)[0]


def _print_switched(api: RasaApi, switched: SwitchResult) -> None:
    print(f"    {api.base_url} now runs {switched.after['model_file']} "
          f"(model_id {switched.model_id}; the switch took {switched.seconds:.1f}s)", flush=True)


def _store(args: argparse.Namespace) -> Store:
    from handoff.store import Store

    return Store(args.db_url or _settings().db_url)


def _inbox_items(args: argparse.Namespace, store: Store) -> list[InboxItem]:
    from bot.trainer.inbox import build_inbox
    from bot.trainer.rasa_api import RasaApiError

    predictor = None
    if not args.no_predict:
        api = _rasa_api(args)
        try:
            api.status()
            predictor = api.predict
        except RasaApiError as exc:
            print(f"note: no predictions for unlabelled items, Rasa not reachable ({exc})",
                  file=sys.stderr)
    items = build_inbox(store, include_exported=getattr(args, "all", False),
                        predictor=predictor)
    if args.min_count > 1:
        items = [item for item in items if item.count >= args.min_count]
    return items[: args.limit] if args.limit else items


def _cmd_inbox_list(args: argparse.Namespace) -> int:
    from bot.trainer.inbox import format_table

    store = _store(args)
    try:
        items = _inbox_items(args, store)
    finally:
        store.dispose()
    if args.json:
        print(json.dumps([i.to_dict() for i in items], ensure_ascii=False, indent=2))
    else:
        print(format_table(items) if items else "inbox is empty")
    return 0


def _cmd_inbox_export(args: argparse.Namespace) -> int:
    from bot.trainer.inbox import mark_exported, to_nlu_yaml

    store = _store(args)
    try:
        items = _inbox_items(args, store)
        if not items:
            print("inbox is empty: nothing exported")
            return 0
        batch = args.batch or datetime.now(timezone.utc).strftime("inbox-%Y%m%dT%H%M%SZ")
        out = Path(args.out) if args.out else ROOT / "var" / "inbox" / f"{batch}.yml"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(to_nlu_yaml(items, batch), encoding="utf-8")
        marked = mark_exported(store, items, batch)
    finally:
        store.dispose()
    print(f"exported {len(items)} item(s) to {out}; marked {marked} as exported in batch {batch}")
    return 0


def _cmd_new_intent(args: argparse.Namespace) -> int:
    from bot.trainer.scaffold import ScaffoldError, new_intent

    examples = list(args.example or [])
    if args.examples_file:
        examples += Path(args.examples_file).read_text(encoding="utf-8").splitlines()
    try:
        written = new_intent(args.name, examples, args.response, sensitive=args.sensitive)
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("wrote:\n" + "\n".join(f"  {p.relative_to(ROOT)}" for p in written))
    print("next: add held-out examples to tests/nlu/, then `loanbot check-data`")
    return 0


def _cmd_check_data(args: argparse.Namespace) -> int:
    from bot.trainer.scaffold import check_data

    report = check_data(min_examples=args.min_examples)
    for warning in report.warnings:
        print(f"warning: {warning}")
    for error in report.errors:
        print(f"error: {error}")
    status = 0 if report.ok else 1
    if not args.no_rasa:
        rasa = Path(sys.executable).with_name("rasa")
        completed = subprocess.run(
            [str(rasa), "data", "validate", "--config", "config.yml", "--domain", "bot/domain",
             "--data", "data", "--fail-on-warnings"],
            cwd=ROOT, env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
        )
        status = status or completed.returncode
    print("data checks passed" if status == 0 else "data checks FAILED")
    return status


def _cmd_train_candidate(args: argparse.Namespace) -> int:
    from bot.training import train

    model = train(ModelPaths(Path(args.candidate_dir)))
    print(f"candidate model: {model}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from bot.trainer import compare

    argv = ["--out", args.out]
    if args.candidate:
        argv += ["--candidate", args.candidate]
    return compare.main(argv)


def _cmd_deploy(args: argparse.Namespace) -> int:
    from bot.trainer import compare, deploy
    from bot.training import train

    candidate_paths = ModelPaths(Path(args.candidate_dir))
    if not args.no_train:
        print("==> 1/4 training the candidate", flush=True)
        train(candidate_paths)
    if not candidate_paths.model.is_file():
        print(f"error: no candidate model at {candidate_paths.model}", file=sys.stderr)
        return 2
    current = ModelPaths(ROOT / "models").model
    print("==> 2/4 comparing with the current model", flush=True)
    result = compare.evaluate_pair(current, candidate_paths.model)
    print(compare.write_report(result, Path(args.out) / "compare"))
    if not result.promote:
        print("error: candidate refused; the running model is unchanged", file=sys.stderr)
        return 1
    apis = _rasa_apis(args)
    timeout = args.gateway_timeout or _settings().rasa_timeout_seconds
    try:
        print("==> 3/4 checking the switch pause against the gateway time-out", flush=True)
        deploy.check_pause(result.load_seconds.get("candidate", 0.0), timeout)
        release = deploy.stage_release(candidate_paths.model)
        where = ", ".join(api.base_url for api in apis)
        print(f"==> 4/4 switching Rasa at {where} to {release.name}", flush=True)
        deploy.switch_all(apis, release, _print_switched)
    except (deploy.DeployError, deploy.RasaApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    deploy.promote_on_disk(release, candidate_paths.fingerprint)
    print(f"Rasa ({len(apis)} instance{'s' if len(apis) > 1 else ''}) now runs {release.name}; "
          "models/loanbot.tar.gz updated")
    return 0


def _cmd_switch_model(args: argparse.Namespace) -> int:
    """Switch without evaluation: for rolling back to an earlier release."""
    from bot.trainer import deploy

    release = Path(args.model)
    try:
        deploy.switch_all(_rasa_apis(args), release, _print_switched)
    except (deploy.DeployError, deploy.RasaApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.promote:
        deploy.promote_on_disk(release, None)
    return 0


def _rasa_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--rasa-url", default=None, help="default: HANDOFF_RASA_URL / RASA_URL")
    cmd.add_argument("--rasa-token", default=None,
                     help="default: HANDOFF_RASA_TOKEN or var/rasa_token")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the trainer commands on the `loanbot` parser."""
    inbox = sub.add_parser("inbox", help="what the bot failed on (list / export)")
    inbox_sub = inbox.add_subparsers(dest="inbox_command", required=True)
    for name, func, help_text in (
        ("list", _cmd_inbox_list, "list unexported inbox items, most frequent first"),
        ("export", _cmd_inbox_export, "write a Rasa NLU YAML batch and mark its items"),
    ):
        cmd = inbox_sub.add_parser(name, help=help_text)
        cmd.add_argument("--db-url", default=None, help="gateway store (default HANDOFF_DB_URL)")
        cmd.add_argument("--limit", type=int, default=0)
        cmd.add_argument("--min-count", type=int, default=1)
        cmd.add_argument("--no-predict", action="store_true",
                         help="do not ask Rasa for the intent of items the gateway has none for")
        _rasa_args(cmd)
        if name == "list":
            cmd.add_argument("--all", action="store_true", help="include exported items")
            cmd.add_argument("--json", action="store_true")
        else:
            cmd.add_argument("--out", default=None, help="default var/inbox/<batch>.yml")
            cmd.add_argument("--batch", default=None)
        cmd.set_defaults(func=func)

    new = sub.add_parser("new-intent", help="scaffold every file a new intent needs")
    new.add_argument("name")
    new.add_argument("--example", action="append", help="a training example (repeat)")
    new.add_argument("--examples-file", help="one example per line")
    new.add_argument("--response", help="the bot's answer (Simplified Chinese)")
    new.add_argument("--sensitive", action="store_true",
                     help="hand off to a human at once (adds it to config/handoff.yml)")
    new.set_defaults(func=_cmd_new_intent)

    check = sub.add_parser("check-data", help="duplicates, too few examples, rasa data validate")
    check.add_argument("--min-examples", type=int, default=10)
    check.add_argument("--no-rasa", action="store_true", help="skip `rasa data validate`")
    check.set_defaults(func=_cmd_check_data)

    candidate_dir = str(ROOT / "models" / "candidate")
    train_candidate = sub.add_parser("train-candidate", help="train into models/candidate/")
    train_candidate.add_argument("--candidate-dir", default=candidate_dir)
    train_candidate.set_defaults(func=_cmd_train_candidate)

    comp = sub.add_parser("compare", help="candidate vs current model (what `make eval` runs)")
    comp.add_argument("--candidate", default=None)
    comp.add_argument("--out", default=str(ROOT / "reports"))
    comp.set_defaults(func=_cmd_compare)

    dep = sub.add_parser("deploy", help="train, compare, switch the running Rasa (PUT /model)")
    dep.add_argument("--candidate-dir", default=candidate_dir)
    dep.add_argument("--no-train", action="store_true", help="use the existing candidate")
    dep.add_argument("--out", default=str(ROOT / "reports"))
    dep.add_argument("--gateway-timeout", type=float, default=None,
                     help="the running gateway's HANDOFF_RASA_TIMEOUT (default: this shell's)")
    _rasa_args(dep)
    dep.set_defaults(func=_cmd_deploy)

    sw = sub.add_parser("switch-model", help="switch the running Rasa to a model file (rollback)")
    sw.add_argument("model")
    sw.add_argument("--promote", action="store_true", help="also make it models/loanbot.tar.gz")
    _rasa_args(sw)
    sw.set_defaults(func=_cmd_switch_model)
