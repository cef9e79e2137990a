"""
The README and every page under docs/ and bench/ render without a warning.
"""

from __future__ import annotations

import io
from pathlib import Path

from docutils.core import publish_doctree
from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent


def pages() -> list[Path]:
    return [
        ROOT / "README.rst",
        *sorted((ROOT / "docs").glob("*.rst")),
        *sorted((ROOT / "bench").glob("*.rst")),
    ]


class DocsTests(SynchronousTestCase):
    def test_renderCleanly(self) -> None:
        problems = {}
        for page in pages():
            warnings = io.StringIO()
            publish_doctree(
                page.read_text(encoding="utf-8"),
                source_path=str(page),
                settings_overrides={
                    "warning_stream": warnings,
                    "report_level": 2,
                    "halt_level": 5,
                },
            )
            if warnings.getvalue():
                problems[page.name] = warnings.getvalue()
        self.assertEqual(problems, {})
