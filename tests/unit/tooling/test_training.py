"""The model fingerprint decides when `make test`/`make run` retrain: it must see every change."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from bot import training
from bot.training import ModelPaths, is_stale, training_fingerprint
from tests.background_training import NICENESS, BackgroundTraining, TrainingFailed


def _tree(root: Path) -> None:
    (root / "data" / "nlu").mkdir(parents=True)
    (root / "bot" / "domain").mkdir(parents=True)
    (root / "config.yml").write_text("pipeline: []\n")
    (root / "data" / "nlu" / "a.yml").write_text("nlu: []\n")
    (root / "bot" / "domain" / "d.yml").write_text("intents: []\n")


def test_fingerprint_changes_with_content_and_names(tmp_path: Path) -> None:
    _tree(tmp_path)
    first = training_fingerprint(tmp_path)
    assert training_fingerprint(tmp_path) == first
    (tmp_path / "data" / "nlu" / "a.yml").write_text("nlu: [x]\n")
    second = training_fingerprint(tmp_path)
    assert second != first
    (tmp_path / "data" / "nlu" / "a.yml").rename(tmp_path / "data" / "nlu" / "b.yml")
    assert training_fingerprint(tmp_path) != second


def test_fingerprint_ignores_bytecode_caches(tmp_path: Path) -> None:
    _tree(tmp_path)
    before = training_fingerprint(tmp_path)
    cache = tmp_path / "bot" / "components" / "__pycache__"
    cache.mkdir(parents=True)
    (cache / "x.pyc").write_bytes(b"\0\1")
    assert training_fingerprint(tmp_path) == before


def test_stale_until_model_and_matching_fingerprint_exist(tmp_path: Path) -> None:
    _tree(tmp_path)
    paths = ModelPaths(tmp_path / "models")
    assert is_stale(paths, tmp_path)
    paths.models_dir.mkdir()
    paths.model.write_bytes(b"model")
    assert is_stale(paths, tmp_path)
    paths.fingerprint.write_text(training_fingerprint(tmp_path) + "\n")
    assert not is_stale(paths, tmp_path)
    (tmp_path / "config.yml").write_text("pipeline: [changed]\n")
    assert is_stale(paths, tmp_path)


def test_concurrent_callers_train_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make run` beside the suite's background training: the second caller waits for the
    first one's training and then finds the model current."""
    _tree(tmp_path)
    paths = ModelPaths(tmp_path / "models")
    trainings: list[int] = []
    inside = threading.Event()

    def slow_train(paths: ModelPaths, root: Path) -> Path:
        trainings.append(1)
        inside.set()
        time.sleep(0.5)
        paths.models_dir.mkdir(parents=True, exist_ok=True)
        paths.model.write_bytes(b"model")
        paths.fingerprint.write_text(training_fingerprint(root) + "\n")
        return paths.model

    monkeypatch.setattr(training, "train", slow_train)
    first = threading.Thread(target=training.ensure_model, args=(paths, tmp_path))
    first.start()
    assert inside.wait(5)
    assert training.ensure_model(paths, tmp_path) == paths.model  # waited on the lock
    first.join(5)
    assert trainings == [1]
    assert not is_stale(paths, tmp_path)


def _background(tmp_path: Path, code: str) -> BackgroundTraining:
    return BackgroundTraining(ModelPaths(tmp_path / "models"), tmp_path / "logs" / "t.log",
                              root=tmp_path, command=[sys.executable, "-c", code])


def test_background_training_reports_success_and_runs_at_a_lower_priority(
        tmp_path: Path) -> None:
    job = _background(tmp_path, "import os, time; print(os.nice(0)); time.sleep(0.3)")
    assert job.running
    said: list[str] = []
    job.wait(said.append)
    assert not job.running
    assert said[0].startswith("==> waiting for the model's training")
    assert said[1].startswith("==> model trained in the background")
    assert int(job.log.read_text()) == os.nice(0) + NICENESS
    job.wait(said.append)  # again: nothing more to say, no error
    assert len(said) == 2


def test_a_failed_background_training_raises_with_the_end_of_its_log(tmp_path: Path) -> None:
    job = _background(tmp_path, "import sys; print('x' * 5000); "
                                "sys.exit('DIETClassifier: out of memory')")
    with pytest.raises(TrainingFailed, match="exit 1") as failed:
        job.wait(lambda _: None)
    assert "DIETClassifier: out of memory" in str(failed.value)
    assert len(str(failed.value)) < 4300  # the tail, not the whole log
    with pytest.raises(TrainingFailed):
        job.raise_if_failed()


def test_stop_ends_a_training_still_running(tmp_path: Path) -> None:
    job = _background(tmp_path, "import time; time.sleep(60)")
    job.stop()
    assert not job.running
