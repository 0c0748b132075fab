"""One typed settings object for the gateway, read from HANDOFF_* environment variables.

Bad values fail loudly at start-up (ConfigError naming the variable) rather than at the first
request. The token secret is never in the repository: HANDOFF_SECRET, or a random one created
once in the var directory (mode 600) so tokens survive restarts.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from handoff import heap, placement
from handoff.errors import ConfigError

SECRET_FILE_NAME = "handoff_secret"
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class RateLimit:
    """At most `count` messages in any `per_seconds` window. Token-bucket users
    (handoff/limits.py) refill `count` per `per_seconds` and allow a run of `burst` (default
    `count`)."""

    count: int
    per_seconds: float
    burst: int | None = None


@dataclass(frozen=True)
class ServiceHours:
    """Daily window when human agents work, in `tz` (start inclusive, end exclusive)."""

    start: time
    end: time
    tz: ZoneInfo


@dataclass(frozen=True)
class Settings:
    db_url: str
    host: str
    port: int
    rasa_url: str
    rasa_timeout_seconds: float
    secret: str
    token_ttl_seconds: int
    grace_seconds: int
    service_hours: ServiceHours
    borrower_rate: RateLimit
    agent_rate: RateLimit
    max_message_length: int
    max_sessions_per_agent: int
    default_handle_seconds: int
    history_limit: int
    policy_file: Path
    var_dir: Path
    cors_origins: tuple[str, ...]
    # Scale-out: python-socketio's Redis manager when set (see docs/deploy.md).
    redis_url: str | None = None
    # Pub/sub channel of the Redis manager; every gateway node of one deployment uses the same.
    redis_channel: str = "loanbot-socketio"
    # Every Rasa instance; a session always goes to the same one (handoff.placement).
    # rasa_url is the first of them.
    rasa_urls: tuple[str, ...] = ()
    # Keep-alive connections to each Rasa instance; calls beyond them queue in the gateway,
    # where resume events can go first (handoff/rasa_client.py says why, and why only 4).
    rasa_connections: int = 4
    # Which instance a new session goes to (handoff/placement.py): "least-busy" (this node's
    # fewest calls outstanding; one gateway node) or "hash" (rendezvous hashing, which every
    # node computes alike). Default: "hash" with the Redis manager (several nodes), else
    # "least-busy".
    rasa_placement: str = "least-busy"
    # This gateway process among several sharing one database: agent sockets are recorded per
    # node, and a node whose heartbeat is older than node_ttl_seconds counts as dead.
    node_id: str = "local"
    node_ttl_seconds: int = 15
    # Rasa's --auth-token, needed for /conversations/* (resume events); the webhook ignores it.
    rasa_token: str | None = None
    # Borrower identity (handoff/borrower_auth.py): the HS256 secret shared with the lender's
    # app; None = no borrower tokens accepted (anonymous sessions only).
    borrower_jwt_secret: str | None = None
    require_borrower_token: bool = False
    # Bearer token for a Prometheus scraper on GET /metrics (supervisor login tokens also work).
    metrics_token: str | None = None
    # Where per-message store work runs (handoff/store_calls.py): "auto" (on the event loop
    # for SQLite, in worker threads for a networked database), "loop" or "thread".
    store_calls: str = "auto"
    # Allocations between young garbage collections once the gateway has started (handoff/
    # heap.py says why); 0 leaves Python's collector as it is.
    gc_young_threshold: int = heap.YOUNG_THRESHOLD
    # Entries of an agent's queue snapshot (the best first; `total` counts them all). Every
    # queue change sends every online agent its snapshot: uncapped, a queue of 1,000 with 20
    # agents put ≈ 4 MB on the wire per change (docs/benchmarks.md, session 18).
    queue_view_limit: int = 50

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment (or a given mapping, for tests)."""
        env = os.environ if environ is None else environ
        var_dir = Path(_str(env, "HANDOFF_VAR_DIR", "var"))
        rasa_urls = _rasa_urls(env)
        redis_url = _redis_url(env)
        port = _int(env, "HANDOFF_PORT", 8080, low=1, high=65535)
        policy_file = Path(_str(env, "HANDOFF_POLICY_FILE", "config/handoff.yml"))
        limits = _file_limits(policy_file)
        return cls(
            db_url=_db_url(_str(env, "HANDOFF_DB_URL", f"sqlite:///{var_dir}/handoff.sqlite")),
            host=_str(env, "HANDOFF_HOST", "127.0.0.1"),
            port=port,
            rasa_url=rasa_urls[0],
            rasa_urls=rasa_urls,
            rasa_timeout_seconds=_float(env, "HANDOFF_RASA_TIMEOUT", 30.0, low=0.1, high=300),
            rasa_connections=_int(env, "HANDOFF_RASA_CONNECTIONS", 4, low=1, high=1000),
            rasa_placement=_choice(env, "HANDOFF_RASA_PLACEMENT",
                                   placement.HASH if redis_url else placement.LEAST_BUSY,
                                   placement.MODES),
            secret=_secret(env, var_dir),
            token_ttl_seconds=_int(env, "HANDOFF_TOKEN_TTL", 8 * 3600, low=60, high=7 * 86400),
            grace_seconds=_int(env, "HANDOFF_GRACE_SECONDS", 30, low=0, high=3600),
            service_hours=_hours(
                _str(env, "HANDOFF_SERVICE_HOURS", "09:00-21:00"),
                _str(env, "HANDOFF_TIMEZONE", "Asia/Shanghai"),
            ),
            borrower_rate=_rate(env, "HANDOFF_BORROWER_RATE", limits.borrower_rate),
            agent_rate=_rate(env, "HANDOFF_AGENT_RATE", "60/60"),
            max_message_length=_int(env, "HANDOFF_MAX_MESSAGE_LENGTH", limits.max_message_chars,
                                    low=1, high=100_000),
            max_sessions_per_agent=_int(env, "HANDOFF_MAX_SESSIONS_PER_AGENT", 3, low=1, high=50),
            default_handle_seconds=_int(env, "HANDOFF_DEFAULT_HANDLE_SECONDS", 300, low=1,
                                        high=86400),
            history_limit=_int(env, "HANDOFF_HISTORY_LIMIT", 50, low=1, high=1000),
            policy_file=policy_file,
            var_dir=var_dir,
            cors_origins=tuple(
                o.strip() for o in _str(env, "HANDOFF_CORS_ORIGINS", "").split(",") if o.strip()
            ),
            redis_url=redis_url,
            redis_channel=_name(env, "HANDOFF_REDIS_CHANNEL", "loanbot-socketio"),
            node_id=_name(env, "HANDOFF_NODE_ID", f"{socket.gethostname()[:50]}:{port}"),
            node_ttl_seconds=_int(env, "HANDOFF_NODE_TTL", 15, low=2, high=3600),
            rasa_token=_rasa_token(env, var_dir),
            borrower_jwt_secret=_borrower_secret(env),
            require_borrower_token=_require_borrower_token(env),
            metrics_token=_optional_secret(env, "HANDOFF_METRICS_TOKEN"),
            store_calls=_choice(env, "HANDOFF_STORE_CALLS", "auto", ("auto", "loop", "thread")),
            gc_young_threshold=_int(env, "HANDOFF_GC_YOUNG_THRESHOLD", heap.YOUNG_THRESHOLD,
                                    low=0, high=10_000_000),
            queue_view_limit=_int(env, "HANDOFF_QUEUE_VIEW_LIMIT", 50, low=1, high=10_000),
        )


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name)
    if value is None:
        return default
    value = value.strip()
    if not value:
        raise ConfigError(f"{name} is set but empty")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, low: float,
           high: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _str(env, name, default).strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = _str(env, name, default).rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _rasa_urls(env: Mapping[str, str]) -> tuple[str, ...]:
    """HANDOFF_RASA_URLS (comma-separated) wins over HANDOFF_RASA_URL / RASA_URL."""
    raw = env.get("HANDOFF_RASA_URLS")
    if raw is None:
        return (_url(env, "HANDOFF_RASA_URL", env.get("RASA_URL") or "http://127.0.0.1:5005"),)
    urls = [u.strip().rstrip("/") for u in raw.split(",") if u.strip()]
    if not urls:
        raise ConfigError("HANDOFF_RASA_URLS is set but lists no URL")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"HANDOFF_RASA_URLS must list http(s) URLs, got {url!r}")
    if len(set(urls)) != len(urls):
        raise ConfigError("HANDOFF_RASA_URLS lists a URL twice")
    return tuple(urls)


_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def _name(env: Mapping[str, str], name: str, default: str) -> str:
    value = _str(env, name, default)
    if not _NAME.match(value):
        raise ConfigError(f"{name} must be 1-64 of A-Z a-z 0-9 _ . : -, got {value!r}")
    return value


def _redis_url(env: Mapping[str, str]) -> str | None:
    value = env.get("HANDOFF_REDIS_URL", "").strip()
    if not value:
        return None
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"HANDOFF_REDIS_URL must be a redis:// URL, got {value!r}")
    return value


def _rasa_token(env: Mapping[str, str], var_dir: Path) -> str | None:
    """HANDOFF_RASA_TOKEN, else the token `make run` generated for the local Rasa."""
    value = env.get("HANDOFF_RASA_TOKEN", "").strip()
    if value:
        return value
    local = var_dir / "rasa_token"
    if local.is_file():
        return local.read_text(encoding="utf-8").strip() or None
    return None


def _optional_secret(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{name} must be at least {MIN_SECRET_LENGTH} characters")
    return value


def _borrower_secret(env: Mapping[str, str]) -> str | None:
    return _optional_secret(env, "HANDOFF_BORROWER_JWT_SECRET")


def _require_borrower_token(env: Mapping[str, str]) -> bool:
    raw = env.get("HANDOFF_REQUIRE_BORROWER_TOKEN", "false").strip().lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"HANDOFF_REQUIRE_BORROWER_TOKEN must be true or false, got {raw!r}")
    required = raw in ("true", "1", "yes")
    if required and not _borrower_secret(env):
        raise ConfigError(
            "HANDOFF_REQUIRE_BORROWER_TOKEN needs HANDOFF_BORROWER_JWT_SECRET to check tokens"
        )
    return required


def _db_url(value: str) -> str:
    if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg2:", "postgres:")):
        raise ConfigError(f"HANDOFF_DB_URL must be a sqlite or postgresql URL, got {value!r}")
    if value.startswith("postgres:"):
        value = "postgresql:" + value[len("postgres:"):]
    return value


def _rate(env: Mapping[str, str], name: str, default: str | RateLimit) -> RateLimit:
    """`count/seconds` or `count/seconds/burst` from the environment, else the default."""
    if isinstance(default, RateLimit) and env.get(name) is None:
        return default
    raw = _str(env, name, default if isinstance(default, str) else "")
    try:
        parts = raw.split("/")
        if len(parts) not in (2, 3):
            raise ValueError(raw)
        count, seconds = int(parts[0]), float(parts[1])
        burst = int(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise ConfigError(
            f"{name} must look like '20/60' or '20/60/5' (messages/seconds[/burst]), got {raw!r}"
        ) from None
    if count < 1 or seconds <= 0 or (burst is not None and burst < 1):
        raise ConfigError(f"{name} needs a positive count, window and burst, got {raw!r}")
    return RateLimit(count, seconds, burst)


@dataclass(frozen=True)
class FileLimits:
    """The `limits` section of config/handoff.yml (defaults below when absent)."""

    max_message_chars: int = 2000
    borrower_rate: RateLimit = RateLimit(20, 60.0, 5)


def _file_limits(path: Path) -> FileLimits:
    """Read `limits` from the policy file. A missing file gives the defaults (Policy.load
    reports it); a malformed section fails loudly."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        return FileLimits()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    section = raw.get("limits") if isinstance(raw, dict) else None
    if section is None:
        return FileLimits()
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: limits must be a mapping")
    unknown = set(section) - {"max_message_chars", "borrower_burst", "borrower_per_minute"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys in limits: {sorted(unknown)}")

    def positive(key: str, default: int, high: int) -> int:
        value = section.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ConfigError(f"{path}: limits.{key} must be an integer 1..{high}")
        return value

    defaults = FileLimits()
    per_minute = positive("borrower_per_minute", defaults.borrower_rate.count, 10_000)
    burst = positive("borrower_burst", defaults.borrower_rate.burst or per_minute, 10_000)
    return FileLimits(
        max_message_chars=positive("max_message_chars", defaults.max_message_chars, 100_000),
        borrower_rate=RateLimit(per_minute, 60.0, burst),
    )


def parse_service_hours(raw: str, tz_name: str) -> ServiceHours:
    """Parse 'HH:MM-HH:MM' in a named time zone (end after start, same day)."""
    return _hours(raw, tz_name)


def _hours(raw: str, tz_name: str) -> ServiceHours:
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"HANDOFF_TIMEZONE is not a known time zone: {tz_name!r}") from None
    try:
        start_s, end_s = raw.split("-")
        start, end = time.fromisoformat(start_s.strip()), time.fromisoformat(end_s.strip())
    except ValueError:
        raise ConfigError(
            f"HANDOFF_SERVICE_HOURS must look like '09:00-21:00', got {raw!r}"
        ) from None
    if end <= start:
        raise ConfigError(f"HANDOFF_SERVICE_HOURS must end after it starts, got {raw!r}")
    return ServiceHours(start, end, tz)


def _secret(env: Mapping[str, str], var_dir: Path) -> str:
    given = env.get("HANDOFF_SECRET")
    if given is not None:
        if len(given.strip()) < MIN_SECRET_LENGTH:
            raise ConfigError(f"HANDOFF_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        return given.strip()
    path = var_dir / SECRET_FILE_NAME
    if path.exists():
        stored = path.read_text(encoding="utf-8").strip()
        if len(stored) < MIN_SECRET_LENGTH:
            raise ConfigError(f"{path} holds a secret shorter than {MIN_SECRET_LENGTH} characters")
        return stored
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: if another process created it meanwhile, use theirs so all agree.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret)
    return secret
