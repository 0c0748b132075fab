"""Fixtures' building blocks for scale-out tests: a throw-away PostgreSQL database, a Redis
channel of our own, and gateway nodes as real `python -m handoff` processes.

PostgreSQL (127.0.0.1:5432, user postgres) and Redis (127.0.0.1:6379) are shared with other
users of the machine: every test gets a uniquely named database (dropped afterwards) and a
unique socket.io channel (pub/sub only, no keys).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from handoff.auth import hash_password
from handoff.store import Store, repo
from tests.stack import GATEWAY_PYTHON

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN = os.environ.get("LOANBOT_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("LOANBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def postgres_missing() -> str | None:
    """Why PostgreSQL cannot be used here, or None."""
    try:
        import psycopg2
        conn = psycopg2.connect(PG_ADMIN, connect_timeout=2)
        conn.close()
    except Exception as exc:  # any failure means: skip with the reason
        return f"PostgreSQL not reachable at {PG_ADMIN}: {exc}"
    return None


def redis_missing() -> str | None:
    try:
        import redis
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis not reachable at {REDIS_URL}: {exc}"
    return None


def drop_redis_keys(pattern: str) -> None:
    """Remove what a test or soak left in the shared Redis (replay marks of its channel)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(pattern):
            client.delete(key)
    finally:
        client.close()


@contextmanager
def scratch_database(prefix: str = "loanbot_test") -> Iterator[str]:
    """A new empty PostgreSQL database; dropped (with its connections) afterwards."""
    import psycopg2

    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = psycopg2.connect(PG_ADMIN, connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def add_agents(db_url: str, agents: list[tuple[str, str, tuple[str, ...]]], password: str,
               max_sessions: int = 3) -> None:
    """Create the tables and the agents (username, display name, skills) in the database."""
    store = Store(db_url)
    now = datetime.now(timezone.utc)
    password_hash = hash_password(password)
    try:
        with store.write() as conn:
            for username, name, skills in agents:
                repo.insert_agent(conn, username=username, display_name=name,
                                  password_hash=password_hash, skills=skills, role="agent",
                                  max_sessions=max_sessions, now=now)
    finally:
        store.dispose()


@dataclass
class Node:
    """One gateway process."""

    node_id: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, exactly like a crashed machine."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_node(node_id: str, workdir: Path, env: dict[str, str], seconds: float = 60) -> Node:
    """`python -m handoff` on a free loopback port; waits for /healthz."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{node_id}.log"
    process = subprocess.Popen(
        [GATEWAY_PYTHON, "-m", "handoff"], cwd=ROOT, stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "RASA_TELEMETRY_ENABLED": "false", "HANDOFF_HOST": "127.0.0.1",
             "HANDOFF_PORT": str(port), "HANDOFF_NODE_ID": node_id,
             "HANDOFF_VAR_DIR": str(workdir / node_id), **env},
    )
    node = Node(node_id, port, process, log)
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gateway {node_id} exited:\n{node.tail()}")
        try:
            with urllib.request.urlopen(f"{node.url}/healthz", timeout=2):
                return node
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                node.stop()
                raise RuntimeError(f"gateway {node_id} not up:\n{node.tail()}") from None
            time.sleep(0.2)


@dataclass
class RasaInstance:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def spawn_rasa(name: str, workdir: Path, model: Path, token: str,
               env: dict[str, str]) -> RasaInstance:
    """`rasa run` with bot/endpoints.scale.yml (values from `env`), debug log to a file.
    Returns at once; call wait_rasa() (start several first: loading a model takes a while)."""
    port = free_port()
    log = workdir / f"{name}.log"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "rasa"), "run", "-m", str(model),
         "--endpoints", str(ROOT / "bot" / "endpoints.scale.yml"),
         "--credentials", str(ROOT / "bot" / "credentials.yml"),
         "-i", "127.0.0.1", "-p", str(port), "--enable-api", f"--auth-token={token}",
         "--debug", "--log-file", str(log)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(workdir / f"{name}.err").open("wb"),
        env={**os.environ, "RASA_TELEMETRY_ENABLED": "false", **env},
    )
    return RasaInstance(f"http://127.0.0.1:{port}", process, log)


def wait_rasa(instance: RasaInstance, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise RuntimeError(f"rasa exited:\n{instance.text()[-3000:]}")
        try:  # Rasa listens only once the model is loaded
            with urllib.request.urlopen(f"{instance.url}/", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(1)
    instance.stop()
    raise RuntimeError(f"rasa not up after {seconds}s:\n{instance.text()[-3000:]}")
