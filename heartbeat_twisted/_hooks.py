"""
Class-level method hooks for mixins.

A mixin that must see every received chunk cannot rely on its subclasses
calling C{super().dataReceived(data)}, nor on its place in the method
resolution order.  L{hookMethod} wraps whatever method a class resolves for
a name, once per class that defines it, at class creation time: no
per-connection cost and no per-instance monkeypatching.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["callsFirst", "fromFactory", "hookMethod"]

Method = Callable[..., Any]


def hookMethod(
    cls: type, name: str, mark: str, makeWrapper: Callable[[Method], Method]
) -> None:
    """
    Replace C{cls.<name>} by C{makeWrapper(original)}, unless the method
    C{cls} resolves for C{name} is already a wrapper carrying C{mark} (it was
    hooked in a base class and C{cls} does not override it).

    @param cls: The class being created (call this from C{__init_subclass__}).
    @param name: The method's name.
    @param mark: Identifies the hooking mixin, so two mixins can hook the
        same method, each once.
    @param makeWrapper: Given the original function, returns the wrapper.
    """
    original = getattr(cls, name, None)
    if original is None:
        # An intermediate mixin with no protocol base yet: the class that
        # adds one is hooked when it is created.
        return
    if name not in cls.__dict__ and getattr(original, mark, False):
        return
    wrapper = functools.wraps(original)(makeWrapper(original))
    if not wrapper.__doc__:
        wrapper.__doc__ = f"The base class's C{{{name}}}, observed by a mixin."
    setattr(wrapper, mark, True)
    setattr(cls, name, wrapper)


def callsFirst(hook: str, passArguments: bool = False) -> Callable[[Method], Method]:
    """
    A C{makeWrapper} for L{hookMethod}: the wrapper calls C{self.<hook>()}
    (with the method's own arguments if C{passArguments}), then the
    original method.
    """

    def makeWrapper(original: Method) -> Method:
        if passArguments:

            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                getattr(self, hook)(*args, **kwargs)
                return original(self, *args, **kwargs)

        else:

            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                getattr(self, hook)()
                return original(self, *args, **kwargs)

        return wrapper

    return makeWrapper


T = TypeVar("T")


def fromFactory(protocol: object, name: str, kind: type[T], fix: str) -> T:
    """
    The object a mixin's connections share, kept on their factory as
    C{factory.<name>}.

    @param kind: What it must be.
    @param fix: How to set it, for the error message.
    @raise TypeError: If the factory has no such attribute of that type.
    """
    factory = getattr(protocol, "factory", None)
    shared = getattr(factory, name, None)
    if not isinstance(shared, kind):
        raise TypeError(
            f"{type(protocol).__qualname__} needs a factory with a {name}; "
            f"got factory {factory!r}. {fix}"
        )
    return shared
