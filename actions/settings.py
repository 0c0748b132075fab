"""Action-server settings in one place, each overridable by an environment variable.

Deployments change where the loan data and the handoff policy live without touching code;
tests point the same variables at temporary files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_LOAN_DB_URL = "sqlite:///var/loans.sqlite"
DEFAULT_POLICY_FILE = "config/handoff.yml"
POLICY_FILE_ENV = "HANDOFF_POLICY_FILE"
DEFAULT_METHOD = "equal_installment"


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one action-server process."""

    loan_db_url: str
    handoff_policy_file: Path
    # method used when the borrower names none (the reply always says it was assumed)
    default_method: str
    # schedule rows shown in the text reply before the last row; the full table goes as JSON
    preview_rows: int
    # seconds products and the LPR fixing are reused before being read again (0: every time)
    reference_ttl: float = 60.0


def _path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else ROOT / path


def policy_file_setting(env: Mapping[str, str] | None = None) -> str:
    """The handoff policy file as configured (relative paths are from the project root)."""
    return (os.environ if env is None else env).get(POLICY_FILE_ENV, DEFAULT_POLICY_FILE)


def policy_file(setting: str) -> Path:
    """Where a configured policy file is."""
    return _path(setting)


def _positive_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {value!r}") from exc
    if number < 1:
        raise ValueError(f"{name} must be >= 1, got {number}")
    return number


def _seconds(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from exc
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
    return number


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment (or the mapping given), falling back to defaults."""
    env = os.environ if env is None else env
    method = env.get("LOANBOT_DEFAULT_METHOD", DEFAULT_METHOD)
    if method not in {"equal_installment", "equal_principal", "interest_only", "bullet"}:
        raise ValueError(f"LOANBOT_DEFAULT_METHOD is not a repayment method code: {method!r}")
    return Settings(
        loan_db_url=env.get("LOAN_DB_URL", DEFAULT_LOAN_DB_URL),
        handoff_policy_file=policy_file(policy_file_setting(env)),
        default_method=method,
        preview_rows=_positive_int("LOANBOT_PREVIEW_ROWS", env.get("LOANBOT_PREVIEW_ROWS", "3")),
        reference_ttl=_seconds("LOANBOT_REFERENCE_TTL", env.get("LOANBOT_REFERENCE_TTL", "60")),
    )
