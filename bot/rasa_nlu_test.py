"""`rasa test nlu` over several held-out splits, with the model loaded once.

Why: `rasa test nlu` takes one data path per process, and each process spent most of its time
importing Rasa and TensorFlow and loading DIET (≈ 34 s of ≈ 46 s per split on two cores,
py-spy), so four splits cost four loads. Here one process loads the model once, as the
server loads it (`bot.tuning`, `LOANBOT_RASA_TUNING` as for `python -m bot.serve`, whose
patches each give Rasa's parses), and runs Rasa's own evaluation, `rasa.nlu.test.
run_evaluation`, on each split with the arguments `rasa test nlu` passes it by default:
errors written, successes not, plots rendered, the CLI's default domain path. So every
report file is the one `rasa test nlu --nlu SPLIT --out DIR` writes.

`python -m bot.rasa_nlu_test --model M DATA OUT [DATA OUT ...]`
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def pairs(values: Sequence[str]) -> list[tuple[Path, Path]]:
    """DATA OUT DATA OUT ... as (data, out) pairs."""
    if not values or len(values) % 2:
        raise ValueError("give the splits as DATA OUT pairs")
    return [(Path(values[i]), Path(values[i + 1])) for i in range(0, len(values), 2)]


async def evaluate_all(model: Path, splits: Sequence[tuple[Path, Path]]) -> None:
    from rasa.core.agent import Agent
    from rasa.nlu.test import run_evaluation
    from rasa.shared.constants import DEFAULT_DOMAIN_PATH

    agent = Agent.load(model_path=str(model))
    for data, out in splits:  # run_evaluation creates `out`, as for `rasa test nlu`
        await run_evaluation(
            str(data), agent.processor, output_directory=str(out),
            successes=False, errors=True, disable_plotting=False,
            domain_path=DEFAULT_DOMAIN_PATH,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("splits", nargs="+", metavar="DATA OUT")
    args = parser.parse_args(argv)
    try:
        splits = pairs(args.splits)
    except ValueError as exc:
        parser.error(str(exc))
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    from bot import tuning

    tuning.apply(tuning.selected())
    asyncio.run(evaluate_all(Path(args.model), splits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
