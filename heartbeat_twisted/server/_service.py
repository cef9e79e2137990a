"""
The service behind C{twistd heartbeat}: what runs once the options are
checked.
"""

from __future__ import annotations

from typing import Any

from twisted.application import strports
from twisted.application.service import IService
from twisted.internet.interfaces import IReactorCore

from ..ping._health import PingResponder
from ._options import Options
from ._protocol import ServerFactory, fileHealthCheck
from ._reuseport import ReusePortService
from ._startup import StartupGuard
from ._workers import WorkerSupervisor, becomeWorker, supervisorLogfile, workerArgv

__all__ = ["makeService"]


def makeService(options: Options, reactor: IReactorCore | None = None) -> IService:
    """
    The demo server listening on C{options.endpoint}.

    @param reactor: The reactor for the listening port and the heartbeat's
        clock; the global reactor if L{None}.
    """
    if options.workers is not None:
        from twisted.internet import reactor as running

        where: Any = reactor or running
        argv = workerArgv(options, where, supervisorLogfile(options))
        return WorkerSupervisor(options.workers, argv, where)
    becomeWorker()
    clock: Any = reactor
    path = options["health-check-file"]
    responder = PingResponder(
        options.pingServerConfig,
        [fileHealthCheck(path)] if path else [],
        clock=clock,
    )
    limits = options.serverLimits
    factory = ServerFactory(
        heartbeatConfig=options.heartbeatConfig,
        clock=clock,
        keepAlive=options.keepAliveConfig,
        pingResponder=responder,
        limits=limits.limits,
        activity=limits.activity,
        logConfig=limits.logConfig,
        backlog=limits.backlog,
    )
    if options["reuse-port"]:
        from twisted.internet import reactor as running

        reused = ReusePortService(options.endpoint, factory, reactor or running)
        return StartupGuard(reused, options["port"], hangup=reactor is None)
    kwargs: dict[str, Any] = {} if reactor is None else {"reactor": reactor}
    service: IService = strports.service(options.endpoint, factory, **kwargs)
    return StartupGuard(service, options["port"], hangup=reactor is None)
