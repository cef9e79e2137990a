"""
The write path: the one place that looks at what a Twisted transport does
with the bytes written to it (docs/writepath.rst).

  - L{observeWrites}: see C{write()} calls;
  - L{WritePath} (one per TCP connection, L{writePathFor}): bytes that
    left the process, bounded unsent output, eager sends;
  - L{installWritePath}: all of it on a server's connection in one call;
  - L{EagerWriteMixin}: eager sends for any protocol (public);
  - C{_closenow.closeSoon}: close an idle TCP connection without waiting
    for it to become writable (the heartbeat's time-outs).
"""

from ._engine import WritePath, tcpConnectionUnder, writePathFor
from ._install import EagerWriteMixin, installWritePath
from ._shadow import observeWrites

__all__ = [
    "EagerWriteMixin",
    "WritePath",
    "installWritePath",
    "observeWrites",
    "tcpConnectionUnder",
    "writePathFor",
]
