"""
Find the runnable examples in README.rst and the pages under docs/, so
tests can run each one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"


def pages() -> list[Path]:
    """
    The pages whose named code blocks are examples: the README, then
    docs/*.rst.
    """
    return [README, *sorted((ROOT / "docs").glob("*.rst"))]


def exampleSource(name: str) -> str:
    """
    The code of the C{.. code-block::} carrying C{:name: NAME}, in the
    README or a page under docs/.
    """
    for page in pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            if re.fullmatch(rf"\s+:name:\s+{re.escape(name)}\s*", line):
                break
        else:
            continue
        body: list[str] = []
        for line in lines[index + 1 :]:
            if line.strip() and not line.startswith("   "):
                break
            body.append(line[3:])
        return "\n".join(body).strip("\n") + "\n"
    raise LookupError(f"no page has a code block named {name!r}")


def runExample(name: str, **given: Any) -> dict[str, Any]:
    """
    Run an example as a module that is not C{__main__} (so its
    C{if __name__ == "__main__":} part does not start the reactor) and return
    its namespace.
    """
    namespace: dict[str, Any] = {"__name__": f"readme_{name}", **given}
    exec(compile(exampleSource(name), f"{name}", "exec"), namespace)
    return namespace
