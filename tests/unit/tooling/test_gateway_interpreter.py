"""The gateway's own interpreter: which Python runs it, and that its pins agree with pyproject's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from handoff.interpreter import ENV_OVERRIDE, OWN_PYTHON, gateway_python

ROOT = Path(__file__).resolve().parents[3]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)$")


def _name(package: str) -> str:
    return re.sub(r"[-_.]+", "-", package).lower()


def gateway_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements-gateway.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"requirements-gateway.txt: not an exact pin: {line!r}"
        pins[_name(match.group(1))] = match.group(2)
    return pins


def project_pins() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return {_name(name): version
            for name, version in re.findall(r'^\s*"([A-Za-z0-9_.\-]+)==([^"\s;]+)"', text, re.M)}


def fake_python(root: Path) -> Path:
    python = root / OWN_PYTHON
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    return python


def test_the_override_wins(tmp_path: Path) -> None:
    fake_python(tmp_path)
    assert gateway_python({ENV_OVERRIDE: "/opt/py/bin/python3"}, tmp_path) == "/opt/py/bin/python3"


def test_the_gateway_venv_when_it_is_there(tmp_path: Path) -> None:
    python = fake_python(tmp_path)
    assert gateway_python({}, tmp_path, fallback="/x/python") == str(python)
    assert gateway_python({ENV_OVERRIDE: "  "}, tmp_path, fallback="/x/python") == str(python)


def test_the_fallback_without_it(tmp_path: Path) -> None:
    assert gateway_python({}, tmp_path, fallback="/x/python") == "/x/python"
    assert gateway_python({}, tmp_path) == sys.executable
    python = fake_python(tmp_path)
    python.chmod(0o644)  # not runnable: not used
    assert gateway_python({}, tmp_path, fallback="/x/python") == "/x/python"


def test_every_gateway_pin_shared_with_pyproject_is_the_same_version() -> None:
    gateway, project = gateway_pins(), project_pins()
    assert {"python-socketio", "python-engineio", "uvicorn", "wsproto", "sqlalchemy"} <= (
        gateway.keys() & project.keys())
    differing = {name: (gateway[name], project[name])
                 for name in gateway.keys() & project.keys() if gateway[name] != project[name]}
    assert differing == {}


def test_the_gateway_venv_holds_exactly_its_pins() -> None:
    python = ROOT / OWN_PYTHON
    if not python.is_file():
        pytest.skip("no .venv-gateway: setup found no Python 3.11, the gateway runs on .venv")
    frozen = subprocess.run([str(python), "-m", "pip", "freeze", "--all", "--exclude", "pip",
                             "--exclude", "setuptools", "--exclude", "wheel"],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}).stdout
    installed = {}
    for line in frozen.splitlines():
        match = PIN.match(line.strip())
        assert match, f"not from a pin: {line!r}"
        installed[_name(match.group(1))] = match.group(2)
    assert installed == gateway_pins()
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == "(3, 11)"
