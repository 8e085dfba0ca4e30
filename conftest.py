"""Every Python block in README.md and docs/ runs as a test (sybil).

A ``python`` fence is executed; one whose lines start with ``>>>`` is a doctest, and the
output it shows is compared (``...`` stands for what varies from run to run: timings,
timestamps). The blocks of one page share a namespace, in order, like a reader's session.
Setup a reader need not see goes in an ``<!-- invisible-code-block: python -->`` comment, and
a block that cannot run here (a cluster address) is preceded by ``<!-- skip: next -->``.
Each page runs in a fresh temporary folder, from verigrad's and structlog's defaults.
"""

from __future__ import annotations

import os
import tempfile
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE
from typing import Any

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

import verigrad


def _setup(namespace: dict[str, Any]) -> None:
    import structlog

    verigrad.reset_defaults()
    structlog.reset_defaults()
    folder = tempfile.TemporaryDirectory()
    namespace["__page_folder__"] = (folder, os.getcwd())
    os.chdir(folder.name)


def _teardown(namespace: dict[str, Any]) -> None:
    import structlog

    folder, cwd = namespace["__page_folder__"]
    os.chdir(cwd)
    folder.cleanup()
    verigrad.reset_defaults()
    structlog.reset_defaults()


pytest_collect_file = Sybil(
    parsers=[
        PythonCodeBlockParser(doctest_optionflags=ELLIPSIS | NORMALIZE_WHITESPACE),
        SkipParser(),
    ],
    patterns=["README.md", "docs/*.md", "docs/*/*.md"],
    setup=_setup,
    teardown=_teardown,
    name="docs",
).pytest()
