"""Action-server settings: defaults, environment overrides, bad values fail loudly."""

from __future__ import annotations

import pytest

from actions.settings import ROOT, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.loan_db_url == "sqlite:///var/loans.sqlite"
    assert settings.handoff_policy_file == ROOT / "config" / "handoff.yml"
    assert settings.default_method == "equal_installment"
    assert settings.preview_rows == 3


def test_overrides() -> None:
    settings = load_settings({
        "LOAN_DB_URL": "postgresql://db/loans",
        "HANDOFF_POLICY_FILE": "/etc/loanbot/handoff.yml",
        "LOANBOT_DEFAULT_METHOD": "equal_principal",
        "LOANBOT_PREVIEW_ROWS": "5",
    })
    assert settings.loan_db_url == "postgresql://db/loans"
    assert str(settings.handoff_policy_file) == "/etc/loanbot/handoff.yml"
    assert settings.default_method == "equal_principal" and settings.preview_rows == 5


@pytest.mark.parametrize(
    "env",
    [{"LOANBOT_DEFAULT_METHOD": "monthly"}, {"LOANBOT_PREVIEW_ROWS": "0"},
     {"LOANBOT_PREVIEW_ROWS": "three"}],
)
def test_bad_values_fail_at_start(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        load_settings(env)
