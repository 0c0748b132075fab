"""Real processes a fault test can kill and restart: the gateway (`python -m handoff`), the
stand-in Rasa, a private PostgreSQL cluster, a private Redis, and a TCP proxy whose
connections can be cut like a network drop.

Each one listens on a port picked once, so a restart comes back at the same address and
clients reconnect exactly as they would in production. Nothing here touches the shared
PostgreSQL/Redis on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from handoff.auth import hash_password
from handoff.store import Store, repo
from handoff.store.schema import messages
from tests.integration.conftest import AGENTS, PASSWORD
from tests.integration.fake_rasa import free_port
from tests.stack import GATEWAY_PYTHON

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def _wait_http(url: str, seconds: float, process: subprocess.Popen[bytes] | None,
               log: Path | None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{url} process exited early:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} not up after {seconds}s")


def _wait_port_closed(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} still open")


@dataclass
class Proc:
    """A subprocess on a fixed port that can be SIGKILLed and started again."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    health_path: str
    log: Path
    start_seconds: float = 60
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        handle = self.log.open("ab")
        handle.write(f"--- start {self.starts + 1} ---\n".encode())
        handle.flush()
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
            env={**os.environ, "RASA_TELEMETRY_ENABLED": "false", **self.env},
        )
        handle.close()
        self.starts += 1
        _wait_http(f"{self.url}{self.health_path}", self.start_seconds, self.process, self.log)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing — a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        _wait_port_closed(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def gateway_process(workdir: Path, db_url: str, rasa_url: str, **env: str) -> Proc:
    """`python -m handoff` as in production; keyword args become HANDOFF_* values."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environ = {
        "HANDOFF_HOST": "127.0.0.1",
        "HANDOFF_PORT": str(port),
        "HANDOFF_DB_URL": db_url,
        "HANDOFF_VAR_DIR": str(workdir),
        "HANDOFF_SECRET": secrets.token_urlsafe(40),
        "HANDOFF_RASA_URL": rasa_url,
        "HANDOFF_RASA_TIMEOUT": "5",
        "HANDOFF_GRACE_SECONDS": "5",
        "HANDOFF_SERVICE_HOURS": "00:00-23:59",
        "HANDOFF_BORROWER_RATE": "1000/60",
        "HANDOFF_AGENT_RATE": "1000/60",
        "HANDOFF_POLICY_FILE": str(ROOT / "config" / "handoff.yml"),
        **{f"HANDOFF_{k.upper()}": v for k, v in env.items()},
    }
    return Proc("gateway", [GATEWAY_PYTHON, "-m", "handoff"], environ, port, "/healthz",
                workdir / f"gateway-{port}.log")


def fake_rasa_process(workdir: Path, slow_seconds: float = 3.0) -> Proc:
    """The scripted stand-in Rasa in its own process, so it can be killed mid-request."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    code = (
        "import threading\n"
        "from tests.integration.fake_rasa import FakeRasa\n"
        f"FakeRasa(slow_seconds={slow_seconds!r}, port={port}).start()\n"
        "threading.Event().wait()\n"
    )
    return Proc("fake rasa", [PY, "-c", code], {"PYTHONPATH": str(ROOT)}, port, "/",
                workdir / f"fake-rasa-{port}.log", start_seconds=20)


def add_agents(db_url: str) -> None:
    """The agents of tests/integration/conftest.py, written straight into the store."""
    store = Store(db_url)
    try:
        now = datetime.now(timezone.utc)
        password_hash = hash_password(PASSWORD)
        with store.write() as conn:
            for username, name, skills, role in AGENTS:
                repo.insert_agent(conn, username=username, display_name=name,
                                  password_hash=password_hash, skills=skills, role=role,
                                  max_sessions=3, now=now)
    finally:
        store.dispose()


def stored_messages(db_url: str, session_id: str) -> list[tuple[int, str, str]]:
    """(seq, sender, text) of a session, in seq order, read by a fresh connection."""
    store = Store(db_url, create_tables=False)
    try:
        query = (select(messages.c.seq, messages.c.sender, messages.c.text)
                 .where(messages.c.session_id == session_id).order_by(messages.c.seq))
        with store.read() as conn:
            return [(r.seq, r.sender, r.text) for r in conn.execute(query)]
    finally:
        store.dispose()


def readyz(base_url: str) -> tuple[int, dict[str, str]]:
    """GET /readyz → (status, body), also for a 503."""
    import json

    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# --- private PostgreSQL ------------------------------------------------------------------


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temp dir on a free port (trust auth). fsync is off
    (the OS keeps what a killed server wrote); synchronous_commit stays on, since a commit the
    gateway acknowledged must survive an immediate stop.
    As root it runs as the `postgres` user, since PostgreSQL refuses to run as root."""

    bin_dir: Path
    root: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync", "--locale=C")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.root / "data"), "-o", options,
                  "-l", str(self.root / "postgres.log"), "-w", "-t", "30", "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash: clients' connections are cut without goodbye."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        import pytest

        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="loanbot-pg-"))
    cluster = PrivatePostgres(bin_dir, root)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            cluster.stop("fast")
        shutil.rmtree(root, ignore_errors=True)


# --- private Redis -----------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """`redis-server` on a free port with persistence off; kill() is a crash."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        _wait_port_closed(self.port)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        import pytest

        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


# --- a TCP proxy whose connections can be cut --------------------------------------------


class TcpProxy:
    """Forwards a free local port to `target_port`. `cut()` resets every open connection
    (RST, no close handshake), as a dropped network does for the socket's owner;
    `blackhole()` keeps the connections open but lets nothing through either way (not even a
    close), as a silent drop does: only a heartbeat timeout can notice it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._silent = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(10)

    def blackhole(self) -> None:
        self._silent = True

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()

    async def _cut(self) -> None:
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:  # linger 0: close sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if not self._silent:
                        dst.write(data)
                        await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if not dst.is_closing() and not self._silent:
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
