"""
Tests for L{heartbeat_twisted.TimeoutMixin}: same behaviour and timing as
Twisted's own, with a cheaper C{resetTimeout}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols import policies
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import TimeoutMixin
from heartbeat_twisted._timeout import LATE
from heartbeat_twisted.testing import HeartbeatStringTransport

from ._readme import runExample


def timedProtocol(mixin: type, clock: Clock) -> Any:
    """
    A protocol with C{mixin}, using C{clock}, recording when it times out.
    """

    class Timed(mixin, Protocol):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            self.timedOutAt: list[float] = []

        def timeoutConnection(self) -> None:
            self.timedOutAt.append(clock.seconds())

    protocol = Timed()
    protocol.callLater = clock.callLater
    protocol.makeConnection(StringTransport())
    return protocol


def connected(protocol: Any, clock: Clock) -> tuple[Any, HeartbeatStringTransport]:
    """
    Connect C{protocol}, timed by C{clock}, to a transport that reports its
    close.
    """
    protocol.callLater = clock.callLater
    transport = HeartbeatStringTransport()
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return protocol, transport


# A scenario step: (seconds to advance first, action name, argument)
Step = tuple[float, str, float | None]


def play(mixin: type, steps: list[Step]) -> tuple[list[float], list[Any]]:
    clock = Clock()
    protocol = timedProtocol(mixin, clock)
    returned: list[Any] = []
    actions: dict[str, Callable[[float | None], Any]] = {
        "set": protocol.setTimeout,
        "reset": lambda _: protocol.resetTimeout(),
    }
    for advance, action, argument in steps:
        clock.advance(advance)
        returned.append(actions[action](argument))
    clock.pump([0.25] * 200)  # 50 s in steps, so fire times are exact
    return protocol.timedOutAt, returned


class ParityTests(SynchronousTestCase):
    """
    The same scenario played on Twisted's mixin and on ours gives the same
    timeouts at the same times and the same return values.
    """

    def assertSame(self, steps: list[Step]) -> list[float]:
        theirs = play(policies.TimeoutMixin, steps)
        ours = play(TimeoutMixin, steps)
        self.assertEqual(ours, theirs)
        return ours[0]

    def test_timesOutAfterPeriod(self) -> None:
        self.assertEqual(self.assertSame([(0, "set", 5)]), [5.0])

    def test_resetPostpones(self) -> None:
        steps: list[Step] = [(0, "set", 5), (3, "reset", None), (3, "reset", None)]
        self.assertEqual(self.assertSame(steps), [11.0])

    def test_shorterPeriodMovesSooner(self) -> None:
        self.assertEqual(self.assertSame([(0, "set", 10), (1, "set", 2)]), [3.0])

    def test_longerPeriodPostpones(self) -> None:
        self.assertEqual(self.assertSame([(0, "set", 2), (1, "set", 10)]), [11.0])

    def test_cancel(self) -> None:
        self.assertEqual(self.assertSame([(0, "set", 5), (1, "set", None)]), [])

    def test_resetAfterTimeoutDoesNothing(self) -> None:
        steps: list[Step] = [(0, "set", 1), (1, "reset", None), (1, "set", 3)]
        self.assertEqual(self.assertSame(steps), [1.0, 5.0])

    def test_setTimeoutReturnsPrevious(self) -> None:
        steps: list[Step] = [(0, "set", 5), (0, "set", 3), (0, "set", None)]
        self.assertEqual(play(TimeoutMixin, steps)[1], [None, 5, 3])
        self.assertSame(steps)

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 3.0]),
                st.sampled_from(["set", "reset"]),
                st.sampled_from([None, 0.5, 1.0, 2.0, 4.0]),
            ),
            max_size=12,
        )
    )
    def test_anyScenario(self, steps: list[Step]) -> None:
        self.assertSame(steps)


class CostTests(SynchronousTestCase):
    def test_resetDoesNotMoveTheTimer(self) -> None:
        """
        resetTimeout is a timestamp store: the one timer is not rescheduled
        on each call (Twisted's moves it every time), and re-arms once when
        it fires early.
        """
        clock = Clock()
        protocol = timedProtocol(TimeoutMixin, clock)
        protocol.setTimeout(10)
        [call] = clock.getDelayedCalls()
        for _ in range(80):
            clock.advance(0.0625)
            protocol.resetTimeout()
        self.assertEqual(clock.getDelayedCalls(), [call])
        self.assertEqual(call.getTime(), 10.0)
        clock.advance(5)  # t=10: fires early, re-arms for t=15
        [again] = clock.getDelayedCalls()
        self.assertIsNot(again, call)
        self.assertEqual(again.getTime(), 15.0)
        clock.advance(5)
        self.assertEqual(protocol.timedOutAt, [15.0])


class ConnectionLostTests(SynchronousTestCase):
    def test_cancelsTimerOnConnectionLost(self) -> None:
        """
        Unlike Twisted's, the timer does not outlive the connection, even if
        the protocol's connectionLost does not call up.
        """

        class Session(TimeoutMixin, Protocol):
            def connectionLost(self, reason: Failure | None = None) -> None:
                pass

        clock = Clock()
        protocol, transport = connected(Session(), clock)
        protocol.setTimeout(5)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        transport.loseConnection()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_defaultTimeoutLosesConnection(self) -> None:
        clock = Clock()

        class Session(TimeoutMixin, Protocol):
            callLater = staticmethod(clock.callLater)

        protocol = Session()
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.setTimeout(1)
        clock.advance(1)
        self.assertTrue(transport.disconnecting)


class CloseGraceTests(SynchronousTestCase):
    """
    A timed-out connection that does not close (a TLS peer that never
    answers C{close_notify}, a peer that stopped reading) is aborted
    C{timeoutCloseGrace} seconds after the timeout.
    """

    def lingering(self, protocol: Any, clock: Clock) -> HeartbeatStringTransport:
        protocol, transport = connected(protocol, clock)
        transport.lingering = True
        return transport

    def test_abortAfterGrace(self) -> None:
        """
        The default C{timeoutConnection} closes; the abort comes exactly
        C{timeoutCloseGrace} (5 s by default) later, and no timer is left.
        """

        class Session(TimeoutMixin, Protocol):
            pass

        self.assertEqual(Session.timeoutCloseGrace, 5.0)
        clock = Clock()
        protocol = Session()
        transport = self.lingering(protocol, clock)
        protocol.setTimeout(2)
        clock.advance(2)
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(transport.lost)
        clock.advance(4.999)
        self.assertIsNone(transport.lost)
        clock.advance(0.001)
        assert transport.lost is not None
        self.assertTrue(transport.lost.check(ConnectionAborted))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_graceAttribute(self) -> None:
        """
        A subclass sets its own grace.
        """

        class Session(TimeoutMixin, Protocol):
            timeoutCloseGrace = 0.5

        clock = Clock()
        protocol = Session()
        transport = self.lingering(protocol, clock)
        protocol.setTimeout(1)
        clock.pump([1, 0.25])
        self.assertIsNone(transport.lost)
        clock.advance(0.25)
        self.assertIsNotNone(transport.lost)

    def test_closedInTime(self) -> None:
        """
        A connection that closes within the grace is not aborted, and the
        abort timer goes with it.
        """

        class Session(TimeoutMixin, Protocol):
            pass

        clock = Clock()
        protocol = Session()
        transport = self.lingering(protocol, clock)
        protocol.setTimeout(1)
        clock.advance(1)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        transport.lingering = False
        transport.loseConnection()
        assert transport.lost is not None
        self.assertTrue(transport.lost.check(ConnectionDone))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_overrideThatCloses(self) -> None:
        """
        An override that closes the connection itself (as Twisted's own
        users write it) is bounded the same way.
        """

        class Session(TimeoutMixin, Protocol):
            def timeoutConnection(self) -> None:
                assert self.transport is not None
                self.transport.write(b"timed out\n")
                self.transport.loseConnection()

        clock = Clock()
        protocol = Session()
        transport = self.lingering(protocol, clock)
        protocol.setTimeout(1)
        clock.advance(1)
        self.assertEqual(transport.value(), b"timed out\n")
        clock.advance(5)
        assert transport.lost is not None
        self.assertTrue(transport.lost.check(ConnectionAborted))

    def test_overrideThatKeepsOpen(self) -> None:
        """
        An override that does not close the connection is left alone.
        """

        class Session(TimeoutMixin, Protocol):
            def timeoutConnection(self) -> None:
                assert self.transport is not None
                self.transport.write(b"still there?\n")

        clock = Clock()
        protocol = Session()
        transport = self.lingering(protocol, clock)
        protocol.setTimeout(1)
        clock.advance(1)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertIsNone(transport.lost)

    def test_overrideClosesAtOnce(self) -> None:
        """
        If the transport reports the loss during the override's close, no
        abort is armed for the gone connection.
        """

        class Session(TimeoutMixin, Protocol):
            def timeoutConnection(self) -> None:
                assert self.transport is not None
                self.transport.loseConnection()

        clock = Clock()
        protocol, transport = connected(Session(), clock)
        protocol.setTimeout(1)
        clock.advance(1)
        self.assertIsNotNone(transport.lost)
        self.assertEqual(clock.getDelayedCalls(), [])


class TurnClock(Clock):
    """
    A L{Clock} that runs timed calls as the reactor does, a turn at a time:
    L{turn} runs the calls due now that were scheduled before it began, so a
    C{callLater(0)} made during a turn runs in the next one, after the
    test's "I/O".
    """

    def stall(self, seconds: float) -> None:
        """
        Let C{seconds} pass without running anything, as a blocked reactor.
        """
        self.rightNow += seconds

    def turn(self) -> None:
        """
        Run the calls that are due now and were scheduled before this turn.
        """
        due = [c for c in self.getDelayedCalls() if c.getTime() <= self.seconds()]
        for call in sorted(due, key=lambda c: c.getTime()):
            if call.active():
                self.calls.remove(call)
                call.called = 1
                call.func(*call.args, **call.kw)


class StallTests(SynchronousTestCase):
    """
    A timer that fires late because the reactor stalled decides only after
    the next poll has read what arrived during the stall.
    """

    def setUp(self) -> None:
        self.clock = TurnClock()
        self.protocol = timedProtocol(TimeoutMixin, self.clock)
        self.protocol.setTimeout(1)
        self.clock.advance(0.5)
        self.protocol.resetTimeout()  # last activity at 0.5: due at 1.5
        self.clock.advance(0.5)  # t=1: the timer re-arms for 1.5
        self.clock.stall(1.5)  # t=2.5: the reactor was blocked

    def test_busySurvives(self) -> None:
        """
        Data that arrived during the stall, read in the next turn, keeps the
        connection: the timer fired 1 s late and waited one turn.
        """
        self.clock.turn()  # the late timer: waits for the next poll
        self.assertEqual(self.protocol.timedOutAt, [])
        self.protocol.resetTimeout()  # the poll read the client's bytes
        self.clock.turn()
        self.assertEqual(self.protocol.timedOutAt, [])
        [call] = self.clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 3.5)
        self.clock.advance(1)
        self.assertEqual(self.protocol.timedOutAt, [3.5])

    def test_silentTimesOut(self) -> None:
        """
        Without data in the next poll, the connection times out then.
        """
        self.clock.turn()
        self.assertEqual(self.protocol.timedOutAt, [])
        self.clock.turn()
        self.assertEqual(self.protocol.timedOutAt, [2.5])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_onTime(self) -> None:
        """
        A timer that fires on time (within C{LATE}) decides at once.
        """
        clock = TurnClock()
        protocol = timedProtocol(TimeoutMixin, clock)
        protocol.setTimeout(1)
        clock.stall(1 + LATE / 2)
        clock.turn()
        self.assertEqual(protocol.timedOutAt, [1 + LATE / 2])

    def test_cancelWhileWaiting(self) -> None:
        """
        C{setTimeout(None)} or the connection's loss while the decision
        waits for the next turn leaves no call behind.
        """
        self.clock.turn()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.protocol.setTimeout(None)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.turn()
        self.assertEqual(self.protocol.timedOutAt, [])


class ReadmeTimeoutTests(SynchronousTestCase):
    def test_example(self) -> None:
        Session = runExample("example-timeout")["Session"]
        self.assertTrue(issubclass(Session, TimeoutMixin))
        clock = Clock()
        session, transport = connected(Session(), clock)
        clock.advance(59)
        session.dataReceived(b"x")
        clock.advance(59)
        self.assertIsNone(transport.lost)
        clock.advance(1)
        self.assertIsNotNone(transport.lost)
        self.assertEqual(clock.getDelayedCalls(), [])
