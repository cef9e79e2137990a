"""
Unit tests for how a keepalive-tuned connection reports why the kernel
dropped it: L{KeepAliveTimedOut} for unanswered probes, L{PeerReset} for a
reset, on fake sockets.
"""

from __future__ import annotations

import errno

from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import (
    KeepAliveConfig,
    KeepAliveTimedOut,
    _keepaliveloss,
    enableKeepAlive,
)
from heartbeat_twisted._keepaliveloss import PeerReset

from ._keepalivefakes import (
    DARWIN,
    LINUX,
    WINDOWS,
    FakeSocket,
    SocketTransport,
    platformFor,
)


class TimeoutReportTests(SynchronousTestCase):
    """
    On Linux a connection the kernel dropped for unanswered probes is
    reported as L{KeepAliveTimedOut}; Twisted alone would say only
    L{ConnectionLost}.
    """

    def setUp(self) -> None:
        self.sock = FakeSocket()
        self.transport = SocketTransport(self.sock)
        self.result = enableKeepAlive(
            self.transport, KeepAliveConfig(2, 1, 3), platformFor("linux", LINUX)
        )

    def lose(self, reason: Exception, tcpInfo: list[int]) -> Failure:
        self.sock.tcpInfo = bytes(tcpInfo + [0] * 4)
        self.transport.connectionLost(Failure(reason))
        [lost] = self.transport.lostReasons
        return lost

    def test_timedOut(self) -> None:
        """
        Closed by the kernel (C{TCP_CLOSE}) with probes outstanding: the
        protocol gets a L{KeepAliveTimedOut}, a L{ConnectionLost} whose
        C{osError} is C{ETIMEDOUT}.
        """
        self.assertTrue(self.result.reportsTimeout)
        lost = self.lose(ConnectionLost(), [7, 0, 0, 3])
        self.assertIsInstance(lost.value, KeepAliveTimedOut)
        self.assertIsInstance(lost.value, ConnectionLost)
        self.assertEqual(lost.value.osError, errno.ETIMEDOUT)
        self.assertEqual(
            str(lost.value),
            "The kernel's keepalive probes went unanswered (ETIMEDOUT).",
        )

    def test_otherLosses(self) -> None:
        """
        A loss without outstanding probes, or while the socket is not yet
        closed, stays a plain L{ConnectionLost}.
        """
        for info in ([7, 0, 0, 0], [1, 0, 0, 2]):
            self.setUp()
            lost = self.lose(ConnectionLost(), info)
            self.assertIs(lost.type, ConnectionLost)

    def test_cleanCloses(self) -> None:
        """
        A clean close or an abort is passed on as it is, without asking the
        kernel.
        """
        for reason in (ConnectionDone(), ConnectionAborted()):
            self.setUp()
            self.sock.refuse = {11: errno.EBADF}
            lost = self.lose(reason, [7, 0, 0, 3])
            self.assertIs(lost.value, reason)

    def test_unreadable(self) -> None:
        """
        If C{TCP_INFO} cannot be read, the loss is passed on unchanged.
        """
        self.sock.refuse = {11: errno.EBADF}
        lost = self.lose(ConnectionLost(), [7, 0, 0, 3])
        self.assertIs(lost.type, ConnectionLost)

    def test_once(self) -> None:
        """
        Enabling twice hooks once; after the loss the transport's own
        C{connectionLost} is back.
        """
        enableKeepAlive(
            self.transport, KeepAliveConfig(2, 1, 3), platformFor("linux", LINUX)
        )
        self.assertIn("connectionLost", vars(self.transport))
        self.lose(ConnectionLost(), [7, 0, 0, 3])
        self.assertNotIn("connectionLost", vars(self.transport))

    def test_otherPlatforms(self) -> None:
        """
        Elsewhere the layout of C{TCP_INFO} is not known: nothing is hooked.
        """
        for name, module in [("darwin", DARWIN), ("win32", WINDOWS)]:
            transport = SocketTransport(FakeSocket())
            result = enableKeepAlive(
                transport, KeepAliveConfig(2, 1, 3), platformFor(name, module)
            )
            self.assertFalse(result.reportsTimeout)
            self.assertNotIn("connectionLost", vars(transport))


class ResetReportTests(SynchronousTestCase):
    """
    On a connection quiet long enough for a probe to be due, the transport's
    C{doRead} reads the socket's pending error before Twisted's C{recv}
    consumes it: a reset (a peer answering a probe with RST) is reported as
    L{PeerReset}, not as a keepalive timeout.
    """

    def setUp(self) -> None:
        self.now = 100.0
        self.patch(_keepaliveloss, "_now", lambda: self.now)
        self.sock = FakeSocket()
        self.transport = SocketTransport(self.sock)
        # idle 2: the error is read after 1 s without a read.
        self.result = enableKeepAlive(
            self.transport, KeepAliveConfig(2, 1, 3), platformFor("linux", LINUX)
        )

    def test_reset(self) -> None:
        """
        C{ECONNRESET} pending after a quiet second: C{doRead} returns a
        L{PeerReset} (the reactor then loses the connection with it)
        without reading.
        """
        self.assertTrue(self.result.reportsTimeout)
        self.now += 1.0
        self.sock.soError = errno.ECONNRESET
        self.sock.tcpInfo = bytes([7, 0, 0, 1, 0, 0, 0, 0])
        loss = self.transport.doRead()
        self.assertIsInstance(loss, PeerReset)
        self.assertIsInstance(loss, ConnectionLost)
        self.assertNotIsInstance(loss, KeepAliveTimedOut)
        self.assertEqual(loss.osError, errno.ECONNRESET)
        self.assertEqual(str(loss), "The peer reset the connection (ECONNRESET).")
        self.assertEqual(self.transport.reads, 0)
        # What the reactor does next: the loss reaches connectionLost as is.
        self.transport.connectionLost(Failure(loss))
        self.assertIs(self.transport.lostReasons[0].value, loss)

    def test_timedOut(self) -> None:
        """
        C{ETIMEDOUT} with probes outstanding is a L{KeepAliveTimedOut}.
        """
        self.now += 5.0
        self.sock.soError = errno.ETIMEDOUT
        self.sock.tcpInfo = bytes([7, 0, 0, 3, 0, 0, 0, 0])
        self.assertIsInstance(self.transport.doRead(), KeepAliveTimedOut)

    def test_otherErrors(self) -> None:
        """
        C{ETIMEDOUT} without a probe outstanding (retransmissions gave up)
        and any other error are a plain L{ConnectionLost} naming the error.
        """
        for code, text in [
            (errno.ETIMEDOUT, "Connection timed out (ETIMEDOUT)"),
            (errno.EHOSTUNREACH, "No route to host (EHOSTUNREACH)"),
        ]:
            self.now += 5.0
            self.sock.soError = code
            loss = self.transport.doRead()
            self.assertIs(type(loss), ConnectionLost)
            self.assertEqual(
                str(loss),
                f"Connection to the other side was lost in a non-clean fashion: "
                f"{text}.",
            )

    def test_quietWithoutError(self) -> None:
        """
        After a quiet spell without a pending error, Twisted's C{doRead}
        runs as usual.
        """
        self.now += 1.0
        self.assertIsNone(self.transport.doRead())
        self.assertEqual((self.sock.errorReads, self.transport.reads), (1, 1))

    def test_busyConnection(self) -> None:
        """
        A connection that reads more often than every half idle time pays
        no system call for it.
        """
        for _ in range(10):
            self.now += 0.9
            self.transport.doRead()
        self.assertEqual((self.sock.errorReads, self.transport.reads), (0, 10))

    def test_hooksGoWithTheConnection(self) -> None:
        """
        After the loss the transport's own C{doRead} and C{connectionLost}
        are back.
        """
        self.assertIn("doRead", vars(self.transport))
        self.transport.connectionLost(Failure(ConnectionDone()))
        self.assertNotIn("doRead", vars(self.transport))
        self.assertNotIn("connectionLost", vars(self.transport))
