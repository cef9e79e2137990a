"""
How ping/pong messages travel: one small interface, L{IPingFraming}, that
the answering and pinging mixins send through, and the entry points a
framing calls when it decoded a message.  Lines
(L{LineReceiver<twisted.protocols.basic.LineReceiver>}) and
length-prefixed strings
(L{Int32StringReceiver<twisted.protocols.basic.Int32StringReceiver>} and its kin) carry
the
text grammar of C{docs/pingpong.rst}; AMP carries a C{Ping} command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zope.interface import Interface, implementer

from ._lines import oneLine

__all__ = [
    "IPingFraming",
    "MessageFraming",
    "PingFramed",
    "messageMethod",
]


class IPingFraming(Interface):
    """
    Sends the messages of ping/pong on one connection.

    The mixins send through it; what a framing decodes it hands to the
    protocol's entry points: C{pingReceived(token)} (answering side),
    C{pongReceived(token, report=None)} and
    C{pingGoAwayReceived(reason, grace)} (pinging side).
    """

    def sendPing(token: bytes) -> None:
        """
        Ask the peer to answer; C{token} comes back with the answer.
        """

    def sendPong(token: bytes | None) -> None:
        """
        Answer a ping (its C{token}, if it carried one): all is well.
        """

    def sendUnhealthy(token: bytes | None, report: str) -> None:
        """
        Answer a ping: alive, but health checks fail (C{report} names them).
        """

    def sendError(code: str, text: str) -> None:
        """
        Tell the peer it misbehaved (C{code} is lower case and C{_}).
        """

    def sendGoAway(grace: float, reason: str) -> None:
        """
        Tell the peer to go (reconnect elsewhere) within C{grace} seconds.
        """


@implementer(IPingFraming)
class MessageFraming:
    """
    The text grammar, one message per line or per length-prefixed string:
    C{ping TOKEN}, C{pong [TOKEN]}, C{error unhealthy [TOKEN] :REPORT},
    C{error CODE :TEXT}, C{goaway SECONDS :REASON}.
    """

    def __init__(self, send: Callable[[bytes], object]) -> None:
        """
        @param send: Sends one message (e.g. C{protocol.sendLine}).
        """
        self.send = send

    def sendPing(self, token: bytes) -> None:
        """
        C{ping TOKEN}.
        """
        self.send(b"ping " + token)

    def sendPong(self, token: bytes | None) -> None:
        """
        C{pong} or C{pong TOKEN}.
        """
        self.send(b"pong" if token is None else b"pong " + token)

    def sendUnhealthy(self, token: bytes | None, report: str) -> None:
        """
        C{error unhealthy [TOKEN] :REPORT}.
        """
        suffix = b"" if token is None else b" " + token
        self.send(b"error unhealthy" + suffix + b" :" + oneLine(report).encode("ascii"))

    def sendError(self, code: str, text: str) -> None:
        """
        C{error CODE :TEXT}.
        """
        self.send(f"error {code} :{oneLine(text)}".encode("ascii"))

    def sendGoAway(self, grace: float, reason: str) -> None:
        """
        C{goaway SECONDS :REASON}.
        """
        self.send(f"goaway {grace:g} :{oneLine(reason)}".encode("ascii"))


def isAMP(cls: type) -> bool:
    """
    Whether C{cls} is an AMP protocol (it locates command responders).
    """
    return callable(getattr(cls, "locateResponder", None)) and callable(
        getattr(cls, "callRemote", None)
    )


def messageMethod(cls: type) -> str:
    """
    The method of C{cls} that receives one decoded message:
    C{stringReceived} for string receivers, else C{lineReceived}.
    """
    if callable(getattr(cls, "sendString", None)) and not callable(
        getattr(cls, "sendLine", None)
    ):
        return "stringReceived"
    return "lineReceived"


class PingFramed:
    """
    Base of the ping/pong mixins: finds the connection's framing.
    """

    _pingFramingInstance: Any = None

    def pingFraming(self) -> IPingFraming:
        """
        The L{IPingFraming} this connection sends through, made on first
        use: AMP commands for an AMP protocol, else messages sent with
        C{sendString} (string receivers) or C{sendLine}.  Override it (and
        call the entry points from your decoder) for another framing.
        """
        framing = self._pingFramingInstance
        if framing is None:
            if isAMP(type(self)):
                from .amp import AMPFraming

                framing = AMPFraming(self)
            else:
                strings = messageMethod(type(self)) == "stringReceived"
                framing = MessageFraming(
                    getattr(self, "sendString" if strings else "sendLine")
                )
            self._pingFramingInstance = framing
        result: IPingFraming = framing
        return result
