"""
The server's line framing against Twisted's LineReceiver, in process (no
sockets: a StringTransport), so the figure is the protocol's own cost.

- per pong: one C{ping} chunk in, one C{pong} out, for
  (a) a plain LineReceiver ping->pong, (b) the old demo stack
  (HeartbeatMixin + PingAnswerMixin + LineReceiver, no payload logging)
  and (c) the server's ServerProtocol (LineFraming, activity policy,
  limits, log budget), rounds interleaved;
- a long line in 100-byte pieces: CPU seconds for LineReceiver and for
  LineFraming (C{--line} bytes; LineReceiver's cost grows with its square).

    python bench/framing.py [--pongs N] [--rounds R] [--line BYTES]
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

from _common import machineLines, positiveInt, summarize, table
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineReceiver

from heartbeat_twisted import HeartbeatConfig
from heartbeat_twisted._mixins import HeartbeatFactoryMixin, HeartbeatMixin
from heartbeat_twisted.ping import PingServerConfig
from heartbeat_twisted.ping._answering import PingAnswerMixin
from heartbeat_twisted.server._framing import LineFraming
from heartbeat_twisted.server._protocol import ServerFactory


class Plain(LineReceiver):
    delimiter = b"\n"

    def lineReceived(self, line: bytes) -> None:
        if line == b"ping":
            self.sendLine(b"pong")


class OldDemo(HeartbeatMixin, PingAnswerMixin, LineReceiver):
    delimiter = b"\n"


class OldFactory(HeartbeatFactoryMixin, Factory):
    protocol = OldDemo


class Sink(StringTransport):
    """
    A transport that forgets what is written (so memory stays flat).
    """

    def write(self, data: bytes) -> None:
        pass


def connected(name: str, clock: Clock) -> Any:
    config = HeartbeatConfig(idle=60)
    pingConfig = PingServerConfig(pingRate=0)
    if name == "LineReceiver":
        protocol: Any = Plain()
    elif name == "old demo stack":
        factory = OldFactory(heartbeatConfig=config, clock=clock)
        factory.pingServerConfig = pingConfig  # type: ignore[attr-defined]
        protocol = factory.buildProtocol(None)
    else:
        protocol = ServerFactory(
            heartbeatConfig=config, clock=clock, pingServerConfig=pingConfig
        ).buildProtocol(None)
    protocol.makeConnection(Sink())
    return protocol


def perPong(name: str, pongs: int) -> float:
    clock = Clock()
    protocol = connected(name, clock)
    receive = protocol.dataReceived
    gc.collect()
    start = time.process_time()
    for _ in range(pongs):
        receive(b"ping\n")
    return (time.process_time() - start) / pongs * 1e6


def longLine(cls: type, size: int) -> float:
    class Lines(cls):  # type: ignore[misc, valid-type]
        delimiter = b"\n"
        MAX_LENGTH = size + 1

        def lineReceived(self, line: bytes) -> None:
            self.got = len(line)

    protocol = Lines()
    protocol.makeConnection(Sink())
    piece = b"z" * 100
    start = time.process_time()
    for _ in range(size // 100):
        protocol.dataReceived(piece)
    protocol.dataReceived(b"\n")
    elapsed = time.process_time() - start
    assert protocol.got == size // 100 * 100
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--pongs", type=positiveInt, default=200_000)
    parser.add_argument("--rounds", type=positiveInt, default=5)
    parser.add_argument("--line", type=positiveInt, default=1_000_000)
    args = parser.parse_args()
    for line in machineLines():
        print(line)
    names = ["LineReceiver", "old demo stack", "ServerProtocol"]
    results: dict[str, list[float]] = {name: [] for name in names}
    for index in range(args.rounds):
        order = names[index % 3 :] + names[: index % 3]
        for name in order:
            results[name].append(perPong(name, args.pongs))
    base = results["LineReceiver"]
    rows = []
    for name in names:
        ratios = [v / b for v, b in zip(results[name], base, strict=True)]
        rows.append(
            [
                name,
                summarize(results[name]).format(".2f"),
                summarize(ratios).format(".3f"),
            ]
        )
    print()
    print(
        f"per pong, in process: {args.pongs} pings, {args.rounds} rounds, "
        "median [min..max]"
    )
    print(table(["protocol", "us per pong", "x LineReceiver"], rows))
    print()
    print(f"one {args.line}-byte line in 100-byte pieces, CPU seconds")
    rows = [
        [cls.__name__, f"{longLine(cls, args.line):.3f}"]
        for cls in (LineReceiver, LineFraming)
    ]
    print(table(["framing", "CPU s"], rows))


if __name__ == "__main__":
    main()
