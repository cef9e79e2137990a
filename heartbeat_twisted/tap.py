"""
C{twistd heartbeat}: the options and the service of the server, as the
twistd plugin finds them.
"""

from .server._options import (
    Options,
    keepAliveFromOptions,
    makeService,
    optionError,
    portToEndpoint,
)

__all__ = [
    "Options",
    "keepAliveFromOptions",
    "makeService",
    "optionError",
    "portToEndpoint",
]
