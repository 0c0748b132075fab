"""Train a candidate, compare it with the running model, and switch Rasa to it without downtime.

The switch uses Rasa's own model endpoint (`PUT /model`). What that does and does not promise
(read from rasa/server.py, 3.6):
- the new agent gets the same endpoints, so the same tracker store (conversations, slots and
  paused state survive) and the old lock store (per-conversation ordering survives);
- a turn already being processed finishes on the old agent, whose tracker store writes to the
  same database;
- loading happens inside Rasa's event loop, so Rasa answers nothing for the load time (about
  5–7 s for our model on two cores, rasa#3910). Requests wait, they are not refused: the gateway's
  Rasa time-out (HANDOFF_RASA_TIMEOUT, 10 s) must stay above the pause, and this command
  refuses to switch when its own measured load time of the candidate comes close to it;
- the old model's memory is not all returned (rasa#11284): see docs/trainers.md for the
  measured growth and when to restart Rasa instead.
The gateway holds the sessions, not Rasa, so borrowers see at most a slower reply.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bot.trainer.rasa_api import RasaApi, RasaApiError
from bot.training import ROOT, ModelPaths

RELEASES_DIR = ROOT / "models" / "releases"


class DeployError(Exception):
    """The switch did not happen, or Rasa does not run the model it was told to load."""


@dataclass(frozen=True)
class SwitchResult:
    release: Path
    model_id: str
    before: dict[str, object]
    after: dict[str, object]
    seconds: float


def model_id(model: Path) -> str:
    """The training run's id stored in the archive's metadata.json (Rasa reports it in /status)."""
    with tarfile.open(model, "r:gz") as archive:
        for member in archive.getmembers():
            if member.name.lstrip("/") == "metadata.json":
                handle = archive.extractfile(member)
                if handle is not None:
                    return str(json.load(handle)["model_id"])
    raise DeployError(f"{model} has no metadata.json: not a Rasa 3 model")


def stage_release(candidate: Path, releases_dir: Path | None = None,
                  now: datetime | None = None) -> Path:
    """Copy the candidate to an immutable, uniquely named file Rasa can load (and roll back to)."""
    releases_dir = releases_dir or RELEASES_DIR
    releases_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    release = releases_dir / f"loanbot-{stamp}-{model_id(candidate)[:8]}.tar.gz"
    if not release.exists():
        tmp = release.with_suffix(".partial")
        shutil.copyfile(candidate, tmp)
        os.replace(tmp, release)
    return release


def switch(api: RasaApi, release: Path) -> SwitchResult:
    """PUT /model, then prove with GET /status that Rasa runs exactly this file."""
    expected_id = model_id(release)
    before = api.status()
    started = time.monotonic()
    api.replace_model(str(release.resolve()))
    seconds = time.monotonic() - started
    after = api.status()
    if after.get("model_file") != release.name or after.get("model_id") != expected_id:
        raise DeployError(f"Rasa reports {after} after loading {release.name} ({expected_id})")
    return SwitchResult(release, expected_id, before, after, seconds)


def switch_all(apis: Sequence[RasaApi], release: Path,
               on_switched: Callable[[RasaApi, SwitchResult], None] | None = None,
               ) -> list[SwitchResult]:
    """Switch every Rasa instance, one after another: while one loads, the others keep
    answering their own conversations. Stops at the first failure, naming the instances
    already switched (they keep the new model; `switch-model` rolls them back)."""
    done: list[SwitchResult] = []
    for api in apis:
        try:
            result = switch(api, release)
        except (DeployError, RasaApiError) as exc:
            switched = ", ".join(a.base_url for a in apis[:len(done)]) or "none"
            raise DeployError(f"{api.base_url}: {exc} (already switched: {switched})") from exc
        done.append(result)
        if on_switched is not None:
            on_switched(api, result)
    return done


def promote_on_disk(release: Path, fingerprint: Path | None,
                    paths: ModelPaths | None = None) -> None:
    """Make the release the model `make run` starts with (atomic replace) and keep the
    training fingerprint so `loanbot model-status` stays truthful."""
    paths = paths or ModelPaths(ROOT / "models")
    paths.models_dir.mkdir(parents=True, exist_ok=True)
    tmp = paths.model.with_suffix(".partial")
    shutil.copyfile(release, tmp)
    os.replace(tmp, paths.model)
    if fingerprint is not None and fingerprint.is_file():
        shutil.copyfile(fingerprint, paths.fingerprint)


def measure_load_seconds(model: Path) -> float:
    """How long loading `model` takes here: a stand-in for Rasa's pause during PUT /model."""
    from rasa.core.agent import Agent

    started = time.monotonic()
    Agent.load(str(model))
    return time.monotonic() - started


def check_pause(load_seconds: float, gateway_timeout: float, margin: float = 0.5) -> None:
    """Refuse a switch whose pause would come close to the gateway's Rasa time-out.

    `load_seconds` is measured in our own process; Rasa's pause on the same machine was up to
    twice as long (docs/trainers.md), hence the default margin of one half.
    """
    if load_seconds > margin * gateway_timeout:
        raise DeployError(
            f"loading the model takes {load_seconds:.1f}s, more than {margin:.0%} of the "
            f"gateway's Rasa time-out ({gateway_timeout:.0f}s): borrowers could be handed off "
            "during the switch. Raise HANDOFF_RASA_TIMEOUT or restart Rasa in a quiet hour.")


__all__ = ["DeployError", "RasaApiError", "SwitchResult", "check_pause", "measure_load_seconds",
           "model_id", "promote_on_disk", "stage_release", "switch"]
