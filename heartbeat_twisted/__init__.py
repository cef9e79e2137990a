"""
heartbeat_twisted: keep long-lived Twisted TCP connections honest.

  - L{HeartbeatProtocol} / L{HeartbeatFactory}: close connections silent
    for C{idle} seconds, with one sweep for all of them;
  - L{HeartbeatWrappingFactory}: the same for a factory you cannot change;
  - L{TimeoutMixin}: a cheaper drop-in for Twisted's own;
  - L{enableKeepAlive} / L{KeepAliveConfig}: OS TCP keepalive, tuned and
    read back;
  - L{IdleTracker}: the sweep engine itself;
  - L{PingServerProtocol} / L{PingingProtocol} / L{PingClientProtocol}:
    the application ping/pong, answering and pinging sides.
"""

from ._config import (
    HeartbeatConfig,
    KeepAliveConfig,
    PingConfig,
    PingServerConfig,
    defaultCheckInterval,
)
from ._keepalive import (
    KeepAlivePlatform,
    KeepAliveResult,
    KeepAliveTimedOut,
    enableKeepAlive,
)
from ._mixins import HeartbeatFactory, HeartbeatProtocol
from ._pingpong import (
    HealthCheck,
    HealthCheckError,
    HealthFailure,
    PingBackoff,
    PingClientFactory,
    PingClientProtocol,
    Pinger,
    PingEvents,
    PingingProtocol,
    PingResponder,
    PingServerProtocol,
    PingState,
    RoundTripStats,
    pingClientService,
)
from ._timeout import TimeoutMixin
from ._tracker import IdleEntry, Idler, IdleTracker
from ._wrapping import HeartbeatProtocolWrapper, HeartbeatWrappingFactory

__version__ = "0.1.0"

__all__ = [
    "HealthCheck",
    "HealthCheckError",
    "HealthFailure",
    "HeartbeatConfig",
    "HeartbeatFactory",
    "HeartbeatProtocol",
    "HeartbeatProtocolWrapper",
    "HeartbeatWrappingFactory",
    "IdleEntry",
    "IdleTracker",
    "Idler",
    "KeepAliveConfig",
    "KeepAlivePlatform",
    "KeepAliveResult",
    "KeepAliveTimedOut",
    "PingBackoff",
    "PingClientFactory",
    "PingClientProtocol",
    "PingConfig",
    "PingEvents",
    "PingResponder",
    "PingServerConfig",
    "PingServerProtocol",
    "PingState",
    "Pinger",
    "PingingProtocol",
    "RoundTripStats",
    "TimeoutMixin",
    "__version__",
    "defaultCheckInterval",
    "enableKeepAlive",
    "pingClientService",
]
