"""
The write-path options of C{twistd heartbeat}: eager sends and bounded
unsent output per connection (docs/writepath.rst).
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.python import usage

from .._writepath import WritePath, installWritePath

__all__ = ["WRITE_FLAGS", "WRITE_PARAMETERS", "WriteSettings", "installServerWritePath"]

WRITE_PARAMETERS: list[list[Any]] = [
    [
        "max-unsent",
        None,
        "1048576",
        "Bytes written to a client and not yet sent above which the server "
        "stops reading from it; 0: no bound.",
    ],
    [
        "slow-reader-grace",
        None,
        "10",
        "Seconds a client may stay above --max-unsent before it is aborted "
        "(reason 'slow reader').",
    ],
]

WRITE_FLAGS: list[list[Any]] = [
    [
        "no-eager-writes",
        None,
        "Send replies on the next reactor turn, as plain Twisted does, "
        "instead of at once.",
    ],
]


@attrs.frozen
class WriteSettings:
    """
    How the server writes to its clients.

    @ivar eager: Send at once when nothing is unsent.
    @ivar maxUnsent: Unsent bytes above which reading from the client
        stops, or L{None} for no bound.
    @ivar grace: Seconds above C{maxUnsent} before the client is aborted.
    """

    eager: bool = True
    maxUnsent: int | None = 1 << 20
    grace: float = 10.0

    def __attrs_post_init__(self) -> None:
        if self.maxUnsent is not None and self.maxUnsent < 1:
            raise ValueError(f"'maxUnsent' must be >= 1: {self.maxUnsent!r}")
        if not self.grace >= 0.01:
            raise ValueError(f"'grace' must be >= 0.01: {self.grace!r}")

    @classmethod
    def fromOptions(cls, options: Any) -> WriteSettings:
        """
        Read and check the write-path options; a bad value raises
        L{usage.UsageError} naming the option.
        """
        try:
            maxUnsent = int(options["max-unsent"])
        except ValueError:
            raise usage.UsageError(
                f"--max-unsent must be a whole number of bytes: "
                f"{options['max-unsent']!r}"
            ) from None
        if maxUnsent < 0:
            raise usage.UsageError(f"--max-unsent must be >= 0: {maxUnsent}")
        try:
            grace = float(options["slow-reader-grace"])
        except ValueError:
            raise usage.UsageError(
                f"--slow-reader-grace must be a number of seconds: "
                f"{options['slow-reader-grace']!r}"
            ) from None
        if not grace >= 0.01:
            raise usage.UsageError(
                f"--slow-reader-grace must be >= 0.01 seconds: {grace!r}"
            )
        return cls(
            eager=not options["no-eager-writes"],
            maxUnsent=maxUnsent or None,
            grace=grace,
        )


def installServerWritePath(protocol: Any) -> WritePath | None:
    """
    Put the write path on a server connection as its factory's
    C{writeSettings} say (L{WriteSettings}'s defaults if it has none),
    timed by the factory's C{clock}.  A client aborted as a slow reader
    has C{protocol.writeCloseReason == "slow reader"}.
    """
    factory = getattr(protocol, "factory", None)
    settings = getattr(factory, "writeSettings", None)
    if not isinstance(settings, WriteSettings):
        settings = WriteSettings()
    clock: IReactorTime | None = getattr(factory, "clock", None)
    return installWritePath(
        protocol,
        clock,
        eager=settings.eager,
        maxUnsent=settings.maxUnsent,
        grace=settings.grace,
    )
