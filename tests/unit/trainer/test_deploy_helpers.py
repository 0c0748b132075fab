"""The file side of a deploy: model ids read from the archive, immutable release copies,
the on-disk promotion, and the refusal when the switch pause would reach the gateway time-out."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.trainer.deploy import DeployError, check_pause, model_id, promote_on_disk, stage_release
from bot.training import ModelPaths


def fake_archive(path: Path, ident: str) -> Path:
    """A tar.gz laid out like a Rasa 3 model (metadata.json at the root)."""
    data = json.dumps({"model_id": ident}).encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("/metadata.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def test_release_is_named_by_time_and_model_id(tmp_path: Path) -> None:
    candidate = fake_archive(tmp_path / "c.tar.gz", "abcdef1234567890")
    assert model_id(candidate) == "abcdef1234567890"
    when = datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)
    release = stage_release(candidate, tmp_path / "releases", when)
    assert release.name == "loanbot-20261123T140000Z-abcdef12.tar.gz"
    assert release.read_bytes() == candidate.read_bytes()


def test_promote_replaces_model_and_fingerprint(tmp_path: Path) -> None:
    paths = ModelPaths(tmp_path / "models")
    release = fake_archive(tmp_path / "r.tar.gz", "new")
    fingerprint = tmp_path / "c.fingerprint"
    fingerprint.write_text("abc\n")
    promote_on_disk(release, fingerprint, paths)
    assert model_id(paths.model) == "new"
    assert paths.fingerprint.read_text() == "abc\n"


def test_not_a_model(tmp_path: Path) -> None:
    bogus = tmp_path / "x.tar.gz"
    with tarfile.open(bogus, "w:gz"):
        pass
    with pytest.raises(DeployError, match="not a Rasa 3 model"):
        model_id(bogus)


def test_pause_check() -> None:
    check_pause(4.9, 10.0)
    with pytest.raises(DeployError, match="HANDOFF_RASA_TIMEOUT"):
        check_pause(5.1, 10.0)
