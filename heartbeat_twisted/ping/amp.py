# mypy: disable-error-code="no-untyped-call"
"""
Ping/pong over AMP: a C{Ping} command whose response is the pong, and a
C{GoAway} command.  Mix L{PingAnswerMixin<heartbeat_twisted.ping.PingAnswerMixin>}
and/or L{PingingMixin<heartbeat_twisted.ping.PingingMixin>} into an
L{AMP<twisted.protocols.amp.AMP>}
subclass; the mixins find L{AMPFraming} themselves::

    class Service(PingAnswerMixin, AMP):
        pass

A health check that fails makes the C{Ping} command fail with
L{UnhealthyError}; a ping flood with L{PingRefusedError} (then the
connection is closed).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionClosed
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure
from zope.interface import implementer

from ._framing import IPingFraming

__all__ = ["AMPFraming", "GoAway", "Ping", "PingRefusedError", "UnhealthyError"]


class UnhealthyError(Exception):
    """
    The peer is alive but health checks fail; the text names them.
    """


class PingRefusedError(Exception):
    """
    The peer refused the ping (C{CODE: TEXT}) and closes the connection.
    """


class Ping(amp.Command):
    """
    Answer if healthy: the (empty) response is the pong.
    """

    commandName = b"Ping"
    arguments = [(b"token", amp.String(optional=True))]
    response = []
    errors = {UnhealthyError: b"UNHEALTHY", PingRefusedError: b"REFUSED"}


class GoAway(amp.Command):
    """
    Leave within C{grace} seconds (C{reason} says why); no answer.
    """

    commandName = b"GoAway"
    arguments = [(b"grace", amp.Float()), (b"reason", amp.Unicode())]
    requiresAnswer = False


_log = Logger()


@implementer(IPingFraming)
class AMPFraming:
    """
    L{IPingFraming} over AMP: pings are L{Ping} commands, answered in the
    order they came; the C{goaway} is a L{GoAway} command.
    """

    def __init__(self, protocol: Any) -> None:
        """
        @param protocol: The L{AMP<twisted.protocols.amp.AMP>} protocol with the
        ping/pong mixins.
        """
        self.protocol = protocol
        self._answers: deque[Deferred[dict[str, Any]]] = deque()

    # Answering side.

    def respondToPing(self, box: amp.AmpBox) -> Deferred[amp.AmpBox]:
        """
        The responder for a received L{Ping} command.
        """
        arguments = Ping.parseArguments(box, self.protocol)
        answer: Deferred[dict[str, Any]] = Deferred()
        self._answers.append(answer)
        self.protocol.pingReceived(arguments.get("token"))

        def refused(failure: Failure) -> Failure:
            error = failure.trap(UnhealthyError, PingRefusedError)
            return Failure(amp.RemoteAmpError(Ping.errors[error], str(failure.value)))

        return answer.addCallback(Ping.makeResponse, self.protocol).addErrback(refused)

    def sendPong(self, token: bytes | None) -> None:
        """
        Answer the oldest ping.
        """
        if self._answers:
            self._answers.popleft().callback({})

    def sendUnhealthy(self, token: bytes | None, report: str) -> None:
        """
        Fail the oldest ping with L{UnhealthyError}.
        """
        if self._answers:
            self._answers.popleft().errback(UnhealthyError(report))

    def sendError(self, code: str, text: str) -> None:
        """
        Fail the oldest ping with L{PingRefusedError} (AMP itself rejects
        malformed boxes).
        """
        if self._answers:
            self._answers.popleft().errback(PingRefusedError(f"{code}: {text}"))

    def sendGoAway(self, grace: float, reason: str) -> None:
        """
        Send L{GoAway}.
        """
        self.protocol.callRemote(GoAway, grace=float(grace), reason=reason)

    # Pinging side.

    def sendPing(self, token: bytes) -> None:
        """
        Call L{Ping}; its response (or L{UnhealthyError}) is the answer.
        """

        def answered(result: object) -> None:
            self.protocol.pongReceived(token)

        def failed(failure: Failure) -> None:
            if failure.check(UnhealthyError):
                self.protocol.pongReceived(token, str(failure.value))
            elif not failure.check(ConnectionClosed, amp.ProtocolSwitched):
                _log.failure("Ping failed", failure)

        calling: Deferred[Any] = self.protocol.callRemote(Ping, token=token)
        calling.addCallbacks(answered, failed)

    def respondToGoAway(self, box: amp.AmpBox) -> Deferred[amp.AmpBox]:
        """
        The responder for a received L{GoAway} command.
        """
        arguments = GoAway.parseArguments(box, self.protocol)
        self.protocol.pingGoAwayReceived(arguments["reason"], arguments["grace"])
        return succeed(amp.AmpBox())
