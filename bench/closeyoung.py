"""
Young objects each queued idle close leaves alive until its turn.

CPython's generation-1 collections walk every young container object;
when thousands of connections time out together (C{expiry.py}), what each
queued close keeps alive until the next reactor turn is walked over and
over.  This opens C{--connections} loopback connections to a protocol with
L{HeartbeatMixin} in one process, freezes the heap, calls
C{heartbeatTimedOut} on every one (what the sweep does: each close is
queued for the next turn), and counts the objects then in generation 0,
by type, and how far the count that triggers the next collection moved
(allocations less deallocations of container objects).  No timing: the
figures do not depend on the machine's load.

Run: C{python bench/closeyoung.py --connections 5000}.
"""

from __future__ import annotations

import argparse
import collections
import gc
import sys
from typing import Any

from _common import machineLines, positiveInt
from twisted.internet import protocol, reactor

from heartbeat_twisted import HeartbeatConfig, HeartbeatMixin


class Server(HeartbeatMixin, protocol.Protocol):
    """
    Never times out by itself: the count calls C{heartbeatTimedOut}.
    """

    heartbeatConfig = HeartbeatConfig(idle=3600, checkInterval=60)
    made: list[Server] = []

    def connectionMade(self) -> None:
        self.made.append(self)


def count(connections: int) -> None:
    """
    Time every connection out at once and print the young objects left.
    """
    gc.disable()
    gc.collect()
    gc.freeze()
    counted = gc.get_count()[0]
    for server in Server.made:
        server.heartbeatTimedOut()
    counted = gc.get_count()[0] - counted
    young = gc.get_objects(0)
    kinds = collections.Counter(type(o).__name__ for o in young)
    print("\n".join(machineLines()))
    print(f"{connections} idle closes queued (heartbeatTimedOut on each)")
    print(f"young objects alive: {len(young)}, {len(young) / connections:.2f} a close")
    print(f"generation-0 count (what triggers a collection): {counted:+d}")
    for kind, number in kinds.most_common(5):
        if number * 100 >= connections:
            print(f"  {kind}: {number / connections:.2f} a close")
    gc.unfreeze()
    gc.enable()
    r: Any = reactor
    r.callLater(1, r.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=positiveInt, default=5000)
    args = parser.parse_args()
    r: Any = reactor
    port = r.listenTCP(
        0, protocol.Factory.forProtocol(Server), backlog=4096, interface="127.0.0.1"
    )
    client = protocol.ClientFactory.forProtocol(protocol.Protocol)
    for _ in range(args.connections):
        r.connectTCP("127.0.0.1", port.getHost().port, client)

    def wait(tries: int) -> None:
        if len(Server.made) >= args.connections:
            count(args.connections)
        elif tries:
            r.callLater(0.05, wait, tries - 1)
        else:
            print(f"only {len(Server.made)} connections in 30 s", file=sys.stderr)
            r.stop()

    r.callLater(0.05, wait, 600)
    r.run()


if __name__ == "__main__":
    main()
