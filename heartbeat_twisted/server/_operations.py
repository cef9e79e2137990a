"""
The operations options of C{twistd heartbeat}: where it listens, metrics,
graceful stop, maximum connection age, log format and C{--version}
(docs/operations.rst).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from twisted.python import usage

from ._drain import DrainConfig, MaxAgeConfig

__all__ = [
    "DEFAULT_PORT",
    "LOG_FORMATS",
    "WORKER_ENVIRONMENT",
    "OperationsOptionsMixin",
    "metricsEndpoint",
    "portToEndpoint",
]

#: Where the server listens when no C{--port} is given.
DEFAULT_PORT = "6666"

#: The values of C{--log-format}.
LOG_FORMATS = ("text", "json")

#: The environment variable that names this process's worker (the
#: C{worker} label of every metric); C{"0"} when unset.
WORKER_ENVIRONMENT = "HEARTBEAT_WORKER"


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


def metricsEndpoint(value: str) -> str:
    """
    Turn a C{--metrics-port} value into a server endpoint string: a bare
    number C{N} becomes C{tcp:N:interface=127.0.0.1} (metrics are not for
    the world unless the endpoint says so); anything else is taken as an
    endpoint string.

    @raise ValueError: For a number outside 0..65535.
    """
    value = value.strip()
    if value.isdigit():
        number = int(value)
        if number > 65535:
            raise ValueError(f"'metrics-port' must be in 0..65535: {value}")
        return f"tcp:{number}:interface=127.0.0.1"
    return value


def _seconds(options: Any, name: str) -> float | None:
    value = options[name]
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise usage.UsageError(
            f"--{name} must be a number of seconds: {value!r}"
        ) from None


def _checkEndpoint(option: str, raw: str, endpoint: str) -> None:
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    try:
        serverFromString(reactor, endpoint)  # type: ignore[no-untyped-call]
    except Exception as e:
        raise usage.UsageError(f"--{option} {raw!r}: {e}") from None


class OperationsOptionsMixin:
    """
    The operations options, mixed into the C{twistd heartbeat}
    L{usage.Options} (which gathers C{optParameters} from every base).
    Call L{postOperations} from C{postOptions}.

    @ivar endpoints: The server endpoint strings to listen on, one per
        C{--port}, in the order given.
    @ivar endpoint: The first of them.
    @ivar metricsEndpoint: The endpoint string of the metrics page, or
        L{None} for none.
    @ivar drainConfig: What SIGTERM does (L{DrainConfig}).
    @ivar maxAgeConfig: Maximum connection age, or L{None} for none.
    @ivar worker: This process's C{worker} label for metrics.
    """

    optParameters: Any = [
        # Operations (docs/operations.rst).
        [
            "metrics-port",
            None,
            None,
            "Serve Prometheus metrics at /metrics on this endpoint; a bare "
            "port number binds 127.0.0.1 only (worker N of --workers: the "
            "number plus N). [default: no metrics]",
        ],
        [
            "drain-delay",
            None,
            "0",
            "On SIGTERM, seconds to answer pings 'error unhealthy' before the "
            "ports close (the balancer's detection time).",
        ],
        [
            "drain-grace",
            None,
            "5",
            "On SIGTERM, seconds the clients told to go get to leave; the "
            "rest are then aborted.",
        ],
        [
            "max-connection-age",
            None,
            None,
            "Tell a client to go after this many seconds connected (+-10% "
            "jitter). [default: no limit]",
        ],
        [
            "max-connection-age-grace",
            None,
            "5",
            "Seconds a client told to go for its age gets before the "
            "connection is closed.",
        ],
        [
            "log-format",
            None,
            "text",
            "Log lines as 'text' (twistd's format) or 'json' (one JSON object "
            "per event, for machines).",
        ],
    ]

    endpoints: list[str]
    endpoint: str
    metricsEndpoint: str | None
    drainConfig: DrainConfig
    maxAgeConfig: MaxAgeConfig | None
    worker: str

    if TYPE_CHECKING:
        # Given by usage.Options, a dict.
        def __getitem__(self, key: str) -> Any: ...
        def __setitem__(self, key: str, value: Any) -> None: ...
        def get(self, key: str, default: Any = None) -> Any: ...

    def opt_port(self, value: str) -> None:
        """
        Listen on this port number or server endpoint string (e.g.
        tcp:6666:interface=127.0.0.1, tcp6:6666, unix:/run/hb.sock,
        ssl:6667:certKey=cert.pem:privateKey=key.pem,
        haproxy:tcp:6666); repeat to listen on several. [default: 6666]
        """
        ports: list[str] = self.get("port") or []
        self["port"] = [*ports, value]

    opt_p = opt_port

    def opt_version(self) -> None:
        """
        Print the version of heartbeat_twisted (and Twisted's) and exit.
        """
        from twisted import copyright

        from .. import __version__

        print(f"heartbeat_twisted {__version__} (Twisted {copyright.version})")
        sys.exit(0)

    def postOperations(self) -> None:
        """
        Check the operations options; bad ones raise L{usage.UsageError}
        naming the option.
        """
        raw: list[str] = self.get("port") or [DEFAULT_PORT]
        self["port"] = raw
        endpoints = []
        for value in raw:
            try:
                endpoints.append(portToEndpoint(value))
            except ValueError as e:
                raise usage.UsageError(str(e).replace("'port'", "--port")) from None
            _checkEndpoint("port", value, endpoints[-1])
        self.endpoints = endpoints
        self.endpoint = endpoints[0]
        self.worker = os.environ.get(WORKER_ENVIRONMENT) or "0"
        metrics = self["metrics-port"]
        if metrics is not None and metrics.strip().isdigit() and self.worker.isdigit():
            # Each worker of --workers N serves its own metrics, on the
            # metrics port plus its number.
            if int(metrics) and int(self.worker):
                metrics = str(int(metrics) + int(self.worker))
        self.metricsEndpoint = None
        if metrics is not None:
            try:
                self.metricsEndpoint = metricsEndpoint(metrics)
            except ValueError as e:
                raise usage.UsageError(
                    str(e).replace("'metrics-port'", "--metrics-port")
                ) from None
            _checkEndpoint("metrics-port", metrics, self.metricsEndpoint)
        if self["log-format"] not in LOG_FORMATS:
            raise usage.UsageError(
                f"--log-format must be one of {', '.join(LOG_FORMATS)}: "
                f"{self['log-format']!r}"
            )
        self._postDrain()

    def _postDrain(self) -> None:
        delay = _seconds(self, "drain-delay")
        grace = _seconds(self, "drain-grace")
        assert delay is not None and grace is not None
        try:
            self.drainConfig = DrainConfig(delay=delay, grace=grace)
        except ValueError as e:
            raise _renamed(
                e, {"delay": "drain-delay", "grace": "drain-grace"}
            ) from None
        age = _seconds(self, "max-connection-age")
        ageGrace = _seconds(self, "max-connection-age-grace")
        assert ageGrace is not None
        self.maxAgeConfig = None
        if age is not None:
            try:
                self.maxAgeConfig = MaxAgeConfig(age=age, grace=ageGrace)
            except ValueError as e:
                raise _renamed(
                    e,
                    {"age": "max-connection-age", "grace": "max-connection-age-grace"},
                ) from None


def _renamed(error: ValueError, options: dict[str, str]) -> usage.UsageError:
    message = str(error)
    for field, option in options.items():
        message = message.replace(f"{field!r}", f"--{option}")
    return usage.UsageError(message)
