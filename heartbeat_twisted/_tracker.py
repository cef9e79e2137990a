"""
L{IdleTracker}: one periodic sweep that finds the silent connections among
any number of tracked ones, and keeps their other deadlines.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime

from ._config import HeartbeatConfig
from ._entries import ActivityStamp, Deadline, IdleEntry, Idler, checkIdle
from ._sweep import SweepEngine
from ._time import resolveClock

__all__ = [
    "ActivityStamp",
    "Deadline",
    "IdleEntry",
    "IdleTracker",
    "Idler",
    "checkIdle",
    "sharedTracker",
]


class IdleTracker(SweepEngine):
    """
    Time out connections that have been silent for their idle time, with a
    single L{LoopingCall<twisted.internet.task.LoopingCall>} for all of
    them; keep their other deadlines too.

    Costs:
      - recording activity (L{touch}, or C{entry.last = tracker.stamp}) is
        one attribute load and one store: no clock read, no allocation
        (see L{ActivityStamp});
      - a sweep visits only the entries whose bucket is due: each entry is
        filed under the last sweep at or before its deadline, and an entry
        that saw activity since it was filed is re-filed then (once per
        idle period at most), never on each received chunk;
      - time-outs are handed out at most C{maxPerTurn} (or C{turnBudget}
        seconds' worth) per reactor turn; the rest follow in the next turns,
        so that timing out thousands at once never stalls the reactor
        (those due for more than half a C{checkInterval} go first);
      - the L{LoopingCall<twisted.internet.task.LoopingCall>} runs only while
        something is tracked or due.

    Timing: activity at C{t} is recorded as the time C{s} of the sweep due
    next (C{t <= s < t + checkInterval}); the entry gets
    C{heartbeatTimedOut()} at C{s + idle}: at that sweep, or in a turn timed
    for it when C{idle} is not a whole number of sweep periods.  So never
    before C{t + idle}, and no later than C{t + idle + checkInterval} (given
    a clock that runs the sweeps on time; a sweep that runs late moves the
    time-outs of what it stamped by as much).  If the owner is still
    tracked after that call (it chose not to close), its silence is counted
    afresh.

    Stalls: a sweep (or follow-up turn) that runs more than C{checkInterval}
    late decides nothing in that turn: the decision waits one reactor turn,
    after the reactor has read what arrived during the stall.

    Time: decisions use L{decisionSeconds<heartbeat_twisted._time.decisionSeconds>}:
    C{time.monotonic} when the clock is a real reactor, the clock's own time
    when it is a fake.

    How the sweep runs (its buckets, its tick, its turns) is
    L{SweepEngine<heartbeat_twisted._sweep.SweepEngine>}.

    @ivar stamp: What to record as the time of activity now (see
        L{ActivityStamp}): the time the next sweep is due.
    @ivar ticks: Sweeps run so far.
    @ivar lastSweepSeconds: Seconds of CPU-bound wall time the latest turn
        of sweep work took (L{None} before the first), for metrics.
    @ivar visited: Entries looked at by all sweeps so far.
    @ivar lastVisited: Entries looked at by the latest sweep.
    @ivar timedOut: Times C{heartbeatTimedOut} was called.
    @ivar stalls: Late turns whose decisions waited for a reactor turn.
    @ivar turns: Follow-up turns run (after a stall, or to spread time-outs).
    """

    def __len__(self) -> int:
        """
        The number of tracked entries.
        """
        return self._count

    @property
    def pendingDeadlines(self) -> int:
        """
        The number of L{Deadline}s neither called nor cancelled yet.
        """
        return self._calls

    @property
    def running(self) -> bool:
        """
        Whether the sweep is scheduled: exactly while something is tracked
        or a L{Deadline} is pending.
        """
        return self._loop is not None

    # Entries

    def track(self, owner: Idler, idle: float | None = None) -> IdleEntry:
        """
        Start tracking C{owner}; its silence counts from now.

        @param idle: Its idle time (see L{setIdle}); the config's if L{None}.
        @return: The entry: pass it to L{touch}, L{setIdle} and L{untrack}.
        """
        checked = checkIdle(idle)
        now = self.seconds()
        self._wake(now)
        entry = IdleEntry(owner, now, self._idle if checked is None else checked)
        self._count += 1
        if entry.idle:
            self._file(entry, now + entry.idle)
        return entry

    def touch(self, entry: IdleEntry) -> None:
        """
        Record activity on C{entry} now.
        """
        entry.last = self.stamp

    def setIdle(self, entry: IdleEntry, idle: float | None) -> None:
        """
        Change C{entry}'s idle time, at any time: it times out C{idle}
        seconds after its last activity, but never earlier than the next
        sweep (a shorter idle that has already passed is decided then).

        @param idle: Seconds C{> 0}; C{0} never times it out; L{None} goes
            back to the config's C{idle}.
        @raise ValueError: For a negative or non-finite C{idle}.
        """
        checked = checkIdle(idle)
        if entry.owner is None:
            return
        entry.idle = self._idle if checked is None else checked
        if not entry.idle:
            entry.bucket = None
            return
        # File it again (the old copy is skipped: it is no longer the
        # entry's bucket); one bucket slot, and idles change rarely.
        self._file(entry, entry.last + entry.idle)

    def untrack(self, entry: IdleEntry) -> None:
        """
        Stop tracking C{entry}.  Idempotent.

        The entry leaves its bucket lazily, but it lets go of its owner at
        once, and when nothing is left the sweep stops.
        """
        if entry.owner is None:
            return
        entry.owner = None
        entry.bucket = None
        self._count -= 1
        self._sleepIfDone()

    # Deadlines

    def callLater(
        self, delay: float, func: Callable[..., object], /, *args: object, **kw: object
    ) -> Deadline:
        """
        Call C{func(*args, **kw)} at the first sweep at or after C{delay}
        seconds from now: for per-connection deadlines (an abort after a
        close grace, a line timeout, a maximum age) that need no more
        precision than C{checkInterval}.  The same signature as
        L{IReactorTime.callLater}, so it can stand in for a clock there.
        """
        return self.callAt(self.seconds() + delay, func, *args, **kw)

    def callAt(
        self, when: float, func: Callable[..., object], /, *args: object, **kw: object
    ) -> Deadline:
        """
        Like L{callLater}, at C{when} on this tracker's C{seconds()}.
        """
        now = self.seconds()
        self._wake(now)
        call = Deadline(self, when, func, args, kw)
        self._calls += 1
        self.fileDeadline(call)
        return call


_shared: weakref.WeakValueDictionary[tuple[int, HeartbeatConfig], IdleTracker] = (
    weakref.WeakValueDictionary()
)


def sharedTracker(
    config: HeartbeatConfig, clock: IReactorTime | None = None
) -> IdleTracker:
    """
    The one L{IdleTracker} for C{config} on C{clock} (the global reactor if
    L{None}), made on first use and kept while anything uses it: what
    protocols configured on their class (no factory mixin) share.
    """
    clock = resolveClock(clock)
    # The tracker holds its clock, so the clock's id cannot be reused while
    # the tracker is in the dictionary.
    key = (id(clock), config)
    tracker = _shared.get(key)
    if tracker is None:
        tracker = _shared[key] = IdleTracker(config, clock)
    return tracker
