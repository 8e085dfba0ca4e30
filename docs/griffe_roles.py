"""A griffe extension for the API reference: Sphinx roles in docstrings become code spans.

The docstrings cross-reference in Sphinx's notation (``:func:`verigrad.configure```, with
``~`` for the last name only), which Markdown would print literally. mkdocs.yml loads this
file; it changes what the reference shows, never the docstrings themselves.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|data|mod|exc|obj|const):`(~?)([^`]+)`")


def _code(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRoles(griffe.Extension):
    """Rewrite each object's docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_code, obj.docstring.value)
