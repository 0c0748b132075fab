"""No secret is committed: credentials come from the environment (or are generated into the
git-ignored var/ directory). Scans every tracked file outside tests/ and vendored code for
what leaked secrets look like."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SKIP = ("tests/", "handoff/static/vendor/", "models/")
PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "AWS key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "GitHub token": re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"),
    "DB URL with password": re.compile(r"(?:postgres(?:ql)?|mysql|redis)[+a-z0-9]*://[^/\s:@]+:"
                                       r"[^/\s@{}$<]+@"),
    "secret assignment": re.compile(
        r"(?i)\b(?:HANDOFF_[A-Z_]*(?:SECRET|TOKEN)|password|passwd|api_key|secret_key)"
        r"\s*[:=]\s*[\"']?[A-Za-z0-9_\-+/=]{16,}"),
}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    names = [n for n in out.decode().split("\0") if n and not n.startswith(SKIP)]
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def test_no_secrets_in_tracked_files() -> None:
    found = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for kind, pattern in PATTERNS.items():
            for match in pattern.finditer(text):
                found.append(f"{path.relative_to(ROOT)}: {kind}: {match.group(0)[:40]}")
    assert found == []


def test_the_scanner_recognises_what_it_looks_for() -> None:
    samples = {
        "private key": "-----BEGIN RSA PRIVATE KEY-----",
        "JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.abcdefghijklmnopqrstu",
        "DB URL with password": "postgresql://loan:hunter2hunter2@db:5432/x",
        "secret assignment": "HANDOFF_SECRET=Zm9vYmFyYmF6cXV4cXV1eA",
    }
    for kind, sample in samples.items():
        assert PATTERNS[kind].search(sample), kind
    assert not PATTERNS["DB URL with password"].search("postgresql://postgres@127.0.0.1/x")
    assert not PATTERNS["secret assignment"].search("HANDOFF_SECRET=$(cat var/secret)")
