"""
C{twistd heartbeat}: options and service for the demo server.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.endpoints import serverFromString
from twisted.python import usage

from .._config import HeartbeatConfig, KeepAliveConfig
from ..ping._config import PingServerConfig
from ._limitoptions import LIMIT_FLAGS, LIMIT_PARAMETERS, ServerLimits, checkLineLength
from ._limits import withBacklog
from ._workers import workersFromOptions

__all__ = [
    "Options",
    "keepAliveFromOptions",
    "optionError",
    "portToEndpoint",
]


def portToEndpoint(port: str) -> str:
    """
    Turn a C{--port} value into a server endpoint string: a bare number
    C{N} becomes C{tcp:N}; anything else is taken as an endpoint string.

    @raise ValueError: For a number outside 0..65535.
    """
    port = port.strip()
    if port.isdigit():
        number = int(port)
        if number > 65535:
            raise ValueError(f"'port' must be in 0..65535: {port}")
        return f"tcp:{number}"
    return port


def optionError(error: ValueError, options: dict[str, str]) -> usage.UsageError:
    """
    Turn a settings object's L{ValueError} into a L{usage.UsageError} that
    names the command-line option instead of the field.

    @param options: Field name to option name, e.g. C{{"idle": "idle"}}.
    """
    message = str(error)
    for field, option in options.items():
        message = message.replace(f"{field!r}", f"--{option}")
    return usage.UsageError(message)


def _seconds(name: str, value: str | None, timer: bool = True) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise usage.UsageError(
            f"--{name} must be a number of seconds: {value!r}"
        ) from None
    # A timer under 10 ms is a mistake (milliseconds given as seconds?).
    if timer and 0 < seconds < 0.01:
        raise usage.UsageError(f"--{name} must be at least 0.01 s (10 ms): {value}")
    return seconds


def _whole(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise usage.UsageError(f"--{name} must be a whole number: {value!r}") from None


#: Keepalive option to KeepAliveConfig field; the defaults are the seed's.
_KEEPALIVE_OPTIONS = {
    "keepidle": "idle",
    "keepinterval": "interval",
    "keepcount": "count",
    "user-timeout": "userTimeout",
}
_KEEPALIVE_DEFAULTS: dict[str, Any] = {
    "idle": 4,
    "interval": 1,
    "count": 5,
    "userTimeout": None,
}


def keepAliveFromOptions(options: usage.Options) -> KeepAliveConfig | None:
    """
    The L{KeepAliveConfig} that C{--keepalive}, C{--keepidle},
    C{--keepinterval}, C{--keepcount} and C{--user-timeout} ask for, or
    L{None} if none of them was given (giving any one turns keepalive on).

    @raise usage.UsageError: For a value that is not a whole number or is
        out of the kernel's bounds, naming the option.
    """
    given = {name: options[name] for name in _KEEPALIVE_OPTIONS}
    if not options["keepalive"] and all(v is None for v in given.values()):
        return None
    values = dict(_KEEPALIVE_DEFAULTS)
    for name, value in given.items():
        if value is not None:
            values[_KEEPALIVE_OPTIONS[name]] = _whole(name, value)
    try:
        return KeepAliveConfig(
            idle=values["idle"],
            interval=values["interval"],
            count=values["count"],
            userTimeout=values["userTimeout"],
        )
    except ValueError as e:
        raise optionError(
            e, {field: name for name, field in _KEEPALIVE_OPTIONS.items()}
        ) from None


def _pingServerConfig(options: Options) -> PingServerConfig:
    """
    The ping limits given by C{options}; bad values raise
    L{usage.UsageError} naming the option.
    """
    interval = _seconds("min-ping-interval", options["min-ping-interval"], timer=False)
    assert interval is not None
    try:
        return PingServerConfig(
            minPingInterval=interval,
            maxPingStrikes=_whole("max-ping-strikes", options["max-ping-strikes"]),
            maxLineLength=_whole("max-line-length", options["max-line-length"]),
        )
    except ValueError as e:
        raise optionError(
            e,
            {
                "minPingInterval": "min-ping-interval",
                "maxPingStrikes": "max-ping-strikes",
                "maxLineLength": "max-line-length",
            },
        ) from None


class Options(usage.Options):
    """
    Command-line options of C{twistd heartbeat}.
    """

    synopsis = (
        "[--port PORT] [--idle SECONDS] [--check-interval SECONDS] [ping/pong options]"
    )
    longdesc = (
        "Run the heartbeat demo server: it logs every connection and payload, "
        "answers 'ping' with 'pong', and closes connections that send nothing "
        "for --idle seconds."
    )

    optParameters = [
        [
            "port",
            "p",
            "6666",
            "Port number, or any server endpoint string "
            "(e.g. tcp:6666:interface=127.0.0.1).",
        ],
        ["idle", "i", "5", "Close a connection after this many silent seconds."],
        [
            "check-interval",
            "c",
            None,
            "Seconds between idle sweeps (default: idle/5, at most 1).",
        ],
        [
            "keepidle",
            None,
            None,
            "OS keepalive: seconds of silence before the first probe "
            "(1..32767; default 4).",
        ],
        [
            "keepinterval",
            None,
            None,
            "OS keepalive: seconds between unanswered probes (1..32767; default 1).",
        ],
        [
            "keepcount",
            None,
            None,
            "OS keepalive: unanswered probes before the connection is dropped "
            "(1..127; default 5).",
        ],
        [
            "user-timeout",
            None,
            None,
            "TCP_USER_TIMEOUT in milliseconds (Linux): drop the connection when "
            "sent data or probes stay unacknowledged this long.",
        ],
        # Application ping/pong (docs/pingpong.rst).
        [
            "min-ping-interval",
            None,
            "0.5",
            "Seconds a client must leave between pings; 0 turns the flood limit off.",
        ],
        [
            "max-ping-strikes",
            None,
            "2",
            "Early pings tolerated in a row before 'error too_many_pings' and close.",
        ],
        [
            "max-line-length",
            None,
            "1024",
            "Longest line accepted, in bytes (16..65536); a longer one "
            "closes the connection.",
        ],
        [
            "health-check-file",
            None,
            None,
            "Answer ping with pong only while this file exists (a demo health check).",
        ],
        # Limits, activity and logging (docs/hardening.rst).
        *LIMIT_PARAMETERS,
        # All cores (server/_workers.py, docs/performance.rst).
        [
            "workers",
            None,
            None,
            "Run N worker processes that share the port (SO_REUSEPORT; Linux); "
            "a worker that exits is restarted.",
        ],
    ]
    optFlags = [
        [
            "keepalive",
            None,
            "Turn on OS TCP keepalive for every connection (implied by any "
            "--keep* or --user-timeout option).",
        ],
        *LIMIT_FLAGS,
        [
            "reuse-port",
            None,
            "Listen with SO_REUSEPORT (Linux), so several servers can share the port.",
        ],
    ]

    heartbeatConfig: HeartbeatConfig
    keepAliveConfig: KeepAliveConfig | None
    pingServerConfig: PingServerConfig
    serverLimits: ServerLimits
    endpoint: str
    workers: int | None

    def postOptions(self) -> None:
        """
        Check the values; bad ones raise L{usage.UsageError} saying why.
        """
        idle = _seconds("idle", self["idle"])
        interval = _seconds("check-interval", self["check-interval"])
        assert idle is not None
        try:
            self.heartbeatConfig = HeartbeatConfig(idle=idle, checkInterval=interval)
            self.endpoint = portToEndpoint(self["port"])
        except ValueError as e:
            raise optionError(
                e, {"idle": "idle", "checkInterval": "check-interval", "port": "port"}
            ) from None
        self.keepAliveConfig = keepAliveFromOptions(self)
        checkLineLength(self)
        self.pingServerConfig = _pingServerConfig(self)
        self.workers = workersFromOptions(self)
        self.serverLimits = ServerLimits.fromOptions(self)
        self.endpoint = withBacklog(self.endpoint, self.serverLimits.backlog)
        from twisted.internet import reactor

        try:
            serverFromString(reactor, self.endpoint)  # type: ignore[no-untyped-call]
        except Exception as e:
            raise usage.UsageError(f"--port {self['port']!r}: {e}") from None
