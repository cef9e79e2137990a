"""
Metrics of the server behind C{twistd heartbeat}: read at scrape time from
the plain integers the hot path already keeps (the factory's and its
C{pingCounters}), so counting costs nothing per pong; served in the
Prometheus text format over twisted.web (C{--metrics-port}), and readable
from Python (L{ServerMetrics.values}).

The Prometheus side needs the C{prometheus_client} package
(C{pip install heartbeat_twisted[metrics]}); reading from Python does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.web.resource import Resource
from twisted.web.server import Request

from .._time import resolveClock

__all__ = [
    "MetricsResource",
    "ReactorLag",
    "Sample",
    "ServerMetrics",
    "metricsSite",
]


@attrs.frozen
class Sample:
    """
    One value of one metric.

    @ivar name: The metric's name, e.g. C{heartbeat_pongs_total}.
    @ivar kind: C{"counter"} or C{"gauge"}.
    @ivar help: What it counts, with its unit.
    @ivar labels: Its labels other than C{worker}, e.g. C{{"reason": "idle"}}.
    @ivar value: The value.
    """

    name: str
    kind: str
    help: str
    labels: Mapping[str, str]
    value: float


class ReactorLag:
    """
    How late the reactor runs a timed call: a L{LoopingCall} every
    C{interval} seconds notes how much later than asked it ran.  A busy or
    stalled reactor (a long handler, a GC pause, a starved CPU) shows here
    before clients see timeouts.

    @ivar last: Seconds the latest probe ran late.
    @ivar max: The most any probe ran late since start.
    @ivar probes: Probes run.
    """

    def __init__(
        self,
        interval: float = 1.0,
        clock: IReactorTime | None = None,
        seconds: Callable[[], float] | None = None,
    ) -> None:
        """
        @param seconds: The time source to measure on; C{time.monotonic}
            for a real reactor if L{None}, the clock's own otherwise.
        """
        self.interval = interval
        self.clock = resolveClock(clock)
        if seconds is None:
            from twisted.internet.base import ReactorBase

            real = isinstance(self.clock, ReactorBase)
            seconds = time.monotonic if real else self.clock.seconds
        self._seconds = seconds
        self.last = 0.0
        self.max = 0.0
        self.probes = 0
        self._expected: float | None = None
        self._loop = LoopingCall(self._probe)
        self._loop.clock = self.clock

    def start(self) -> None:
        """
        Start probing.
        """
        if not self._loop.running:
            self._expected = self._seconds()
            self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        """
        Stop probing.
        """
        if self._loop.running:
            self._loop.stop()

    def _probe(self) -> None:
        now = self._seconds()
        expected = self._expected if self._expected is not None else now
        late = max(0.0, now - expected)
        self.probes += 1
        self.last = late
        self.max = max(self.max, late)
        self._expected = now + self.interval


def _counted(value: object) -> Mapping[str, int]:
    if isinstance(value, Mapping):
        return value
    return {}


class ServerMetrics:
    """
    The metrics of one server: every value is read when asked for, from
    the objects that count.

    Read them from Python::

        metrics.values()["heartbeat_connections_open"]
        metrics.values()['heartbeat_connections_closed_total{reason="idle"}']

    or register it with a C{prometheus_client.CollectorRegistry} (it is a
    collector: it has C{collect()}).  Every sample carries the label
    C{worker}.

    @ivar factory: The server factory (C{opened}, C{live}, C{closed} by
        reason, C{gate.refused} by reason, C{pingCounters},
        C{heartbeatTracker}).
    @ivar worker: The C{worker} label's value.
    """

    def __init__(
        self,
        factory: Any,
        worker: str = "0",
        lag: ReactorLag | None = None,
        extra: Callable[[], Iterator[Sample]] | None = None,
    ) -> None:
        """
        @param lag: The reactor lag probe to report, if any.
        @param extra: More samples (for example draining and max age).
        """
        self.factory = factory
        self.worker = worker
        self._lag = lag
        self._extra = extra

    def samples(self) -> Iterator[Sample]:
        """
        Every sample, read now.
        """
        factory = self.factory
        yield Sample(
            "heartbeat_connections_open",
            "gauge",
            "Connections open now.",
            {},
            factory.live,
        )
        yield Sample(
            "heartbeat_connections_accepted_total",
            "counter",
            "Connections accepted.",
            {},
            factory.opened,
        )
        gate = getattr(factory, "gate", None)
        refused = _counted(getattr(gate, "refused", None))
        yield Sample(
            "heartbeat_connections_refused_total",
            "counter",
            "Connections refused when accepted (all reasons).",
            {},
            sum(refused.values()),
        )
        for reason, count in sorted(refused.items()):
            yield Sample(
                "heartbeat_connections_refused_by_reason_total",
                "counter",
                "Connections refused when accepted, by reason.",
                {"reason": reason},
                count,
            )
        for reason, count in sorted(_counted(factory.closed).items()):
            yield Sample(
                "heartbeat_connections_closed_total",
                "counter",
                "Connections closed, by reason (idle, keepalive timeout, peer "
                "closed, peer reset, too_many_pings, max age, shutdown, ...).",
                {"reason": reason},
                count,
            )
        yield from self._pingSamples()
        yield from self._sweepSamples()
        if self._lag is not None:
            yield Sample(
                "heartbeat_reactor_lag_seconds",
                "gauge",
                "Seconds the latest reactor lag probe ran late.",
                {},
                self._lag.last,
            )
            yield Sample(
                "heartbeat_reactor_lag_max_seconds",
                "gauge",
                "Seconds the latest of all reactor lag probes ran late.",
                {},
                self._lag.max,
            )
        if self._extra is not None:
            yield from self._extra()

    def _pingSamples(self) -> Iterator[Sample]:
        counters = getattr(self.factory, "pingCounters", None)
        if counters is not None:
            yield Sample(
                "heartbeat_pings_total",
                "counter",
                "Pings received and accepted.",
                {},
                counters.pings,
            )
            yield Sample(
                "heartbeat_pongs_total",
                "counter",
                "Pong lines sent.",
                {},
                counters.pongs,
            )
            yield Sample(
                "heartbeat_health_check_failures_total",
                "counter",
                "Pings answered 'error unhealthy' (a health check failed).",
                {},
                counters.unhealthy,
            )
            yield Sample(
                "heartbeat_health_check_runs_total",
                "counter",
                "Runs of the health checks.",
                {},
                counters.healthRuns,
            )
        pinger = getattr(self.factory, "pinger", None)
        if pinger is not None:
            yield Sample(
                "heartbeat_server_pings_sent_total",
                "counter",
                "Pings the server sent to its clients.",
                {},
                pinger.sent,
            )
            stats = pinger.stats
            for name, value in (("last", stats.last), ("smoothed", stats.smoothed)):
                if value is not None:
                    yield Sample(
                        f"heartbeat_rtt_{name}_seconds",
                        "gauge",
                        f"Round trip of the server's pings ({name}), seconds.",
                        {},
                        value,
                    )

    def _sweepSamples(self) -> Iterator[Sample]:
        tracker = getattr(self.factory, "heartbeatTracker", None)
        if tracker is None or not hasattr(tracker, "ticks"):
            return
        yield Sample(
            "heartbeat_sweeps_total",
            "counter",
            "Idle sweeps run.",
            {},
            tracker.ticks,
        )
        yield Sample(
            "heartbeat_sweep_visited_total",
            "counter",
            "Connections looked at by all idle sweeps.",
            {},
            tracker.visited,
        )
        duration = getattr(tracker, "lastSweepSeconds", None)
        if duration is not None:
            yield Sample(
                "heartbeat_sweep_duration_seconds",
                "gauge",
                "Seconds the latest idle sweep took.",
                {},
                duration,
            )

    def values(self) -> dict[str, float]:
        """
        Every value, read now, keyed as the Prometheus text shows it
        without the C{worker} label: C{heartbeat_pongs_total},
        C{heartbeat_connections_closed_total{reason="idle"}}.
        """
        result: dict[str, float] = {}
        for sample in self.samples():
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            key = f"{sample.name}{{{labels}}}" if labels else sample.name
            result[key] = float(sample.value)
        return result

    def collect(self) -> Iterator[Any]:
        """
        The samples as C{prometheus_client} metric families (the
        C{Collector} interface).
        """
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        families: dict[str, Any] = {}
        for sample in self.samples():
            family = families.get(sample.name)
            labelNames = ["worker", *sorted(sample.labels)]
            if family is None:
                kind = (
                    CounterMetricFamily
                    if sample.kind == "counter"
                    else GaugeMetricFamily
                )
                name = sample.name
                if sample.kind == "counter":
                    name = name.removesuffix("_total")
                family = families[sample.name] = kind(
                    name, sample.help, labels=labelNames
                )
            family.add_metric(
                [self.worker, *(sample.labels[k] for k in sorted(sample.labels))],
                sample.value,
            )
        yield from families.values()


class MetricsResource(Resource):
    """
    A twisted.web resource that renders a C{prometheus_client} registry in
    the Prometheus text format, in the reactor thread (reading the values
    is a few attribute reads).
    """

    isLeaf = True

    def __init__(self, registry: Any) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))  # type: ignore[no-untyped-call]
        return generate_latest(self.registry)


def metricsSite(metrics: ServerMetrics) -> Any:
    """
    A twisted.web C{Site} that serves C{metrics} at C{/metrics}, with the
    process's own metrics (CPU, memory, open files) beside them.

    @raise ImportError: Saying what to install if C{prometheus_client} is
        missing.
    """
    try:
        from prometheus_client import CollectorRegistry, ProcessCollector
    except ImportError:
        raise ImportError(
            "--metrics-port needs prometheus_client: "
            "pip install 'heartbeat_twisted[metrics]'"
        ) from None
    from twisted.web.server import Site

    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    ProcessCollector(registry=registry)
    root = Resource()  # type: ignore[no-untyped-call]
    root.putChild(b"metrics", MetricsResource(registry))
    site = Site(root)  # type: ignore[no-untyped-call]
    site.noisy = False
    return site
