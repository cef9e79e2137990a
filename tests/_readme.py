"""
Find the runnable examples in README.rst, so tests can run each one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.rst"


def exampleSource(name: str) -> str:
    """
    The code of the README's C{.. code-block::} carrying C{:name: NAME}.
    """
    lines = README.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if re.fullmatch(rf"\s+:name:\s+{re.escape(name)}\s*", line):
            break
    else:
        raise LookupError(f"README.rst has no code block named {name!r}")
    body: list[str] = []
    for line in lines[index + 1 :]:
        if line.strip() and not line.startswith("   "):
            break
        body.append(line[3:])
    return "\n".join(body).strip("\n") + "\n"


def runExample(name: str, **given: Any) -> dict[str, Any]:
    """
    Run a README example as a module that is not C{__main__} (so its
    C{if __name__ == "__main__":} part does not start the reactor) and return
    its namespace.
    """
    namespace: dict[str, Any] = {"__name__": f"readme_{name}", **given}
    exec(compile(exampleSource(name), f"README.rst:{name}", "exec"), namespace)
    return namespace
