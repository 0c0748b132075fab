"""The split arguments of bot/rasa_nlu_test.py (the evaluation itself runs in
tests/evaluation/test_nlu_floors.py, whose reports it writes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.rasa_nlu_test import main, pairs


def test_pairs_of_data_and_report_directory_in_order() -> None:
    assert pairs(["a", "out/a", "b", "out/b"]) == [
        (Path("a"), Path("out/a")), (Path("b"), Path("out/b"))]


@pytest.mark.parametrize("values", [[], ["a"], ["a", "out/a", "b"]])
def test_a_split_without_its_report_directory_is_refused(values: list[str]) -> None:
    with pytest.raises(ValueError, match="DATA OUT pairs"):
        pairs(values)


def test_the_command_line_refuses_an_odd_list_before_loading_anything(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", "m.tar.gz", "tests/nlu"])
    assert exit_info.value.code == 2
    assert "DATA OUT pairs" in capsys.readouterr().err
