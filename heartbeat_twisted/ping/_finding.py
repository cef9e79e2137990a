"""
Where a connection finds its ping/pong settings: on its factory
(C{factory.pingServerConfig}, C{factory.pingConfig}), else on its own
class, else (deprecated) the 0.1 forms C{factory.pingResponder} and
C{factory.pinger}.
"""

from __future__ import annotations

from ._config import PingConfig, PingServerConfig
from ._legacy import Pinger, PingResponder, warnOnce
from ._shared import PingShared, sharedFor

__all__ = ["findPingConfig", "findServerConfig"]


def findServerConfig(protocol: object) -> tuple[PingServerConfig, PingShared]:
    """
    The answering settings of C{protocol} (L{PingServerConfig}C{()} if it
    has none) and the state it shares with its factory's connections.

    @raise TypeError: If C{pingServerConfig} is not a L{PingServerConfig}.
    """
    factory = getattr(protocol, "factory", None)
    config = getattr(factory, "pingServerConfig", None)
    if config is None:
        responder = getattr(factory, "pingResponder", None)
        if isinstance(responder, PingResponder):
            if getattr(factory, "pingResponderWarns", True):
                warnOnce(
                    responder,
                    "factory.pingResponder is deprecated since heartbeat_twisted "
                    "0.2.0: set factory.pingServerConfig = PingServerConfig(..., "
                    "healthChecks=...); the counters are factory.pingCounters",
                )
            if factory is not None:
                factory.pingCounters = responder.shared.counters
            return responder.config, responder.shared
        config = getattr(protocol, "pingServerConfig", None)
    if config is None:
        config = PingServerConfig()
    if not isinstance(config, PingServerConfig):
        raise TypeError(
            f"{type(protocol).__qualname__}: pingServerConfig must be a "
            f"PingServerConfig: {config!r}"
        )
    return config, sharedFor(protocol)


def findPingConfig(protocol: object) -> tuple[PingConfig, PingShared]:
    """
    The pinging settings of C{protocol} and the state it shares with its
    factory's connections.

    @raise TypeError: If there are none.
    """
    factory = getattr(protocol, "factory", None)
    config = getattr(factory, "pingConfig", None)
    if config is None:
        pinger = getattr(factory, "pinger", None)
        if isinstance(pinger, Pinger):
            warnOnce(
                pinger,
                "factory.pinger is deprecated since heartbeat_twisted 0.2.0: "
                "set factory.pingConfig = PingConfig(...) (the clock is the "
                "factory's heartbeatClock); the counters are "
                "factory.pingCounters",
            )
            return pinger.config, pinger.shared
        config = getattr(protocol, "pingConfig", None)
    if not isinstance(config, PingConfig):
        raise TypeError(
            f"{type(protocol).__qualname__} needs a PingConfig; got factory "
            f"{factory!r}. Set factory.pingConfig = PingConfig(interval=..., "
            f"timeout=...), or a pingConfig class attribute on the protocol."
        )
    return config, sharedFor(protocol)
