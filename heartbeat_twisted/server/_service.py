"""
The service behind C{twistd heartbeat}: what runs once the options are
checked.  It listens on every C{--port}, confirms OS keepalive on each
once, serves metrics, and stops gracefully (L{Drainer}).
"""

from __future__ import annotations

import gc
import os
import signal
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
from twisted.application import strports
from twisted.application.service import IService, MultiService
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorCore
from twisted.logger import ILogObserver, Logger
from twisted.python.failure import Failure

from .._config import KeepAliveConfig
from .._keepalive import KeepAliveResult, enableKeepAlive
from .._time import useMonotonicTime
from ._dispatch import dispatchDirectly
from ._drain import ConnectionSet, Drainer, MaxAge
from ._logformat import jsonLogger
from ._metrics import ReactorLag, Sample, ServerMetrics, metricsSite
from ._options import Options
from ._protocol import ServerFactory, ServerProtocol, fileHealthCheck
from ._proxylisten import HeaderFirst, ProxyHeaderFactory, proxiedDescription
from ._reuseport import parseListenAddress, reusePortSocket
from ._startup import HangupService, describeListenError
from ._workers import WorkerSupervisor, becomeWorker, supervisorLogfile, workerArgv

__all__ = ["HeartbeatService", "OperatedFactory", "makeService"]

_log = Logger()


class OperatedFactory(ServerFactory):
    """
    The factory of C{twistd heartbeat}: a L{ServerFactory} that also knows
    its open connections (to tell them to go) and their maximum age.

    @ivar connections: The open connections.
    @ivar maxAge: The maximum connection age, or L{None}.
    """

    def __init__(
        self,
        *args: Any,
        connections: ConnectionSet | None = None,
        maxAge: MaxAge | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.connections = connections if connections is not None else ConnectionSet()
        self.maxAge = maxAge

    def connected(self, protocol: ServerProtocol) -> int:
        number = super().connected(protocol)
        self.connections.add(protocol)
        if self.maxAge is not None:
            self.maxAge.start(protocol)
        return number

    def disconnected(self, protocol: ServerProtocol, reason: str) -> None:
        if self.maxAge is not None:
            self.maxAge.stop(protocol)
        super().disconnected(protocol, reason)
        self.connections.discard(protocol)


class _ListeningSocket:
    """
    A listening port's socket, as L{enableKeepAlive} looks for one.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def getHandle(self) -> socket.socket:
        return self._sock


def confirmKeepAlive(port: object, config: KeepAliveConfig) -> KeepAliveResult:
    """
    Apply C{config} to the listening socket of C{port} (accepted
    connections inherit it on Linux; each is set again when accepted) and
    read it back: proof, once at startup, that the kernel takes the values.
    """
    fileno = getattr(port, "fileno", None)
    if not callable(fileno):
        return KeepAliveResult.notApplicable(f"{type(port).__qualname__} has no socket")
    sock = socket.socket(fileno=os.dup(fileno()))
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return KeepAliveResult.notApplicable(
                f"not a TCP socket ({sock.family.name})"
            )
        return enableKeepAlive(_ListeningSocket(sock), config)
    finally:
        sock.close()


def _logKeepAlive(endpoint: str, result: KeepAliveResult) -> None:
    if not result.applicable:
        _log.info(
            "OS keepalive does not apply on {endpoint}: {why}",
            endpoint=endpoint,
            why=result.reason,
        )
        return
    _log.info(
        "OS keepalive on {endpoint}: idle {idle} s, interval {interval} s, "
        "count {count}, user timeout {userTimeout} ms",
        endpoint=endpoint,
        **result.settings(),
    )


def _exitZeroOnTerm(reactor: Any) -> None:
    """
    Make SIGTERM stop the reactor as an ordinary stop: the drain runs, and
    the process exits 0 when it is done (Twisted's own handler makes twistd
    kill itself with the signal after a clean shutdown).
    """

    def stop(number: int, frame: object) -> None:
        _log.info("Received SIGTERM, draining.")
        reactor.callFromThread(reactor.stop)

    signal.signal(signal.SIGTERM, stop)


class HeartbeatService(MultiService):
    """
    Listens with one factory on several endpoints; its children (the
    metrics page) run beside it.  Stopping it drains (L{Drainer}): the
    ports close after the drain delay, clients are told to go, and the
    children stop last.

    @ivar endpoints: The server endpoint strings.
    @ivar factory: The server factory.
    @ivar drainer: The graceful stop.
    @ivar ports: The listening ports, once listening.
    @ivar metrics: The server's metrics (L{ServerMetrics.values} reads them).
    @ivar proxyFailures: Connections to C{haproxy:} ports closed without a
        good PROXY header, by reason (L{ProxyHeaderFactory.failures}).
    """

    def __init__(
        self,
        endpoints: list[str],
        factory: OperatedFactory,
        drainer: Drainer,
        reactor: Any = None,
        keepAlive: KeepAliveConfig | None = None,
        lag: ReactorLag | None = None,
        logFormat: str = "text",
        metrics: ServerMetrics | None = None,
        reusePort: bool = False,
        proxyFailures: Counter[str] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.metrics = metrics
        self.endpoints = endpoints
        self.factory = factory
        self.drainer = drainer
        self.ports: list[IListeningPort] = []
        self._reactor = reactor
        self._keepAlive = keepAlive
        self._lag = lag
        self._logFormat = logFormat
        self._reusePort = reusePort
        self._listening = False
        self.proxyFailures: Counter[str] = (
            proxyFailures if proxyFailures is not None else Counter()
        )

    def setServiceParent(self, parent: Any) -> None:
        """
        With C{--log-format json}, set the application's log observer (twistd
        asks the application for one before it falls back to its own).
        """
        if self._logFormat == "json" and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, jsonLogger())
        super().setServiceParent(parent)  # type: ignore[no-untyped-call]

    def _listen(self) -> None:
        if self._listening:
            return
        self._listening = True
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        for description in self.endpoints:
            try:
                self._listenOn(reactor, description)
            except Exception as e:
                # One line naming the option, not a traceback (hardening).
                raise SystemExit(describeListenError(description, e)) from None

    def _listenOn(self, reactor: Any, description: str) -> None:
        factory: Any = self.factory
        inner = proxiedDescription(description)
        if inner is not None:
            # Our own PROXY wrapper, not Twisted's haproxy: endpoint: the
            # factory sees the client's address, not the proxy's.
            factory = self.proxyFactory()
        if self._reusePort:
            port = self._reuse(reactor, inner or description, factory)
            self._listened(port, description)
            return
        endpoint = serverFromString(reactor, inner or description)  # type: ignore[no-untyped-call]
        failures: list[Failure] = []
        d = endpoint.listen(factory)
        d.addCallback(self._listened, description)
        d.addErrback(failures.append)
        if failures:
            # Fail twistd's start, as strports.service does.
            failures[0].raiseException()

    def proxyFactory(self) -> ProxyHeaderFactory:
        """
        The factory of one C{haproxy:} port: the server's factory behind
        the PROXY header, which must arrive within C{--line-timeout}; bad
        headers are logged in the server's log budget and counted in
        L{proxyFailures}.
        """
        factory = self.factory
        return ProxyHeaderFactory(
            factory,
            clock=factory.clock,
            headerTimeout=factory.limits.lineTimeout,
            mayLog=factory.logBudget.allow,
            failures=self.proxyFailures,
        )

    def _reuse(self, reactor: Any, description: str, factory: Any) -> IListeningPort:
        """
        Listen on a C{tcp:} endpoint with C{SO_REUSEPORT} (C{--reuse-port},
        C{--workers}).
        """
        port, interface, backlog = parseListenAddress(description)
        sock = reusePortSocket(interface, port, backlog)
        try:
            listening: IListeningPort = reactor.adoptStreamPort(
                sock.fileno(), sock.family, factory
            )
        finally:
            sock.close()  # the port holds its own duplicate
        return listening

    def _listened(self, port: IListeningPort, description: str) -> None:
        self.ports.append(port)
        if self._keepAlive is not None:
            try:
                result = confirmKeepAlive(port, self._keepAlive)
            except OSError as e:
                _log.warn(
                    "OS keepalive on {endpoint}: refused: {error}",
                    endpoint=description,
                    error=e,
                )
            else:
                _logKeepAlive(description, result)

    def privilegedStartService(self) -> None:
        """
        Listen (before twistd drops privileges, for ports below 1024).
        """
        self._listen()
        super().privilegedStartService()  # type: ignore[no-untyped-call]

    def startService(self) -> None:
        """
        Listen if not yet listening; start the children and the lag probe.
        """
        self._listen()
        super().startService()  # type: ignore[no-untyped-call]
        if self._lag is not None:
            self._lag.start()
        if self._reactor is None:
            from twisted.internet import reactor

            reactor.callWhenRunning(_exitZeroOnTerm, reactor)

    def _stopListening(self) -> Deferred[Any]:
        ports, self.ports = self.ports, []
        return defer.gatherResults(
            [defer.maybeDeferred(port.stopListening) for port in ports]
        )

    def stopService(self) -> Deferred[None]:
        """
        Drain, then stop the children.
        """
        drained = self.drainer.drain(self._stopListening)

        def children(_: object) -> Deferred[Any] | None:
            if self._lag is not None:
                self._lag.stop()
            stopped: Deferred[Any] | None = MultiService.stopService(self)  # type: ignore[no-untyped-call]
            return stopped

        drained.addCallback(children)
        return drained.addCallback(lambda _: None)


def freezeWhenRunning(
    reactor: IReactorCore, freeze: Callable[[], None] = gc.freeze
) -> None:
    """
    Once C{reactor} runs, move every object made so far (Twisted, the
    options, the service) out of the garbage collector's sight
    (C{gc.freeze()}): they live as long as the process, and each full
    collection would otherwise walk them again.  Under a connection flood
    the full collections are what is left to walk: the connections
    (bench/README.rst, the soak).
    """
    reactor.callWhenRunning(freeze)


def dispatchedProtocols(protocol: type) -> frozenset[type]:
    """
    The protocol classes whose events C{twistd heartbeat} dispatches
    without Twisted's legacy logging context: the server's own C{protocol},
    and the PROXY-header wrapper above it on C{haproxy:} ports (both log
    through C{twisted.logger} only).
    """
    return frozenset({protocol, HeaderFirst})


def makeService(options: Options, reactor: IReactorCore | None = None) -> IService:
    """
    The server of C{twistd heartbeat}: listening on every C{--port}, with
    metrics on C{--metrics-port} if given.

    @param reactor: The reactor for the listening ports and the heartbeat's
        clock; the global reactor if L{None}, which this process owns: its
        timed calls then run on a monotonic clock (a step of the system
        clock must neither close live connections nor keep dead ones),
        and what exists once it runs is frozen for the garbage collector
        (L{freezeWhenRunning}).
    """
    if reactor is None:
        from twisted.internet import reactor as owned

        useMonotonicTime(owned)
        freezeWhenRunning(owned)
    if options.workers is not None:
        from twisted.internet import reactor as running

        where: Any = reactor or running
        argv = workerArgv(options, where, supervisorLogfile(options))
        return WorkerSupervisor(options.workers, argv, where)
    becomeWorker()
    clock: Any = reactor
    path = options["health-check-file"]
    pingServerConfig = attrs.evolve(
        options.pingServerConfig,
        healthChecks=(fileHealthCheck(path),) if path else (),
    )
    connections = ConnectionSet()
    limits = options.serverLimits
    factory = OperatedFactory(
        heartbeatConfig=options.heartbeatConfig,
        clock=clock,
        keepAliveConfig=options.keepAliveConfig,
        pingServerConfig=pingServerConfig,
        connections=connections,
        limits=limits.limits,
        activity=limits.activity,
        logConfig=limits.logConfig,
        backlog=limits.backlog,
    )
    factory.writeSettings = options.writeSettings
    if reactor is None:
        from twisted.internet import reactor as dispatching

        # The server's own connections are read without Twisted's legacy
        # logging context (docs/performance.rst, "Reads").
        dispatchDirectly(dispatching, dispatchedProtocols(factory.protocol))
    drainer = Drainer(options.drainConfig, connections, factory, clock=clock)
    if options.maxAgeConfig is not None:
        # Ages are per-connection deadlines: the idle sweep keeps them (one
        # list append each) instead of one reactor timer per connection.
        factory.maxAge = MaxAge(
            options.maxAgeConfig,
            factory.heartbeatTracker,  # type: ignore[arg-type]
            closeGrace=options.heartbeatConfig.closeGrace,
        )
    lag = ReactorLag(clock=clock)
    proxyFailures: Counter[str] = Counter()
    metrics = ServerMetrics(
        factory, options.worker, lag, _extraSamples(drainer, factory, proxyFailures)
    )
    service = HeartbeatService(
        options.endpoints,
        factory,
        drainer,
        reactor=reactor,
        keepAlive=options.keepAliveConfig,
        lag=lag,
        logFormat=options["log-format"],
        metrics=metrics,
        reusePort=options["reuse-port"],
        proxyFailures=proxyFailures,
    )
    if reactor is None:
        HangupService().setServiceParent(service)  # type: ignore[no-untyped-call]
    if options.metricsEndpoint is not None:
        site = metricsSite(metrics)
        kwargs: dict[str, Any] = {} if reactor is None else {"reactor": reactor}
        strports.service(options.metricsEndpoint, site, **kwargs).setServiceParent(  # type: ignore[no-untyped-call]
            service
        )
    return service


def _extraSamples(
    drainer: Drainer, factory: OperatedFactory, proxyFailures: Counter[str]
) -> Any:
    def samples() -> Any:
        maxAge = factory.maxAge
        for reason, count in sorted(proxyFailures.items()):
            yield Sample(
                "heartbeat_proxy_header_failures_total",
                "counter",
                "Connections to haproxy: ports closed without a good PROXY "
                "header, by reason.",
                {"reason": reason},
                count,
            )
        yield Sample(
            "heartbeat_draining",
            "gauge",
            "1 while the server drains (fails its health check), else 0.",
            {},
            1 if drainer.draining else 0,
        )
        if maxAge is not None:
            yield Sample(
                "heartbeat_max_age_goaways_total",
                "counter",
                "Clients told to go for their connection's age.",
                {},
                maxAge.toldToGo,
            )

    return samples
