"""
Frozen, validated settings of the application heartbeat.
"""

from __future__ import annotations

import attrs

from .._config import _number, _positive, _whole

__all__ = ["PingConfig", "PingServerConfig"]


_WATCHED = ("sent", "received", "any")


@attrs.frozen(init=False)
class PingConfig:
    """
    The pinging side of the application heartbeat: send C{ping} when the
    connection has been quiet for C{interval} seconds, and declare the peer
    dead when no answer arrives within C{timeout} seconds.

    Each wait is drawn afresh as C{interval * (1 - jitter * r)} with C{r} in
    C{[0, 1)}, so a fleet started together does not ping in lockstep and no
    wait is longer than C{interval} (a proxy timeout above C{interval} is
    therefore always beaten).

    @ivar interval: Seconds of quiet before a ping; C{> 0}.
    @ivar timeout: Seconds to wait for the answer to a ping; C{> 0}.
    @ivar jitter: The fraction of C{interval} the wait may be shortened by,
        at random; C{0 <= jitter < 1}.
    @ivar watch: Which quiet counts: C{"sent"} (nothing written for
        C{interval}: a client keeping a path open), C{"received"} (nothing
        received: a server probing clients that went quiet) or C{"any"} (no
        traffic either way).
    """

    interval: float
    timeout: float
    jitter: float
    watch: str

    def __init__(
        self,
        interval: float,
        timeout: float,
        jitter: float = 0.1,
        watch: str = "sent",
    ) -> None:
        spread = _number("jitter", jitter)
        if not 0 <= spread < 1:
            raise ValueError(f"'jitter' must be >= 0 and < 1: {jitter!r}")
        if watch not in _WATCHED:
            raise ValueError(f"'watch' must be one of {', '.join(_WATCHED)}: {watch!r}")
        self.__attrs_init__(
            _positive("interval", interval),
            _positive("timeout", timeout),
            spread,
            watch,
        )


@attrs.frozen(init=False)
class PingServerConfig:
    """
    Limits of the answering side of the application heartbeat, which keep a
    misbehaving client from hurting the server or its other clients.

    Ping floods are refused as gRPC refuses them
    (C{GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS},
    C{GRPC_ARG_HTTP2_MAX_PING_STRIKES}): a ping that arrives less than
    C{minPingInterval} seconds after the previous one is a strike, a ping on
    time clears the strikes, and the ping that brings the strikes above
    C{maxPingStrikes} gets C{error too_many_pings} and the connection is
    closed.

    @ivar minPingInterval: Seconds a client must leave between pings;
        C{>= 0} (C{0} turns the flood limit off).
    @ivar maxPingStrikes: Early pings tolerated in a row; C{>= 0}.
    @ivar maxLineLength: The longest line accepted, in bytes without the
        line end, 16..1048576; a longer one gets C{error line_too_long} and
        the connection is closed.
    @ivar maxBadLines: Malformed or unknown lines tolerated (each answered
        with an error line); the next one closes the connection; C{>= 0}.
    @ivar closeGrace: Seconds a connection closed for misbehaving may take to
        flush its last error line before it is aborted; C{>= 0}.
    """

    minPingInterval: float
    maxPingStrikes: int
    maxLineLength: int
    maxBadLines: int
    closeGrace: float

    def __init__(
        self,
        minPingInterval: float = 0.5,
        maxPingStrikes: int = 2,
        maxLineLength: int = 1024,
        maxBadLines: int = 3,
        closeGrace: float = 5.0,
    ) -> None:
        interval = _number("minPingInterval", minPingInterval)
        if interval < 0:
            raise ValueError(f"'minPingInterval' must be >= 0: {minPingInterval!r}")
        grace = _number("closeGrace", closeGrace)
        if grace < 0:
            raise ValueError(f"'closeGrace' must be >= 0: {closeGrace!r}")
        self.__attrs_init__(
            interval,
            _whole("maxPingStrikes", maxPingStrikes, 0, None),
            _whole("maxLineLength", maxLineLength, 16, 1048576),
            _whole("maxBadLines", maxBadLines, 0, None),
            grace,
        )
