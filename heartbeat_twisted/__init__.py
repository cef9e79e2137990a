"""
heartbeat_twisted: keep long-lived Twisted TCP connections honest.

The idle heartbeat (close connections silent for C{idle} seconds, one sweep
for all of them):

  - L{HeartbeatMixin} / L{HeartbeatFactoryMixin}: mix into a protocol and
    its factory;
  - L{HeartbeatWrappingFactory}: the same for a factory you cannot change;
  - L{TimeoutMixin}: a cheaper drop-in for Twisted's own;
  - L{IdleTracker}: the sweep engine itself;
  - L{HeartbeatConfig}: its settings.

OS TCP keepalive: L{enableKeepAlive}, L{KeepAliveConfig},
L{KeepAliveResult}, L{KeepAliveTimedOut}, L{PeerReset}.

Sending at once instead of on the next reactor turn: L{EagerWriteMixin}.

Application ping/pong lives in L{heartbeat_twisted.ping}; helpers for your
own tests in L{heartbeat_twisted.testing}.
"""

from typing import Any

from ._config import HeartbeatConfig, KeepAliveConfig
from ._keepalive import KeepAliveResult, KeepAliveTimedOut, PeerReset, enableKeepAlive
from ._mixins import HeartbeatFactoryMixin, HeartbeatMixin
from ._timeout import TimeoutMixin
from ._tracker import IdleTracker
from ._wrapping import HeartbeatWrappingFactory
from ._writepath import EagerWriteMixin

__version__ = "0.2.0.dev0"

__all__ = [
    "EagerWriteMixin",
    "HeartbeatConfig",
    "HeartbeatFactoryMixin",
    "HeartbeatMixin",
    "HeartbeatWrappingFactory",
    "IdleTracker",
    "KeepAliveConfig",
    "KeepAliveResult",
    "KeepAliveTimedOut",
    "PeerReset",
    "TimeoutMixin",
    "__version__",
    "enableKeepAlive",
]


def __getattr__(name: str) -> Any:
    """
    Old names, for one release, with a L{DeprecationWarning}.
    """
    from ._deprecated import lookUp

    return lookUp(__name__, name)
