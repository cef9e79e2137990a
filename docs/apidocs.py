"""
Build the API reference of heartbeat_twisted with pydoctor, offline.

Links to Twisted and to Python's builtins resolve through inventories made
here, on this machine (no network): Twisted's from the installed Twisted
(pydoctor --make-intersphinx), Python's builtins from the running
interpreter.  Any warning fails the build.

    python docs/apidocs.py            # HTML in build/api/
"""

from __future__ import annotations

import builtins
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
TWISTED_API = "https://docs.twisted.org/en/stable/api/"
PYTHON_DOCS = f"https://docs.python.org/{sys.version_info[0]}.{sys.version_info[1]}/"


def pythonInventory(path: Path) -> None:
    """
    Write a Sphinx inventory (version 2) of Python's builtins to C{path}.
    """
    lines = []
    for name in sorted(dir(builtins)):
        if name.startswith("_"):
            continue
        value = getattr(builtins, name)
        if name in ("None", "True", "False", "NotImplemented", "Ellipsis"):
            role, uri = "py:data", f"library/constants.html#{name}"
        elif isinstance(value, type) and issubclass(value, BaseException):
            role, uri = "py:exception", f"library/exceptions.html#{name}"
        elif isinstance(value, type):
            role, uri = "py:class", f"library/functions.html#{name}"
        elif callable(value):
            role, uri = "py:function", f"library/functions.html#{name}"
        else:
            continue
        lines.append(f"{name} {role} 1 {uri} -")
    header = (
        "# Sphinx inventory version 2\n"
        "# Project: Python\n"
        f"# Version: {sys.version_info[0]}.{sys.version_info[1]}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = zlib.compress(("\n".join(lines) + "\n").encode("utf-8"))
    path.write_bytes(header.encode("ascii") + body)


def twistedInventory(path: Path) -> None:
    """
    Write the inventory of the installed Twisted to C{path}, once per
    Twisted version.
    """
    import twisted

    if path.exists():
        return
    source = Path(twisted.__file__).parent
    out = path.parent / f"twisted-{twisted.__version__}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pydoctor",
            "--make-intersphinx",
            "--quiet",
            "--project-name=Twisted",
            f"--project-base-dir={source.parent}",
            f"--html-output={out}",
            str(source),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (out / "objects.inv").replace(path)


def main() -> int:
    """
    Build the inventories if needed, then the API reference; return
    pydoctor's exit code (non-zero on any warning).
    """
    import twisted

    inventories = BUILD / "inventories"
    inventories.mkdir(parents=True, exist_ok=True)
    twistedInv = inventories / f"twisted-{twisted.__version__}.inv"
    pythonInv = inventories / "python.inv"
    twistedInventory(twistedInv)
    pythonInventory(pythonInv)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pydoctor",
            "--warnings-as-errors",
            "--quiet",
            "--docformat=epytext",
            "--project-name=heartbeat_twisted",
            f"--project-base-dir={ROOT}",
            f"--html-output={BUILD / 'api'}",
            f"--intersphinx-file={twistedInv}::{TWISTED_API}",
            f"--intersphinx-file={pythonInv}::{PYTHON_DOCS}",
            str(ROOT / "heartbeat_twisted"),
        ]
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
