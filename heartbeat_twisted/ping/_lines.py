"""
The line grammar of ping/pong: what a ping, a pong, a token and an error
line are (C{docs/pingpong.rst} describes the wire format).
"""

from __future__ import annotations

import re

__all__ = [
    "BINARY",
    "MAX_TOKEN_LENGTH",
    "describeError",
    "isCommand",
    "isToken",
    "oneLine",
    "words",
]

MAX_TOKEN_LENGTH = 64
"""The longest token a C{ping} may carry, in bytes."""

_TOKEN = re.compile(rb"[A-Za-z0-9._~+/=-]{1,%d}" % MAX_TOKEN_LENGTH)
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Printable ASCII and tab: anything else in a line is binary data.
BINARY = re.compile(rb"[^\t\x20-\x7e]")
_REASON_LENGTH = 200


def isToken(value: bytes) -> bool:
    """
    Whether C{value} is a valid ping token: 1 to L{MAX_TOKEN_LENGTH} bytes
    of C{A-Z a-z 0-9 . _ ~ + / = -} (so URL-safe and standard base64 fit).
    """
    return _TOKEN.fullmatch(value) is not None


def isCommand(line: bytes, word: bytes) -> bool:
    """
    Whether C{line} starts with the command C{word} (followed by nothing,
    whitespace or C{\\r}).
    """
    return line.startswith(word) and line[len(word) : len(word) + 1] in (
        b"",
        b" ",
        b"\t",
        b"\r",
    )


def words(line: bytes) -> list[bytes]:
    return line.rstrip(b"\r").split()


def oneLine(text: str) -> str:
    """
    C{text} made safe for one reply line: printable ASCII, bounded length.
    """
    cleaned = "".join(c if " " <= c <= "~" else " " for c in text).strip()
    if len(cleaned) > _REASON_LENGTH:
        cleaned = cleaned[: _REASON_LENGTH - 3] + "..."
    return cleaned


def describeError(error: BaseException, own: type[BaseException]) -> str:
    """
    C{error} as one reply line: its text alone for an C{own} error, else
    its type and text.
    """
    text = str(error)
    if isinstance(error, own):
        return oneLine(text or "failed")
    name = type(error).__name__
    return oneLine(f"{name}: {text}" if text else name)
