"""The README and the documentation pages say what is true: short, linked, and every example run.

The Python blocks themselves run through sybil (``conftest.py`` at the repository root); these
tests hold the rules around them: the README's size and commands, CI running exactly the
README's test command, links that resolve, output shown only where it is checked.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import verigrad

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^\n`]*)$", re.MULTILINE)
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(?P<title>.+?)[ \t]*#*$", re.MULTILINE)
#: Languages a fence may name. Python code goes under "python", the only one that is run.
LANGUAGES = {"python", "bash", "text", "ini", "toml"}


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of each fenced block of a Markdown text."""
    blocks = []
    opening = None
    for match in FENCE.finditer(text):
        if opening is None:
            opening = match
        elif len(match["fence"]) >= len(opening["fence"]) and not match["info"].strip():
            blocks.append((opening["info"].strip(), text[opening.end() + 1 : match.start()]))
            opening = None
    assert opening is None, "a fence is never closed"
    return blocks


def prose(text: str) -> str:
    """``text`` without its fenced blocks and HTML comments (where ``#`` is not a heading)."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    for _, body in fenced_blocks(text):
        text = text.replace(body, "")
    return text


def slug(title: str) -> str:
    """A heading's anchor as Python-Markdown's toc extension (mkdocs) makes it."""
    title = re.sub(r"`([^`]*)`", r"\1", title)
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
    title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    title = re.sub(r"[^\w\s-]", "", title).strip().lower()
    return re.sub(r"[-\s]+", "-", title)


def anchors(page: Path) -> set[str]:
    return {slug(m["title"]) for m in HEADING.finditer(prose(page.read_text(encoding="utf-8")))}


def python_blocks(page: Path) -> list[str]:
    return [
        body for lang, body in fenced_blocks(page.read_text(encoding="utf-8")) if lang == "python"
    ]


class TestReadme:
    def test_at_most_8_kb(self) -> None:
        """The README stays short: what verigrad is, install, commands, an example, links."""
        assert len(README.read_bytes()) <= 8 * 1024

    def test_opens_with_the_two_fresh_machine_commands(self) -> None:
        """The first code block is the main example's command and the test suite's command."""
        language, body = fenced_blocks(README.read_text(encoding="utf-8"))[0]
        commands = [line for line in body.splitlines() if line and not line.startswith("#")]
        assert language == "bash"
        assert commands == [
            "python3 -m venv .venv && .venv/bin/pip install -e . && "
            ".venv/bin/python examples/linear_regression.py",
            'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && '
            ".venv/bin/python -m pytest",
        ]

    def test_ci_runs_the_readme_test_command(self) -> None:
        """.ci/run runs the README's test command verbatim, and stops at the first failure."""
        _, body = fenced_blocks(README.read_text(encoding="utf-8"))[0]
        test_command = next(line for line in body.splitlines() if "pytest" in line)
        ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
        assert test_command in ci.splitlines()
        assert "set -euo pipefail" in ci

    def test_ci_lints_type_checks_and_builds_the_docs(self) -> None:
        """CI runs ruff, the format check, strict mypy and the strict docs build."""
        ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
        for step in ("ruff check", "ruff format --check", "mypy", "mkdocs build --strict"):
            assert step in ci

    def test_headline_example_runs_from_a_fresh_namespace(self) -> None:
        """The README's Python blocks define every name they use (once: NameError for ``w``)."""
        source = "\n".join(block for block in python_blocks(README) if ">>>" not in block)
        namespace: dict[str, object] = {}
        exec(compile(source, str(README), "exec"), namespace)
        assert {"X", "y", "loss", "grad", "w"} <= namespace.keys()

    def test_mentions_summary(self) -> None:
        """The report the README shows is named as what it is: ``result.summary()``."""
        assert "summary()" in prose(README.read_text(encoding="utf-8"))
        assert any("summary()" in block for block in python_blocks(README))


class TestPages:
    @pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
    def test_fences_name_a_known_language(self, page: Path) -> None:
        """Every fence names its language, so no Python hides in a block that is not run."""
        for language, body in fenced_blocks(page.read_text(encoding="utf-8")):
            assert language in LANGUAGES, f"{page.name}: fence {language!r}: {body[:60]!r}"

    @pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
    def test_prompts_only_in_checked_blocks(self, page: Path) -> None:
        """Output shown after a ``>>>`` prompt is a doctest (checked), never plain text."""
        for language, body in fenced_blocks(page.read_text(encoding="utf-8")):
            if language != "python":
                assert ">>>" not in body, f"{page.name}: an unchecked session: {body[:80]!r}"

    @pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
    def test_links_resolve(self, page: Path) -> None:
        """Relative links name an existing file, and a heading where they name an anchor."""
        for match in LINK.finditer(prose(page.read_text(encoding="utf-8"))):
            target = match["target"]
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: link to missing {target}"
            if anchor and not anchor.startswith("verigrad."):  # API anchors: mkdocstrings
                assert anchor in anchors(linked), f"{page.name}: no heading for {target}"

    @pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
    def test_quoted_section_references_exist(self, page: Path) -> None:
        """A section named in quotes ('see "Reading the logs"') exists as a heading."""
        titles = set().union(*(anchors(p) for p in PAGES))
        text = prose(page.read_text(encoding="utf-8"))
        for name in re.findall(r'(?:in|see|under) "([A-Z][^"]{3,})"', text):
            assert slug(name) in titles, f"{page.name}: no section {name!r}"


class TestReportedDefects:
    def test_label_takes_the_index_of_a_worst_coordinate(self) -> None:
        """``result.label(result.worst[0].index)`` names the worst coordinate as the report does."""
        result = verigrad.check_gradient(
            lambda x: x @ x, np.array([1.0, 2.0]), np.array([2.0, 4.4])
        )
        assert result.label(result.worst[0].index) == "[1]"

    def test_the_shortest_logging_setup_is_shown(self) -> None:
        """The JSON-lines-on-stderr setup that text once referred to is a block that runs."""
        blocks = python_blocks(DOCS / "how-to" / "logging.md")
        assert any(
            'logging.basicConfig(format="%(message)s"' in block and "JSONRenderer()" in block
            for block in blocks
        )


class TestChangelog:
    KINDS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")

    def versions(self) -> list[tuple[str, str]]:
        text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
        parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
        return list(zip(parts[1::2], parts[2::2], strict=True))

    def test_versions_are_dated(self) -> None:
        """Each release heading is ``[X.Y.Z] - YYYY-MM-DD``; only Unreleased has no date."""
        headings = [heading for heading, _ in self.versions()]
        assert headings[0] == "[Unreleased]"
        for heading in headings[1:]:
            assert re.fullmatch(r"\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}", heading), heading

    def test_each_kind_of_change_once_per_version(self) -> None:
        """Keep a Changelog's kinds, each at most once per version, every entry under one."""
        for heading, body in self.versions():
            kinds = re.findall(r"^### (.+)$", body, flags=re.MULTILINE)
            assert kinds, heading
            assert len(kinds) == len(set(kinds)), f"{heading}: {kinds}"
            assert set(kinds) <= set(self.KINDS), f"{heading}: {kinds}"
            before_first = body.split("### ", 1)[0]
            assert not before_first.strip(), f"{heading}: entries outside a section"
            for section in re.split(r"^### .+$", body, flags=re.MULTILINE)[1:]:
                assert "\n\n- " not in section.strip("\n"), f"{heading}: a stray block"


NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def same_but_for_numbers(shown: str, printed: str, factor: float = 3.0) -> bool:
    """Whether two lines differ only in numbers, each within ``factor`` of the other.

    Timings, rounding-level errors and error bars vary from machine to machine; the words,
    the layout and the order of magnitude of every figure do not.
    """
    if NUMBER.sub("#", shown).split() != NUMBER.sub("#", printed).split():
        return False
    for a, b in zip(NUMBER.findall(shown), NUMBER.findall(printed), strict=True):
        x, y = abs(float(a)), abs(float(b))
        if x != y and not (min(x, y) > 0 and max(x, y) / min(x, y) <= factor):
            return False
    return True


class TestCommandLinePage:
    PAGE = DOCS / "how-to" / "command-line.md"
    TIMED = re.compile(r"\d+ loss evaluations in [\d.]+ (?:ms|us|s)")

    def sessions(self) -> list[tuple[str, list[str]]]:
        """``(command, output lines)`` of each ``$ verigrad ...`` session the page shows."""
        found = []
        for language, body in fenced_blocks(self.PAGE.read_text(encoding="utf-8")):
            lines = body.splitlines()
            if language == "text" and lines and lines[0].startswith("$ verigrad "):
                found.append((lines[0][2:], lines[1:]))
        return found

    def test_the_page_shows_check_and_sweep(self) -> None:
        """The page has a session for ``check`` and one for ``sweep`` (so the next test runs)."""
        assert {command.split()[1] for command, _ in self.sessions()} >= {"check", "sweep"}

    def test_shown_sessions_are_what_the_command_prints(self, tmp_path: Path) -> None:
        """Each session's output is the command's, up to timings and rounding-level digits."""
        import subprocess
        import sys

        model = next(b for b in python_blocks(self.PAGE) if b.startswith("# model.py"))
        (tmp_path / "model.py").write_text(model, encoding="utf-8")
        for command, shown in self.sessions():
            proc = subprocess.run(
                [sys.executable, "-m", "verigrad", *command.split()[1:]],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            printed = proc.stdout.splitlines()
            assert len(printed) == len(shown), f"{command}:\n{proc.stdout}{proc.stderr}"
            for a, b in zip(shown, printed, strict=True):
                a, b = self.TIMED.sub("N evals", a), self.TIMED.sub("N evals", b)
                assert same_but_for_numbers(a, b), f"{command}: shown {a!r}, printed {b!r}"
