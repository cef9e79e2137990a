"""
C{python -m heartbeat_twisted.client ENDPOINT --interval SECONDS --timeout
SECONDS}: keep one pinging connection to a server and print what happens.

One line on standard output per event::

    connected 127.0.0.1:6666
    rtt 0.215 ms min 0.198 ms smoothed 0.211 ms
    unhealthy file: /tmp/ok does not exist
    dead: no answer within 5 s from 127.0.0.1:6666
    disconnected 127.0.0.1:6666: Connection was aborted locally ...
    connecting tcp:127.0.0.1:6666: Connection refused; retrying in 1.3 s
    goaway from 127.0.0.1:6666 within 5 s: shutdown
    retrying in 0.4 s

A connection counts as good once a ping on it was answered; until then
the wait between attempts grows exponentially (with jitter).  Told to go,
it reconnects within a second.  Also installed as the C{heartbeat-client}
command.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from twisted.application.internet import backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.error import ConnectionRefusedError
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python import usage
from twisted.python.failure import Failure

from .ping import (
    PingClientFactory,
    PingClientProtocol,
    PingConfig,
    PingEvents,
    pingClientService,
)
from .tap import optionError

__all__ = ["Options", "PrintingEvents", "main"]


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise usage.UsageError(f"--{name} must be a number: {value!r}") from None


def _optionsFirst(options: type[usage.Options], argv: Sequence[str]) -> list[str]:
    """
    Move the positional arguments of C{argv} after its options, so that
    C{ENDPOINT --interval 2} parses as C{--interval 2 ENDPOINT} does
    (L{usage.Options} stops at the first positional argument).
    """
    takesValue: set[str] = set()
    for long, short, *_ in getattr(options, "optParameters", []):
        takesValue.add(f"--{long}")
        if short:
            takesValue.add(f"-{short}")
    flags: list[str] = []
    positional: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg == "--":
            positional.extend(rest)
        elif arg.startswith("-") and arg != "-":
            flags.append(arg)
            value = next(rest, None) if arg in takesValue else None
            if value is not None:
                flags.append(value)
        else:
            positional.append(arg)
    return [*flags, "--", *positional] if positional else flags


class Options(usage.Options):
    """
    Command-line options of the client command.
    """

    synopsis = (
        "Usage: heartbeat-client ENDPOINT [--interval SECONDS] [--timeout SECONDS] "
        "[options]"
    )
    longdesc = (
        "Connect to ENDPOINT (a Twisted client endpoint string, e.g. "
        "tcp:127.0.0.1:6666), send 'ping N' whenever nothing was sent for "
        "--interval seconds, declare the server dead when no answer comes "
        "within --timeout seconds, and reconnect with backoff. Prints one "
        "line per connection, round trip and dead peer."
    )
    optParameters = [
        ["interval", "i", "2", "Seconds without sending before a ping."],
        ["timeout", "t", "5", "Seconds to wait for the answer to a ping."],
        ["jitter", None, "0.1", "Fraction of the interval to shorten by, at random."],
        ["reconnect-initial", None, "1", "First reconnect delay, seconds."],
        ["reconnect-max", None, "30", "Longest reconnect delay, seconds."],
    ]
    optFlags = [["verbose", "v", "Log library events to standard error."]]

    endpoint: str
    pingConfig: PingConfig
    retryPolicy: Callable[[int], float]

    def parseArgs(self, *args: str) -> None:
        """
        Take the one positional argument, the endpoint string.
        """
        if len(args) != 1:
            raise usage.UsageError(
                f"give exactly one ENDPOINT (e.g. tcp:127.0.0.1:6666), not {len(args)}"
            )
        self.endpoint = args[0]

    def postOptions(self) -> None:
        """
        Check the values; bad ones raise L{usage.UsageError} saying why.
        """
        try:
            self.pingConfig = PingConfig(
                interval=_number("interval", self["interval"]),
                timeout=_number("timeout", self["timeout"]),
                jitter=_number("jitter", self["jitter"]),
            )
            initial = _number("reconnect-initial", self["reconnect-initial"])
            top = _number("reconnect-max", self["reconnect-max"])
            if not initial > 0:
                raise ValueError(f"'initialDelay' must be > 0: {initial!r}")
            if top < initial:
                raise ValueError(
                    f"'maxDelay' must be >= initialDelay ({initial!r}): {top!r}"
                )
            self.retryPolicy = backoffPolicy(initial, top)
        except ValueError as e:
            raise optionError(
                e,
                {
                    "interval": "interval",
                    "timeout": "timeout",
                    "jitter": "jitter",
                    "initialDelay": "reconnect-initial",
                    "maxDelay": "reconnect-max",
                },
            ) from None
        from twisted.internet import reactor

        try:
            clientFromString(reactor, self.endpoint)  # type: ignore[no-untyped-call]
        except Exception as e:
            raise usage.UsageError(f"ENDPOINT {self.endpoint!r}: {e}") from None


def _peer(protocol: PingClientProtocol) -> str:
    transport: Any = protocol.transport
    try:
        address = transport.getPeer()
        return f"{address.host}:{address.port}"
    except Exception:
        return "?"


def _why(reason: Failure) -> str:
    """
    A failed attempt in a few words: C{Connection refused}, not Twisted's
    whole sentence.
    """
    if isinstance(reason.value, ConnectionRefusedError):
        return "Connection refused"
    return reason.getErrorMessage()


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3f} ms"


class PrintingEvents(PingEvents):
    """
    Print one line per event on C{out}, flushed at once (the output is read
    line by line through pipes).
    """

    def __init__(self, out: TextIO, endpoint: str = "") -> None:
        """
        @param endpoint: The endpoint string, named in the lines about
            failed attempts.
        """
        self.out = out
        self.endpoint = endpoint

    def _say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def connected(self, protocol: PingClientProtocol) -> None:
        """
        C{connected HOST:PORT}.
        """
        self._say(f"connected {_peer(protocol)}")

    def roundTrip(self, protocol: PingClientProtocol, rtt: float) -> None:
        """
        C{rtt LAST min MIN smoothed SRTT}, in milliseconds.
        """
        stats = protocol.pingStats
        self._say(f"rtt {_ms(rtt)} min {_ms(stats.min)} smoothed {_ms(stats.smoothed)}")

    def unhealthy(self, protocol: PingClientProtocol, report: str) -> None:
        """
        C{unhealthy REPORT}.
        """
        self._say(f"unhealthy {report}")

    def dead(self, protocol: PingClientProtocol, waited: float) -> None:
        """
        C{dead: no answer within T s from HOST:PORT}.
        """
        self._say(f"dead: no answer within {waited:g} s from {_peer(protocol)}")

    def peerError(self, protocol: PingClientProtocol, text: str) -> None:
        """
        C{peer error: TEXT}.
        """
        self._say(f"peer error: {text}")

    def disconnected(self, protocol: PingClientProtocol, reason: Failure) -> None:
        """
        C{disconnected HOST:PORT: REASON}.
        """
        self._say(f"disconnected {_peer(protocol)}: {reason.getErrorMessage()}")

    def goAway(self, protocol: PingClientProtocol, reason: str, grace: float) -> None:
        """
        C{goaway from HOST:PORT within GRACE s: REASON}.
        """
        self._say(f"goaway from {_peer(protocol)} within {grace:g} s: {reason}")

    def retrying(self, delay: float, reason: Failure | None) -> None:
        """
        C{connecting ENDPOINT: REASON; retrying in DELAY s} after a failed
        attempt, else C{retrying in DELAY s}.
        """
        if reason is None:
            self._say(f"retrying in {delay:.1f} s")
        else:
            self._say(
                f"connecting {self.endpoint}: {_why(reason)}; retrying in {delay:.1f} s"
            )


def run(reactor: Any, options: Options, out: TextIO) -> Deferred[None]:
    """
    Start the reconnecting client; the returned L{Deferred} never fires
    (the command runs until interrupted).
    """
    factory = PingClientFactory(
        options.pingConfig,
        PrintingEvents(out, options.endpoint),
        options.retryPolicy,
        clock=reactor,
    )
    endpoint = clientFromString(reactor, options.endpoint)  # type: ignore[no-untyped-call]
    service = pingClientService(endpoint, factory)
    service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    return Deferred()


def main(argv: Sequence[str] | None = None) -> None:
    """
    The command: parse C{argv} (default C{sys.argv[1:]}), then run until
    interrupted.  Bad arguments exit with status 2 and a usage message.
    """
    options = Options()  # type: ignore[no-untyped-call]
    try:
        args = _optionsFirst(Options, sys.argv[1:] if argv is None else argv)
        options.parseOptions(args)  # type: ignore[no-untyped-call]
    except usage.UsageError as e:
        sys.stderr.write(f"{options}\nheartbeat-client: error: {e}\n")
        raise SystemExit(2) from None
    level = LogLevel.info if options["verbose"] else LogLevel.error
    globalLogBeginner.beginLoggingTo(
        [
            FilteringLogObserver(
                textFileLogObserver(sys.stderr),
                [LogLevelFilterPredicate(defaultLogLevel=level)],
            )
        ],
        redirectStandardIO=False,
    )
    from twisted.internet import task

    task.react(run, (options, sys.stdout))


if __name__ == "__main__":
    main()
