"""
OS TCP keepalive for a Twisted transport: turn it on, tune it, read back
what the kernel took.

Twisted's own C{ITCPTransport.setTcpKeepAlive} is an on/off switch; the
kernel's defaults (on Linux the first probe after two hours) are far too
slow to find a dead peer.  L{enableKeepAlive} sets the idle time, the probe
interval, the probe count and (where the platform has it) the user timeout,
then reads each setting back from the socket, so the caller learns what
applies rather than what was asked.

What each platform offers is looked up once per process
(L{KeepAlivePlatform.detect}), not per connection:

  - Linux: C{TCP_KEEPIDLE}, C{TCP_KEEPINTVL}, C{TCP_KEEPCNT},
    C{TCP_USER_TIMEOUT};
  - macOS: C{TCP_KEEPALIVE} (the idle time), C{TCP_KEEPINTVL},
    C{TCP_KEEPCNT}; no user timeout;
  - Windows: the C{SIO_KEEPALIVE_VALS} ioctl (idle time and interval, in
    milliseconds; it cannot be read back), C{TCP_KEEPCNT} where the system
    has it; no user timeout;
  - elsewhere: whichever of the Linux names the C{socket} module defines.

An option the platform lacks is named in L{KeepAliveResult.unsupported} and
logged once per process, never silently dropped.

When the kernel gives up on a peer it reports C{ETIMEDOUT}, but Twisted's
TCP transport drops the errno and hands the protocol a bare
L{ConnectionLost}.  Where the socket can tell why (Linux, C{TCP_INFO}), a
transport that L{enableKeepAlive} tuned reports
L{KeepAliveTimedOut} instead: still a L{ConnectionLost}, with
C{osError = ETIMEDOUT}.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Mapping
from typing import Any

import attrs
from twisted.internet.error import ConnectionLost
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._config import KeepAliveConfig

__all__ = [
    "KeepAlivePlatform",
    "KeepAliveResult",
    "KeepAliveTimedOut",
    "enableKeepAlive",
]

_log = Logger()

#: The tunable settings, in the order they are applied and reported.
FIELDS = ("idle", "interval", "count", "userTimeout")

#: Option names, for logs and errors.
_OPTION_NAMES = {
    "idle": "TCP_KEEPIDLE",
    "interval": "TCP_KEEPINTVL",
    "count": "TCP_KEEPCNT",
    "userTimeout": "TCP_USER_TIMEOUT",
}

# From the public netinet/tcp.h of macOS (XNU), for Pythons whose socket
# module does not define them.
_DARWIN_OPTIONS = {"idle": 0x10, "interval": 0x101, "count": 0x102}

# setsockopt errors that mean "this system does not have that option"
# (10042 is Windows' WSAENOPROTOOPT).
_UNSUPPORTED_ERRNOS = frozenset({errno.ENOPROTOOPT, errno.EOPNOTSUPP, 10042})

# Linux's TCP_CLOSE, the first byte of struct tcp_info once the kernel has
# dropped the connection; the fourth byte is tcpi_probes, the unanswered
# probes (keepalive or zero window) outstanding when it did.
_TCP_CLOSE = 7

# (option, platform) pairs and "not applicable" reasons already logged.
_loggedOnce: set[tuple[str, ...]] = set()


def logOnce(key: tuple[str, ...], format: str, **fields: Any) -> bool:
    """
    Log C{format} at warning level unless the same C{key} was logged before
    in this process.

    @return: Whether it logged.
    """
    if key in _loggedOnce:
        return False
    _loggedOnce.add(key)
    _log.warn(format, **fields)
    return True


@attrs.frozen(eq=True, hash=False)
class KeepAlivePlatform:
    """
    Where one platform's keepalive settings live.

    @ivar name: The platform, as in C{sys.platform} (C{"linux"},
        C{"darwin"}, C{"win32"}, ...).
    @ivar options: Setting name (one of C{"idle"}, C{"interval"},
        C{"count"}, C{"userTimeout"}) to its C{IPPROTO_TCP}-level socket
        option number, for the settings this platform sets with
        C{setsockopt}.
    @ivar keepAliveVals: The C{SIO_KEEPALIVE_VALS} ioctl code if C{idle}
        and C{interval} are set with it (Windows), else L{None}.
    @ivar solSocket: C{SOL_SOCKET} on this platform.
    @ivar soKeepAlive: C{SO_KEEPALIVE} on this platform.
    @ivar ipprotoTCP: C{IPPROTO_TCP} on this platform.
    @ivar tcpInfo: C{TCP_INFO} where its layout is known (Linux), so that a
        keepalive timeout can be told from other losses; else L{None}.
    """

    name: str
    options: Mapping[str, int]
    keepAliveVals: int | None = None
    solSocket: int = socket.SOL_SOCKET
    soKeepAlive: int = socket.SO_KEEPALIVE
    ipprotoTCP: int = socket.IPPROTO_TCP
    tcpInfo: int | None = None

    @classmethod
    def detect(cls, name: str | None = None, module: Any = None) -> KeepAlivePlatform:
        """
        Find the keepalive settings of a platform from its C{socket} module.

        @param name: The platform (C{sys.platform} if L{None}).
        @param module: Its C{socket} module (the real one if L{None}); tests
            pass a stand-in to check other platforms' branches.
        """
        name = sys.platform if name is None else name
        module = socket if module is None else module
        options: dict[str, int] = {}
        for field, option in _OPTION_NAMES.items():
            value = getattr(module, option, None)
            if isinstance(value, int):
                options[field] = value
        keepAliveVals = None
        tcpInfo = None
        if name.startswith("linux"):
            info = getattr(module, "TCP_INFO", None)
            tcpInfo = info if isinstance(info, int) else None
        elif name == "darwin":
            # macOS names the idle time TCP_KEEPALIVE.
            options.pop("idle", None)
            idle = getattr(module, "TCP_KEEPALIVE", None)
            options["idle"] = idle if isinstance(idle, int) else _DARWIN_OPTIONS["idle"]
            for field in ("interval", "count"):
                options.setdefault(field, _DARWIN_OPTIONS[field])
        elif name == "win32":
            ioctl = getattr(module, "SIO_KEEPALIVE_VALS", None)
            if isinstance(ioctl, int):
                # The ioctl works on every Windows; TCP_KEEPIDLE and
                # TCP_KEEPINTVL only on recent ones.
                keepAliveVals = ioctl
                options.pop("idle", None)
                options.pop("interval", None)
            # TCP_MAXRT is not TCP_USER_TIMEOUT (seconds, and retransmission
            # only), so Windows has no user timeout here.
            options.pop("userTimeout", None)
        return cls(
            name=name,
            options={field: options[field] for field in FIELDS if field in options},
            keepAliveVals=keepAliveVals,
            solSocket=getattr(module, "SOL_SOCKET", socket.SOL_SOCKET),
            soKeepAlive=getattr(module, "SO_KEEPALIVE", socket.SO_KEEPALIVE),
            ipprotoTCP=getattr(module, "IPPROTO_TCP", socket.IPPROTO_TCP),
            tcpInfo=tcpInfo,
        )

    def lacks(self, config: KeepAliveConfig) -> tuple[str, ...]:
        """
        The settings C{config} asks for that this platform cannot set at all.
        """
        byIoctl = ("idle", "interval") if self.keepAliveVals is not None else ()
        return tuple(
            field
            for field in FIELDS
            if getattr(config, field) is not None
            and field not in self.options
            and field not in byIoctl
        )


_current: KeepAlivePlatform | None = None


def currentPlatform() -> KeepAlivePlatform:
    """
    This process's L{KeepAlivePlatform}, detected on first use.
    """
    global _current
    if _current is None:
        _current = KeepAlivePlatform.detect()
    return _current


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
        timeout as L{KeepAliveTimedOut} (see L{enableKeepAlive}).
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


class KeepAliveTimedOut(ConnectionLost):
    """
    The kernel dropped the connection because its keepalive probes went
    unanswered (C{ETIMEDOUT}): the peer vanished or the path to it is cut.

    A L{ConnectionLost}, so code that checks for that still works.

    @ivar osError: C{errno.ETIMEDOUT}.
    """

    MESSAGE = "The kernel's keepalive probes went unanswered (ETIMEDOUT)"
    osError = errno.ETIMEDOUT


def findSocket(transport: object) -> tuple[Any, str]:
    """
    Find the TCP socket under C{transport}: its own (C{getHandle()}), or,
    for a transport that wraps another one (TLS's C{TLSMemoryBIOProtocol}, a
    L{ProtocolWrapper<twisted.protocols.policies.ProtocolWrapper>}), the one
    under the C{.transport} chain.

    @return: C{(socket, "")}, or C{(None, reason)} if there is no open TCP
        socket.
    """
    _, sock, reason = _findOwner(transport)
    return sock, reason


def _findOwner(transport: object) -> tuple[Any, Any, str]:
    """
    Like L{findSocket}, but also return the transport that owns the socket.
    """
    current: object = transport
    for _ in range(16):
        getHandle = getattr(current, "getHandle", None)
        if callable(getHandle):
            try:
                handle = getHandle()
            except Exception:
                handle = None
            if _isSocket(handle):
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
        getHandle = getattr(below, "getHandle", None)
        if below is None or below is owner or not callable(getHandle):
            break
        try:
            if getHandle() is not handle:
                break
        except Exception:
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
    L{KeepAliveTimedOut} rather than a bare L{ConnectionLost} (see
    C{reportsTimeout}); this costs nothing until the connection is lost.

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
    reports = platform.tcpInfo is not None and _reportTimeout(owner, sock, platform)
    return _apply(sock, config, platform, reports)


def _probesUnanswered(sock: Any, ipprotoTCP: int, tcpInfo: int) -> bool:
    """
    Whether the kernel closed C{sock} with probes outstanding (Linux).
    """
    try:
        info = sock.getsockopt(ipprotoTCP, tcpInfo, 8)
    except OSError:
        return False
    return len(info) >= 4 and info[0] == _TCP_CLOSE and info[3] > 0


def _reportTimeout(owner: Any, sock: Any, platform: KeepAlivePlatform) -> bool:
    """
    Make C{owner.connectionLost} (the TCP transport's; the reactor calls it
    before the socket is closed) turn a bare L{ConnectionLost} into
    L{KeepAliveTimedOut} when the kernel dropped the connection for
    unanswered probes.  Twisted's own reading of the socket has consumed
    the C{ETIMEDOUT} by then; C{TCP_INFO} still tells.
    """
    original = getattr(owner, "connectionLost", None)
    if original is None or getattr(original, "_keepAliveWatch", False):
        return original is not None
    ipprotoTCP, tcpInfo = platform.ipprotoTCP, platform.tcpInfo
    assert tcpInfo is not None

    def connectionLost(reason: Failure) -> Any:
        # Drop the per-instance hook first: it breaks the reference cycle
        # and makes a second call go straight to the original.
        vars(owner).pop("connectionLost", None)
        if reason.type is ConnectionLost and _probesUnanswered(
            sock, ipprotoTCP, tcpInfo
        ):
            reason = Failure(KeepAliveTimedOut())  # type: ignore[no-untyped-call]
        return original(reason)

    connectionLost._keepAliveWatch = True  # type: ignore[attr-defined]
    try:
        owner.connectionLost = connectionLost
    except AttributeError:
        return False
    return True


def _apply(
    sock: Any, config: KeepAliveConfig, platform: KeepAlivePlatform, reports: bool
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
            option=_OPTION_NAMES[field],
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
        reportsTimeout=reports,
    )
