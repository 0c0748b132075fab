"""The model trained in a child process while the tests that do not need it run.

Why: on a clean clone `make test` must train before any test that needs the model, and
training takes minutes on two cores using about 1.2 of them, while most of the suite (unit,
gateway, browser tests) never touches the model. tests/conftest.py runs those first and
starts this training at collection; the first test that needs the model waits for it outside
its own timeout. Training runs at a lower CPU priority so the tests beside it keep their pace.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.training import ROOT, ModelPaths, is_stale

NICENESS = 10   # the tests beside the training keep ≈ 90 % of a core they compete for
LOG_TAIL = 4000  # characters of the training's log shown when it failed


class TrainingFailed(RuntimeError):
    """The background training exited with an error; its log's tail says why."""


class BackgroundTraining:
    """`python -m bot.cli ensure-model` in a child process (bot.training's lock keeps any
    other training of the same directory out), its output in `log`."""

    def __init__(self, paths: ModelPaths, log: Path, root: Path = ROOT,
                 command: Sequence[str] | None = None) -> None:
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.finished: float | None = None
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                list(command or [sys.executable, "-m", "bot.cli", "ensure-model",
                                 "--models-dir", str(paths.models_dir)]),
                cwd=root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
                preexec_fn=lambda: os.nice(NICENESS),
            )

    @classmethod
    def start_if_stale(cls, paths: ModelPaths, log: Path,
                       root: Path = ROOT) -> BackgroundTraining | None:
        return cls(paths, log, root) if is_stale(paths, root) else None

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, say: Callable[[str], None] = print) -> None:
        """Block until the training ends; raise TrainingFailed if it did not succeed."""
        if self.finished is None:
            if self.running:
                say(f"==> waiting for the model's training (log: {self.log})")
            code = self.process.wait()
            self.finished = time.monotonic()
            if code == 0:
                say(f"==> model trained in the background in "
                    f"{self.finished - self.started:.0f} s")
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        code = self.process.poll()
        if code not in (None, 0):
            tail = self.log.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:]
            raise TrainingFailed(f"training the model failed (exit {code}); "
                                 f"the end of {self.log}:\n{tail}")

    def stop(self) -> None:
        """End a training still running (the run was cut short); its lock goes with it."""
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
