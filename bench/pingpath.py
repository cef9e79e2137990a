"""
The cost of one ping through L{PingAnswerMixin}, in process, without
sockets: C{dataReceived(b"ping\\n")} on a L{LineReceiver} with the mixin,
answered into a transport that discards what it is given (the fastest
of C{--repeat} runs of C{--pings} pings, so other load matters less).  Shows what the
answering path itself costs (parsing, flood check, health checks, the
answer), with no checks, one synchronous check and one check returning an
already-fired L{Deferred}.

    python bench/pingpath.py [--pings N] [--repeat R]

Runs against whatever C{heartbeat_twisted} is importable, so the same
command measures an older checkout with C{PYTHONPATH=that/checkout}.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _common import machineLines, positiveInt
from twisted.internet.defer import succeed
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.protocols.basic import LineReceiver

from heartbeat_twisted.ping import HealthCheck, PingAnswerMixin


class Server(PingAnswerMixin, LineReceiver):
    pass


class Discard:
    disconnecting = False

    def write(self, data: bytes) -> None:
        pass

    def writeSequence(self, data: Any) -> None:
        pass

    def loseConnection(self) -> None:
        pass

    def getPeer(self) -> None:
        return None


def connect(checks: list[HealthCheck]) -> Any:
    factory = Factory.forProtocol(Server)
    clock = Clock()
    try:
        from heartbeat_twisted.ping import PingServerConfig

        factory.pingServerConfig = PingServerConfig(pingRate=0, healthChecks=checks)
        factory.heartbeatClock = clock
    except TypeError:  # 0.1: the responder
        from heartbeat_twisted.ping import PingResponder, PingServerConfig

        factory.pingResponder = PingResponder(
            PingServerConfig(minPingInterval=0), checks, clock=clock
        )
    protocol = factory.buildProtocol(None)
    protocol.makeConnection(Discard())
    return protocol


def perPing(checks: list[HealthCheck], pings: int, repeat: int) -> float:
    protocol = connect(checks)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(pings):
            protocol.dataReceived(b"ping\n")
        samples.append((time.perf_counter() - start) / pings)
    return min(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pings", type=positiveInt, default=20000)
    parser.add_argument("--repeat", type=positiveInt, default=5)
    args = parser.parse_args()
    print("\n".join(machineLines()))
    cases = {
        "no checks": [],
        "1 sync check": [HealthCheck("ok", lambda: True)],
        "1 fired Deferred": [HealthCheck("d", lambda: succeed(True))],
    }
    for name, checks in cases.items():
        cost = perPing(checks, args.pings, args.repeat)
        print(f"{name:18} {cost * 1e6:6.2f} us/ping")


if __name__ == "__main__":
    main()
