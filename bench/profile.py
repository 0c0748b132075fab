"""Sampling profiles of the running services during one load level (py-spy, by pid).

`python -m bench --profile-level 50 --profile-dir reports/profile` records each service's
stacks (collapsed format) while that level runs, then summarises where the samples went:
inclusive share per function, so "NLU", "policies", "tracker store", "action HTTP hop",
"socket.io" and "SQLite" can be read off directly.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "py-spy"
    return str(beside) if beside.exists() else None


def start(pids: dict[str, int], seconds: float, out_dir: Path) -> list[subprocess.Popen[bytes]]:
    """One `py-spy record` per service, each bounded by --duration."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy==0.4.1)")
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for name, pid in pids.items():
        slug = name.replace(" ", "_")
        procs.append(subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100",
             "--format", "raw", "--output", str(out_dir / f"{slug}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
    return procs


def summarise(path: Path, top: int = 25) -> list[tuple[str, float]]:
    """Inclusive share of samples per frame (function + file), from collapsed stacks.

    Idle samples (event loop waiting in select/epoll) are counted so the shares add up to
    wall time of the main thread; a frame appears once per stack even when recursive.
    """
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        seen = set()
        for frame in stack.split(";"):
            name = _short(frame)
            if name not in seen:
                seen.add(name)
                inclusive[name] += n
    if not total:
        return []
    return [(name, round(100 * n / total, 1)) for name, n in inclusive.most_common(top)]


def _short(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    func, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    parts = Path(file).parts
    for anchor in ("site-packages", "lib"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1:]
            break
    return f"{func} ({'/'.join(parts[-3:])})"


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.profile FILE...`: print the inclusive breakdown of each profile."""
    import sys

    for name in argv if argv is not None else sys.argv[1:]:
        print(f"== {name}")
        for frame, share in summarise(Path(name)):
            print(f"{share:6.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
