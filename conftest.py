"""Every Python block in README.md and docs/ runs as a test (sybil).

A ``python`` fence is executed; one whose lines start with ``>>>`` is a doctest, and the
output it shows is compared (``...`` stands for what varies from run to run: timings,
timestamps). The blocks of one page share a namespace, in order, like a reader's session.
Setup a reader need not see goes in an ``<!-- invisible-code-block: python -->`` comment, and
a block that cannot run here (a cluster address) is preceded by ``<!-- skip: next -->``.
Each page runs in a fresh temporary folder, from verigrad's and structlog's defaults, and the
logging handlers and levels a page sets (the logging recipes do) are undone after it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE
from typing import Any

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

import verigrad

_LOGGERS = ("", "verigrad")  # the root logger and verigrad's


def _setup(namespace: dict[str, Any]) -> None:
    import structlog

    verigrad.reset_defaults()
    structlog.reset_defaults()
    loggers = {name: logging.getLogger(name) for name in _LOGGERS}
    saved = {name: (list(lg.handlers), lg.level) for name, lg in loggers.items()}
    folder = tempfile.TemporaryDirectory()
    namespace["__page_state__"] = (folder, os.getcwd(), saved)
    os.chdir(folder.name)


def _teardown(namespace: dict[str, Any]) -> None:
    import structlog

    folder, cwd, saved = namespace["__page_state__"]
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if h not in handlers]:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(level)
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
