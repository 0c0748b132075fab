"""`python -m bench`: vanilla Rasa (REST) vs the gateway (socket.io), same model, same run.

Writes a JSON file of every figure and the markdown report with a latency plot. Every level
is bounded in time (warm-up + measured seconds, plus at most one turn timeout to finish).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import uvloop

from bench import procs, profile
from bench.drivers import (
    CLIENTS,
    HandoffClock,
    Level,
    ScriptedAgents,
    run_gateway,
    run_interleaved,
    run_rest,
)
from bench.report import write_report
from bench.stats import LevelResult
from handoff import heap
from tests.stack import BIN, GATEWAY_PYTHON, ROOT

log = logging.getLogger("bench")


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--levels", default="1,10,50,100,200",
                   help="concurrent conversations, comma-separated")
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds per level")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--think", type=float, default=0.0,
                   help="mean seconds a borrower takes before each next message (0: none)")
    p.add_argument("--agents", type=int, default=4, help="scripted agents on the gateway")
    p.add_argument("--client", choices=CLIENTS, default="python-socketio",
                   help="the socket.io borrowers' client: python-socketio's AsyncClient (the "
                        "default, as every session's figures) or lean (bench/sio_client.py: "
                        "the same frames for about a quarter less of the shared CPU)")
    p.add_argument("--systems", default="vanilla,tuned-rasa,gateway",
                   help="vanilla (plain rasa run, REST), vanilla-memory (the same with Rasa's "
                        "in-memory tracker store), tuned-rasa (python -m bot.serve, "
                        "REST), tuned-rasa-x2 (two of them, conversations pinned by hash), "
                        "gateway (socket.io → gateway → tuned Rasa), gateway-x2 (the "
                        "gateway in front of two tuned Rasa, conversations pinned by the "
                        "gateway), gateway-stub (the gateway in front of a stand-in Rasa that "
                        "answers at once: a diagnostic)")
    p.add_argument("--model", type=Path, default=ROOT / "models" / "loanbot.tar.gz")
    p.add_argument("--train", action="store_true",
                   help="time a fresh `rasa train` first and benchmark that model")
    p.add_argument("--json", type=Path, default=ROOT / "reports" / "bench.json")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md",
                   help="markdown report ('-' to skip)")
    p.add_argument("--profile-level", type=int, default=None,
                   help="record py-spy profiles of every service during this level")
    p.add_argument("--profile-dir", type=Path, default=ROOT / "reports" / "profile")
    p.add_argument("--section", default="bench",
                   help="which generated section of the report to replace (e.g. bench-think)")
    p.add_argument("--render", type=Path, default=None,
                   help="only re-render the report from a JSON file of an earlier run")
    p.add_argument("--note", default="", help="a sentence added to the report (conditions)")
    p.add_argument("--remote-actions", action="store_true",
                   help="tuned Rasa calls the action server instead of running the custom "
                        "actions in its process (for an A/B; vanilla always calls it)")
    p.add_argument("--workdir", default=None,
                   help="keep databases and service logs here (default: a temporary directory)")
    return p.parse_args(argv)


def train(out_dir: Path) -> tuple[Path, float]:
    start = time.monotonic()
    subprocess.run(
        [str(BIN / "rasa"), "train", "--config", "config.yml", "--domain", "bot/domain",
         "--data", "data", "--out", str(out_dir), "--fixed-model-name", "bench"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        # an empty cache: Rasa would otherwise reuse trained components from .rasa/cache
        env={**os.environ, "RASA_TELEMETRY_ENABLED": "false",
             "RASA_CACHE_DIRECTORY": str(out_dir / "cache")},
    )
    return out_dir / "bench.tar.gz", time.monotonic() - start


async def _levels(running: procs.Running, levels: list[int], args: argparse.Namespace,
                  system: str) -> list[LevelResult]:
    results = []
    agents: ScriptedAgents | None = None
    if system.startswith("gateway"):
        agents = ScriptedAgents(running.gateway_url, running.agents, HandoffClock())
        await agents.start()
    try:
        for concurrency in levels:
            level = Level(concurrency, args.warmup, args.seconds, args.seed, args.think,
                          args.client)
            spies = []
            if concurrency == args.profile_level:
                spies = profile.start(
                    {f"{system}-{s.name}": s.process.pid for s, _ in running.services},
                    args.warmup + args.seconds, args.profile_dir)
            # The load generator's own collector: everything alive now (earlier levels'
            # turns, kept for the report) out of its sight, so a full collection does not
            # stop the borrowers it drives for up to ≈ 170 ms (handoff/heap.py).
            heap.settle()
            before = {**running.cpu(), "load generator": _own_cpu()}
            if agents is None:
                result = await run_rest(running.rasa_urls, running.rasa_token, level, system)
            else:
                result = await run_gateway(running.gateway_url, agents, level, system)
            after = {**running.cpu(), "load generator": _own_cpu()}
            result.cpu_seconds = {k: after[k] - before.get(k, 0.0) for k in after}
            print(json.dumps(result.summary(), ensure_ascii=False), flush=True)
            results.append(result)
            for spy in spies:
                spy.wait(timeout=60)
            await asyncio.sleep(1.0)  # let stragglers drain between levels
    finally:
        if agents is not None:
            await agents.stop()
    return results


async def _interleaved(running: procs.Running, args: argparse.Namespace,
                       system: str) -> tuple[LevelResult, LevelResult]:
    agents = ScriptedAgents(running.gateway_url, running.agents, HandoffClock())
    await agents.start()
    try:
        # twice the level's time: each path gets about half of it
        level = Level(1, args.warmup, 2 * args.seconds, args.seed, args.think, args.client)
        heap.settle()
        return await run_interleaved(running.gateway_url, agents, running.rasa_urls,
                                     running.rasa_token, level, system)
    finally:
        await agents.stop()


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _system_info(running: procs.Running, idle: dict[str, float], idle_pss: dict[str, float],
                 after: dict[str, float]) -> dict[str, Any]:
    return {"cold_start_s": running.cold_starts(), "idle_rss_mb": idle,
            "idle_pss_mb": idle_pss, "rss_after_load_mb": after,
            "loadavg_at_start": os.getloadavg()}


def _context(system: str, workdir: Path, model: Path,
             args: argparse.Namespace) -> Any:
    if system == "vanilla":
        return procs.vanilla(workdir, model)
    if system == "vanilla-memory":
        return procs.vanilla_memory(workdir, model)
    remote = args.remote_actions
    if system == "tuned-rasa":
        return procs.tuned(workdir, model, remote_actions=remote)
    if system == "tuned-rasa-x2":
        return procs.tuned_pair(workdir, model, remote_actions=remote)
    if system == "gateway":
        return procs.with_gateway(workdir, model, args.agents, remote_actions=remote)
    if system == "gateway-x2":
        return procs.with_gateway(workdir, model, args.agents, rasa_count=2,
                                  remote_actions=remote)
    if system == "gateway-stub":
        return procs.gateway_on_stub(workdir, args.agents)
    raise ValueError(f"unknown system {system!r}")


SYSTEMS = ("vanilla", "vanilla-memory", "tuned-rasa", "tuned-rasa-x2", "gateway", "gateway-x2",
           "gateway-stub")


def _run_system(system: str, workdir: Path, model: Path, levels: list[int],
                args: argparse.Namespace, data: dict[str, Any]) -> None:
    with _context(system, workdir, model, args) as running:
        time.sleep(3)
        idle, idle_pss = running.rss(), running.pss()
        results = asyncio.run(_levels(running, levels, args, system))
        if system in ("gateway", "gateway-x2") and 1 in levels:
            # the gateway's per-message overhead: the same conversations through it and
            # straight to the same Rasa, interleaved (bench/drivers.py run_interleaved)
            pair = asyncio.run(_interleaved(running, args, system))
            for result in pair:
                print(json.dumps(result.summary(), ensure_ascii=False), flush=True)
            results.extend(pair)
        time.sleep(2)
        data["systems"][system] = _system_info(running, idle, idle_pss, running.rss())
        data["results"].extend(r.summary() for r in results)
        data.setdefault("latencies", {})[system] = {
            str(r.concurrency) if r.system == system else f"{r.system}-{r.concurrency}":
            sorted(round(x * 1000, 1) for x in r.latencies) for r in results
        }


def interpreters() -> dict[str, str]:
    """Which CPython runs what: Rasa and the load generator share .venv, the gateway has its own."""
    gateway = subprocess.run(
        [GATEWAY_PYTHON, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True).stdout.strip()
    return {"rasa": platform.python_version(), "gateway": gateway}


def run(args: argparse.Namespace) -> dict[str, Any]:
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise SystemExit(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    data: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(), "levels": levels,
        "seconds": args.seconds, "warmup": args.warmup, "think": args.think, "note": args.note,
        "systems": {}, "results": [], "pythons": interpreters(),
    }
    with contextlib.ExitStack() as cleanup:
        if args.workdir:
            tmp = str(Path(args.workdir).resolve())
            Path(tmp).mkdir(parents=True, exist_ok=True)
        else:
            tmp = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="loanbot-bench-"))
        model = args.model
        if args.train:
            model, seconds = train(Path(tmp) / "model")
            data["training_seconds"] = round(seconds, 1)
        for system in systems:
            try:
                _run_system(system, Path(tmp) / system, model, levels, args, data)
            except Exception as exc:  # one system failing must not lose the others' figures
                log.exception("system %s failed", system)
                data.setdefault("failures", {})[system] = f"{type(exc).__name__}: {exc}"
                print(f"SYSTEM {system} FAILED: {exc}", flush=True)
    data["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    args = _args(argv)
    if args.render is not None:
        write_report(json.loads(args.render.read_text()), args.out, args.section)
        print(f"wrote {args.out}")
        return 0
    # The load generator shares the two cores with the systems under test: it runs on uvloop,
    # as the gateway does under uvicorn, for the REST (vanilla) and socket.io load alike.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    data = run(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, ensure_ascii=False, indent=1))
    print(f"wrote {args.json}")
    if str(args.out) != "-":
        write_report(data, args.out, args.section)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
