"""
Tests for L{heartbeat_twisted.IdleTracker}: exact timing in simulated time,
and the work a sweep does.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from heartbeat_twisted import (
    HeartbeatConfig,
    IdleTracker,
)
from heartbeat_twisted._time import decisionSeconds, useMonotonicTime
from heartbeat_twisted._tracker import IdleEntry
from heartbeat_twisted.testing import TurnClock


class Owner:
    """
    Records when it timed out; optionally untracks itself (as a protocol
    that closes does).
    """

    def __init__(self, tracker: IdleTracker, clock: Clock, closes: bool = True) -> None:
        self.tracker = tracker
        self.clock = clock
        self.closes = closes
        self.timedOutAt: list[float] = []
        self.entry: IdleEntry = tracker.track(self)

    def heartbeatTimedOut(self) -> None:
        self.timedOutAt.append(self.clock.seconds())
        if self.closes:
            self.tracker.untrack(self.entry)


def make(idle: float = 5, interval: float = 1) -> tuple[Clock, IdleTracker]:
    clock = Clock()
    return clock, IdleTracker(HeartbeatConfig(idle=idle, checkInterval=interval), clock)


class TimingTests(SynchronousTestCase):
    def test_closedAtIdleWhenSweepAligned(self) -> None:
        clock, tracker = make(idle=5, interval=1)
        owner = Owner(tracker, clock)
        clock.pump([1] * 4)
        self.assertEqual(owner.timedOutAt, [])
        clock.advance(1)
        self.assertEqual(owner.timedOutAt, [5.0])

    def test_neverEarlyAlwaysByIdlePlusInterval(self) -> None:
        """
        Tracked between sweeps, a silent owner is closed at idle exactly,
        in a turn timed for it between two sweeps: here idle 5 from t=0.75
        is t=5.75, between the sweeps at 5.25 and 6.25.
        """
        clock, tracker = make(idle=5, interval=1)
        clock.advance(0.25)
        Owner(tracker, clock, closes=False)  # starts the sweep at t=0.25
        clock.advance(0.5)
        owner = Owner(tracker, clock)  # silence counts from t=0.75
        clock.pump([0.25] * 19)  # to t=5.5
        self.assertEqual(owner.timedOutAt, [])
        clock.advance(0.25)
        self.assertEqual(owner.timedOutAt, [5.75])

    def test_activityPostpones(self) -> None:
        clock, tracker = make(idle=5, interval=1)
        owner = Owner(tracker, clock)
        clock.pump([1] * 2 + [0.5])
        tracker.touch(owner.entry)  # t=2.5: recorded as 3, the next sweep
        self.assertEqual(owner.entry.last, 3.0)
        clock.pump([0.5] + [1] * 4)  # t=7
        self.assertEqual(owner.timedOutAt, [])
        clock.advance(1)
        self.assertEqual(owner.timedOutAt, [8.0])

    def test_ownerThatStaysOpenIsToldAgainAfterIdle(self) -> None:
        clock, tracker = make(idle=2, interval=1)
        owner = Owner(tracker, clock, closes=False)
        clock.pump([1] * 6)
        self.assertEqual(owner.timedOutAt, [2.0, 4.0, 6.0])

    def test_manyOwnersEachOnTime(self) -> None:
        clock, tracker = make(idle=3, interval=0.5)
        owners = []
        for _ in range(10):
            owners.append(Owner(tracker, clock))
            clock.advance(0.5)
        clock.pump([0.5] * 20)
        for index, owner in enumerate(owners):
            self.assertEqual(owner.timedOutAt, [index * 0.5 + 3])

    @settings(max_examples=80, deadline=None)
    @given(
        # Periods exact in binary floating point, so that the simulated
        # sweeps run exactly on time.
        idle=st.sampled_from([1.0, 2.0, 5.0, 7.5, 0.75]),
        divisor=st.sampled_from([1, 2, 4, 8]),
        start=st.integers(min_value=0, max_value=40),
        touches=st.lists(st.integers(min_value=1, max_value=80), max_size=8),
    )
    def test_windowProperty(
        self, idle: float, divisor: int, start: int, touches: list[int]
    ) -> None:
        """
        Whatever the activity pattern, the owner times out in
        [last + idle, last + idle + checkInterval], the clock moving in
        half sweep periods (activity lands on and between sweeps).
        """
        interval = idle / divisor
        step = interval / 2
        clock, tracker = make(idle=idle, interval=interval)
        Owner(tracker, clock, closes=False)  # keeps the sweep running from 0
        clock.pump([step] * start)
        owner = Owner(tracker, clock)
        last = clock.seconds()
        pending = sorted(set(touches))
        for tick in range(1, 400):
            clock.advance(step)
            if owner.timedOutAt:
                break
            if pending and tick == pending[0]:
                pending.pop(0)
                tracker.touch(owner.entry)
                last = clock.seconds()
        self.assertEqual(len(owner.timedOutAt), 1)
        closedAt = owner.timedOutAt[0]
        # Never early, exactly: the due test is "last + idle <= now".
        self.assertGreaterEqual(closedAt, last + idle)
        self.assertLessEqual(closedAt, last + idle + interval + 1e-9)

    @settings(max_examples=120, deadline=None)
    @given(
        steps=st.lists(
            st.sampled_from([0.125, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]),
            min_size=1,
            max_size=60,
        ),
        touchAfter=st.sets(st.integers(min_value=0, max_value=59), max_size=10),
    )
    def test_lateSweepsNeverCloseEarly(
        self, steps: list[float], touchAfter: set[int]
    ) -> None:
        """
        Whatever the lateness of the sweeps (the clock moving in uneven
        steps, up to one and a half periods), activity recorded with the
        stamp of an overdue sweep never lets the owner time out before its
        real time plus idle; the close comes within idle + checkInterval,
        plus twice the longest step.  Activity is recorded at the end of a
        stall: the time has moved on, the sweeps due meanwhile not yet run.
        """
        clock, tracker = make(idle=2, interval=1)
        Owner(tracker, clock, closes=False)  # keeps the sweep running
        owner = Owner(tracker, clock)
        last = clock.seconds()
        for index, step in enumerate(steps + [0.125] * 64):
            if index in touchAfter and index < len(steps):
                clock.rightNow += step  # a stall: nothing has run
                tracker.touch(owner.entry)
                last = clock.seconds()
                clock.advance(0)  # then the overdue sweep
            else:
                clock.advance(step)
            if owner.timedOutAt:
                break
        self.assertEqual(len(owner.timedOutAt), 1)
        closedAt = owner.timedOutAt[0]
        self.assertGreaterEqual(closedAt, last + 2)
        self.assertLessEqual(closedAt, last + 2 + 1 + 2 * max(steps) + 1e-9)

    def test_lateSweepAddsOnlyItsLateness(self) -> None:
        """
        When the sweeps run late (a busy reactor), the close is late by the
        sweep's own lateness, no more: here each sweep runs 0.25 s late.
        """
        clock, tracker = make(idle=2, interval=1)
        clock.advance(0.5)
        Owner(tracker, clock, closes=False)  # sweeps due at 1.5, 2.5, ...
        owner = Owner(tracker, clock)  # due at 2.5, at that sweep
        clock.advance(0.25)
        for _ in range(2):
            clock.advance(1.0)  # the sweeps run at 1.75, 2.75
        self.assertEqual(owner.timedOutAt, [2.75])

    def test_lateSweepEndsItsStamp(self) -> None:
        """
        Activity recorded while a sweep is overdue carries that sweep's
        time, which is earlier than the activity: nothing is timed out
        before the time that sweep really ran, plus idle.
        """
        clock, tracker = make(idle=2, interval=1)
        Owner(tracker, clock, closes=False)  # sweeps due at 1, 2, 3, ...
        owner = Owner(tracker, clock)
        clock.advance(0.5)
        tracker.touch(owner.entry)  # stamped 1: the sweep due next
        self.assertEqual(owner.entry.last, 1.0)
        clock.advance(0.9)  # t=1.4: the sweep due at 1 runs now, late
        self.assertEqual(tracker.stamp, 2.0)
        clock.advance(1.6)  # t=3: due by the stamp, but 1.4 + 2 = 3.4
        self.assertEqual(owner.timedOutAt, [])
        clock.advance(0.4)
        self.assertEqual(owner.timedOutAt, [3.4])


class LifecycleTests(SynchronousTestCase):
    def test_runsOnlyWhileTracking(self) -> None:
        clock, tracker = make()
        self.assertFalse(tracker.running)
        self.assertEqual(clock.getDelayedCalls(), [])
        owner = Owner(tracker, clock)
        self.assertTrue(tracker.running)
        self.assertEqual(len(tracker), 1)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        tracker.untrack(owner.entry)
        self.assertFalse(tracker.running)
        self.assertEqual(len(tracker), 0)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_stopsAfterLastTimeout(self) -> None:
        clock, tracker = make(idle=1, interval=1)
        Owner(tracker, clock)
        clock.advance(1)
        self.assertFalse(tracker.running)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_untrackIsIdempotentAndReleasesOwner(self) -> None:
        clock, tracker = make()
        first, second = Owner(tracker, clock), Owner(tracker, clock)
        tracker.untrack(first.entry)
        tracker.untrack(first.entry)
        self.assertIsNone(first.entry.owner)
        self.assertEqual(len(tracker), 1)
        self.assertTrue(tracker.running)
        clock.pump([1] * 5)
        self.assertEqual(first.timedOutAt, [])
        self.assertEqual(second.timedOutAt, [5.0])

    def test_restartsAfterStopping(self) -> None:
        clock, tracker = make(idle=2, interval=1)
        Owner(tracker, clock)
        clock.pump([1, 1])
        self.assertFalse(tracker.running)
        clock.advance(0.5)
        owner = Owner(tracker, clock)
        clock.pump([0.5] * 3)
        self.assertEqual(owner.timedOutAt, [])
        clock.advance(0.5)
        self.assertEqual(owner.timedOutAt, [4.5])

    def test_failingOwnerDoesNotStopTheSweep(self) -> None:
        clock, tracker = make(idle=1, interval=1)

        class Broken:
            def heartbeatTimedOut(self) -> None:
                raise RuntimeError("boom")

        tracker.track(Broken())
        owner = Owner(tracker, clock)
        clock.advance(1)
        self.assertEqual(owner.timedOutAt, [1.0])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(tracker.running)

    def test_untrackDuringSweepOfAnotherDueOwner(self) -> None:
        """
        An owner whose timeout closes another due owner: the other is not
        told it timed out after it was untracked.
        """
        clock, tracker = make(idle=1, interval=1)
        victims: list[Owner] = []

        class Closer:
            def heartbeatTimedOut(self) -> None:
                tracker.untrack(victims[0].entry)

        tracker.track(Closer())  # filed, and so handled, first
        victims.append(Owner(tracker, clock))
        clock.advance(1)
        self.assertEqual(victims[0].timedOutAt, [])
        self.assertIsNone(victims[0].entry.owner)


class SweepCostTests(SynchronousTestCase):
    """
    A sweep visits the entries that are due, not all tracked entries.
    """

    def test_quietSweepVisitsNothing(self) -> None:
        clock, tracker = make(idle=60, interval=1)
        for _ in range(1000):
            Owner(tracker, clock)
        clock.pump([1] * 59)
        self.assertEqual(tracker.ticks, 59)
        self.assertEqual(tracker.visited, 0)

    def test_sweepVisitsOnlyDueEntries(self) -> None:
        """
        1000 entries tracked at t=0 and 10 at t=30: the sweep at t=60
        visits the 1000 due ones, the one at t=90 just the 10.
        """
        clock, tracker = make(idle=60, interval=1)
        early = [Owner(tracker, clock) for _ in range(1000)]
        clock.pump([1] * 30)
        late = [Owner(tracker, clock) for _ in range(10)]
        clock.pump([1] * 30)
        self.assertEqual(tracker.lastVisited, 1000)
        self.assertTrue(all(o.timedOutAt == [60.0] for o in early))
        clock.pump([1] * 29)
        self.assertEqual(tracker.lastVisited, 0)
        clock.advance(1)
        self.assertEqual(tracker.lastVisited, 10)
        self.assertTrue(all(o.timedOutAt == [90.0] for o in late))
        self.assertEqual(tracker.visited, 1010)

    def test_activityIsRefiledOncePerIdlePeriod(self) -> None:
        """
        An entry that is busy all the time is visited once per idle period
        (when its stale deadline comes up), however many chunks it gets.
        """
        clock, tracker = make(idle=10, interval=1)
        owner = Owner(tracker, clock)
        for _ in range(100):
            for _ in range(50):
                tracker.touch(owner.entry)
            clock.advance(1)
        self.assertEqual(owner.timedOutAt, [])
        self.assertEqual(tracker.ticks, 100)
        # Touched between sweeps, its activity is recorded as the next
        # sweep's time: re-filed 10 s ahead at each visit, at t=10, 20, ...
        self.assertEqual(tracker.visited, 10)

    def test_lateClockVisitsEachEntryOnce(self) -> None:
        """
        If the clock jumps far ahead (a stalled process), one sweep handles
        all due entries once, without walking every missed sweep.
        """
        clock, tracker = make(idle=5, interval=1)
        owners = [Owner(tracker, clock) for _ in range(100)]
        clock.advance(10_000)
        self.assertEqual(tracker.ticks, 1)
        self.assertEqual(tracker.visited, 100)
        self.assertTrue(all(o.timedOutAt == [10_000.0] for o in owners))

    def test_entryReferencesItsBucket(self) -> None:
        """
        An entry holds the bucket it is filed in, not a sweep number (an
        int object per entry once sweeps pass 256), and lets go of it when
        it is re-filed or untracked.
        """
        clock, tracker = make(idle=5, interval=1)
        owner = Owner(tracker, clock)
        first = owner.entry.bucket
        assert first is not None
        self.assertEqual(first, [owner.entry])
        clock.advance(3)
        tracker.touch(owner.entry)  # t=3: re-filed at t=5, due at t=8
        clock.pump([1] * 2)
        self.assertEqual(tracker.visited, 1)
        self.assertIsNot(owner.entry.bucket, first)
        self.assertEqual(owner.entry.bucket, [owner.entry])
        tracker.untrack(owner.entry)
        self.assertIsNone(owner.entry.bucket)


def turnTracker(
    idle: float = 1, interval: float = 0.25
) -> tuple[TurnClock, IdleTracker]:
    clock = TurnClock()
    return clock, IdleTracker(HeartbeatConfig(idle=idle, checkInterval=interval), clock)


class StallTests(SynchronousTestCase):
    """
    A sweep that runs late (the reactor stalled) decides nothing before the
    reactor has read what arrived meanwhile.
    """

    def test_lateSweepWaitsOneTurn(self) -> None:
        clock, tracker = turnTracker(idle=1, interval=0.25)
        busy, silent = Owner(tracker, clock), Owner(tracker, clock)
        clock.advance(0.25)
        tracker.touch(busy.entry)
        # The reactor blocks for 1.5 s; the sweep runs 1.25 s late.
        clock.advance(1.5)
        self.assertEqual((busy.timedOutAt, silent.timedOutAt), ([], []))
        self.assertEqual(tracker.stalls, 1)
        tracker.touch(busy.entry)  # what the next I/O poll reads
        clock.advance(0)  # the next turn
        self.assertEqual(busy.timedOutAt, [])
        self.assertEqual(silent.timedOutAt, [1.75])
        self.assertEqual(tracker.turns, 1)

    def test_onTimeSweepDecidesAtOnce(self) -> None:
        clock, tracker = turnTracker(idle=1, interval=0.25)
        owner = Owner(tracker, clock)
        clock.pump([0.25] * 4)
        self.assertEqual(owner.timedOutAt, [1.0])
        self.assertEqual((tracker.stalls, tracker.turns), (0, 0))

    def test_lateFollowUpWaitsAgain(self) -> None:
        """
        A stall in the turn that was to decide: it waits once more, but
        not forever.
        """
        clock, tracker = turnTracker(idle=1, interval=0.25)
        owner = Owner(tracker, clock)
        clock.advance(2)  # late sweep
        clock.advance(1)  # the follow-up runs 1 s late: another turn
        clock.advance(1)  # and once more
        self.assertEqual(owner.timedOutAt, [])
        clock.advance(1)  # at most two deferrals in a row
        self.assertEqual(owner.timedOutAt, [5.0])
        self.assertEqual(tracker.stalls, 3)


class SpreadTests(SynchronousTestCase):
    def test_timeOutsSpreadOverTurns(self) -> None:
        """
        At most maxPerTurn time-outs per reactor turn; the rest follow in
        the next turns, each checked again.
        """
        clock, tracker = turnTracker(idle=1, interval=1)
        tracker.maxPerTurn = 4
        owners = [Owner(tracker, clock) for _ in range(10)]
        clock.advance(1)
        self.assertEqual(sum(bool(o.timedOutAt) for o in owners), 4)
        tracker.touch(owners[9].entry)  # read before its turn: it stays
        clock.advance(0)
        self.assertEqual(sum(bool(o.timedOutAt) for o in owners), 8)
        clock.advance(0)
        self.assertEqual(sum(bool(o.timedOutAt) for o in owners), 9)
        self.assertEqual(owners[9].timedOutAt, [])
        self.assertEqual(tracker.turns, 2)
        self.assertEqual(len(tracker), 1)

    def test_longerOverdueHandedOutFirst(self) -> None:
        """
        In a bucket handed out over several turns, the entries due for more
        than half a sweep period go first, whatever their filing order.
        """
        clock, tracker = turnTracker(idle=5, interval=1)
        tracker.maxPerTurn = 1
        older = Owner(tracker, clock)
        tracker.setIdle(older.entry, 10)  # t=0: due at 10
        clock.advance(1)
        newer = Owner(tracker, clock)  # t=1: due at 6, filed first
        clock.pump([1] * 4 + [0.5])  # t=5.5
        # Due at 5.25 now, already past: filed behind it, for t=6.
        tracker.setIdle(older.entry, 5.25)
        clock.advance(0.5)
        self.assertEqual((older.timedOutAt, newer.timedOutAt), ([6.0], []))
        clock.advance(0)
        self.assertEqual(newer.timedOutAt, [6.0])
        self.assertEqual(tracker.visited, 3)  # its stale copy at t=5 too

    def test_longBucketSpreadOverTurnsInSlices(self) -> None:
        """
        A due bucket is walked in slices of 256 entries, the turn budget
        checked after each: with no budget, one slice per reactor turn.
        """
        clock, tracker = turnTracker(idle=2, interval=1)
        tracker.turnBudget = -1.0  # spent whatever the time taken
        owners = [Owner(tracker, clock) for _ in range(600)]
        clock.advance(1)
        for owner in owners:
            tracker.touch(owner.entry)  # t=1, recorded as 2: due at 4
        clock.advance(1)
        self.assertEqual(tracker.visited, 256)
        clock.advance(0)
        self.assertEqual(tracker.visited, 512)
        clock.advance(0)
        self.assertEqual(tracker.visited, 600)
        self.assertEqual((tracker.turns, tracker.timedOut), (2, 0))
        tracker.turnBudget = 3600.0  # never spent: maxPerTurn alone
        clock.pump([1] * 2)  # t=4 = 2 + idle: 200 time-outs per turn
        clock.advance(0)
        clock.advance(0)
        self.assertTrue(all(o.timedOutAt == [4.0] for o in owners))

    def test_oneSummaryLinePerSweep(self) -> None:
        events: list[dict[str, object]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        clock, tracker = make(idle=1, interval=1)
        for _ in range(3):
            Owner(tracker, clock)
        clock.advance(1)
        lines = [
            formatEvent(e)
            for e in events
            if e.get("log_namespace", "").startswith("heartbeat_twisted._tracker")
        ]
        self.assertEqual(lines, ["idle sweep: 3 connections timed out"])


class SweepFailureTests(SynchronousTestCase):
    def test_failedSweepIsLoggedAndRestarted(self) -> None:
        clock = Clock()
        fail = [False]

        def seconds() -> float:
            if fail[0]:
                fail[0] = False
                raise RuntimeError("clock broke")
            return clock.seconds()

        tracker = IdleTracker(HeartbeatConfig(idle=3, checkInterval=1), clock, seconds)
        owner = Owner(tracker, clock)
        clock.advance(1)
        fail[0] = True
        clock.advance(1)  # this sweep raises
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(tracker.running)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(1)  # the restarted sweep, on time
        self.assertEqual(owner.timedOutAt, [3.0])


class DeadlineTests(SynchronousTestCase):
    def test_firesAtFirstSweepAtOrAfter(self) -> None:
        clock, tracker = make(idle=5, interval=1)
        fired: list[float] = []
        call = tracker.callLater(2.5, lambda: fired.append(clock.seconds()))
        self.assertTrue(verifyObject(IDelayedCall, call))
        self.assertEqual(call.getTime(), 2.5)
        self.assertTrue(tracker.running)
        self.assertEqual(len(tracker), 0)
        self.assertEqual(tracker.pendingDeadlines, 1)
        clock.pump([1, 1])
        self.assertEqual(fired, [])
        clock.advance(1)
        self.assertEqual(fired, [3.0])
        self.assertFalse(call.active())
        self.assertFalse(tracker.running)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_cancelStopsTheSweep(self) -> None:
        clock, tracker = make(idle=5, interval=1)
        fired: list[int] = []
        call = tracker.callLater(2, fired.append, 1)
        call.cancel()
        call.cancel()
        self.assertFalse(tracker.running)
        clock.advance(5)
        self.assertEqual(fired, [])

    def test_resetAndDelay(self) -> None:
        clock, tracker = make(idle=5, interval=1)
        fired: list[float] = []
        call = tracker.callAt(4, lambda: fired.append(clock.seconds()))
        call.reset(1)  # sooner: due at 1
        clock.advance(1)
        self.assertEqual(fired, [1.0])
        later = tracker.callLater(1, lambda: fired.append(clock.seconds()))
        later.delay(2)
        clock.pump([1, 1])
        self.assertEqual(fired, [1.0])
        clock.advance(1)
        self.assertEqual(fired, [1.0, 4.0])

    def test_failingDeadlineIsLogged(self) -> None:
        clock, tracker = make(idle=5, interval=1)
        tracker.callLater(1, lambda: 1 / 0)
        fired: list[int] = []
        tracker.callLater(1, fired.append, 2)
        clock.advance(1)
        self.assertEqual(fired, [2])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class ClockStepTests(SynchronousTestCase):
    """
    Issue 10.2: idle decisions follow a monotonic clock; the scheduler may
    follow the wall clock.  Here C{wall} schedules the sweeps (a reactor on
    the wall clock) and C{mono} is the tracker's time source.
    """

    def setUp(self) -> None:
        self.wall, self.mono = Clock(), Clock()
        self.wall.advance(1_700_000_000)
        self.tracker = IdleTracker(
            HeartbeatConfig(idle=2, checkInterval=0.5), self.wall, self.mono.seconds
        )
        self.busy = Owner(self.tracker, self.mono)
        self.silent = Owner(self.tracker, self.mono)

    def passTime(self, seconds: float) -> None:
        """
        Real time passes: both clocks move; the busy owner sends each 0.25 s.
        """
        for _ in range(round(seconds / 0.25)):
            self.mono.advance(0.25)
            self.tracker.touch(self.busy.entry)
            self.wall.advance(0.25)

    def test_forwardStepClosesNothingEarly(self) -> None:
        self.passTime(1)
        self.wall.advance(120)  # the wall clock steps: every timer fires now
        self.assertEqual((self.busy.timedOutAt, self.silent.timedOutAt), ([], []))
        self.passTime(0.75)
        self.assertEqual(self.silent.timedOutAt, [])
        self.passTime(0.25)  # 2 s of real silence
        self.assertEqual(self.silent.timedOutAt, [2.0])
        self.passTime(10)
        self.assertEqual(self.busy.timedOutAt, [])

    def test_backwardStepKeepsDecisionsOnMonotonicTime(self) -> None:
        """
        The wall clock steps back an hour: on a scheduler that follows it,
        no sweep runs until it catches up (what a library user's reactor
        does; C{twistd heartbeat} runs its reactor on monotonic time, see
        L{UseMonotonicTimeTests}); the tracker's own times do not go back,
        so no decision is made on a negative silence and the first sweep
        after decides on the real one.
        """
        self.passTime(1)
        self.wall.rightNow -= 3600
        self.mono.advance(5)  # the held-back sweeps
        self.assertEqual(self.silent.timedOutAt, [])
        self.wall.rightNow += 3600
        self.wall.advance(0.5)
        self.assertEqual(self.silent.timedOutAt, [6.0])


class UseMonotonicTimeTests(SynchronousTestCase):
    def test_reactorRunsOnMonotonicTime(self) -> None:
        import time

        from twisted.internet.selectreactor import SelectReactor

        reactor = SelectReactor()  # type: ignore[no-untyped-call]
        self.addCleanup(reactor.disconnectAll)
        pending = reactor.callLater(30, lambda: None)
        self.assertTrue(useMonotonicTime(reactor))
        self.assertIs(reactor.seconds, time.monotonic)
        self.assertLess(abs(pending.getTime() - time.monotonic() - 30), 5)
        later = reactor.callLater(10, lambda: None)
        self.assertLess(abs(later.getTime() - time.monotonic() - 10), 5)
        self.assertTrue(useMonotonicTime(reactor))  # idempotent
        self.assertFalse(useMonotonicTime(Clock()))
        for call in (pending, later):
            call.cancel()
        self.assertEqual(decisionSeconds(reactor), time.monotonic)
        clock = Clock()
        self.assertEqual(decisionSeconds(clock), clock.seconds)


class PerEntryIdleTests(SynchronousTestCase):
    """
    Issue 8.5: each entry may have its own idle, set or changed at any time,
    measured from its last activity, in the one sweep.
    """

    def test_trackWithOwnIdle(self) -> None:
        clock, tracker = make(idle=5, interval=1)
        short = Owner.__new__(Owner)
        short.tracker, short.clock, short.closes, short.timedOutAt = (
            tracker,
            clock,
            True,
            [],
        )
        short.entry = tracker.track(short, idle=2)
        default = Owner(tracker, clock)
        clock.pump([1] * 5)
        self.assertEqual((short.timedOutAt, default.timedOutAt), ([2.0], [5.0]))

    def test_longerIdleIsRefiledLazily(self) -> None:
        clock, tracker = make(idle=2, interval=1)
        owner = Owner(tracker, clock)
        clock.advance(1)
        tracker.touch(owner.entry)  # t=1, after that sweep: recorded as 2
        tracker.setIdle(owner.entry, 6)
        clock.pump([1] * 6)  # t=7
        self.assertEqual(owner.timedOutAt, [])
        clock.advance(1)
        self.assertEqual(owner.timedOutAt, [8.0])
        # Visited at t=2 (its old deadline, re-filed) and at t=8.
        self.assertEqual(tracker.visited, 2)

    def test_shorterIdleIsRefiledSooner(self) -> None:
        clock, tracker = make(idle=60, interval=1)
        owner = Owner(tracker, clock)
        clock.pump([1] * 3)
        tracker.setIdle(owner.entry, 5)
        clock.advance(1)
        self.assertEqual(owner.timedOutAt, [])
        clock.advance(1)
        self.assertEqual(owner.timedOutAt, [5.0])
        self.assertEqual(tracker.visited, 1)

    def test_passedIdleIsDecidedAtTheNextSweep(self) -> None:
        """
        An idle shorter than the silence so far is decided at the next
        sweep, never inside setIdle.
        """
        clock, tracker = make(idle=60, interval=1)
        owner = Owner(tracker, clock)
        clock.pump([1] * 10)
        clock.advance(0.5)
        tracker.setIdle(owner.entry, 2)
        self.assertEqual(owner.timedOutAt, [])
        clock.advance(0.5)
        self.assertEqual(owner.timedOutAt, [11.0])

    def test_zeroNeverAndNoneIsDefault(self) -> None:
        clock, tracker = make(idle=2, interval=1)
        owner = Owner(tracker, clock)
        tracker.setIdle(owner.entry, 0)
        clock.pump([1] * 100)
        self.assertEqual(owner.timedOutAt, [])
        self.assertTrue(tracker.running)
        tracker.setIdle(owner.entry, None)  # silent since t=0: due now
        clock.advance(1)
        self.assertEqual(owner.timedOutAt, [101.0])

    def test_idleChangedWhileDue(self) -> None:
        """
        Found due, then given a longer idle before its turn: it stays.
        """
        clock, tracker = turnTracker(idle=1, interval=1)
        tracker.maxPerTurn = 1
        first, second = Owner(tracker, clock), Owner(tracker, clock)
        clock.advance(1)
        self.assertEqual(first.timedOutAt, [1.0])
        tracker.setIdle(second.entry, 10)
        clock.advance(0)
        self.assertEqual(second.timedOutAt, [])
        clock.pump([1] * 9)
        self.assertEqual(second.timedOutAt, [10.0])

    def test_mixedIdlesVisitOnlyDue(self) -> None:
        clock, tracker = make(idle=100, interval=1)
        owners = [Owner(tracker, clock) for _ in range(300)]
        for index, owner in enumerate(owners):
            tracker.setIdle(owner.entry, 10 + index % 3 * 10)
        clock.pump([1] * 9)
        self.assertEqual(tracker.visited, 0)
        clock.advance(1)
        self.assertEqual(tracker.lastVisited, 100)
        clock.pump([1] * 20)
        self.assertTrue(all(o.timedOutAt for o in owners))
        self.assertEqual(tracker.visited, 300)
        self.assertFalse(tracker.running)

    def test_badIdle(self) -> None:
        clock, tracker = make()
        owner = Owner(tracker, clock)
        for bad in (-1, float("inf"), float("nan"), "5", True):
            error = self.assertRaises(ValueError, tracker.setIdle, owner.entry, bad)
            self.assertIn("'idle'", str(error))
        self.assertRaises(ValueError, tracker.track, owner, -2)


class SweepDurationTests(SynchronousTestCase):
    """
    The tracker times each turn of sweep work, for the metrics.
    """

    def test_lastSweepSeconds(self) -> None:
        from twisted.internet.task import Clock

        from heartbeat_twisted import HeartbeatConfig, IdleTracker

        clock = Clock()
        tracker = IdleTracker(HeartbeatConfig(idle=2, checkInterval=1), clock)
        self.assertIsNone(tracker.lastSweepSeconds)

        class Owner:
            def heartbeatTimedOut(self) -> None:
                pass

        tracker.track(Owner())
        clock.advance(1)
        duration = tracker.lastSweepSeconds
        assert duration is not None
        self.assertGreaterEqual(duration, 0.0)
        self.assertLess(duration, 1.0)
