"""
A small fleet for system tests: C{twistd heartbeat} processes behind a real
HAProxy.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase

from ._peers import waitListening
from ._pingnet import freePort, tempPath
from ._twistd import ChildProcess, twistdArgv

__all__ = ["HAProxy", "Server", "jsonEvents"]


def jsonEvents(child: ChildProcess) -> list[dict[str, Any]]:
    """
    The JSON log events a C{--log-format json} child printed so far.
    """
    events = []
    for line in child.lines:
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


class Server:
    """
    One C{twistd heartbeat} process, listening behind HAProxy's PROXY
    protocol (C{haproxy:tcp:0}), logging JSON, with a health-check file.

    @ivar process: The L{ChildProcess}.
    @ivar port: Its TCP port, once L{started}.
    @ivar healthFile: The file whose presence makes it healthy.
    """

    def __init__(self, case: TestCase, name: str, *options: str) -> None:
        self.name = name
        self.healthFile = tempPath(case, f"healthy-{name}")
        open(self.healthFile, "w").close()
        self.process = ChildProcess(
            case,
            twistdArgv(
                "heartbeat",
                "--port",
                "haproxy:tcp:0:interface=127.0.0.1",
                "--log-format",
                "json",
                "--health-check-file",
                self.healthFile,
                *options,
            ),
            f"server {name}",
        )
        self.port = 0

    @inlineCallbacks
    def started(self) -> Any:
        """
        Fire with this server once it listens.
        """
        match = yield self.process.waitFor(
            r"Factory (?:\(PROXY\) )?starting on (\d+)", 20
        )
        self.port = int(match.group(1))
        return self

    def peers(self, fmt: str = "Client: Connect {fd} from {peer}") -> list[str]:
        """
        The peer addresses of the connect events (or the events of C{fmt})
        logged so far.
        """
        return [
            e["peer"] for e in jsonEvents(self.process) if e.get("log_format") == fmt
        ]

    def closes(self) -> dict[str, str]:
        """
        Peer address to close reason, for every close logged so far.
        """
        return {
            e["peer"]: e["reason"]
            for e in jsonEvents(self.process)
            if e.get("log_format") == "close fd {fd}: {reason}"
        }

    def waitForPeer(self, peer: str, timeout: float = 10) -> Deferred[Any]:
        """
        Fire once a connection from C{peer} was logged.
        """
        return self.process.waitUntil(
            lambda: peer in self.peers(), timeout, f"a connection from {peer}"
        )


_CONFIG = """\
global
    maxconn 256
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 1s
{sections}
"""

_PROXY = {1: "send-proxy", 2: "send-proxy-v2"}


class HAProxy:
    """
    A real HAProxy in TCP mode.  Each frontend is a free port on 127.0.0.1
    with its own backend of C{servers}; C{check} adds a health check that
    speaks the ping protocol (docs/operations.rst).

    @ivar fronts: The frontend ports, in the order of C{backends}.
    """

    def __init__(
        self,
        case: TestCase,
        backends: list[list[tuple[str, int, int]]],
        check: str = "",
    ) -> None:
        """
        @param backends: For each frontend, its servers as C{(name, port,
            PROXY protocol version)}.
        @param check: The options of each server's check (for example
            C{"check inter 200ms fall 2 rise 2"}); no check if empty.
        """
        self.fronts = [freePort() for _ in backends]
        sections = []
        for index, (front, servers) in enumerate(zip(self.fronts, backends)):
            lines = [
                f"frontend f{index}",
                f"    bind 127.0.0.1:{front}",
                f"    default_backend b{index}",
                f"backend b{index}",
                "    balance roundrobin",
            ]
            if check:
                lines += [
                    "    option tcp-check",
                    "    tcp-check send ping\\n",
                    "    tcp-check expect rstring ^pong",
                ]
            lines += [
                f"    server {name} 127.0.0.1:{port} {_PROXY[version]} {check}"
                for name, port, version in servers
            ]
            sections.append("\n".join(lines))
        self.config = tempPath(case, "haproxy.cfg")
        with open(self.config, "w") as f:
            f.write(_CONFIG.format(sections="\n".join(sections)))
        self.process = ChildProcess(
            case, ["haproxy", "-db", "-f", self.config], "haproxy"
        )

    @inlineCallbacks
    def started(self) -> Any:
        """
        Fire with this HAProxy once every frontend accepts connections.
        """
        for front in self.fronts:
            yield waitListening(front, 10)
        return self
