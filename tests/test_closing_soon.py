"""
L{closeGracefully} with a cheaper close to try first (C{atOnce}): what it
hands that close, and the abort it arms only if the close must flush.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted._closing import closeGracefully, isClosing


class Transport:
    def __init__(self) -> None:
        self.lost = 0
        self.aborted = 0

    def loseConnection(self) -> None:
        self.lost += 1

    def abortConnection(self) -> None:
        self.aborted += 1


class Owner:
    pass


class CloseSoonTakenTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = Transport()
        self.owner = Owner()
        self.taken: list[tuple[object, Callable[..., object], tuple[object, ...]]] = []

    def atOnce(
        self, transport: object, otherwise: Callable[..., object], /, *args: object
    ) -> bool:
        self.taken.append((transport, otherwise, args))
        return True

    def test_takenArmsNothing(self) -> None:
        """
        A close C{atOnce} takes on needs no C{loseConnection} and no abort
        timer; the owner counts as closing.
        """
        self.assertFalse(isClosing(self.owner))
        self.assertTrue(
            closeGracefully(
                self.owner, self.transport, 3, self.clock, "idle", self.atOnce
            )
        )
        self.assertTrue(isClosing(self.owner))
        self.assertEqual(len(self.taken), 1)
        self.assertIs(self.taken[0][0], self.transport)
        self.assertEqual(self.transport.lost, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_mustFlushArmsAbort(self) -> None:
        """
        C{atOnce} gets the abort's arming as a function and its arguments
        (no partial); calling it arms the abort after the grace.
        """
        closeGracefully(self.owner, self.transport, 3, self.clock, "idle", self.atOnce)
        [(_, otherwise, args)] = self.taken
        otherwise(*args)
        [call] = self.clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 3)
        self.clock.advance(3)
        self.assertEqual(self.transport.aborted, 1)
        self.assertFalse(
            closeGracefully(
                self.owner, self.transport, 3, self.clock, "idle", self.atOnce
            )
        )
