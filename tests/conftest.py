"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The current model, trained first if any training input changed since the last build."""
    from bot.training import ModelPaths, ensure_model

    return ensure_model(ModelPaths(ROOT / "models"))
