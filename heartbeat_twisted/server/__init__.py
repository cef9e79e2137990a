"""
The server behind C{twistd heartbeat}: its protocol and factory, its
options and its service.
"""

from ._options import Options
from ._protocol import (
    DemoFactory,
    DemoProtocol,
    ServerFactory,
    ServerProtocol,
    closeReason,
    fileHealthCheck,
)
from ._service import makeService

__all__ = [
    "DemoFactory",
    "DemoProtocol",
    "Options",
    "ServerFactory",
    "ServerProtocol",
    "closeReason",
    "fileHealthCheck",
    "makeService",
]
