"""The markdown report (table, ratios, targets) and the latency plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PLOT_NAME = "benchmarks-latency.png"


def _get(rows: list[dict[str, Any]], system: str, concurrency: int) -> dict[str, Any] | None:
    for row in rows:
        if row["system"] == system and row["concurrency"] == concurrency:
            return row
    return None


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


WHOLE_SYSTEMS = ("gateway", "gateway-x2")  # borrowers → gateway → Rasa: what the targets are for


def ratios(data: dict[str, Any], system: str = "gateway") -> dict[int, float | None]:
    """Whole-system throughput ÷ vanilla throughput per level."""
    out: dict[int, float | None] = {}
    for c in data["levels"]:
        g, v = _get(data["results"], system, c), _get(data["results"], "vanilla", c)
        out[c] = (round(g["msg_per_s"] / v["msg_per_s"], 2)
                  if g and v and v["msg_per_s"] else None)
    return out


def targets(data: dict[str, Any],
            system: str = "gateway") -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target of the issue, for one whole-system set-up."""
    rows = data["results"]
    out: list[tuple[str, str, bool | None]] = []
    r50 = ratios(data, system).get(50)
    out.append(("≥ 5× vanilla throughput at 50 concurrent", _fmt(r50) + "×",
                None if r50 is None else r50 >= 5))
    for c, limit in ((50, 300.0), (200, 1000.0)):
        g = _get(rows, system, c)
        p99 = g["p99_ms"] if g else None
        out.append((f"p99 ≤ {limit:.0f} ms at {c} concurrent", f"{_fmt(p99)} ms",
                    None if p99 is None else p99 <= limit))
    # interleaved with the direct run when measured so (bench/drivers.py run_interleaved)
    g1 = _get(rows, f"{system}-interleaved", 1) or _get(rows, system, 1)
    d1 = _get(rows, f"rasa-behind-{system}", 1)
    if g1 and d1 and g1["p50_ms"] is not None and d1["p50_ms"] is not None:
        overhead = round(g1["p50_ms"] - d1["p50_ms"], 1)
        out.append(("gateway overhead ≤ 2 ms at p50 (concurrency 1)", f"{overhead} ms",
                    overhead <= 2))
    h = [r["handoff_p99_ms"] for r in rows if r["system"] == system and r["handoff_p99_ms"]]
    if h:
        out.append(("handoff trigger sent → agent notified p99 ≤ 100 ms (worst level)",
                    f"{max(h)} ms", max(h) <= 100))
    gw = [r["handoff_gw_p99_ms"] for r in rows
          if r["system"] == system and r.get("handoff_gw_p99_ms") is not None]
    if gw:
        out.append(("handoff decision (bot reply) → agent notified p99 ≤ 100 ms (worst level)",
                    f"{max(gw)} ms", max(gw) <= 100))
    idle = data["systems"].get(system, {}).get("idle_rss_mb")
    if idle:
        total = sum(idle.values())
        out.append(("whole system idle RSS ≤ 2 GB (sum of each process's RSS)",
                    f"{total:,.0f} MB", total <= 2048))
    pss = data["systems"].get(system, {}).get("idle_pss_mb")
    if pss:
        total = sum(pss.values())
        out.append(("whole system idle memory ≤ 2 GB (sum of PSS: shared pages once)",
                    f"{total:,.0f} MB", total <= 2048))
    return out


def plot(data: dict[str, Any], path: Path) -> bool:
    """p50/p99 and throughput against concurrency for both systems (matplotlib, Agg)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for system, colour in (("vanilla", "tab:red"), ("vanilla-memory", "tab:orange"),
                           ("tuned-rasa", "tab:green"), ("tuned-rasa-x2", "tab:olive"),
                           ("gateway", "tab:blue"), ("gateway-x2", "tab:purple"),
                           ("gateway-stub", "tab:gray")):
        rows = [r for r in data["results"] if r["system"] == system and r["p50_ms"] is not None]
        if not rows:
            continue
        xs = [r["concurrency"] for r in rows]
        left.plot(xs, [r["p50_ms"] for r in rows], "o-", color=colour, label=f"{system} p50")
        left.plot(xs, [r["p99_ms"] for r in rows], "s--", color=colour, label=f"{system} p99")
        right.plot(xs, [r["msg_per_s"] for r in rows], "o-", color=colour, label=system)
    left.set(xscale="log", yscale="log", xlabel="concurrent conversations",
             ylabel="turn latency (ms)", title="Turn latency")
    right.set(xscale="log", xlabel="concurrent conversations", ylabel="messages / s",
              title="Throughput")
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def table(data: dict[str, Any]) -> list[str]:
    lines = ["| system | conc. | msg/s | p50 ms | p95 ms | p99 ms | timeouts | handoffs | "
             "handoff p50 / p99 ms | reply → agent p50 / p99 ms | CPU ms per message, by process |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in data["results"]:
        total = r.get("answered_total") or 0
        cpu = ", ".join(f"{k} {1000 * v / total:.1f}" for k, v in r.get("cpu_seconds", {}).items()
                        if total)
        hand = (f"{_fmt(r['handoff_p50_ms'])} / {_fmt(r['handoff_p99_ms'])}"
                if r["handoffs"] else "–")
        gw = (f"{_fmt(r.get('handoff_gw_p50_ms'))} / {_fmt(r.get('handoff_gw_p99_ms'))}"
              if r["handoffs"] else "–")
        lines.append(
            f"| {r['system']} | {r['concurrency']} | {_fmt(r['msg_per_s'])} | "
            f"{_fmt(r['p50_ms'])} | {_fmt(r['p95_ms'])} | {_fmt(r['p99_ms'])} | "
            f"{r['timeouts']}{'+' + str(r['errors']) + ' err' if r['errors'] else ''} | "
            f"{r['handoffs'] or '–'} | {hand} | {gw} | {cpu or '–'} |")
    return lines


def measured_section(data: dict[str, Any], plot_name: str | None) -> list[str]:
    out = [f"Run {data['started']} → {data['finished']} on {data['cpus']} cores; load average "
           f"before: {', '.join(f'{x:.2f}' for x in data['loadavg_before'])}. "
           f"{data['warmup']:g} s warm-up + {data['seconds']:g} s measured per level; "
           + (f"borrowers pause {data['think']:g} s (±50 %) before each next message."
              if data.get("think") else "closed loop, no think time.")
           + (f" Python {data['pythons']['rasa']} for Rasa and the load generator, "
              f"{data['pythons']['gateway']} for the gateway." if data.get("pythons") else ""), ""]
    if data.get("note"):
        out += [data["note"], ""]
    out += [f"Command: `{data['command']}`", ""]
    out += table(data)
    present = [s for s in WHOLE_SYSTEMS if any(r["system"] == s for r in data["results"])]
    for system in present or ["gateway"]:
        out += ["", f"Throughput ratio {system} ÷ vanilla: " + ", ".join(
            f"{c}: {_fmt(r)}×" for c, r in ratios(data, system).items()), ""]
        out += [f"| target ({system}) | measured | met |", "|---|---|---|"]
        out += [f"| {t} | {m} | {'yes' if ok else ('no' if ok is False else '–')} |"
                for t, m, ok in targets(data, system)]
    out += ["", "| system | process | cold start s | idle RSS MB | idle PSS MB | "
                "RSS after load MB |", "|---|---|---:|---:|---:|---:|"]
    for system, info in data["systems"].items():
        for name, seconds in info["cold_start_s"].items():
            pss = info.get("idle_pss_mb", {}).get(name, "–")
            out.append(f"| {system} | {name} | {seconds} | {info['idle_rss_mb'].get(name)} | "
                       f"{pss} | {info['rss_after_load_mb'].get(name)} |")
    for system, why in data.get("failures", {}).items():
        out += ["", f"**{system} failed in this run:** {why}"]
    if "training_seconds" in data:
        out += ["", f"Training (`rasa train`, same machine, same run): "
                    f"{data['training_seconds']} s."]
    if plot_name:
        out += ["", f"![latency and throughput]({plot_name})"]
    return out


BEGIN = "<!-- bench:begin (generated by python -m bench; edit outside these marks) -->"
END = "<!-- bench:end -->"


def marks(section: str) -> tuple[str, str]:
    """The begin/end marks of a generated section (`bench` is the main one)."""
    if section == "bench":
        return BEGIN, END
    return (f"<!-- {section}:begin (generated by python -m bench; edit outside these marks) -->",
            f"<!-- {section}:end -->")


def write_report(data: dict[str, Any], path: Path, section: str = "bench") -> None:
    """Replace the generated section of the report, keeping the hand-written text around it."""
    begin, end = marks(section)
    plot_name = PLOT_NAME if section == "bench" else f"{section}-latency.png"
    plot_path = path.with_name(plot_name)
    generated = "\n".join([begin, *measured_section(data, plot_name if plot(data, plot_path)
                                                     else None), end])
    if path.is_file() and begin in (text := path.read_text()) and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        path.write_text(head + generated + tail)
    elif path.is_file():
        path.write_text(path.read_text().rstrip("\n") + "\n\n" + generated + "\n")
    else:
        path.write_text("# Benchmarks\n\n" + generated + "\n")
