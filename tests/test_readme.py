"""
The README's quick start stays true: CI runs its test command verbatim,
and the server command names the plugin this package ships.
"""

from __future__ import annotations

import re

from twisted.trial.unittest import SynchronousTestCase

from ._readme import README, pages

ROOT = README.parent


def quickStartCommands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("Quick start\n===========\n", 1)[1].split("\n====", 1)[0]
    return re.findall(r"::\n\n    (.+)\n", section)


class QuickStartTests(SynchronousTestCase):
    def test_twoCommands(self) -> None:
        commands = quickStartCommands()
        self.assertEqual(len(commands), 2, commands)
        server, tests = commands
        self.assertIn("twistd -n heartbeat --port 6666 --idle 5", server)
        self.assertIn("pytest", tests)

    def test_ciRunsTheTestCommand(self) -> None:
        _, tests = quickStartCommands()
        ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
        self.assertIn("\n" + tests + "\n", ci)

    def test_everyExampleIsNamed(self) -> None:
        """
        Each Python example in the README and under docs/ carries a unique
        :name: (which is how the tests find and run it).
        """
        names: list[str] = []
        for page in pages():
            text = page.read_text(encoding="utf-8")
            blocks = text.count(".. code-block:: python")
            found = re.findall(
                r".. code-block:: python\n   :name: (example-[\w-]+)", text
            )
            self.assertEqual(blocks, len(found), page.name)
            names.extend(found)
        self.assertEqual(len(names), len(set(names)), names)

    def test_linkedFilesExist(self) -> None:
        text = README.read_text(encoding="utf-8")
        for target in re.findall(r"<([\w/.-]+\.rst)>`_", text):
            self.assertTrue((ROOT / target).is_file(), target)

    def test_everyExampleIsRun(self) -> None:
        """
        Each named example, in the README or under docs/, is run by some
        test.
        """
        names = [
            name
            for page in pages()
            for name in re.findall(r":name: (example-[\w-]+)", page.read_text("utf-8"))
        ]
        tests = "".join(
            path.read_text(encoding="utf-8") for path in (ROOT / "tests").glob("*.py")
        )
        unrun = [n for n in names if f'runExample("{n}"' not in tests]
        self.assertEqual(unrun, [])
