"""Start the real processes (action server, Rasa, gateway) on free loopback ports for tests.

Each process gets its own temporary databases, so no test depends on another's leftovers.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from handoff.interpreter import gateway_python

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The gateway runs on its own interpreter as in `make run` (handoff/interpreter.py).
GATEWAY_PYTHON = gateway_python(fallback=sys.executable)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # what it was started with, to restart

    def tail(self, lines: int = 40) -> str:
        if not self.log.is_file():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _wait_until_up(service: Service, health_url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited early:\n{service.tail()}")
        try:
            with urllib.request.urlopen(health_url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.5)
    service.stop()
    raise RuntimeError(f"{service.name} not up after {seconds}s:\n{service.tail()}")


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, "RASA_TELEMETRY_ENABLED": "false", **env},
        stdout=handle, stderr=subprocess.STDOUT,
    )


def start_action_server(workdir: Path, loan_db_url: str) -> Service:
    port = free_port()
    log = workdir / "actions.log"
    # rasa-sdk 3.6 keeps Sanic's 5 s keep-alive; Rasa opens a connection, and if its loop
    # then stalls (loading a model on PUT /model) the action server closes it before the
    # request is written: the turn loses its reply. Later rasa-sdk uses 120 s (PR #1047).
    env = {"SANIC_HOST": "127.0.0.1", "LOAN_DB_URL": loan_db_url,
           "SANIC_KEEP_ALIVE_TIMEOUT": "120"}
    process = _spawn(
        [str(BIN / "python"), "-m", "rasa_sdk", "--actions", "actions", "-p", str(port)],
        env, log,
    )
    service = Service("action server", process, f"http://127.0.0.1:{port}", log, env)
    _wait_until_up(service, f"{service.url}/health", 90)
    return service


def start_rasa(
    workdir: Path, model: Path, action_url: str | None, token: str, *, tuned: bool = True,
    sql_tracker: bool = True, loan_db_url: str | None = None,
) -> Service:
    """Rasa as `make run` starts it: `python -m bot.serve` (bot/tuning.py) running the custom
    actions in its own process against `loan_db_url` (bot/inprocess_actions.py), or calling
    the action server at `action_url`. `tuned=False` is plain `rasa run` (the benchmark's
    vanilla baseline, which needs the action server); `sql_tracker=False` keeps trackers in
    memory (Rasa's default when endpoints name no tracker store)."""
    if action_url is None and (not tuned or loan_db_url is None):
        raise ValueError("in-process actions need bot.serve (tuned) and a loan database")
    port = free_port()
    endpoints = workdir / "endpoints.yml"
    tracker = (
        f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{workdir / "tracker.sqlite"}"\n'
        if sql_tracker else ""
    )
    action = f'action_endpoint:\n  url: "{action_url}/webhook"\n' if action_url else ""
    endpoints.write_text(action + tracker)
    log = workdir / "rasa.log"
    env = {"LOANBOT_ACTIONS": "remote" if action_url else "inprocess",
           **({"LOAN_DB_URL": loan_db_url} if loan_db_url else {})}
    process = _spawn(
        [
            *([str(BIN / "python"), "-m", "bot.serve"] if tuned else [str(BIN / "rasa")]),
            "run", "-m", str(model), "--endpoints", str(endpoints),
            "--credentials", str(ROOT / "bot" / "credentials.yml"),
            "-i", "127.0.0.1", "-p", str(port), "--enable-api", f"--auth-token={token}",
        ],
        env,
        log,
    )
    service = Service("rasa", process, f"http://127.0.0.1:{port}", log, env)
    _wait_until_up(service, f"{service.url}/", 240)
    return service


def start_gateway(workdir: Path, rasa_url: str, rasa_token: str, **env: str) -> Service:
    port = free_port()
    log = workdir / "gateway.log"
    process = _spawn(
        [GATEWAY_PYTHON, "-m", "handoff"],
        {
            "HANDOFF_HOST": "127.0.0.1",
            "HANDOFF_PORT": str(port),
            "HANDOFF_DB_URL": f"sqlite:///{workdir / 'handoff.sqlite'}",
            "HANDOFF_RASA_URL": rasa_url,
            "HANDOFF_RASA_TOKEN": rasa_token,
            "HANDOFF_SECRET": secrets.token_urlsafe(32),
            **env,
        },
        log,
    )
    service = Service("gateway", process, f"http://127.0.0.1:{port}", log)
    _wait_until_up(service, f"{service.url}/healthz", 60)
    return service


def seed_loan_db(workdir: Path) -> str:
    url = f"sqlite:///{workdir / 'loans.sqlite'}"
    subprocess.run(
        [str(BIN / "python"), "-m", "actions.store.seed", "--url", url],
        cwd=ROOT, check=True, capture_output=True,
    )
    return url


@dataclass
class BotStack:
    actions: Service | None  # None: the actions run inside Rasa
    rasa: Service
    rasa_token: str
    loan_db_url: str
    workdir: Path


@contextmanager
def bot_stack(workdir: Path, model: Path, *, remote_actions: bool = False) -> Iterator[BotStack]:
    """Rasa with the trained model as `make run` starts it (custom actions in its process),
    or with `remote_actions` calling an action server; free ports, fresh databases."""
    workdir.mkdir(parents=True, exist_ok=True)
    loan_db_url = seed_loan_db(workdir)
    token = secrets.token_urlsafe(24)
    actions = start_action_server(workdir, loan_db_url) if remote_actions else None
    try:
        rasa = start_rasa(workdir, model, actions.url if actions else None, token,
                          loan_db_url=loan_db_url)
    except Exception:
        if actions:
            actions.stop()
        raise
    stack = BotStack(actions, rasa, token, loan_db_url, workdir)
    try:
        yield stack
    finally:
        # The stack's fields, not the locals: fault tests replace a killed service with a
        # restarted one, which must be stopped too.
        stack.rasa.stop()
        if stack.actions:
            stack.actions.stop()
