"""
Application ping/pong: the one heartbeat that also sees a hung peer process
and keeps a path through proxies open.

  - L{PingAnswerMixin}: a protocol mixin that answers C{ping} with C{pong}
    once the health checks pass, and refuses ping floods and bad lines;
  - L{PingingMixin}: a protocol mixin that sends C{ping} when the connection
    is quiet and drops a peer that stops answering;
  - L{PingClientProtocol}, L{PingClientFactory}, L{pingClientService}: a
    ready client that reconnects with backoff;
  - L{PingConfig}, L{PingServerConfig}, L{HealthCheck}: the settings.

The wire format is described in C{docs/pingpong.rst}.
"""

from ._answering import PingAnswerMixin
from ._client import (
    PingBackoff,
    PingClientFactory,
    PingClientProtocol,
    PingEvents,
    pingClientService,
)
from ._config import PingConfig, PingServerConfig
from ._health import HealthCheck, HealthCheckError, HealthFailure, PingResponder
from ._pinging import Pinger, PingingMixin, PingState, RoundTripStats

__all__ = [
    "HealthCheck",
    "HealthCheckError",
    "HealthFailure",
    "PingAnswerMixin",
    "PingBackoff",
    "PingClientFactory",
    "PingClientProtocol",
    "PingConfig",
    "PingEvents",
    "PingResponder",
    "PingServerConfig",
    "PingState",
    "Pinger",
    "PingingMixin",
    "RoundTripStats",
    "pingClientService",
]
