"""
C{twistd heartbeat}: the options and the service of the server, as the
twistd plugin finds them.
"""

from .server._options import (
    Options,
    keepAliveFromOptions,
    optionError,
    portToEndpoint,
)
from .server._service import makeService

__all__ = [
    "Options",
    "keepAliveFromOptions",
    "makeService",
    "optionError",
    "portToEndpoint",
]
