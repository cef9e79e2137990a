"""
The server-side heartbeat as mixins: L{HeartbeatMixin} for the protocol,
L{HeartbeatFactoryMixin} for its factory.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ._closing import abortNow, closed, closeGracefully, peerText
from ._config import HeartbeatConfig, KeepAliveConfig
from ._hooks import Method, callsFirst, hookMethod
from ._keepalive import KeepAliveResult, enableKeepAlive, logOnce
from ._tracker import IdleEntry, IdleTracker, checkIdle, sharedTracker
from ._writepath import writePathFor
from ._writepath._closenow import closeSoon
from .ping._config import PingConfig, PingServerConfig

__all__ = ["HeartbeatFactoryMixin", "HeartbeatMixin"]

_MARK = "_heartbeatHooked"

#: How to configure the heartbeat, for the one line that says it is not.
_FIX = (
    "give the protocol class heartbeatConfig = HeartbeatConfig(idle=...), or "
    "mix heartbeat_twisted.HeartbeatFactoryMixin into the factory and give "
    "it a heartbeatConfig (or give that factory only keepAliveConfig=KeepAliveConfig"
    "(...) for OS keepalive without the idle heartbeat)"
)


def _hookMakeConnection(original: Method) -> Method:
    def makeConnection(self: HeartbeatMixin, transport: Any) -> Any:
        refused = self._heartbeatStart(transport)
        result = original(self, transport)
        if refused is not None:
            self._heartbeatRefuse(transport, refused)
        return result

    return makeConnection


def _hookDataReceived(original: Method) -> Method:
    def dataReceived(self: HeartbeatMixin, data: bytes) -> Any:
        entry = self._heartbeatEntry
        if entry is not None:
            # Set together with the entry: two instance attributes in all,
            # so that a connection grows by 16 bytes, not 32.  The stamp:
            # no clock read, no allocation (see ActivityStamp).
            entry.last = self._heartbeatTracker.stamp  # type: ignore[union-attr]
        return original(self, data)

    return dataReceived


def _hookTimedOut(original: Method) -> Method:
    def heartbeatTimedOut(self: HeartbeatMixin) -> Any:
        try:
            return original(self)
        except Exception:
            # Told again every idle period otherwise, and never closed.
            transport: Any = getattr(self, "transport", None)
            self._heartbeatLog.failure(
                "heartbeatTimedOut of {protocol!r} raised: aborting the connection",
                protocol=self,
            )
            if self.heartbeatCloseReason is None:
                self.heartbeatCloseReason = "error"
            self._heartbeatStop()
            abortNow(self, transport)
            return None

    return heartbeatTimedOut


class HeartbeatMixin:
    """
    Protocol mixin: close the connection when it has received nothing for
    C{idle} seconds.

    The least code that does it::

        class Chat(HeartbeatMixin, LineReceiver):
            heartbeatConfig = HeartbeatConfig(idle=30)

            def lineReceived(self, line): ...

    Such protocols share one sweep per clock and config.  A factory that
    mixes in L{HeartbeatFactoryMixin} with its own C{heartbeatConfig} (and
    C{keepAliveConfig}) takes precedence.

    The connection is tracked from C{makeConnection} to C{connectionLost}.
    Every received chunk counts as activity, also when a subclass overrides
    C{dataReceived} without calling up (the mixin hooks the methods each
    subclass defines, at class creation); bytes that leave the process
    (not C{write()} calls) count too when
    C{HeartbeatConfig.countOutbound} is set.  L{setIdle} changes this
    connection's idle time.

    When the connection has been silent for its idle time,
    L{heartbeatTimedOut} is called.  If that raises, the error is logged
    and the connection aborted.

    A connection that finds no heartbeat config at all (neither on its
    class nor on its factory) is aborted at once, with one log line that
    says how to configure it: never a connection that is open but
    untracked.

    If the factory has a C{keepAliveConfig}, OS TCP keepalive is turned on
    for the connection at C{makeConnection} (see
    L{enableKeepAlive<heartbeat_twisted.enableKeepAlive>}).

    @cvar heartbeatConfig: The heartbeat for connections whose factory
        gives none, or L{None}.
    @cvar heartbeatClock: The clock for that shared heartbeat (the
        factory's C{heartbeatClock}, else the global reactor, if L{None}).
    @ivar heartbeatCloseReason: Why the heartbeat closed this connection
        (C{"idle"}; C{"error"} if L{heartbeatTimedOut} raised;
        C{"no heartbeat config"}), or L{None} if it did not.
    @ivar keepAliveResult: The OS keepalive settings in effect for this
        connection, as read back from its socket, or L{None} if the factory
        asked for none.
    """

    heartbeatConfig: HeartbeatConfig | None = None
    heartbeatClock: IReactorTime | None = None
    _heartbeatLog = Logger()
    _heartbeatEntry: IdleEntry | None = None
    _heartbeatTracker: IdleTracker | None = None
    _heartbeatIdle: float | None = None
    _heartbeatUnobserve: Callable[[], None] | None = None
    heartbeatCloseReason: str | None = None
    keepAliveResult: KeepAliveResult | None = None
    #: What counts as activity: C{"bytes"} (every received chunk; the
    #: mixin hooks C{dataReceived}) or C{"manual"} (only calls to
    #: L{heartbeatTouch}: for a protocol that counts lines or pings).
    heartbeatActivity = "bytes"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hookMethod(cls, "makeConnection", _MARK, _hookMakeConnection)
        if cls.heartbeatActivity == "bytes":
            hookMethod(cls, "dataReceived", _MARK, _hookDataReceived)
        hookMethod(cls, "connectionLost", _MARK, callsFirst("_heartbeatStop"))
        hookMethod(cls, "heartbeatTimedOut", _MARK, _hookTimedOut)

    def heartbeatTracker(self) -> IdleTracker:
        """
        The tracker this connection registers with: the factory's
        C{heartbeatTracker} if it has one, else the one shared by every
        connection with this class's C{heartbeatConfig} on the same clock.
        Override to share another one.

        @raise TypeError: If there is no heartbeat config, saying how to
            give one.
        """
        factory = getattr(self, "factory", None)
        try:
            tracker = getattr(factory, "heartbeatTracker", None)
        except TypeError:
            tracker = None  # a factory mixin given no heartbeatConfig
        if isinstance(tracker, IdleTracker):
            return tracker
        config = self.heartbeatConfig
        if config is None:
            raise TypeError(
                f"{type(self).__qualname__} has no heartbeat config (factory "
                f"{type(factory).__qualname__}): {_FIX}"
            )
        clock = self.heartbeatClock or getattr(factory, "heartbeatClock", None)
        return sharedTracker(config, clock)

    def setIdle(self, seconds: float | None) -> None:
        """
        Set this connection's idle time, at any time (for example from a
        keepalive the client announces): it times out C{seconds} after its
        last activity, never earlier than the tracker's next sweep.

        @param seconds: Seconds C{> 0}; C{0}: never time out; L{None}: the
            config's C{idle}.
        @raise ValueError: For a negative or non-finite value.
        """
        self._heartbeatIdle = checkIdle(seconds)
        entry, tracker = self._heartbeatEntry, self._heartbeatTracker
        if entry is not None and tracker is not None:
            tracker.setIdle(entry, seconds)

    def heartbeatTouch(self) -> None:
        """
        Count activity now, for a class whose C{heartbeatActivity} is
        C{"manual"}: one store of the tracker's
        L{stamp<heartbeat_twisted.IdleTracker.stamp>}.
        """
        entry = self._heartbeatEntry
        if entry is not None:
            entry.last = self._heartbeatTracker.stamp  # type: ignore[union-attr]

    def heartbeatTimedOut(self) -> None:
        """
        Called when nothing was received for C{idle} seconds.

        The default closes the connection cleanly (what was written is
        still flushed) and aborts it if it is still open C{closeGrace}
        seconds later, so that a peer that stopped reading cannot hold it;
        the tracker logs one line per sweep for all it timed out.  A TCP
        connection with nothing unsent closes in the reactor's next turn,
        without waiting to be writable and with no abort to arm (see
        docs/heartbeat.rst, "One way to close").  The connection is no
        longer tracked from then on: it is closing.
        Override to do something else (send a ping, say); if the connection
        stays open, this is called again after another C{idle} seconds of
        silence.
        """
        if self.heartbeatCloseReason is not None:
            return
        tracker = self._heartbeatTracker
        assert tracker is not None
        self.heartbeatCloseReason = "idle"
        closeGracefully(
            self,
            getattr(self, "transport", None),
            tracker.config.closeGrace,
            tracker,
            "idle",
            closeSoon,
        )
        # Closing: nothing to time out any more (the abort, if armed,
        # bounds the close), so the sweep need not file it again.
        entry, self._heartbeatEntry = self._heartbeatEntry, None
        if entry is not None:
            tracker.untrack(entry)

    def _heartbeatStart(self, transport: Any) -> str | None:
        """
        Track this connection and turn on keepalive as configured.

        @return: Why the connection must be refused, or L{None}.
        """
        if self._heartbeatEntry is not None:
            return None
        factory = getattr(self, "factory", None)
        keepAlive = getattr(factory, "keepAliveConfig", None)
        # A factory given only a KeepAliveConfig wants OS keepalive alone.
        keepAliveOnly = (
            keepAlive is not None
            and getattr(factory, "heartbeatConfig", 0) is None
            and self.heartbeatConfig is None
        )
        if not keepAliveOnly:
            try:
                tracker = self.heartbeatTracker()
            except TypeError as e:
                return str(e)
            self._heartbeatTracker = tracker
            entry = self._heartbeatEntry = tracker.track(self, self._heartbeatIdle)
            if tracker.config.countOutbound:
                self._heartbeatCountWrites(transport, entry)
        if keepAlive is not None:
            self._heartbeatKeepAlive(transport, keepAlive)
        return None

    def _heartbeatRefuse(self, transport: Any, why: str) -> None:
        """
        Abort a connection that has no heartbeat, saying (once per class)
        how to give it one.
        """
        logOnce(
            ("no heartbeat config", type(self).__module__, type(self).__qualname__),
            "aborting connections of {protocol}: {why}",
            protocol=type(self).__qualname__,
            why=why,
        )
        self.heartbeatCloseReason = "no heartbeat config"
        abortNow(self, transport)

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
        tracker = self._heartbeatTracker
        assert tracker is not None

        def progressed(count: int) -> None:
            entry.last = tracker.stamp

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
                              keepAliveConfig=KeepAliveConfig(60, 10, 6),
                              pingServerConfig=PingServerConfig())

    A factory with a C{keepAliveConfig} and no C{heartbeatConfig} turns on
    OS keepalive only: its connections are not tracked for idleness.

    @ivar heartbeatConfig: The idle time and sweep period.
    @ivar keepAliveConfig: OS TCP keepalive settings applied to every
        connection, or L{None} to leave the OS defaults.
    @ivar pingConfig: What L{heartbeat_twisted.ping.PingingMixin}
        connections ping with, or L{None}.
    @ivar pingServerConfig: What L{heartbeat_twisted.ping.PingAnswerMixin}
        connections answer with, or L{None}.
    @ivar heartbeatClock: The clock for the tracker (the global reactor if
        L{None}).
    """

    heartbeatConfig: HeartbeatConfig | None = None
    keepAliveConfig: KeepAliveConfig | None = None
    pingConfig: PingConfig | None = None
    pingServerConfig: PingServerConfig | None = None
    heartbeatClock: IReactorTime | None = None
    _heartbeatTrackerInstance: IdleTracker | None = None

    def __init__(
        self,
        *args: Any,
        heartbeatConfig: HeartbeatConfig | None = None,
        keepAliveConfig: KeepAliveConfig | None = None,
        pingConfig: PingConfig | None = None,
        pingServerConfig: PingServerConfig | None = None,
        clock: IReactorTime | None = None,
        keepAlive: KeepAliveConfig | None = None,
        **kwargs: Any,
    ) -> None:
        """
        Each keyword sets the attribute of the same name; one not given
        leaves the class attribute.

        @param heartbeatConfig: The idle heartbeat (L{HeartbeatMixin}).
        @param keepAliveConfig: OS TCP keepalive for every connection.
        @param pingConfig: The pinging side of ping/pong
            (L{heartbeat_twisted.ping.PingingMixin}).
        @param pingServerConfig: The answering side of ping/pong
            (L{heartbeat_twisted.ping.PingAnswerMixin}).
        @param clock: The clock of all of them (C{heartbeatClock}).
        @param keepAlive: The 0.1 name of C{keepAliveConfig}; deprecated.
        """
        super().__init__(*args, **kwargs)
        if keepAlive is not None:
            warnings.warn(
                "HeartbeatFactoryMixin(keepAlive=...) is deprecated since "
                "heartbeat_twisted 0.2.0: use keepAliveConfig=...",
                DeprecationWarning,
                stacklevel=2,
            )
            if keepAliveConfig is None:
                keepAliveConfig = keepAlive
        for name, value, kind in (
            ("heartbeatConfig", heartbeatConfig, HeartbeatConfig),
            ("keepAliveConfig", keepAliveConfig, KeepAliveConfig),
            ("pingConfig", pingConfig, PingConfig),
            ("pingServerConfig", pingServerConfig, PingServerConfig),
        ):
            if value is None:
                continue
            if not isinstance(value, kind):
                raise TypeError(f"{name} must be a {kind.__name__} or None: {value!r}")
            setattr(self, name, value)
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
                    f"a class attribute (or give only keepAliveConfig=KeepAliveConfig"
                    f"(...) for OS keepalive without the idle heartbeat)"
                )
            tracker = IdleTracker(config, self.heartbeatClock)
            self._heartbeatTrackerInstance = tracker
        return tracker
