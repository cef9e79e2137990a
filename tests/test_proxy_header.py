"""
Unit tests for the PROXY protocol header parser (v1 and v2).
"""

from __future__ import annotations

import socket
import struct

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted.server._proxyheader import (
    DEFAULT_MAX_HEADER_SIZE,
    V1_MAX_SIZE,
    V2_SIGNATURE,
    HeaderParser,
    ProxyHeader,
    ProxyHeaderError,
)

V1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 40001 6666\r\n"


def v2(command: int = 0x21, family: int = 0x11, block: bytes = b"") -> bytes:
    """
    A v2 header: signature, version and command, family and transport,
    length, then C{block} (addresses and TLVs).
    """
    return (
        V2_SIGNATURE + bytes([command, family]) + struct.pack("!H", len(block)) + block
    )


def tcp4Block(source: str, destination: str, sport: int, dport: int) -> bytes:
    return (
        socket.inet_pton(socket.AF_INET, source)
        + socket.inet_pton(socket.AF_INET, destination)
        + struct.pack("!HH", sport, dport)
    )


class V1Tests(SynchronousTestCase):
    def test_tcp4(self) -> None:
        """
        A whole v1 header and the client's first bytes in one chunk: the
        addresses, and the bytes after the header.
        """
        parsed = HeaderParser().feed(V1 + b"ping\n")
        assert parsed is not None
        header, rest = parsed
        self.assertEqual(
            header,
            ProxyHeader(
                1,
                IPv4Address("TCP", "192.0.2.7", 40001),
                IPv4Address("TCP", "198.51.100.1", 6666),
                len(V1),
            ),
        )
        self.assertEqual(rest, b"ping\n")

    def test_tcp6(self) -> None:
        parsed = HeaderParser().feed(b"PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n")
        assert parsed is not None
        header, rest = parsed
        self.assertEqual(header.source, IPv6Address("TCP", "2001:db8::7", 1))
        self.assertEqual(header.destination, IPv6Address("TCP", "2001:db8::1", 2))
        self.assertEqual(rest, b"")

    def test_unknown(self) -> None:
        """
        C{UNKNOWN} carries no addresses (the proxy's own connection).
        """
        parsed = HeaderParser().feed(b"PROXY UNKNOWN whatever\r\n")
        assert parsed is not None
        self.assertEqual(parsed[0], ProxyHeader(1, None, None, 24))

    def test_split(self) -> None:
        """
        A header one byte at a time: nothing until its last byte.
        """
        parser = HeaderParser()
        for byte in V1[:-1]:
            self.assertIsNone(parser.feed(bytes([byte])))
        parsed = parser.feed(b"\n")
        assert parsed is not None
        self.assertEqual(parsed[0].source, IPv4Address("TCP", "192.0.2.7", 40001))

    def test_tooLong(self) -> None:
        """
        107 bytes without C{\\r\\n} is not a v1 header, whatever follows.
        """
        parser = HeaderParser()
        self.assertIsNone(parser.feed(b"PROXY TCP4 " + b"1" * (V1_MAX_SIZE - 12)))
        with self.assertRaises(ProxyHeaderError) as caught:
            parser.feed(b"1")
        self.assertEqual(caught.exception.reason, "header too long")

    def test_bad(self) -> None:
        """
        Bad fields, addresses of the wrong family, bad ports.
        """
        for line in [
            b"PROXY TCP4 192.0.2.7 198.51.100.1 40001\r\n",
            b"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.300 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 70000 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 -1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n",
        ]:
            with self.assertRaises(ProxyHeaderError, msg=line) as caught:
                HeaderParser().feed(line)
            self.assertEqual(caught.exception.reason, "bad v1 header", line)

    def test_notAHeader(self) -> None:
        """
        A client that speaks first (no proxy in front) is told apart at its
        first differing byte.
        """
        for data in [b"ping\n", b"PRO\n", b"\r\n\r\n\x01", b"GET / HTTP/1.1\r\n"]:
            with self.assertRaises(ProxyHeaderError, msg=data) as caught:
                HeaderParser().feed(data)
            self.assertEqual(caught.exception.reason, "not a PROXY header", data)
        self.assertIsNone(HeaderParser().feed(b"PRO"))


class V2Tests(SynchronousTestCase):
    def test_tcp4(self) -> None:
        """
        A v2 header with a TLV (ignored) and data after it.
        """
        tlv = b"\x05\x00\x03abc"
        data = v2(block=tcp4Block("192.0.2.7", "198.51.100.1", 40001, 6666) + tlv)
        parsed = HeaderParser().feed(data + b"ping\n")
        assert parsed is not None
        header, rest = parsed
        self.assertEqual(
            header,
            ProxyHeader(
                2,
                IPv4Address("TCP", "192.0.2.7", 40001),
                IPv4Address("TCP", "198.51.100.1", 6666),
                len(data),
            ),
        )
        self.assertEqual(rest, b"ping\n")

    def test_tcp6(self) -> None:
        block = (
            socket.inet_pton(socket.AF_INET6, "2001:db8::7")
            + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
            + struct.pack("!HH", 1, 2)
        )
        parsed = HeaderParser().feed(v2(family=0x21, block=block))
        assert parsed is not None
        self.assertEqual(parsed[0].source, IPv6Address("TCP", "2001:db8::7", 1))
        self.assertEqual(parsed[0].destination, IPv6Address("TCP", "2001:db8::1", 2))

    def test_unix(self) -> None:
        block = b"/a".ljust(108, b"\x00") + b"/b".ljust(108, b"\x00")
        parsed = HeaderParser().feed(v2(family=0x31, block=block))
        assert parsed is not None
        self.assertEqual(parsed[0].source, UNIXAddress(b"/a"))
        self.assertEqual(parsed[0].destination, UNIXAddress(b"/b"))

    def test_local(self) -> None:
        """
        LOCAL (a health check) and UNSPEC carry no client: no addresses,
        whatever the block holds.
        """
        block = tcp4Block("192.0.2.7", "198.51.100.1", 1, 2)
        for data in [v2(command=0x20, block=block), v2(family=0x00)]:
            parsed = HeaderParser().feed(data)
            assert parsed is not None
            self.assertEqual(parsed[0], ProxyHeader(2, None, None, len(data)))

    def test_split(self) -> None:
        """
        A v2 header in pieces: the signature, the length, the addresses.
        """
        data = v2(block=tcp4Block("192.0.2.7", "198.51.100.1", 1, 2))
        parser = HeaderParser()
        for piece in [data[:5], data[5:14], data[14:20], data[20:-1]]:
            self.assertIsNone(parser.feed(piece))
        parsed = parser.feed(data[-1:] + b"x")
        assert parsed is not None
        self.assertEqual(parsed[0].source, IPv4Address("TCP", "192.0.2.7", 1))
        self.assertEqual(parsed[1], b"x")

    def test_tooLong(self) -> None:
        """
        The length field alone decides: a header over the bound is refused
        as soon as its 16 fixed bytes are in, before its body is buffered.
        """
        header = V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", 5000)
        with self.assertRaises(ProxyHeaderError) as caught:
            HeaderParser().feed(header)
        self.assertEqual(caught.exception.reason, "header too long")
        self.assertEqual(DEFAULT_MAX_HEADER_SIZE, 4096)
        small = HeaderParser(maxHeaderSize=300)
        with self.assertRaises(ProxyHeaderError):
            small.feed(V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", 285))

    def test_bad(self) -> None:
        """
        A version other than 2, a command other than LOCAL or PROXY, a
        datagram or unknown family, a block too short for its addresses.
        """
        block = tcp4Block("192.0.2.7", "198.51.100.1", 1, 2)
        for data in [
            v2(command=0x11, block=block),
            v2(command=0x22, block=block),
            v2(family=0x12, block=block),
            v2(family=0x41, block=block),
            v2(block=block[:8]),
            v2(family=0x21, block=block),
        ]:
            with self.assertRaises(ProxyHeaderError, msg=data) as caught:
                HeaderParser().feed(data)
            self.assertEqual(caught.exception.reason, "bad v2 header", data)

    def test_boundValidated(self) -> None:
        with self.assertRaises(ValueError) as caught:
            HeaderParser(maxHeaderSize=100)
        self.assertEqual(str(caught.exception), "'maxHeaderSize' must be >= 232: 100")
