"""bot/graph_runner.py: the sequential runner gives exactly what Rasa's dask runner gives,
node for node, for NLU parses and whole conversations of the real trained model."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("rasa")

from rasa.engine.exceptions import GraphRunError  # noqa: E402
from rasa.engine.runner.dask import DaskGraphRunner  # noqa: E402

from bench.utterances import conversations  # noqa: E402
from bot import graph_runner  # noqa: E402
from tests.unit.bot.conversation_agent import talk  # noqa: E402
from tests.unit.bot.patching import restored  # noqa: E402


@pytest.fixture()
def restore_runner() -> Iterator[None]:
    with restored(DaskGraphRunner, "run"):
        yield


def test_order_puts_every_node_after_what_it_needs() -> None:
    needs = {"a": [], "b": ["a", "__message__"], "c": ["b", "a"], "d": ["a"], "x": ["d"]}
    order = graph_runner.topological_order(needs, ["c", "d"])
    assert set(order) == {"a", "b", "c", "d"}  # x is not needed
    assert order.index("a") < order.index("b") < order.index("c")
    with pytest.raises(ValueError, match="cycle"):
        graph_runner.topological_order({"a": ["b"], "b": ["a"]}, ["a"])


def test_same_parses_and_answers_as_dask(trained_model: Path, tmp_path: Path,
                                         restore_runner: None) -> None:
    from rasa.core.agent import Agent

    turns = [c.turns for c in itertools.islice(conversations(5), 12)]
    with_dask = talk(Agent.load(str(trained_model)), turns, "runner")
    graph_runner.install()
    sequential = talk(Agent.load(str(trained_model)), turns, "runner")
    assert len(with_dask) == len(sequential) > 40
    assert sequential == with_dask


def test_an_input_named_like_a_node_is_refused(trained_model: Path,
                                               restore_runner: None) -> None:
    from rasa.core.agent import Agent

    graph_runner.install()
    agent = Agent.load(str(trained_model))
    runner = agent.processor.graph_runner  # type: ignore[union-attr]
    node = next(iter(runner._graph_schema.nodes))
    with pytest.raises(GraphRunError, match="clashes with a node name"):
        runner.run(inputs={"__message__": node})
