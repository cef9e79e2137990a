"""
Frozen, validated settings.

Every setting object is immutable and checks its values when it is built, so
a bad value fails where it is written, not minutes later inside a sweep.
Change one by copying it: C{attrs.evolve(config, idle=10)}.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["HeartbeatConfig", "KeepAliveConfig", "defaultCheckInterval"]


def _number(name: str, value: object) -> float:
    """
    Turn C{value} into a finite float, or raise L{ValueError} naming C{name}.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name!r} must be a number: {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name!r} must be finite: {value!r}")
    return result


def _whole(name: str, value: object, low: int, high: int | None) -> int:
    """
    Check that C{value} is an integer in C{[low, high]}.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name!r} must be a whole number: {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{name!r} must be {bound}: {value!r}")
    return value


def defaultCheckInterval(idle: float) -> float:
    """
    The sweep period used when none is given: C{idle / 5}, but at most one
    second, so a connection is closed at most 20% (and at most 1 s) late.
    """
    return min(idle / 5.0, 1.0)


@attrs.frozen(init=False)
class HeartbeatConfig:
    """
    The server-side idle heartbeat: close a connection that has received
    nothing for C{idle} seconds.

    The sweep runs every C{checkInterval} seconds, so a silent connection is
    closed no earlier than C{idle} and no later than C{idle + checkInterval}
    seconds after the last byte it received.

    @ivar idle: Seconds of silence after which a connection is closed
        (Swoole's C{heartbeat_idle_time}); C{> 0}.
    @ivar checkInterval: Seconds between sweeps (Swoole's
        C{heartbeat_check_interval}); C{0 < checkInterval <= idle}.  Given as
        L{None}, it is L{defaultCheckInterval}C{(idle)}.
    @ivar countOutbound: If C{True}, bytes that leave the process also
        count as activity: what the kernel accepts from the connection's
        send buffer, not C{write()} calls, so a download to a peer that
        reads but sends nothing stays open while a peer that stops reading
        is still closed at C{idle}.  Only Twisted TCP connections (also
        under TLS) can tell; on other transports nothing outbound counts.
        By default (C{False}) only received bytes count, as in Swoole: a
        long download to a peer that sends nothing is cut at C{idle}.
    @ivar closeGrace: Seconds a timed-out connection may take to close
        cleanly (flushing what it has queued) before it is aborted; C{>= 0}.
    """

    idle: float
    checkInterval: float
    countOutbound: bool
    closeGrace: float

    def __init__(
        self,
        idle: float,
        checkInterval: float | None = None,
        countOutbound: bool = False,
        closeGrace: float = 5.0,
    ) -> None:
        idle = _number("idle", idle)
        if idle <= 0:
            raise ValueError(f"'idle' must be > 0: {idle!r}")
        if checkInterval is None:
            interval = defaultCheckInterval(idle)
        else:
            interval = _number("checkInterval", checkInterval)
            if not 0 < interval <= idle:
                raise ValueError(
                    f"'checkInterval' must be > 0 and <= idle ({idle!r}): "
                    f"{checkInterval!r}"
                )
        if not isinstance(countOutbound, bool):
            raise ValueError(f"'countOutbound' must be a bool: {countOutbound!r}")
        grace = _number("closeGrace", closeGrace)
        if grace < 0:
            raise ValueError(f"'closeGrace' must be >= 0: {closeGrace!r}")
        self.__attrs_init__(idle, interval, countOutbound, grace)


@attrs.frozen(init=False)
class KeepAliveConfig:
    """
    OS-level TCP keepalive for a connection (Swoole's C{open_tcp_keepalive},
    C{tcp_keepidle}, C{tcp_keepinterval}, C{tcp_keepcount},
    C{tcp_user_timeout}).

    The kernel sends the first probe after C{idle} seconds without traffic.
    While probes are answered they repeat every C{idle} seconds; unanswered
    ones are repeated every C{interval} seconds, and after C{count} of them
    the connection is reported dead (C{ETIMEDOUT}): about
    C{idle + interval * count} seconds after the last activity.

    @ivar idle: C{TCP_KEEPIDLE}, seconds, 1..32767.
    @ivar interval: C{TCP_KEEPINTVL}, seconds, 1..32767.
    @ivar count: C{TCP_KEEPCNT}, unanswered probes, 1..127.
    @ivar userTimeout: C{TCP_USER_TIMEOUT} in milliseconds (C{>= 0}; C{0}
        means the kernel default), or L{None} to leave it alone.  When set,
        it decides when an unacknowledged connection is aborted, instead of
        C{count}.
    """

    idle: int
    interval: int
    count: int
    userTimeout: int | None

    def __init__(
        self,
        idle: int,
        interval: int,
        count: int,
        userTimeout: int | None = None,
    ) -> None:
        values: list[Any] = [
            _whole("idle", idle, 1, 32767),
            _whole("interval", interval, 1, 32767),
            _whole("count", count, 1, 127),
            None
            if userTimeout is None
            else _whole("userTimeout", userTimeout, 0, 2**31 - 1),
        ]
        self.__attrs_init__(*values)

    @property
    def deadAfter(self) -> float:
        """
        Seconds after the last activity at which the kernel reports a silent
        peer dead: C{idle + interval * count}, or with a C{userTimeout} the
        first keepalive check at or after it,
        C{idle + interval * max(1, ceil((userTimeout / 1000 - idle) /
        interval))}.

        The kernel looks at the user timeout only when a probe is due (at
        C{idle + interval * k}) and only once a probe is outstanding, and
        then ignores C{count}: with 2/1/9 and C{userTimeout=3500} the abort
        comes at 4 s (measured: 4.07 s), not at 3.5 s nor at 11 s.  (While
        sent data is unacknowledged, retransmission decides instead, and
        the user timeout applies from the first unacknowledged send.)
        """
        if self.userTimeout:
            beyondIdle = self.userTimeout - self.idle * 1000
            step = self.interval * 1000
            probes = max(1, -(-beyondIdle // step))
            return float(self.idle + self.interval * probes)
        return float(self.idle + self.interval * self.count)


def _positive(name: str, value: object) -> float:
    """
    Check that C{value} is a finite number C{> 0}.
    """
    result = _number(name, value)
    if result <= 0:
        raise ValueError(f"{name!r} must be > 0: {value!r}")
    return result
