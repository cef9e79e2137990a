"""
Where each platform keeps its TCP keepalive settings: the option numbers,
looked up once per process, and the log of what a platform lacks.

  - Linux: C{TCP_KEEPIDLE}, C{TCP_KEEPINTVL}, C{TCP_KEEPCNT},
    C{TCP_USER_TIMEOUT};
  - macOS: C{TCP_KEEPALIVE} (the idle time), C{TCP_KEEPINTVL},
    C{TCP_KEEPCNT}; no user timeout;
  - Windows: the C{SIO_KEEPALIVE_VALS} ioctl (idle time and interval, in
    milliseconds; it cannot be read back), C{TCP_KEEPCNT} where the system
    has it; no user timeout;
  - elsewhere: whichever of the Linux names the C{socket} module defines.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping
from typing import Any

import attrs
from twisted.logger import Logger

from ._config import KeepAliveConfig

__all__ = [
    "FIELDS",
    "OPTION_NAMES",
    "KeepAlivePlatform",
    "currentPlatform",
    "logOnce",
]

_log = Logger()

#: The tunable settings, in the order they are applied and reported.
FIELDS = ("idle", "interval", "count", "userTimeout")

#: Option names, for logs and errors.
OPTION_NAMES = {
    "idle": "TCP_KEEPIDLE",
    "interval": "TCP_KEEPINTVL",
    "count": "TCP_KEEPCNT",
    "userTimeout": "TCP_USER_TIMEOUT",
}

# From the public netinet/tcp.h of macOS (XNU), for Pythons whose socket
# module does not define them.
_DARWIN_OPTIONS = {"idle": 0x10, "interval": 0x101, "count": 0x102}

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
    @ivar soError: C{SO_ERROR} on this platform: the socket's pending error
        (C{ETIMEDOUT}, C{ECONNRESET}, ...), which tells a keepalive timeout
        from a reset.
    """

    name: str
    options: Mapping[str, int]
    keepAliveVals: int | None = None
    solSocket: int = socket.SOL_SOCKET
    soKeepAlive: int = socket.SO_KEEPALIVE
    ipprotoTCP: int = socket.IPPROTO_TCP
    tcpInfo: int | None = None
    soError: int = socket.SO_ERROR

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
        for field, option in OPTION_NAMES.items():
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
            soError=getattr(module, "SO_ERROR", socket.SO_ERROR),
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
