"""
The heartbeat for a protocol factory you cannot change.
"""

from __future__ import annotations

from twisted.internet.interfaces import IProtocolFactory, IReactorTime
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from ._config import HeartbeatConfig, KeepAliveConfig
from ._mixins import HeartbeatFactoryMixin, HeartbeatMixin

__all__ = ["HeartbeatProtocolWrapper", "HeartbeatWrappingFactory"]


class HeartbeatProtocolWrapper(HeartbeatMixin, ProtocolWrapper):
    """
    Wraps one protocol built by the wrapped factory: every chunk it is given
    counts as activity, and it is closed after C{idle} seconds of silence
    like any L{HeartbeatMixin}.
    """


class HeartbeatWrappingFactory(HeartbeatFactoryMixin, WrappingFactory):
    """
    Add the idle heartbeat to any L{IProtocolFactory}, unmodified::

        from twisted.protocols.wire import Echo
        from twisted.internet.protocol import Factory

        factory = HeartbeatWrappingFactory(
            Factory.forProtocol(Echo), HeartbeatConfig(idle=5))
        endpoint.listen(factory)

    Like L{twisted.protocols.policies.WrappingFactory}, it keeps the live
    wrappers in C{protocols}.
    """

    protocol = HeartbeatProtocolWrapper

    def __init__(
        self,
        wrappedFactory: IProtocolFactory,
        heartbeatConfig: HeartbeatConfig,
        clock: IReactorTime | None = None,
        keepAlive: KeepAliveConfig | None = None,
        *,
        keepAliveConfig: KeepAliveConfig | None = None,
    ) -> None:
        """
        @param wrappedFactory: The factory whose protocols get the heartbeat.
        @param heartbeatConfig: The idle time and sweep period.
        @param clock: The tracker's clock; the global reactor if L{None}.
        @param keepAlive: The 0.1 name of C{keepAliveConfig}; deprecated.
        @param keepAliveConfig: OS TCP keepalive for every connection, or
            L{None}.
        """
        super().__init__(
            wrappedFactory,
            heartbeatConfig=heartbeatConfig,
            clock=clock,
            keepAlive=keepAlive,
            keepAliveConfig=keepAliveConfig,
        )
