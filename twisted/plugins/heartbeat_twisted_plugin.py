from twisted.application.service import ServiceMaker

heartbeat = ServiceMaker(  # type: ignore[no-untyped-call]
    "heartbeat_twisted demo server",
    "heartbeat_twisted.tap",
    "Heartbeat demo server: idle close, OS keepalive, ping/pong.",
    "heartbeat",
)
