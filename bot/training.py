"""Decide whether the trained model is stale and (re)train it.

Rasa has its own fingerprinting, but checking it means importing Rasa and loading the last model
(tens of seconds). A content hash of every training input, stored beside the model, answers
"is the model current?" in milliseconds, so `make test` and `make run` can call it every time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "loanbot"

# Everything whose change changes the trained model.
TRAINING_INPUTS: tuple[str, ...] = (
    "config.yml",
    "bot/domain",
    "data",
    "bot/components",
    "bot/text.py",
    "pyproject.toml",
)


@dataclass(frozen=True)
class ModelPaths:
    """Where the current model and its fingerprint live."""

    models_dir: Path

    @property
    def model(self) -> Path:
        return self.models_dir / f"{MODEL_NAME}.tar.gz"

    @property
    def fingerprint(self) -> Path:
        return self.models_dir / f"{MODEL_NAME}.fingerprint"

    @property
    def lock(self) -> Path:
        return self.models_dir / ".training.lock"


def _input_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for name in TRAINING_INPUTS:
        path = root / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            )
    return sorted(files)


def training_fingerprint(root: Path = ROOT) -> str:
    """A hash over the paths and contents of every training input."""
    digest = hashlib.sha256()
    for path in _input_files(root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def is_stale(paths: ModelPaths, root: Path = ROOT) -> bool:
    if not paths.model.is_file() or not paths.fingerprint.is_file():
        return True
    return paths.fingerprint.read_text().strip() != training_fingerprint(root)


def train(paths: ModelPaths, root: Path = ROOT) -> Path:
    """Train with Rasa's CLI (its own progress bars) and record the fingerprint."""
    fingerprint = training_fingerprint(root)
    paths.models_dir.mkdir(parents=True, exist_ok=True)
    rasa = Path(sys.executable).with_name("rasa")
    command = [
        str(rasa), "train",
        "--config", str(root / "config.yml"),
        "--domain", str(root / "bot/domain"),
        "--data", str(root / "data"),
        "--out", str(paths.models_dir),
        "--fixed-model-name", MODEL_NAME,
    ]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    subprocess.run(command, cwd=root, env=env, check=True)
    paths.fingerprint.write_text(fingerprint + "\n")
    return paths.model


@contextlib.contextmanager
def training_lock(paths: ModelPaths) -> Iterator[None]:
    """One training of a models directory at a time, across processes.

    Why: the test suite trains in the background while its other tests run
    (tests/background_training.py), and `make run` may be started meanwhile; whoever comes
    second waits here and then finds the model current instead of training it again over the
    first one's files."""
    paths.models_dir.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def ensure_model(paths: ModelPaths | None = None, root: Path = ROOT) -> Path:
    """Return the current model, training first if any input changed."""
    paths = paths or ModelPaths(root / "models")
    if is_stale(paths, root):
        with training_lock(paths):
            if is_stale(paths, root):
                print(f"==> training {paths.model.name}: inputs changed or no model yet",
                      flush=True)
                return train(paths, root)
    print(f"==> model is current: {paths.model}", flush=True)
    return paths.model
