"""Several Rasa instances behind the gateway (HANDOFF_RASA_URLS): a deploy switches each in
turn, and a failure names the instances already switched."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from bot.trainer import cli
from bot.trainer.deploy import DeployError, switch_all
from bot.trainer.rasa_api import RasaApiError
from tests.unit.trainer.test_deploy_helpers import fake_archive


class FakeApi:
    """What deploy.switch uses of RasaApi: GET /status and PUT /model."""

    def __init__(self, base_url: str, broken: bool = False) -> None:
        self.base_url = base_url
        self.broken = broken
        self.loaded: str | None = None
        self.model_id = "old"

    def status(self) -> dict[str, Any]:
        return {"model_file": Path(self.loaded).name if self.loaded else "old.tar.gz",
                "model_id": self.model_id}

    def replace_model(self, model_file: str, timeout: float = 300.0) -> None:
        if self.broken:
            raise RasaApiError("PUT /model: 500")
        self.loaded, self.model_id = model_file, "new-id"


def test_every_instance_is_switched_in_order(tmp_path: Path) -> None:
    release = fake_archive(tmp_path / "loanbot-r.tar.gz", "new-id")
    apis = [FakeApi("http://rasa-1:5005"), FakeApi("http://rasa-2:5005")]
    seen: list[str] = []
    results = switch_all(apis, release, lambda api, _: seen.append(api.base_url))  # type: ignore[arg-type]
    assert seen == ["http://rasa-1:5005", "http://rasa-2:5005"]
    assert [r.after["model_file"] for r in results] == ["loanbot-r.tar.gz"] * 2


def test_a_failure_stops_and_names_what_was_already_switched(tmp_path: Path) -> None:
    release = fake_archive(tmp_path / "loanbot-r.tar.gz", "new-id")
    apis = [FakeApi("http://rasa-1:5005"), FakeApi("http://rasa-2:5005", broken=True),
            FakeApi("http://rasa-3:5005")]
    with pytest.raises(DeployError) as info:
        switch_all(apis, release)  # type: ignore[arg-type]
    assert "http://rasa-2:5005" in str(info.value)
    assert "already switched: http://rasa-1:5005)" in str(info.value)
    assert apis[2].loaded is None


def test_the_instances_come_from_the_gateway_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_RASA_URLS", "http://127.0.0.1:5005,http://127.0.0.1:5006")
    monkeypatch.setenv("HANDOFF_RASA_TOKEN", "t")
    args = argparse.Namespace(rasa_url=None, rasa_token=None)
    assert [a.base_url for a in cli._rasa_apis(args)] == ["http://127.0.0.1:5005",
                                                          "http://127.0.0.1:5006"]
    one = argparse.Namespace(rasa_url="http://127.0.0.1:7000", rasa_token="x")
    assert [a.base_url for a in cli._rasa_apis(one)] == ["http://127.0.0.1:7000"]
