"""
The PROXY protocol header (v1 text and v2 binary), as HAProxy's
C{send-proxy} and C{send-proxy-v2} send it before a client's first byte:
an incremental parser with a bound on the header's size.

Facts from the specification (haproxy.org, C{proxy-protocol.txt}):

  - v1 is one line, C{PROXY TCP4|TCP6|UNKNOWN SRC DST SPORT DPORT\\r\\n},
    at most 107 bytes with its C{\\r\\n};
  - v2 starts with the 12-byte signature C{\\r\\n\\r\\n\\0\\r\\nQUIT\\n},
    then version and command (C{0x20} LOCAL, C{0x21} PROXY), family and
    transport, a 16-bit length and that many bytes of addresses and TLVs;
  - LOCAL (v2) and C{UNKNOWN} (v1) carry no client: the connection is the
    proxy's own (a health check), and its own addresses stand.
"""

from __future__ import annotations

import ipaddress
import struct

import attrs
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress

__all__ = [
    "DEFAULT_MAX_HEADER_SIZE",
    "V1_MAX_SIZE",
    "V2_SIGNATURE",
    "HeaderParser",
    "ProxyHeader",
    "ProxyHeaderError",
]

#: The v2 signature, the first 12 bytes of every v2 header.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

#: The longest v1 header, C{\\r\\n} included (the specification's bound).
V1_MAX_SIZE = 107

#: The default bound on a v2 header (16 bytes, the addresses and the
#: TLVs): HAProxy's headers with every TLV it sends (ALPN, authority,
#: unique id, TLS details) fit well within it.
DEFAULT_MAX_HEADER_SIZE = 4096

_V1_PREFIX = b"PROXY "
_V2_FIXED = 16
# Family and transport byte: the address block's format and size.
_V2_ADDRESSES = {
    0x11: ("!4s4sHH", 12),  # TCP over IPv4
    0x21: ("!16s16sHH", 36),  # TCP over IPv6
    0x31: ("!108s108s", 216),  # UNIX stream
}


class ProxyHeaderError(ValueError):
    """
    What arrived is not a PROXY header this parser accepts.

    @ivar reason: A few words for the log: C{"not a PROXY header"},
        C{"header too long"}, C{"bad v1 header"}, ...
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@attrs.frozen
class ProxyHeader:
    """
    A parsed PROXY header.

    @ivar version: C{1} or C{2}.
    @ivar source: The client's address, or L{None} for a LOCAL (v2) or
        C{UNKNOWN} (v1) header: the connection's own peer then stands.
    @ivar destination: The address the client connected to, or L{None}
        as for C{source}.
    @ivar size: The header's length in bytes.
    """

    version: int
    source: IAddress | None
    destination: IAddress | None
    size: int


class HeaderParser:
    """
    Reads one PROXY header from a connection's first bytes, in pieces as
    they arrive.  L{feed} returns the header and the bytes after it once
    the header is complete, or raises L{ProxyHeaderError}; it buffers at
    most C{maxHeaderSize} bytes (v1 headers at most L{V1_MAX_SIZE}).
    """

    def __init__(self, maxHeaderSize: int = DEFAULT_MAX_HEADER_SIZE) -> None:
        """
        @param maxHeaderSize: The longest v2 header accepted, in bytes;
            at least 16 + 216 (a UNIX address block).
        """
        if maxHeaderSize < _V2_FIXED + 216:
            raise ValueError(
                f"'maxHeaderSize' must be >= {_V2_FIXED + 216}: {maxHeaderSize!r}"
            )
        self.maxHeaderSize = maxHeaderSize
        self._buffer = b""

    def feed(self, data: bytes) -> tuple[ProxyHeader, bytes] | None:
        """
        Take the next bytes of the connection.

        @return: L{None} while the header is incomplete; then the header
            and the bytes received after it (the client's first data).
        @raise ProxyHeaderError: For anything that is not a header, or a
            header longer than allowed.
        """
        buffer = self._buffer = self._buffer + data
        if buffer[:1] == b"P":
            return self._v1(buffer)
        if buffer[:1] == b"\r":
            return self._v2(buffer)
        raise ProxyHeaderError("not a PROXY header", repr(buffer[:16]))

    def _v1(self, buffer: bytes) -> tuple[ProxyHeader, bytes] | None:
        prefix = buffer[: len(_V1_PREFIX)]
        if not _V1_PREFIX.startswith(prefix):
            raise ProxyHeaderError("not a PROXY header", repr(buffer[:16]))
        end = buffer.find(b"\r\n", 0, V1_MAX_SIZE)
        if end < 0:
            if len(buffer) >= V1_MAX_SIZE:
                raise ProxyHeaderError("header too long", f"v1 over {V1_MAX_SIZE}")
            return None
        size = end + 2
        self._buffer = b""
        return _parseV1(buffer[:end], size), buffer[size:]

    def _v2(self, buffer: bytes) -> tuple[ProxyHeader, bytes] | None:
        if not (
            buffer.startswith(V2_SIGNATURE) or V2_SIGNATURE.startswith(buffer[:12])
        ):
            raise ProxyHeaderError("not a PROXY header", repr(buffer[:16]))
        if len(buffer) < _V2_FIXED:
            return None
        (length,) = struct.unpack("!H", buffer[14:16])
        size = _V2_FIXED + length
        if size > self.maxHeaderSize:
            raise ProxyHeaderError(
                "header too long", f"v2 of {size} bytes over {self.maxHeaderSize}"
            )
        if len(buffer) < size:
            return None
        self._buffer = b""
        return _parseV2(buffer[:size]), buffer[size:]


def _port(text: bytes) -> int:
    if not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise ProxyHeaderError("bad v1 header", f"port {text!r}")
    return int(text)


def _parseV1(line: bytes, size: int) -> ProxyHeader:
    fields = line.split(b" ")
    if len(fields) >= 2 and fields[1] == b"UNKNOWN":
        return ProxyHeader(1, None, None, size)
    if len(fields) != 6 or fields[1] not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError("bad v1 header", repr(line))
    _, family, source, destination, sourcePort, destinationPort = fields
    kind: type[IPv4Address] | type[IPv6Address]
    if family == b"TCP4":
        parse, kind = ipaddress.IPv4Address, IPv4Address
    else:
        parse, kind = ipaddress.IPv6Address, IPv6Address  # type: ignore[assignment]
    try:
        sourceHost = str(parse(source.decode("ascii")))
        destinationHost = str(parse(destination.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        raise ProxyHeaderError("bad v1 header", repr(line)) from None
    return ProxyHeader(
        1,
        kind("TCP", sourceHost, _port(sourcePort)),
        kind("TCP", destinationHost, _port(destinationPort)),
        size,
    )


def _parseV2(header: bytes) -> ProxyHeader:
    versionCommand, familyTransport = header[12], header[13]
    size = len(header)
    if versionCommand == 0x20:
        # LOCAL: the proxy's own connection (a health check).
        return ProxyHeader(2, None, None, size)
    if versionCommand != 0x21:
        raise ProxyHeaderError(
            "bad v2 header", f"version and command 0x{versionCommand:02x}"
        )
    if familyTransport == 0x00:
        # UNSPEC: the receiver keeps the connection's own addresses.
        return ProxyHeader(2, None, None, size)
    layout = _V2_ADDRESSES.get(familyTransport)
    if layout is None:
        raise ProxyHeaderError(
            "bad v2 header", f"family and transport 0x{familyTransport:02x}"
        )
    fmt, needed = layout
    if size - _V2_FIXED < needed:
        raise ProxyHeaderError("bad v2 header", f"address block under {needed} bytes")
    fields = struct.unpack(fmt, header[_V2_FIXED : _V2_FIXED + needed])
    if familyTransport == 0x31:
        source, destination = (f.partition(b"\x00")[0] for f in fields)
        return ProxyHeader(2, UNIXAddress(source), UNIXAddress(destination), size)
    sourceBytes, destinationBytes, sourcePort, destinationPort = fields
    if familyTransport == 0x11:
        return ProxyHeader(
            2,
            IPv4Address("TCP", str(ipaddress.IPv4Address(sourceBytes)), sourcePort),
            IPv4Address(
                "TCP", str(ipaddress.IPv4Address(destinationBytes)), destinationPort
            ),
            size,
        )
    return ProxyHeader(
        2,
        IPv6Address("TCP", str(ipaddress.IPv6Address(sourceBytes)), sourcePort),
        IPv6Address(
            "TCP", str(ipaddress.IPv6Address(destinationBytes)), destinationPort
        ),
        size,
    )
