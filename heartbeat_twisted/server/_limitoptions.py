"""
The options of C{twistd heartbeat} that hold it against hostile and careless
clients: connection limits, what counts as activity, how much it logs
(C{docs/hardening.rst} lists each, its default and why).
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.python import usage

from ._limits import ConnectionLimits, defaultBacklog, defaultMaxConnections
from ._logbudget import LogConfig
from ._protocol import ACTIVITIES

__all__ = ["LIMIT_FLAGS", "LIMIT_PARAMETERS", "MAX_LINE_LENGTH", "ServerLimits"]

#: The longest line C{--max-line-length} may allow: what a line protocol
#: needs, and a bound on what one connection can make the server buffer.
MAX_LINE_LENGTH = 65536

LIMIT_PARAMETERS: list[list[Any]] = [
    [
        "max-connections",
        None,
        None,
        "Connections open at once, all clients together; 0: no limit. "
        "[default: ulimit -n less 100]",
    ],
    [
        "max-connections-per-ip",
        None,
        "1000",
        "Connections open at once from one IPv4 address or IPv6 /64; 0: no limit.",
    ],
    [
        "connection-rate",
        None,
        "100",
        "New connections a second from one address (token bucket); 0: no limit.",
    ],
    [
        "connection-burst",
        None,
        "200",
        "New connections one address may open at once after a quiet spell.",
    ],
    [
        "backlog",
        None,
        None,
        "Listen backlog: connections the kernel may queue before they are "
        "accepted. [default: 1024, or net.core.somaxconn if smaller]",
    ],
    [
        "line-timeout",
        None,
        "5",
        "Seconds a begun line may take to complete (slowloris).",
    ],
    [
        "tls-handshake-timeout",
        None,
        "10",
        "Seconds a TLS client has to complete its handshake.",
    ],
    [
        "activity",
        None,
        "pings",
        "What resets the idle time: bytes, lines or pings.",
    ],
    [
        "log-rate",
        None,
        "100",
        "Log lines a second about connections, all together; past it they "
        "are counted and summarised.",
    ],
]

LIMIT_FLAGS: list[list[Any]] = [
    [
        "log-payloads",
        None,
        "Log received payloads (at most 5 lines a second per connection).",
    ],
    [
        "limit-loopback",
        None,
        "Apply the per-address limits to loopback clients too.",
    ],
]


def _number(options: Any, name: str, kind: type) -> Any:
    value = options[name]
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise usage.UsageError(f"--{name} must be {what}: {value!r}") from None


_FIELDS = {
    "maxConnections": "max-connections",
    "maxConnectionsPerAddress": "max-connections-per-ip",
    "connectionRate": "connection-rate",
    "connectionBurst": "connection-burst",
    "lineTimeout": "line-timeout",
    "tlsHandshakeTimeout": "tls-handshake-timeout",
    "linesPerSecond": "log-rate",
}


@attrs.frozen
class ServerLimits:
    """
    What the limit options asked for.

    @ivar limits: The connection limits.
    @ivar activity: One of L{ACTIVITIES}.
    @ivar logConfig: How much to log.
    @ivar backlog: The listen backlog.
    """

    limits: ConnectionLimits
    activity: str
    logConfig: LogConfig
    backlog: int

    @classmethod
    def fromOptions(cls, options: Any) -> ServerLimits:
        """
        Read and check the limit options; a bad value raises
        L{usage.UsageError} naming the option.
        """
        given = options["max-connections"]
        maxConnections = (
            defaultMaxConnections()
            if given is None
            else _number(options, "max-connections", int)
        )
        backlog = (
            defaultBacklog()
            if options["backlog"] is None
            else _number(options, "backlog", int)
        )
        if backlog < 1:
            raise usage.UsageError(f"--backlog must be >= 1: {backlog}")
        activity = options["activity"]
        if activity not in ACTIVITIES:
            raise usage.UsageError(
                f"--activity must be one of {', '.join(ACTIVITIES)}: {activity!r}"
            )
        try:
            limits = ConnectionLimits(
                maxConnections=maxConnections,
                maxConnectionsPerAddress=_number(
                    options, "max-connections-per-ip", int
                ),
                connectionRate=_number(options, "connection-rate", float),
                connectionBurst=_number(options, "connection-burst", int),
                lineTimeout=_number(options, "line-timeout", float),
                tlsHandshakeTimeout=_number(options, "tls-handshake-timeout", float),
                limitLoopback=bool(options["limit-loopback"]),
            )
            logConfig = LogConfig(
                _number(options, "log-rate", int), bool(options["log-payloads"])
            )
        except ValueError as e:
            message = str(e)
            for field, option in _FIELDS.items():
                message = message.replace(repr(field), f"--{option}")
            raise usage.UsageError(message) from None
        return cls(limits, activity, logConfig, backlog)


def checkLineLength(options: Any) -> None:
    """
    Refuse a C{--max-line-length} above L{MAX_LINE_LENGTH}.
    """
    value = options["max-line-length"]
    if value is not None and value.isdigit() and int(value) > MAX_LINE_LENGTH:
        raise usage.UsageError(f"--max-line-length must be in 16..65536: {value}")
