"""
Tests for the mixins' shared machinery in L{heartbeat_twisted._writepath}.
"""

from __future__ import annotations

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted._writepath import observeWrites


class ObserveWritesTests(SynchronousTestCase):
    def test_everyObserverSeesEveryWrite(self) -> None:
        transport = StringTransport()
        seen: list[str] = []
        observeWrites(transport, lambda: seen.append("a"))
        observeWrites(transport, lambda: seen.append("b"))
        transport.write(b"1")
        transport.writeSequence([b"2", b"3"])
        self.assertEqual(seen, ["a", "b", "a", "b"])
        self.assertEqual(transport.value(), b"123")

    def test_stopInEitherOrderRestoresTheTransport(self) -> None:
        """
        Two mixins observing one transport, stopped in either order, leave
        no shadowing attribute behind, and a stopped observer is not called.
        """
        for order in ((0, 1), (1, 0)):
            transport = StringTransport()
            before = dict(vars(transport))
            seen: list[int] = []
            stops = [
                observeWrites(transport, lambda n=n: seen.append(n)) for n in (0, 1)
            ]
            first, second = (stops[i] for i in order)
            assert first is not None and second is not None
            first()
            first()  # idempotent
            transport.write(b"x")
            self.assertEqual(seen, [order[1]])
            second()
            self.assertEqual(vars(transport), before)
            transport.write(b"y")
            self.assertEqual(seen, [order[1]])

    def test_ownInstanceWriteIsKept(self) -> None:
        """
        A transport that already had its own instance C{write} gets it back.
        """
        transport = StringTransport()
        written: list[bytes] = []
        transport.write = written.append  # type: ignore[method-assign]
        stop = observeWrites(transport, lambda: None)
        assert stop is not None
        transport.write(b"z")
        stop()
        self.assertEqual(transport.write, written.append)
        self.assertEqual(written, [b"z"])

    def test_unobservableTransport(self) -> None:
        class Slotted:
            __slots__ = ("write", "writeSequence")

        self.assertIsNone(observeWrites(Slotted(), lambda: None))
