"""
Limits on what clients may open: connections in total and per address, the
rate of new connections per address, and the listen backlog.
"""

from __future__ import annotations

import ipaddress
import resource
from typing import Any

import attrs

from .._config import _number, _whole

__all__ = [
    "ConnectionGate",
    "ConnectionLimits",
    "addressKey",
    "defaultBacklog",
    "defaultMaxConnections",
    "withBacklog",
]

#: Descriptors kept back from the connection limit for the log, the
#: listening sockets and whatever else the process opens.
RESERVED_DESCRIPTORS = 100


def defaultMaxConnections() -> int:
    """
    The default of C{--max-connections}: the process's soft descriptor
    limit (C{ulimit -n}) less L{RESERVED_DESCRIPTORS}, so that the server
    refuses a connection itself, and logs why, before C{accept()} starts
    failing with C{EMFILE}; at least 1.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(1, soft - RESERVED_DESCRIPTORS)


def defaultBacklog(somaxconn: str = "/proc/sys/net/core/somaxconn") -> int:
    """
    The default of C{--backlog}: 1024, or the kernel's C{somaxconn} if
    that is smaller (the kernel silently caps a larger backlog at it).
    """
    try:
        with open(somaxconn) as f:
            return max(1, min(1024, int(f.read().strip())))
    except (OSError, ValueError):
        return 1024


_BACKLOG_TYPES = ("tcp", "tcp6", "ssl", "unix")


def withBacklog(endpoint: str, backlog: int) -> str:
    """
    C{endpoint} with C{backlog=BACKLOG} added, if it is a C{tcp}, C{tcp6},
    C{ssl} or C{unix} endpoint (also under C{haproxy:}) that names no
    backlog of its own; any other endpoint string is returned unchanged.
    """
    kind, _, rest = endpoint.partition(":")
    if kind == "haproxy":
        kind = rest.partition(":")[0]
    if kind not in _BACKLOG_TYPES or "backlog=" in endpoint:
        return endpoint
    return f"{endpoint}:backlog={backlog}"


def addressKey(address: Any, loopback: bool = True) -> str | None:
    """
    What the per-address limits count a peer address under: its IPv4
    address; for IPv6 its /64 network (one subscriber's usual share; an
    IPv4-mapped address counts as the IPv4 one); L{None} for an address
    without a host (a UNIX socket), which no per-address limit applies to.

    @param loopback: Whether loopback addresses (C{127.0.0.0/8}, C{::1})
        are limited too; if not, their key is L{None}.
    """
    host = getattr(address, "host", None)
    if not isinstance(host, str):
        return None
    if ":" not in host:
        if not loopback and host.startswith("127."):
            return None
        return host
    try:
        parsed = ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return host
    mapped = parsed.ipv4_mapped
    if mapped is not None:
        return addressKey(type(address)("TCP", str(mapped), 0), loopback)
    if not loopback and parsed.is_loopback:
        return None
    return str(ipaddress.IPv6Network((parsed, 64), strict=False))


def _rate(name: str, value: object) -> float:
    rate = _number(name, value)
    if rate < 0:
        raise ValueError(f"{name!r} must be >= 0: {value!r}")
    return rate


def _duration(name: str, value: object) -> float:
    seconds = _number(name, value)
    if seconds < 0.01:
        raise ValueError(f"{name!r} must be >= 0.01 (10 ms): {value!r}")
    return seconds


@attrs.frozen(init=False)
class ConnectionLimits:
    """
    What one server process lets its clients open.  C{0} turns a count or
    rate limit off.

    @ivar maxConnections: Connections open at once, all clients together.
    @ivar maxConnectionsPerAddress: Connections open at once from one IPv4
        address or one IPv6 /64.
    @ivar connectionRate: New connections a second from one address
        (a token bucket refilled at this rate ...).
    @ivar connectionBurst: ... holding at most this many: the connections
        one address may open at once after a quiet spell; C{>= 1}.
    @ivar lineTimeout: Seconds a line may take to arrive once begun; a
        connection whose line is unfinished after it is closed at its next
        received byte (or by the idle heartbeat if it sends nothing more);
        C{>= 0.01}.
    @ivar tlsHandshakeTimeout: Seconds a TLS client has to complete its
        handshake before the connection is closed; C{>= 0.01}.
    @ivar limitLoopback: Whether the per-address limits apply to loopback
        clients too.  Off by default: local clients are the operator's own
        (a load balancer on the same host without the PROXY protocol, a
        benchmark) and could exhaust the host anyway.
    """

    maxConnections: int
    maxConnectionsPerAddress: int
    connectionRate: float
    connectionBurst: int
    lineTimeout: float
    tlsHandshakeTimeout: float
    limitLoopback: bool

    def __init__(
        self,
        maxConnections: int | None = None,
        maxConnectionsPerAddress: int = 1000,
        connectionRate: float = 100.0,
        connectionBurst: int = 200,
        lineTimeout: float = 5.0,
        tlsHandshakeTimeout: float = 10.0,
        limitLoopback: bool = False,
    ) -> None:
        if maxConnections is None:
            maxConnections = defaultMaxConnections()
        self.__attrs_init__(
            _whole("maxConnections", maxConnections, 0, None),
            _whole("maxConnectionsPerAddress", maxConnectionsPerAddress, 0, None),
            _rate("connectionRate", connectionRate),
            _whole("connectionBurst", connectionBurst, 1, None),
            _duration("lineTimeout", lineTimeout),
            _duration("tlsHandshakeTimeout", tlsHandshakeTimeout),
            bool(limitLoopback),
        )


class ConnectionGate:
    """
    Admits or refuses connections under L{ConnectionLimits} and counts
    what it refused.  One per server process (the limits hold per
    process).

    @ivar live: Connections admitted and not yet released.
    @ivar refused: Refused connections by reason.
    """

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.live = 0
        self.refused: dict[str, int] = {}
        self._perAddress: dict[str, int] = {}
        # address -> [tokens, time of the last refill]
        self._buckets: dict[str, list[float]] = {}
        self._pruneAt = 4096

    def full(self) -> bool:
        """
        Whether the total limit is reached (a new connection is refused).
        """
        limit = self.limits.maxConnections
        return bool(limit) and self.live >= limit

    def refuse(self, reason: str) -> str:
        """
        Count a refusal under C{reason}; return C{reason}.
        """
        self.refused[reason] = self.refused.get(reason, 0) + 1
        return reason

    def admit(self, key: str | None, now: float) -> str | None:
        """
        Admit a connection from C{key} (see L{addressKey}) at C{now}: count
        it and return L{None}, or return why it is refused (and count
        that): C{"too many connections"}, C{"too many connections from
        this address"} or C{"connecting too fast"}.
        """
        if self.full():
            return self.refuse("too many connections")
        limits = self.limits
        if key is not None:
            count = self._perAddress.get(key, 0)
            if limits.maxConnectionsPerAddress and (
                count >= limits.maxConnectionsPerAddress
            ):
                return self.refuse("too many connections from this address")
            if limits.connectionRate and not self._take(key, now):
                return self.refuse("connecting too fast")
            self._perAddress[key] = count + 1
        self.live += 1
        return None

    def release(self, key: str | None) -> None:
        """
        An admitted connection from C{key} closed.
        """
        self.live -= 1
        if key is None:
            return
        count = self._perAddress[key] - 1
        if count:
            self._perAddress[key] = count
        else:
            del self._perAddress[key]

    def addresses(self) -> int:
        """
        Addresses with a connection open now.
        """
        return len(self._perAddress)

    def rateBuckets(self) -> int:
        """
        Addresses whose rate of new connections is tracked now (those that
        connected recently enough that their bucket is not full).
        """
        return len(self._buckets)

    def _take(self, key: str, now: float) -> bool:
        limits = self.limits
        burst = float(limits.connectionBurst)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._pruneAt:
                self._prune(now)
            bucket = self._buckets[key] = [burst, now]
        tokens = min(burst, bucket[0] + (now - bucket[1]) * limits.connectionRate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    def _prune(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: drop those,
        # so memory follows the addresses connecting now, not all ever seen.
        limits = self.limits
        burst = limits.connectionBurst
        self._buckets = {
            key: bucket
            for key, bucket in self._buckets.items()
            if bucket[0] + (now - bucket[1]) * limits.connectionRate < burst
        }
        self._pruneAt = max(4096, 2 * len(self._buckets))
