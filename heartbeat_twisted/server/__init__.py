"""
The server behind C{twistd heartbeat}: its protocol and factory, its
options, its service, its metrics and its log format.
"""

from ._drain import DrainConfig, MaxAgeConfig
from ._logformat import jsonLogger, jsonLogObserver
from ._metrics import ServerMetrics
from ._options import Options
from ._protocol import (
    DemoFactory,
    DemoProtocol,
    ServerFactory,
    ServerProtocol,
    closeReason,
    fileHealthCheck,
)
from ._service import HeartbeatService, OperatedFactory, makeService

__all__ = [
    "DemoFactory",
    "DemoProtocol",
    "DrainConfig",
    "HeartbeatService",
    "MaxAgeConfig",
    "OperatedFactory",
    "Options",
    "ServerFactory",
    "ServerMetrics",
    "ServerProtocol",
    "closeReason",
    "fileHealthCheck",
    "jsonLogObserver",
    "jsonLogger",
    "makeService",
]
