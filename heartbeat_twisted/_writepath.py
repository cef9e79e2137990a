"""
The write path: the one module that looks at what a transport does with
the bytes written to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["observeWrites"]

_OBSERVED = "_heartbeatWriteObservers"


def observeWrites(
    transport: Any, observer: Callable[[], None]
) -> Callable[[], None] | None:
    """
    Call C{observer()} before each C{transport.write} and
    C{transport.writeSequence}, for this transport only.

    One shadowing pair of instance attributes serves every observer of a
    transport, so several mixins can observe it and stop in any order; the
    last one to stop removes the shadows and the class's methods show
    through again.

    @return: The function that stops this observer, or L{None} if the
        transport cannot be observed (it has no instance C{__dict__}).
    """
    own: dict[str, Any] | None = getattr(transport, "__dict__", None)
    if own is None:
        return None
    observed = own.get(_OBSERVED)
    if observed is None:
        observers: list[Callable[[], None]] = []
        saved = {name: own.get(name) for name in ("write", "writeSequence")}
        write = transport.write
        writeSequence = transport.writeSequence

        def observedWrite(data: bytes) -> None:
            for each in observers:
                each()
            write(data)

        def observedWriteSequence(data: Any) -> None:
            for each in observers:
                each()
            writeSequence(data)

        own["write"] = observedWrite
        own["writeSequence"] = observedWriteSequence
        observed = own[_OBSERVED] = (observers, saved)
    observers, saved = observed
    observers.append(observer)

    def stop() -> None:
        if observer not in observers:
            return
        observers.remove(observer)
        if observers:
            return
        del own[_OBSERVED]
        for name, value in saved.items():
            if value is None:
                own.pop(name, None)
            else:
                own[name] = value

    return stop
