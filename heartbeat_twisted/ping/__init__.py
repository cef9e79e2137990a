"""
Application ping/pong: the one heartbeat that also sees a hung peer process
and keeps a path through proxies open.

  - L{PingAnswerMixin}: a protocol mixin that answers C{ping} with C{pong}
    once the health checks pass, refuses ping floods and bad lines, and
    can tell a client to go (L{PingAnswerMixin.pingGoAway});
  - L{PingingMixin}: a protocol mixin that sends C{ping} when the
    connection is quiet and drops a peer that stops answering;
  - L{PingClientProtocol}, L{PingClientFactory}, L{pingClientService}: a
    ready client that reconnects through
    L{ClientService<twisted.application.internet.ClientService>};
  - L{PingConfig}, L{PingServerConfig}, L{HealthCheck}: the settings;
    L{PingCounters}: what the connections of a factory counted;
  - L{IPingFraming}: ping/pong over framings other than lines
    (L{heartbeat_twisted.ping.amp} for AMP).

The wire format is described in C{docs/pingpong.rst}.
"""

from typing import Any

from ._answering import PingAnswerMixin
from ._client import (
    PingClientFactory,
    PingClientProtocol,
    PingEvents,
    pingClientService,
)
from ._config import HealthCheck, PingConfig, PingServerConfig
from ._counters import PingCounters, RoundTripStats
from ._framing import IPingFraming
from ._health import HealthCheckError, HealthFailure
from ._pinging import PingingMixin, PingState

__all__ = [
    "HealthCheck",
    "HealthCheckError",
    "HealthFailure",
    "IPingFraming",
    "PingAnswerMixin",
    "PingClientFactory",
    "PingClientProtocol",
    "PingConfig",
    "PingCounters",
    "PingEvents",
    "PingServerConfig",
    "PingState",
    "PingingMixin",
    "RoundTripStats",
    "pingClientService",
]


def __getattr__(name: str) -> Any:
    """
    Old names, for one release, with a L{DeprecationWarning}.
    """
    from .._deprecated import MOVED, lookUp

    if not MOVED.get(name, ("",))[0].startswith(__name__):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return lookUp(__name__, name)
