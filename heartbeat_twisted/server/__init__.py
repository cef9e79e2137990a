"""
The server behind C{twistd heartbeat}: its protocol and factory, its
options, its service, its metrics and its log format.
"""

from ._drain import DrainConfig, MaxAgeConfig
from ._logformat import jsonLogger, jsonLogObserver
from ._metrics import ServerMetrics
from ._options import Options
from ._protocol import DemoFactory, DemoProtocol, closeReason, fileHealthCheck
from ._service import HeartbeatService, ServerFactory, makeService

__all__ = [
    "DemoFactory",
    "DemoProtocol",
    "DrainConfig",
    "HeartbeatService",
    "MaxAgeConfig",
    "Options",
    "ServerFactory",
    "ServerMetrics",
    "closeReason",
    "fileHealthCheck",
    "jsonLogObserver",
    "jsonLogger",
    "makeService",
]
