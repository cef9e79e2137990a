"""
What an L{IdleTracker<heartbeat_twisted.IdleTracker>} keeps: one entry per
tracked owner, and the deadlines its sweep runs instead of reactor timers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from twisted.internet.interfaces import IDelayedCall
from zope.interface import implementer

if TYPE_CHECKING:
    from ._tracker import IdleTracker

__all__ = ["ActivityStamp", "Deadline", "IdleEntry", "Idler", "checkIdle"]

#: C{Deadline.key} of a deadline that is filed nowhere.
_UNFILED = -1


class Idler(Protocol):
    """
    What an L{IdleTracker} tracks: anything that can be told it timed out.
    """

    def heartbeatTimedOut(self) -> None:
        """
        Nothing was received for C{idle} seconds.
        """


def checkIdle(idle: float | None) -> float | None:
    """
    Check a per-connection idle: L{None} (the tracker's), C{0} (never) or a
    finite number of seconds C{> 0}.

    @raise ValueError: Naming C{idle}, the bound and the value.
    """
    if idle is None:
        return None
    if isinstance(idle, bool) or not isinstance(idle, int | float):
        raise ValueError(f"'idle' must be a number of seconds or None: {idle!r}")
    if not (math.isfinite(idle) and idle >= 0):
        raise ValueError(f"'idle' must be >= 0 and finite (0: never): {idle!r}")
    return float(idle)


class ActivityStamp(float):
    """
    What an L{IdleTracker} records as the time of a connection's activity:
    the time its next sweep is due, one object shared by all the activity
    recorded until that sweep runs.  Recording activity therefore reads no
    clock and allocates nothing (one attribute load, one store), and an
    entry holds no float of its own.

    The value is never before the activity while the sweeps run on time.
    When a sweep runs late, activity recorded meanwhile may be later than
    the value: C{end} is when that sweep did run, the latest the activity
    can have been, and the tracker times nothing out before C{end + idle}.

    @ivar end: When the sweep this stamp stands for ran (the tracker's
        C{seconds()}); infinity until it has.
    """

    __slots__ = ("end",)
    end: float


def newStamp(value: float) -> ActivityStamp:
    """
    A stamp for the sweep due at C{value}, not run yet.
    """
    stamp = ActivityStamp(value)
    stamp.end = math.inf
    return stamp


class IdleEntry:
    """
    One tracked connection: its owner, the time of its last activity and
    its idle time.

    The tracker keeps entries in deadline buckets and re-files them lazily;
    recording activity is just C{entry.last = tracker.stamp} (or any time
    on the tracker's C{seconds()}, C{entry.last = now}).

    Four slots and nothing else, so an entry costs 64 bytes and its bucket
    slot 8: the time is the tracker's shared L{ActivityStamp}, the idle the
    config's own float unless set, and the bucket is referenced, not
    numbered (a number above 256 would be an int object per entry).

    @ivar owner: The tracked object, or L{None} once it is no longer tracked.
    @ivar last: When it was last active, on the tracker's C{seconds()}: an
        L{ActivityStamp} (the sweep due next at the time), or an exact
        time set by its owner.
    @ivar idle: Seconds of silence after which it times out; C{0}: never.
    @ivar bucket: The deadline bucket it is filed in, L{None} if none (the
        tracker's business: a copy in any other bucket is stale).
    """

    __slots__ = ("bucket", "idle", "last", "owner")

    def __init__(self, owner: Idler, last: float, idle: float = 0.0) -> None:
        self.owner: Idler | None = owner
        self.last = last
        self.idle = idle
        self.bucket: list[IdleEntry] | None = None

    def __repr__(self) -> str:
        return f"<IdleEntry owner={self.owner!r} last={self.last!r} idle={self.idle!r}>"


@implementer(IDelayedCall)
class Deadline:
    """
    A call kept by an L{IdleTracker}'s sweep instead of the reactor: it runs
    at the first sweep at or after its time, so never early and at most
    C{checkInterval} late, and costs a list append instead of a reactor
    timer.  Make one with L{IdleTracker.callLater} or L{IdleTracker.callAt}.
    """

    __slots__ = ("_tracker", "args", "called", "cancelled", "func", "key", "kw", "time")

    def __init__(
        self,
        tracker: IdleTracker,
        when: float,
        func: Callable[..., object],
        args: tuple[object, ...],
        kw: dict[str, object] | None,
    ) -> None:
        self._tracker = tracker
        self.time = when
        self.func = func
        self.args = args
        self.kw = kw or None
        self.key = _UNFILED
        self.called = False
        self.cancelled = False

    def getTime(self) -> float:
        """
        When it is due, on the tracker's C{seconds()}.
        """
        return self.time

    def active(self) -> bool:
        """
        Neither called nor cancelled yet.
        """
        return not (self.called or self.cancelled)

    def cancel(self) -> None:
        """
        Do not call it.  Idempotent (unlike a reactor's C{DelayedCall}, a
        finished deadline is not an error: a close races its own abort).
        """
        if self.active():
            self.cancelled = True
            self._tracker.deadlineCancelled()

    def reset(self, secondsFromNow: float) -> None:
        """
        Make it due C{secondsFromNow} from now.
        """
        if self.active():
            self.time = self._tracker.seconds() + secondsFromNow
            self._tracker.fileDeadline(self)

    def delay(self, secondsLater: float) -> None:
        """
        Make it due C{secondsLater} later than it was.
        """
        if self.active():
            self.time += secondsLater
            self._tracker.fileDeadline(self)
