"""
One pair of shadowing C{write}/C{writeSequence} instance attributes per
transport, shared by everything in this library that must see or steer
writes: observers of C{write()} calls (L{observeWrites}) and the write path
engine (L{WritePath<heartbeat_twisted._writepath._engine.WritePath>}).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Shadow", "WriteEngine", "observeWrites", "shadowOf"]

_KEY = "_heartbeatWriteShadow"
_NAMES = ("write", "writeSequence")


class WriteEngine(Protocol):
    """
    What takes a transport's writes in place of its own methods.
    """

    def write(self, data: bytes) -> None: ...

    def writeSequence(self, data: Any) -> None: ...


class Shadow:
    """
    The shadows of one transport.

    The transport's own C{write}/C{writeSequence}, as they resolved when
    the first shadow was made, stay reachable as L{write}/L{writeSequence};
    the shadows call the observers, then the engine if there is one, else
    those.  When neither observers nor an engine are left, the shadows go
    and the class's methods show through again.

    @ivar write: The transport's C{write} under the shadow.
    @ivar writeSequence: The transport's C{writeSequence} under the shadow.
    @ivar foreign: Whether an instance attribute already shadowed C{write}
        when this shadow was made (someone else steers writes: the engine
        must not send around it).
    """

    def __init__(self, own: dict[str, Any], transport: Any) -> None:
        self._own = own
        self._saved = {name: own.get(name) for name in _NAMES}
        self.foreign = self._saved["write"] is not None
        self.write: Callable[[bytes], None] = transport.write
        self.writeSequence: Callable[[Any], None] = transport.writeSequence
        self.observers: list[Callable[[], None]] = []
        self.engine: WriteEngine | None = None

    def refresh(self) -> None:
        """
        Install the cheapest shadows for the current observers and engine,
        or remove them all.
        """
        own, observers, engine = self._own, self.observers, self.engine
        if not observers and engine is None:
            own.pop(_KEY, None)
            for name, value in self._saved.items():
                if value is None:
                    own.pop(name, None)
                else:
                    own[name] = value
            return
        write = self.write if engine is None else engine.write
        writeSequence = self.writeSequence if engine is None else engine.writeSequence
        if not observers:
            own["write"], own["writeSequence"] = write, writeSequence
            return

        def observedWrite(data: bytes) -> None:
            for each in observers:
                each()
            write(data)

        def observedWriteSequence(data: Any) -> None:
            for each in observers:
                each()
            writeSequence(data)

        own["write"], own["writeSequence"] = observedWrite, observedWriteSequence


def shadowOf(transport: Any) -> Shadow | None:
    """
    The shadow of C{transport}, made on first use; L{None} if the transport
    has no instance C{__dict__} to hold one.
    """
    own: dict[str, Any] | None = getattr(transport, "__dict__", None)
    if own is None:
        return None
    shadow = own.get(_KEY)
    if shadow is None:
        shadow = own[_KEY] = Shadow(own, transport)
    assert isinstance(shadow, Shadow)
    return shadow


def observeWrites(
    transport: Any, observer: Callable[[], None]
) -> Callable[[], None] | None:
    """
    Call C{observer()} before each C{transport.write} and
    C{transport.writeSequence}, for this transport only.

    This sees C{write()} calls, not bytes that leave the process; for
    those, see L{WritePath.observeProgress
    <heartbeat_twisted._writepath._engine.WritePath.observeProgress>}.

    One shadowing pair of instance attributes serves every observer of a
    transport (and the write path engine), so several mixins can observe
    it and stop in any order; the last one to stop removes the shadows and
    the class's methods show through again.

    @return: The function that stops this observer, or L{None} if the
        transport cannot be observed (it has no instance C{__dict__}).
    """
    shadow = shadowOf(transport)
    if shadow is None:
        return None
    observers = shadow.observers
    observers.append(observer)
    shadow.refresh()

    def stop() -> None:
        if observer not in observers:
            return
        observers.remove(observer)
        shadow.refresh()

    return stop
