"""
heartbeat_twisted: keep long-lived Twisted TCP connections honest.

  - L{HeartbeatProtocol} / L{HeartbeatFactory}: close connections silent
    for C{idle} seconds, with one sweep for all of them;
  - L{HeartbeatWrappingFactory}: the same for a factory you cannot change;
  - L{TimeoutMixin}: a cheaper drop-in for Twisted's own;
  - L{enableKeepAlive} / L{KeepAliveConfig}: OS TCP keepalive, tuned and
    read back;
  - L{IdleTracker}: the sweep engine itself.
"""

from ._config import HeartbeatConfig, KeepAliveConfig, defaultCheckInterval
from ._keepalive import (
    KeepAlivePlatform,
    KeepAliveResult,
    KeepAliveTimedOut,
    enableKeepAlive,
)
from ._mixins import HeartbeatFactory, HeartbeatProtocol
from ._timeout import TimeoutMixin
from ._tracker import IdleEntry, Idler, IdleTracker
from ._wrapping import HeartbeatProtocolWrapper, HeartbeatWrappingFactory

__version__ = "0.1.0"

__all__ = [
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
    "TimeoutMixin",
    "__version__",
    "defaultCheckInterval",
    "enableKeepAlive",
]
