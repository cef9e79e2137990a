"""
C{twistd heartbeat}: options and service for the demo server.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.python import usage

from .._config import HeartbeatConfig, KeepAliveConfig
from ..ping._config import PingServerConfig
from ._limitoptions import LIMIT_FLAGS, LIMIT_PARAMETERS, ServerLimits, checkLineLength
from ._limits import withBacklog
from ._operations import OperationsOptionsMixin, portToEndpoint
from ._workers import workersFromOptions
from ._writeoptions import WRITE_FLAGS, WRITE_PARAMETERS, WriteSettings

__all__ = [
    "Options",
    "keepAliveFromOptions",
    "optionError",
    "portToEndpoint",
]


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
    L{usage.UsageError} naming the option.  The deprecated
    C{--min-ping-interval} and C{--max-ping-strikes} print a deprecation
    line and stand for C{--ping-rate 1/N} and C{--ping-burst N+1}.
    """
    try:
        rate = float(options["ping-rate"])
    except ValueError:
        raise usage.UsageError(
            f"--ping-rate must be a number: {options['ping-rate']!r}"
        ) from None
    burst = _whole("ping-burst", options["ping-burst"])
    interval = _seconds("min-ping-interval", options["min-ping-interval"], timer=False)
    strikes = options["max-ping-strikes"]
    if interval is not None or strikes is not None:
        sys.stderr.write(
            "twistd heartbeat: --min-ping-interval and --max-ping-strikes are "
            "deprecated: use --ping-rate (1/interval) and --ping-burst "
            "(strikes + 1)\n"
        )
    if interval is not None:
        if interval < 0:
            raise usage.UsageError(f"--min-ping-interval must be >= 0: {interval}")
        rate = 0.0 if interval == 0 else 1.0 / interval
    if strikes is not None:
        burst = _whole("max-ping-strikes", strikes) + 1
        if burst < 1:
            raise usage.UsageError(f"--max-ping-strikes must be >= 0: {burst - 1}")
    try:
        return PingServerConfig(
            pingRate=rate,
            pingBurst=burst,
            maxLineLength=_whole("max-line-length", options["max-line-length"]),
            healthCheckMaxAge=_seconds(
                "health-check-max-age", options["health-check-max-age"], timer=False
            )
            or 0.0,
        )
    except ValueError as e:
        raise optionError(
            e,
            {
                "pingRate": "ping-rate",
                "pingBurst": "ping-burst",
                "maxLineLength": "max-line-length",
                "healthCheckMaxAge": "health-check-max-age",
            },
        ) from None


class Options(OperationsOptionsMixin, usage.Options):
    """
    Command-line options of C{twistd heartbeat}.
    """

    synopsis = (
        "[--port PORT] [--idle SECONDS] [--check-interval SECONDS] [ping/pong options]"
    )
    longdesc = (
        "Run the heartbeat server: it logs each connection and why it closed "
        "(payloads only with --log-payloads), answers 'ping' with 'pong', and "
        "closes connections that send no ping (see --activity) for --idle "
        "seconds.  Every limit has a safe default: docs/hardening.rst."
    )

    optParameters = [
        [
            "idle",
            "i",
            "5",
            "Seconds without receiving anything before a connection is closed.",
        ],
        [
            "check-interval",
            "c",
            None,
            "Seconds between idle sweeps. [default: idle/5, at most 1]",
        ],
        [
            "keepidle",
            None,
            None,
            "OS keepalive: seconds of silence before the first probe, "
            "1..32767. [default: 4]",
        ],
        [
            "keepinterval",
            None,
            None,
            "OS keepalive: seconds between unanswered probes, 1..32767. [default: 1]",
        ],
        [
            "keepcount",
            None,
            None,
            "OS keepalive: unanswered probes before the connection is dropped, "
            "1..127. [default: 5]",
        ],
        [
            "user-timeout",
            None,
            None,
            "Milliseconds sent data or probes may stay unacknowledged before "
            "the connection is dropped (TCP_USER_TIMEOUT, Linux). "
            "[default: the kernel's]",
        ],
        # Application ping/pong (docs/pingpong.rst).
        [
            "ping-rate",
            None,
            "2",
            "Pings a second a client may send, sustained; 0 turns the flood limit off.",
        ],
        [
            "ping-burst",
            None,
            "3",
            "Pings a client may send at once; the next gets "
            "'error too_many_pings' and the connection is closed.",
        ],
        [
            "min-ping-interval",
            None,
            None,
            "Deprecated: use --ping-rate (1/SECONDS).",
        ],
        [
            "max-ping-strikes",
            None,
            None,
            "Deprecated: use --ping-burst (N + 1).",
        ],
        [
            "max-line-length",
            None,
            "1024",
            "Longest line accepted, in bytes, 16..65536; a longer one "
            "closes the connection.",
        ],
        [
            "health-check-file",
            None,
            None,
            "Answer ping with pong only while this file exists (a demo "
            "health check). [default: no file check]",
        ],
        [
            "health-check-max-age",
            None,
            "0.5",
            "Seconds a verdict of the health checks answers later pings "
            "too (a failing check shows within this time); 0: run them for "
            "every ping.",
        ],
        # Limits, activity and logging (docs/hardening.rst).
        *LIMIT_PARAMETERS,
        # Eager sends, bounded unsent output (docs/writepath.rst).
        *WRITE_PARAMETERS,
        # All cores (server/_workers.py, docs/performance.rst).
        [
            "workers",
            None,
            None,
            "Worker processes that share the ports (SO_REUSEPORT; Linux); a "
            "worker that exits is restarted. [default: one process, no workers]",
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
        *WRITE_FLAGS,
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
    writeSettings: WriteSettings
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
        except ValueError as e:
            raise optionError(
                e, {"idle": "idle", "checkInterval": "check-interval"}
            ) from None
        self.keepAliveConfig = keepAliveFromOptions(self)
        checkLineLength(self)
        self.pingServerConfig = _pingServerConfig(self)
        self.postOperations()
        self.workers = workersFromOptions(self)
        self.serverLimits = ServerLimits.fromOptions(self)
        self.writeSettings = WriteSettings.fromOptions(self)
        backlog = self.serverLimits.backlog
        self.endpoints = [withBacklog(e, backlog) for e in self.endpoints]
        self.endpoint = self.endpoints[0]
