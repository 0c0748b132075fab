"""Run Rasa's prediction graph in plain topological order instead of through dask.

Rasa 3.6 runs every message's NLU graph (and every policy prediction) with
`DaskGraphRunner.run`: it rebuilds the minimal schema and a dask graph, then dask's local
scheduler orders and executes it, one node at a time in one thread. The nodes are the same
`GraphNode` objects either way; the scheduling cost (≈ 8 % of a tuned Rasa's CPU per turn,
docs/benchmarks.md) buys nothing for a graph that runs sequentially anyway.

`run` below keeps DaskGraphRunner's contract exactly: the same nodes called with the same
inputs (each parent's `(name, output)` pair, in the order the schema lists its needs; a need
that is neither a node nor an input is passed as its bare name, as dask does), the same
`{target: output}` result, the same `GraphRunError` for an input named like a node. The order
of a target list is computed once.
"""

from __future__ import annotations

from typing import Any

_ORDERS_ATTR = "_loanbot_orders"


def topological_order(needs: dict[str, list[str]], targets: list[str]) -> list[str]:
    """Nodes the targets depend on (themselves included), each after everything it needs."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str) -> None:
        if state.get(name) == 2 or name not in needs:
            return
        if state.get(name) == 1:
            raise ValueError(f"the graph has a cycle through {name!r}")
        state[name] = 1
        for parent in needs[name]:
            visit(parent)
        state[name] = 2
        order.append(name)

    for target in targets:
        visit(target)
    return order


def install() -> None:
    """Replace DaskGraphRunner.run in this process."""
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner

    def run(self: Any, inputs: dict[str, Any] | None = None,
            targets: list[str] | None = None) -> dict[str, Any]:
        run_targets = list(targets if targets else self._graph_schema.target_names)
        nodes = self._graph_schema.nodes
        orders: dict[tuple[str, ...], list[tuple[str, list[str]]]] = self.__dict__.setdefault(
            _ORDERS_ATTR, {})
        key = tuple(run_targets)
        plan = orders.get(key)
        if plan is None:
            needs = {name: list(node.needs.values()) for name, node in nodes.items()}
            plan = [(name, needs[name]) for name in topological_order(needs, run_targets)]
            orders[key] = plan
        results: dict[str, Any] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and value in nodes:
                raise GraphRunError(
                    f"Input value '{value}' clashes with a node name. Make sure "
                    f"that none of the input names passed to the `run` method are the "
                    f"same as node names in the graph schema."
                )
            results[name] = (name, value)
        try:
            for name, parents in plan:
                results[name] = self._instantiated_nodes[name](
                    *(results.get(parent, parent) for parent in parents))
        except RuntimeError as exc:
            raise GraphRunError("Error running runner.") from exc
        return dict(results[target] for target in run_targets)

    DaskGraphRunner.run = run
