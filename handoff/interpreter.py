"""Which Python runs the gateway: one rule for `make run`, the tests and the benchmark.

The gateway has its own interpreter, `.venv-gateway` (Python 3.11, requirements-gateway.txt),
because Rasa holds `.venv` at Python 3.10 and 3.11 runs the gateway's framework code with
less CPU per message (docs/benchmarks.md, session 17). `LOANBOT_GATEWAY_PYTHON` names another
(an A/B, a deployment's own); without `.venv-gateway` (no Python 3.11 on the machine) the
gateway runs on `.venv`'s Python, which its unit tests use too.

`python -m handoff.interpreter` prints the path, for scripts/run.sh.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

ENV_OVERRIDE = "LOANBOT_GATEWAY_PYTHON"
ROOT = Path(__file__).resolve().parent.parent
OWN_PYTHON = Path(".venv-gateway", "bin", "python")  # relative to the checkout


def gateway_python(environ: Mapping[str, str] | None = None, root: Path = ROOT,
                   fallback: str | None = None) -> str:
    """The override if set, else the gateway's own venv if it is there, else `fallback`."""
    env = os.environ if environ is None else environ
    override = env.get(ENV_OVERRIDE, "").strip()
    if override:
        return override
    own = root / OWN_PYTHON
    if own.is_file() and os.access(own, os.X_OK):
        return str(own)
    return fallback or sys.executable


if __name__ == "__main__":
    print(gateway_python())
