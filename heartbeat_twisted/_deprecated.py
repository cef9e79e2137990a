"""
Names that moved or were renamed: each keeps working for one release with a
L{DeprecationWarning} that names its replacement (see C{CHANGELOG.rst}).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

__all__ = ["ADVICE", "MOVED", "lookUp"]

#: Old top-level name -> (module, new name, since).
MOVED: dict[str, tuple[str, str, str]] = {
    "HeartbeatProtocol": ("heartbeat_twisted", "HeartbeatMixin", "0.2.0"),
    "HeartbeatFactory": ("heartbeat_twisted", "HeartbeatFactoryMixin", "0.2.0"),
    "HeartbeatProtocolWrapper": (
        "heartbeat_twisted._wrapping",
        "HeartbeatProtocolWrapper",
        "0.2.0",
    ),
    "IdleEntry": ("heartbeat_twisted._tracker", "IdleEntry", "0.2.0"),
    "Idler": ("heartbeat_twisted._tracker", "Idler", "0.2.0"),
    "KeepAlivePlatform": ("heartbeat_twisted._keepalive", "KeepAlivePlatform", "0.2.0"),
    "defaultCheckInterval": (
        "heartbeat_twisted._config",
        "defaultCheckInterval",
        "0.2.0",
    ),
    "PingServerProtocol": ("heartbeat_twisted.ping", "PingAnswerMixin", "0.2.0"),
    "PingingProtocol": ("heartbeat_twisted.ping", "PingingMixin", "0.2.0"),
}
for _name in (
    "HealthCheck",
    "HealthCheckError",
    "HealthFailure",
    "PingClientFactory",
    "PingClientProtocol",
    "PingConfig",
    "PingEvents",
    "PingServerConfig",
    "PingState",
    "RoundTripStats",
    "pingClientService",
):
    MOVED[_name] = ("heartbeat_twisted.ping", _name, "0.2.0")
# The 0.1 ways to configure ping/pong (heartbeat_twisted and
# heartbeat_twisted.ping both resolve them).
for _name in ("PingBackoff", "PingResponder", "Pinger"):
    MOVED[_name] = ("heartbeat_twisted.ping._legacy", _name, "0.2.0")

#: Old name -> what to do instead, where that is not a plain rename.
ADVICE: dict[str, str] = {
    "PingResponder": (
        "set factory.pingServerConfig = PingServerConfig(..., healthChecks=...)"
    ),
    "Pinger": "set factory.pingConfig = PingConfig(...)",
    "PingBackoff": (
        "pingClientService counts a connection as good after its first "
        "answered ping; give PingClientFactory(retryPolicy=backoffPolicy(...))"
    ),
}


def lookUp(module: str, name: str) -> Any:
    """
    The object an old name of C{module} stands for, with a warning naming
    the new one.

    @raise AttributeError: If C{name} is no old name either.
    """
    try:
        where, new, since = MOVED[name]
    except KeyError:
        raise AttributeError(f"module {module!r} has no attribute {name!r}") from None
    internal = where.rpartition(".")[2].startswith("_")
    advice = ADVICE.get(name) or (
        "it is internal and will be removed"
        if internal
        else f"use {where}.{new} instead"
    )
    warnings.warn(
        f"{module}.{name} is deprecated since heartbeat_twisted {since}: {advice}",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(importlib.import_module(where), new)
