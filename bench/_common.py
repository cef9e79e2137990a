"""
Helpers shared by the benchmark scripts: statistics over repeated rounds,
argument checks, and a description of the machine the figures come from.

The scripts import this module by name: running C{python bench/NAME.py}
puts C{bench/} first on C{sys.path}.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
from collections.abc import Sequence

__all__ = [
    "Summary",
    "machineLines",
    "meanInterval",
    "positiveFloat",
    "positiveInt",
    "summarize",
    "table",
]


def positiveInt(text: str) -> int:
    """
    An C{argparse} type: a whole number C{> 0}.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def positiveFloat(text: str) -> float:
    """
    An C{argparse} type: a finite number C{> 0}.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0 and finite: {text!r}")
    return value


class Summary:
    """
    The median and the spread (lowest, highest) of repeated measurements.
    """

    __slots__ = ("count", "high", "low", "median")

    def __init__(self, values: Sequence[float]) -> None:
        if not values:
            raise ValueError("no values to summarize")
        self.count = len(values)
        self.median = statistics.median(values)
        self.low = min(values)
        self.high = max(values)

    def format(self, spec: str = ".1f", unit: str = "") -> str:
        """
        C{"median [low..high] unit"}.
        """
        text = f"{self.median:{spec}} [{self.low:{spec}}..{self.high:{spec}}]"
        return f"{text} {unit}" if unit else text


def summarize(values: Sequence[float]) -> Summary:
    """
    Summarize C{values}: see L{Summary}.
    """
    return Summary(values)


def meanInterval(values: Sequence[float]) -> tuple[float, float, float]:
    """
    The mean of C{values} and an approximate 95% confidence interval for it
    (mean +- 2 standard errors), as C{(mean, low, high)}.
    """
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = 2.0 * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def _cpuModel() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machineLines() -> list[str]:
    """
    Where and when the figures were taken: date, CPU, Python, Twisted.
    """
    import twisted

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"date:    {now}",
        f"cpu:     {_cpuModel()} x {os.cpu_count()} ({platform.machine()})",
        f"python:  {platform.python_implementation()} {sys.version.split()[0]}",
        f"twisted: {twisted.__version__}",
        f"kernel:  {platform.system()} {platform.release()}",
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """
    A reStructuredText simple table, so results paste into the README.
    """
    widths = [
        max([len(header[column]), *(len(row[column]) for row in rows)])
        for column in range(len(header))
    ]
    rule = "  ".join("=" * width for width in widths)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    return "\n".join([rule, line(header), rule, *(line(row) for row in rows), rule])
