"""
OS TCP keepalive for a Twisted transport: turn it on, tune it, read back
what the kernel took.

Twisted's own C{ITCPTransport.setTcpKeepAlive} is an on/off switch; the
kernel's defaults (on Linux the first probe after two hours) are far too
slow to find a dead peer.  L{enableKeepAlive} sets the idle time, the probe
interval, the probe count and (where the platform has it) the user timeout,
then reads each setting back from the socket, so the caller learns what
applies rather than what was asked.

Where each platform keeps the settings is in C{_keepaliveplatform}; an
option the platform lacks is named in L{KeepAliveResult.unsupported} and
logged once per process, never silently dropped.  How a tuned connection
reports why the kernel dropped it (L{KeepAliveTimedOut}, L{PeerReset}) is
in C{_keepaliveloss}.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

import attrs

from ._config import KeepAliveConfig
from ._keepaliveloss import KeepAliveTimedOut, PeerReset, watchLosses
from ._keepaliveplatform import (
    FIELDS,
    OPTION_NAMES,
    KeepAlivePlatform,
    currentPlatform,
    logOnce,
)

__all__ = [
    "KeepAlivePlatform",
    "KeepAliveResult",
    "KeepAliveTimedOut",
    "PeerReset",
    "currentPlatform",
    "enableKeepAlive",
    "findSocket",
    "logOnce",
]

# setsockopt errors that mean "this system does not have that option"
# (10042 is Windows' WSAENOPROTOOPT).
_UNSUPPORTED_ERRNOS = frozenset({errno.ENOPROTOOPT, errno.EOPNOTSUPP, 10042})


@attrs.frozen
class KeepAliveResult:
    """
    What L{enableKeepAlive} did to one connection, as read back from its
    socket.

    @ivar applicable: Whether the transport has a TCP socket at all; if not,
        nothing was done and C{reason} says why.
    @ivar reason: Why keepalive does not apply (C{""} when it does).
    @ivar enabled: C{SO_KEEPALIVE} as read back.
    @ivar idle: C{TCP_KEEPIDLE} (seconds) as read back, or L{None} if the
        platform has no such setting.
    @ivar interval: C{TCP_KEEPINTVL} (seconds), likewise.
    @ivar count: C{TCP_KEEPCNT} (probes), likewise.
    @ivar userTimeout: C{TCP_USER_TIMEOUT} (milliseconds), likewise; read
        back also when the config left it alone (C{0}: the kernel default).
    @ivar unsupported: The settings the config asked for that this platform
        lacks: they are not in effect.
    @ivar unverified: The settings that were set but cannot be read back
        (Windows' C{SIO_KEEPALIVE_VALS}); they carry the asked value.
    @ivar platform: The platform's name (C{sys.platform}).
    @ivar reportsTimeout: Whether the transport will report a keepalive
        timeout as L{KeepAliveTimedOut} and a reset as L{PeerReset} (see
        L{enableKeepAlive}).
    """

    applicable: bool
    reason: str = ""
    enabled: bool = False
    idle: int | None = None
    interval: int | None = None
    count: int | None = None
    userTimeout: int | None = None
    unsupported: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    platform: str = ""
    reportsTimeout: bool = False

    @classmethod
    def notApplicable(cls, reason: str, platform: str = "") -> KeepAliveResult:
        """
        The result for a transport that has no TCP socket.
        """
        return cls(applicable=False, reason=reason, platform=platform)

    def settings(self) -> dict[str, int]:
        """
        The settings in effect, by field name, without the ones that are
        unknown (L{None}).
        """
        return {
            field: value
            for field in FIELDS
            if (value := getattr(self, field)) is not None
        }


def _isSocket(handle: object) -> bool:
    return all(
        callable(getattr(handle, name, None))
        for name in ("setsockopt", "getsockopt", "fileno")
    ) and isinstance(getattr(handle, "family", None), int)


def findSocket(transport: object) -> tuple[Any, str]:
    """
    Find the TCP socket under C{transport}: its own (C{getHandle()}), the
    one a TCP transport that started TLS still keeps (C{startTLS} makes its
    C{getHandle()} return the TLS connection; the socket stays its
    C{socket}), or, for a transport that wraps another one (TLS's
    C{TLSMemoryBIOProtocol}, a
    L{ProtocolWrapper<twisted.protocols.policies.ProtocolWrapper>}), the one
    under the C{.transport} chain.

    @return: C{(socket, "")}, or C{(None, reason)} if there is no open TCP
        socket.
    """
    _, sock, reason = _findOwner(transport)
    return sock, reason


def _handleOf(transport: object) -> Any:
    """
    C{transport}'s socket if it has one, else L{None}.
    """
    getHandle = getattr(transport, "getHandle", None)
    if callable(getHandle):
        try:
            handle = getHandle()
        except Exception:
            handle = None
        if _isSocket(handle):
            return handle
    # A TCP transport after startTLS: getHandle() is the TLS connection.
    handle = getattr(transport, "socket", None)
    return handle if _isSocket(handle) else None


def _findOwner(transport: object) -> tuple[Any, Any, str]:
    """
    Like L{findSocket}, but also return the transport that owns the socket.
    """
    current: object = transport
    for _ in range(16):
        handle = _handleOf(current)
        if handle is not None:
            family = handle.family
            if family not in (socket.AF_INET, socket.AF_INET6):
                name = getattr(family, "name", str(family))
                return (
                    None,
                    None,
                    f"{type(current).__qualname__} is not TCP ({name})",
                )
            if handle.fileno() == -1:
                return (
                    None,
                    None,
                    f"{type(current).__qualname__}'s socket is closed",
                )
            return _lowest(current, handle), handle, ""
        below = getattr(current, "transport", None)
        if below is None or below is current:
            break
        current = below
    return None, None, f"{type(transport).__qualname__} has no TCP socket"


def _lowest(owner: object, handle: object) -> object:
    """
    The lowest transport in C{owner}'s C{.transport} chain whose handle is
    still C{handle}: a C{ProtocolWrapper} hands out its transport's socket
    as its own, but it is the TCP transport that the reactor tells of the
    loss first, while the socket is still open.
    """
    for _ in range(16):
        below = getattr(owner, "transport", None)
        if below is None or below is owner or _handleOf(below) is not handle:
            break
        owner = below
    return owner


def enableKeepAlive(
    transport: object,
    config: KeepAliveConfig,
    platform: KeepAlivePlatform | None = None,
) -> KeepAliveResult:
    """
    Turn on OS TCP keepalive for C{transport}'s connection with the settings
    of C{config}, and report them as read back from the socket.

    Works on server and client TCP transports, IPv4 and IPv6, and through
    TLS.  A transport with no TCP socket (a UNIX socket, an in-memory
    transport, a closed connection) gets a result with C{applicable=False}
    and the reason; nothing is raised.  A setting the platform lacks is
    listed in C{unsupported} and logged once per process.

    Where the platform can tell (Linux), the transport is also made to
    report a connection the kernel dropped for unanswered probes as
    L{KeepAliveTimedOut}, and one the peer reset (for example in answer to
    a probe) as L{PeerReset}, rather than a bare
    L{ConnectionLost<twisted.internet.error.ConnectionLost>} (see
    C{reportsTimeout} and C{_keepaliveloss}); a busy connection pays one
    clock read per read for it.

    @param transport: The connection's transport (C{protocol.transport}).
    @param config: The keepalive settings.
    @param platform: Where the settings live; this process's platform if
        L{None}.
    @raise OSError: If the kernel refuses a setting for another reason than
        not having it.
    """
    platform = currentPlatform() if platform is None else platform
    owner, sock, reason = _findOwner(transport)
    if sock is None:
        return KeepAliveResult.notApplicable(reason, platform.name)
    result = _apply(sock, config, platform)
    if platform.tcpInfo is not None and watchLosses(owner, sock, platform, result.idle):
        result = attrs.evolve(result, reportsTimeout=True)
    return result


def _apply(
    sock: Any, config: KeepAliveConfig, platform: KeepAlivePlatform
) -> KeepAliveResult:
    sock.setsockopt(platform.solSocket, platform.soKeepAlive, 1)
    values: dict[str, int | None] = {}
    unsupported = list(platform.lacks(config))
    unverified: list[str] = []
    if platform.keepAliveVals is not None:
        sock.ioctl(
            platform.keepAliveVals, (1, config.idle * 1000, config.interval * 1000)
        )
        values["idle"], values["interval"] = config.idle, config.interval
        unverified += ["idle", "interval"]
    for field, option in platform.options.items():
        wanted = getattr(config, field)
        try:
            if wanted is not None:
                sock.setsockopt(platform.ipprotoTCP, option, wanted)
            values[field] = sock.getsockopt(platform.ipprotoTCP, option)
        except OSError as e:
            if e.errno not in _UNSUPPORTED_ERRNOS:
                raise
            if wanted is not None:
                unsupported.append(field)
    enabled = bool(sock.getsockopt(platform.solSocket, platform.soKeepAlive))
    for field in unsupported:
        logOnce(
            ("unsupported", platform.name, field),
            "OS keepalive: {platform} has no {option}; {field}={value} is not "
            "in effect",
            platform=platform.name,
            option=OPTION_NAMES[field],
            field=field,
            value=getattr(config, field),
        )
    return KeepAliveResult(
        applicable=True,
        enabled=enabled,
        unsupported=tuple(f for f in FIELDS if f in unsupported),
        unverified=tuple(unverified),
        idle=values.get("idle"),
        interval=values.get("interval"),
        count=values.get("count"),
        userTimeout=values.get("userTimeout"),
        platform=platform.name,
    )
