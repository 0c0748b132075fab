"""Start the systems under test on free loopback ports and measure their processes.

Reuses tests/stack.py (the same launcher the system tests use), so the benchmark runs exactly
what the tests check. Measures cold start (spawn → health answers), RSS and CPU time per
process from /proc (Linux).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.stack import (
    BIN,
    ROOT,
    Service,
    _spawn,
    _wait_until_up,
    free_port,
    seed_loan_db,
    start_action_server,
    start_gateway,
    start_rasa,
)

AGENT_PASSWORD = "bench-" + secrets.token_urlsafe(12)
AGENT_SKILLS = "general,complaints,fraud,collections"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _pids(root: int) -> list[int]:
    """The process and all its descendants (Rasa and Sanic may fork helpers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of a process tree in MB (VmRSS summed)."""
    return _summed_kb(pid, "status", "VmRSS:") / 1024


def pss_mb(pid: int) -> float:
    """Proportional memory of a process tree in MB (Pss from smaps_rollup): a page shared by n
    processes counts 1/n in each, so summed over every process of the system it is the memory
    the system really holds. Two Rasa processes share ≈ 550 MB of TensorFlow's library pages,
    which a sum of RSS counts twice."""
    return _summed_kb(pid, "smaps_rollup", "Pss:") / 1024


def _summed_kb(pid: int, proc_file: str, key: str) -> int:
    """A kB field of /proc/<pid>/<proc_file>, summed over the process tree."""
    total = 0
    for p in _pids(pid):
        try:
            for line in Path(f"/proc/{p}/{proc_file}").read_text().splitlines():
                if line.startswith(key):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process tree so far."""
    total = 0
    for p in _pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


@dataclass
class Running:
    """One system under test: its services with cold-start seconds, and its endpoints."""

    name: str
    services: list[tuple[Service, float]] = field(default_factory=list)
    rasa_url: str = ""
    rasa_urls: list[str] = field(default_factory=list)
    rasa_token: str = ""
    gateway_url: str = ""
    agents: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, start: float, service: Service) -> Service:
        self.services.append((service, time.monotonic() - start))
        return service

    def rss(self) -> dict[str, float]:
        return {s.name: round(rss_mb(s.process.pid), 1) for s, _ in self.services}

    def pss(self) -> dict[str, float]:
        return {s.name: round(pss_mb(s.process.pid), 1) for s, _ in self.services}

    def cpu(self) -> dict[str, float]:
        return {s.name: cpu_seconds(s.process.pid) for s, _ in self.services}

    def cold_starts(self) -> dict[str, float]:
        return {s.name: round(seconds, 1) for s, seconds in self.services}


def _timed(running: Running, make: object, *args: object, **kwargs: object) -> Service:
    start = time.monotonic()
    service = make(*args, **kwargs)  # type: ignore[operator]
    return running.add(start, service)


@contextmanager
def vanilla(workdir: Path, model: Path) -> Iterator[Running]:
    """Plain `rasa run` with its REST channel + the action server (the bot's endpoints)."""
    with _bot(workdir, model, "vanilla", tuned=False) as running:
        yield running


@contextmanager
def vanilla_memory(workdir: Path, model: Path) -> Iterator[Running]:
    """Plain `rasa run` with Rasa's default in-memory tracker store: the fastest vanilla, but
    conversations do not survive a restart (ours do), so it is shown, not the baseline."""
    with _bot(workdir, model, "vanilla-memory", tuned=False, sql_tracker=False) as running:
        yield running


@contextmanager
def tuned(workdir: Path, model: Path, *, remote_actions: bool = False) -> Iterator[Running]:
    """The same, started as `make run` starts Rasa (`python -m bot.serve`, bot/tuning.py)."""
    with _bot(workdir, model, "tuned-rasa", tuned=True,
              remote_actions=remote_actions) as running:
        yield running


@contextmanager
def tuned_pair(workdir: Path, model: Path, *,
               remote_actions: bool = False) -> Iterator[Running]:
    """Two tuned Rasa processes, each conversation pinned to one (what consistent hashing in
    the gateway does); measures whether a second Rasa helps on this CPU and what it costs."""
    with _bot(workdir, model, "tuned-rasa-x2", tuned=True, rasa_count=2,
              remote_actions=remote_actions) as running:
        yield running


@contextmanager
def _bot(workdir: Path, model: Path, name: str, *, tuned: bool = True,
         remote_actions: bool = False,
         rasa_count: int = 1, sql_tracker: bool = True) -> Iterator[Running]:
    workdir.mkdir(parents=True, exist_ok=True)
    running = Running(name)
    with ExitStack() as stack:
        loan_db = seed_loan_db(workdir)
        # Plain Rasa calls the action server; tuned Rasa runs the actions in its own process
        # as `make run` does (bot/inprocess_actions.py), unless `remote_actions` (the A/B of
        # `python -m bench --remote-actions`).
        action_url = None
        if not tuned or remote_actions:
            actions = _timed(running, start_action_server, workdir, loan_db)
            stack.callback(actions.stop)
            action_url = actions.url
        token = secrets.token_urlsafe(24)
        for i in range(rasa_count):
            home = workdir if i == 0 else workdir / f"rasa{i + 1}"
            home.mkdir(exist_ok=True)
            rasa = _timed(running, start_rasa, home, model, action_url, token, tuned=tuned,
                          sql_tracker=sql_tracker, loan_db_url=loan_db)
            stack.callback(rasa.stop)
            if i:
                rasa.name = f"rasa {i + 1}"
            running.rasa_urls.append(rasa.url)
        running.rasa_url, running.rasa_token = running.rasa_urls[0], token
        yield running


def create_agents(db_url: str, count: int) -> list[tuple[str, str, str]]:
    """Agent accounts for the scripted agents, through the gateway's own admin CLI."""
    accounts = []
    for i in range(count):
        username, name = f"bench{i:02d}", f"测试{i:02d}"
        subprocess.run(
            [str(BIN / "python"), "-m", "handoff.cli", "create-agent", "--username", username,
             "--display-name", name, "--skills", AGENT_SKILLS, "--max-sessions", "50",
             "--password-stdin"],
            input=AGENT_PASSWORD + "\n", text=True, cwd=ROOT, check=True, capture_output=True,
            env={**os.environ, "HANDOFF_DB_URL": db_url,
                 "HANDOFF_SECRET": secrets.token_urlsafe(32)},
        )
        accounts.append((username, AGENT_PASSWORD, name))
    return accounts


@contextmanager
def with_gateway(workdir: Path, model: Path, agents: int,
                 gateway_env: dict[str, str] | None = None, *,
                 rasa_count: int = 1, remote_actions: bool = False) -> Iterator[Running]:
    """The gateway (python -m handoff) in front of tuned Rasa; with rasa_count=2 two tuned
    Rasa, each conversation pinned to one by the gateway (HANDOFF_RASA_URLS)."""
    name = "gateway" if rasa_count == 1 else f"gateway-x{rasa_count}"
    with _bot(workdir, model, name, rasa_count=rasa_count,
              remote_actions=remote_actions) as running:
        db_url = f"sqlite:///{workdir / 'handoff.sqlite'}"
        running.agents = create_agents(db_url, agents)
        env = {"HANDOFF_VAR_DIR": str(workdir), "HANDOFF_SERVICE_HOURS": "00:00-23:59",
               "HANDOFF_RASA_TIMEOUT": "30",
               # scripted agents answer every handoff at once, faster than people type
               "HANDOFF_AGENT_RATE": "600/60", **(gateway_env or {})}
        if rasa_count > 1:
            env["HANDOFF_RASA_URLS"] = ",".join(running.rasa_urls)
        gateway = _timed(running, start_gateway, workdir, running.rasa_url,
                         running.rasa_token, **env)
        try:
            running.gateway_url = gateway.url
            yield running
        finally:
            gateway.stop()


STUB_SECONDS = 3600  # the stand-in exits on its own after this even if nobody stops it


def start_stub_rasa(workdir: Path) -> Service:
    """The integration tests' stand-in Rasa (answers at once, scripted) in its own process."""
    port = free_port()
    log = workdir / "stub-rasa.log"
    code = ("import time; from tests.integration.fake_rasa import FakeRasa; "
            f"r = FakeRasa(port={port}, slow_seconds=0.0); r.start(); time.sleep({STUB_SECONDS})")
    process = _spawn([str(BIN / "python"), "-c", code], {}, log)
    service = Service("stub rasa", process, f"http://127.0.0.1:{port}", log)
    _wait_until_up(service, f"{service.url}/", 30)
    return service


@contextmanager
def gateway_on_stub(workdir: Path, agents: int) -> Iterator[Running]:
    """The gateway in front of a stand-in Rasa that answers at once: the gateway's own cost
    and ceiling, with Rasa taken out (a diagnostic, not a system anyone would run)."""
    workdir.mkdir(parents=True, exist_ok=True)
    running = Running("gateway-stub")
    with ExitStack() as stack:
        stub = _timed(running, start_stub_rasa, workdir)
        stack.callback(stub.stop)
        running.rasa_url = stub.url
        running.rasa_urls = [stub.url]
        db_url = f"sqlite:///{workdir / 'handoff.sqlite'}"
        running.agents = create_agents(db_url, agents)
        env = {"HANDOFF_VAR_DIR": str(workdir), "HANDOFF_SERVICE_HOURS": "00:00-23:59",
               "HANDOFF_RASA_TIMEOUT": "30",
               # scripted agents answer every handoff at once, faster than people type
               "HANDOFF_AGENT_RATE": "600/60"}
        gateway = _timed(running, start_gateway, workdir, stub.url, "stub-token", **env)
        stack.callback(gateway.stop)
        running.gateway_url = gateway.url
        yield running
