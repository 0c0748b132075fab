"""The model fingerprint decides when `make test`/`make run` retrain: it must see every change."""

from __future__ import annotations

from pathlib import Path

from bot.training import ModelPaths, is_stale, training_fingerprint


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
