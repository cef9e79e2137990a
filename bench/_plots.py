"""
The PNG plots of C{scale.py}, drawn with matplotlib (the C{bench} extra:
C{pip install -e '.[bench]'}).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["closeTimes", "cpuAndMemory", "latency"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def closeTimes(
    path: Path, seconds: Sequence[float], idle: float, bound: float, title: str
) -> None:
    """
    A histogram of the silent connections' close times, with the promised
    window C{[idle, bound]} marked.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4), dpi=110)
    low = min([*seconds, idle]) - 0.05
    high = max([*seconds, bound]) + 0.05
    axes.hist(seconds, bins=60, range=(low, high), color="#3b75af")
    axes.axvspan(idle, bound, color="#59a14f", alpha=0.15, label="promised window")
    axes.axvline(idle, color="#59a14f")
    axes.axvline(bound, color="#59a14f")
    axes.set_xlabel("close time at the client: FIN - last byte sent (s)")
    axes.set_ylabel("silent connections")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def latency(
    path: Path,
    counts: Sequence[int],
    series: Mapping[str, Sequence[tuple[float, float]]],
) -> None:
    """
    Ping round-trip latency (p50 and p99) against the number of
    connections, one line pair per server.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4), dpi=110)
    for (name, points), color in zip(
        series.items(), ("#3b75af", "#e15759"), strict=False
    ):
        axes.plot(
            counts, [p[0] for p in points], "o-", color=color, label=f"{name} p50"
        )
        axes.plot(
            counts, [p[1] for p in points], "s--", color=color, label=f"{name} p99"
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("connections (10% silent, the rest ping every 30 s)")
    axes.set_ylabel("ping round trip (ms)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def cpuAndMemory(
    path: Path,
    counts: Sequence[int],
    cpu: Mapping[str, Sequence[float]],
    rss: Mapping[str, Sequence[float]],
) -> None:
    """
    Server CPU (% of a core) and resident memory per connection against
    the number of connections, one line per server.
    """
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8), dpi=110)
    colors = ("#3b75af", "#e15759")
    for (name, values), color in zip(cpu.items(), colors, strict=False):
        left.plot(counts, values, "o-", color=color, label=name)
    for (name, values), color in zip(rss.items(), colors, strict=False):
        right.plot(counts, [v / 1024 for v in values], "o-", color=color, label=name)
    left.set_ylabel("server CPU (% of one core)")
    right.set_ylabel("server RSS per connection (KiB)")
    for axes in (left, right):
        axes.set_xscale("log")
        axes.set_xlabel("connections")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
    right.set_ylim(bottom=0)
    left.set_ylim(bottom=0)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
