"""
What the ping/pong connections of one factory count: plain integers on the
hot path, read (and turned into metrics) by whoever wants them.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["PingCounters", "RoundTripStats"]


class RoundTripStats:
    """
    Round-trip times of answered pings, in seconds.

    @ivar count: Samples so far.
    @ivar last: The latest sample, or L{None}.
    @ivar min: The smallest sample, or L{None}.
    @ivar smoothed: The smoothed round trip (RFC 6298's SRTT, gain 1/8),
        or L{None}.
    """

    GAIN = 0.125

    def __init__(self) -> None:
        self.count = 0
        self.last: float | None = None
        self.min: float | None = None
        self.smoothed: float | None = None

    def add(self, rtt: float) -> None:
        """
        Record one round trip of C{rtt} seconds.
        """
        self.count += 1
        self.last = rtt
        self.min = rtt if self.min is None else min(self.min, rtt)
        if self.smoothed is None:
            self.smoothed = rtt
        else:
            self.smoothed += self.GAIN * (rtt - self.smoothed)

    def __repr__(self) -> str:
        return (
            f"<RoundTripStats count={self.count} last={self.last} "
            f"min={self.min} smoothed={self.smoothed}>"
        )


class PingCounters:
    """
    The counters of the ping/pong connections of one factory, found as
    C{factory.pingCounters} once a connection was made.  Read them; only
    the mixins write them.  Every field is a plain number (or a
    C{collections.Counter} of them), so counting costs nothing measurable per ping.

    Answering side (L{PingAnswerMixin<heartbeat_twisted.ping.PingAnswerMixin>}):

    @ivar pings: Pings accepted (answered or to be answered).
    @ivar pongs: C{pong} answers sent.
    @ivar unhealthy: C{error unhealthy} answers sent.
    @ivar healthRuns: Runs of the health checks started.
    @ivar refused: Connections closed for misbehaving, by reason
        (C{"too_many_pings"}, C{"line too long"}, C{"binary data"},
        C{"too many bad lines"}).
    @ivar goAways: Connections told to go (C{goaway}).
    @ivar stallsForgiven: Pings let through because they arrived right
        after a stall of the server, beyond C{pingBurst}.

    @ivar pingsSent: (pinging side) Pings sent.
    @ivar answers: (pinging side) Pings answered (C{pong} or C{error unhealthy}).
    @ivar unhealthyAnswers: (pinging side) Answers that reported failing health checks.
    @ivar deadPeers: (pinging side) Peers declared dead (no answer within C{timeout}).
    @ivar goAwaysReceived: (pinging side) C{goaway} lines received.
    @ivar roundTrips: (pinging side) Round trips of all connections together
        (L{RoundTripStats}).
    """

    def __init__(self) -> None:
        self.pings = 0
        self.pongs = 0
        self.unhealthy = 0
        self.healthRuns = 0
        self.refused: Counter[str] = Counter()
        self.goAways = 0
        self.stallsForgiven = 0
        self.pingsSent = 0
        self.answers = 0
        self.unhealthyAnswers = 0
        self.deadPeers = 0
        self.goAwaysReceived = 0
        self.roundTrips = RoundTripStats()

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}"
            for name, value in vars(self).items()
            if value and name != "roundTrips"
        )
        return f"<PingCounters {fields}>"
