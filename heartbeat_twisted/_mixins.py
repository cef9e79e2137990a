"""
The server-side heartbeat as mixins: L{HeartbeatMixin} for the protocol,
L{HeartbeatFactoryMixin} for its factory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ._closing import closed, closeGracefully, peerText
from ._config import HeartbeatConfig, KeepAliveConfig
from ._hooks import Method, callsFirst, fromFactory, hookMethod
from ._keepalive import KeepAliveResult, enableKeepAlive, logOnce
from ._tracker import IdleEntry, IdleTracker
from ._writepath import writePathFor

__all__ = ["HeartbeatFactoryMixin", "HeartbeatMixin"]

_MARK = "_heartbeatHooked"


def _hookDataReceived(original: Method) -> Method:
    def dataReceived(self: HeartbeatMixin, data: bytes) -> Any:
        entry = self._heartbeatEntry
        if entry is not None:
            entry.last = self._heartbeatSeconds()
        return original(self, data)

    return dataReceived


class HeartbeatMixin:
    """
    Protocol mixin: close the connection when it has received nothing for
    C{idle} seconds.

    Mix it into any protocol whose factory mixes in L{HeartbeatFactoryMixin}::

        class Chat(HeartbeatMixin, LineReceiver):
            def lineReceived(self, line): ...

    The connection is tracked from C{makeConnection} to C{connectionLost}.
    Every received chunk counts as activity, also when a subclass overrides
    C{dataReceived} without calling up (the mixin hooks the methods each
    subclass defines, at class creation); written bytes count too when
    C{HeartbeatConfig.countOutbound} is set.

    When the connection has been silent for C{idle} seconds,
    L{heartbeatTimedOut} is called.

    If the factory has a C{keepAliveConfig}, OS TCP keepalive is turned on
    for the connection at C{makeConnection} (see
    L{enableKeepAlive<heartbeat_twisted.enableKeepAlive>}).

    @ivar heartbeatCloseReason: Why the heartbeat closed this connection
        (C{"idle"}), or L{None} if it did not.
    @ivar keepAliveResult: The OS keepalive settings in effect for this
        connection, as read back from its socket, or L{None} if the factory
        asked for none.
    """

    _heartbeatLog = Logger()
    _heartbeatEntry: IdleEntry | None = None
    _heartbeatTracker: IdleTracker | None = None
    _heartbeatSeconds: Callable[[], float]
    _heartbeatUnobserve: Callable[[], None] | None = None
    heartbeatCloseReason: str | None = None
    keepAliveResult: KeepAliveResult | None = None
    #: What counts as activity: C{"bytes"} (every received chunk; the
    #: mixin hooks C{dataReceived}) or C{"manual"} (only calls to
    #: L{heartbeatTouch}: for a protocol that counts lines or pings).
    heartbeatActivity = "bytes"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hookMethod(cls, "makeConnection", _MARK, callsFirst("_heartbeatStart", True))
        if cls.heartbeatActivity == "bytes":
            hookMethod(cls, "dataReceived", _MARK, _hookDataReceived)
        hookMethod(cls, "connectionLost", _MARK, callsFirst("_heartbeatStop"))

    def heartbeatTracker(self) -> IdleTracker:
        """
        The tracker this connection registers with: by default the
        factory's C{heartbeatTracker}.  Override to share another one.
        """
        return fromFactory(
            self,
            "heartbeatTracker",
            IdleTracker,
            "Mix heartbeat_twisted.HeartbeatFactoryMixin into the factory and "
            "give it a heartbeatConfig.",
        )

    def heartbeatTouch(self) -> None:
        """
        Count activity now, for a class whose C{heartbeatActivity} is
        C{"manual"}: one timestamp store.
        """
        entry = self._heartbeatEntry
        if entry is not None:
            entry.last = self._heartbeatSeconds()

    def heartbeatTimedOut(self) -> None:
        """
        Called when nothing was received for C{idle} seconds.

        The default logs, closes the connection cleanly (what was written is
        still flushed) and aborts it if it is still open C{closeGrace}
        seconds later, so that a peer that stopped reading cannot hold it.
        Override to do something else (send a ping, say); if the connection
        stays open, this is called again after another C{idle} seconds of
        silence.
        """
        if self.heartbeatCloseReason is not None:
            return
        tracker = self._heartbeatTracker
        assert tracker is not None
        transport: Any = getattr(self, "transport", None)
        self.heartbeatCloseReason = "idle"
        self._heartbeatLog.info(
            "closing {peer} after {idle} s without data",
            peer=peerText(transport),
            idle=tracker.config.idle,
            reason="idle",
        )
        closeGracefully(
            self, transport, tracker.config.closeGrace, tracker.clock, "idle"
        )

    def _heartbeatStart(self, transport: Any) -> None:
        if self._heartbeatEntry is not None:
            return
        factory = getattr(self, "factory", None)
        keepAlive = getattr(factory, "keepAliveConfig", None)
        # A factory given only a KeepAliveConfig wants OS keepalive alone.
        keepAliveOnly = (
            keepAlive is not None and getattr(factory, "heartbeatConfig", 0) is None
        )
        if not keepAliveOnly:
            tracker = self._heartbeatTracker = self.heartbeatTracker()
            self._heartbeatSeconds = tracker.seconds
            entry = self._heartbeatEntry = tracker.track(self)
            if tracker.config.countOutbound:
                self._heartbeatCountWrites(transport, entry)
        if keepAlive is not None:
            self._heartbeatKeepAlive(transport, keepAlive)

    def _heartbeatKeepAlive(self, transport: Any, config: KeepAliveConfig) -> None:
        """
        Turn on OS keepalive for this connection; log (once per reason) if
        it cannot apply, and log rather than raise if the kernel refuses.
        """
        try:
            result = self.keepAliveResult = enableKeepAlive(transport, config)
        except OSError:
            self._heartbeatLog.failure(
                "OS keepalive: cannot enable it for {peer}", peer=peerText(transport)
            )
            return
        if not result.applicable:
            logOnce(
                ("not applicable", result.reason),
                "OS keepalive does not apply: {reason}",
                reason=result.reason,
            )

    def _heartbeatCountWrites(self, transport: Any, entry: IdleEntry) -> None:
        """
        Make bytes that leave the process count as activity: what the
        kernel accepts from this connection's send buffer (or an eager
        send), not C{write()} calls, so a peer that stops reading goes
        idle while its buffer is full.  On a transport that is not carried
        by a Twisted TCP connection nothing outbound counts (logged).
        """
        seconds = self._heartbeatSeconds

        def progressed(count: int) -> None:
            entry.last = seconds()

        path = writePathFor(transport)
        if path is None:
            self._heartbeatLog.warn(
                "countOutbound ignored: cannot see what leaves {transport!r}",
                transport=transport,
            )
            return
        self._heartbeatUnobserve = path.observeProgress(progressed)

    def _heartbeatStop(self) -> None:
        entry, self._heartbeatEntry = self._heartbeatEntry, None
        if entry is not None and self._heartbeatTracker is not None:
            self._heartbeatTracker.untrack(entry)
        closed(self)
        unobserve, self._heartbeatUnobserve = self._heartbeatUnobserve, None
        if unobserve is not None:
            unobserve()


class HeartbeatFactoryMixin:
    """
    Factory mixin: owns the L{IdleTracker} shared by its
    L{HeartbeatMixin} connections.

    Configure it with keyword arguments or class attributes::

        class ChatFactory(HeartbeatFactoryMixin, Factory):
            protocol = Chat
            heartbeatConfig = HeartbeatConfig(idle=30)

        factory = ChatFactory()                      # class attribute, or
        factory = ChatFactory(heartbeatConfig=HeartbeatConfig(idle=5),
                              clock=clock)           # per instance
        factory = ChatFactory(heartbeatConfig=HeartbeatConfig(idle=30),
                              keepAlive=KeepAliveConfig(60, 10, 6))

    A factory with a C{keepAliveConfig} and no C{heartbeatConfig} turns on
    OS keepalive only: its connections are not tracked for idleness.

    @ivar heartbeatConfig: The idle time and sweep period.
    @ivar keepAliveConfig: OS TCP keepalive settings applied to every
        connection, or L{None} to leave the OS defaults.
    @ivar heartbeatClock: The clock for the tracker (the global reactor if
        L{None}).
    """

    heartbeatConfig: HeartbeatConfig | None = None
    keepAliveConfig: KeepAliveConfig | None = None
    heartbeatClock: IReactorTime | None = None
    _heartbeatTrackerInstance: IdleTracker | None = None

    def __init__(
        self,
        *args: Any,
        heartbeatConfig: HeartbeatConfig | None = None,
        clock: IReactorTime | None = None,
        keepAlive: KeepAliveConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if heartbeatConfig is not None:
            self.heartbeatConfig = heartbeatConfig
        if keepAlive is not None:
            if not isinstance(keepAlive, KeepAliveConfig):
                raise TypeError(
                    f"keepAlive must be a KeepAliveConfig or None: {keepAlive!r}"
                )
            self.keepAliveConfig = keepAlive
        if clock is not None:
            self.heartbeatClock = clock

    @property
    def heartbeatTracker(self) -> IdleTracker:
        """
        The tracker, made on first use from C{heartbeatConfig} and
        C{heartbeatClock}.
        """
        tracker = self._heartbeatTrackerInstance
        if tracker is None:
            config = self.heartbeatConfig
            if config is None:
                raise TypeError(
                    f"{type(self).__qualname__} has no heartbeatConfig: pass "
                    f"heartbeatConfig=HeartbeatConfig(idle=...) or set it as "
                    f"a class attribute (or give only keepAlive=KeepAliveConfig"
                    f"(...) for OS keepalive without the idle heartbeat)"
                )
            tracker = IdleTracker(config, self.heartbeatClock)
            self._heartbeatTrackerInstance = tracker
        return tracker
