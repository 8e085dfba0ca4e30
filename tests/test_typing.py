"""The public API type-checks in users' code: mypy --strict accepts tests/typing/usage.py."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

USAGE = Path(__file__).parent / "typing" / "usage.py"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mypy cache of this module's own: a shared .mypy_cache may remember files of other
    runs at other paths (and fail the test); one cache for both tests keeps the second fast."""
    return tmp_path_factory.mktemp("mypy-cache")


def _args(cache: Path, file: Path) -> list[str]:
    return ["--strict", "--no-error-summary", "--cache-dir", str(cache), str(file)]


class TestTypedUsage:
    def test_usage_file_passes_mypy_strict(self, cache: Path) -> None:
        """``grad.verigrad.stats`` and the decorated functions' signatures type-check."""
        stdout, stderr, _ = api.run(_args(cache, USAGE))
        # Only the usage file is judged: errors mypy reports in other modules it follows are
        # another test's business (mypy on src/ runs in CI).
        ours = [line for line in stdout.splitlines() if line.startswith(str(USAGE))]
        assert ours == [], "\n".join(ours) + stderr

    def test_a_wrong_call_is_caught(self, tmp_path: Path, cache: Path) -> None:
        """The types are not Any: a wrong argument type or a misspelt attribute is an error."""
        bad = tmp_path / "bad.py"
        bad.write_text(
            "import numpy as np\n"
            "import verigrad as vg\n"
            "def loss(w: np.ndarray) -> float: return 0.0\n"
            "@vg.verified_gradient(loss=loss)\n"
            "def grad(w: np.ndarray) -> np.ndarray: return w\n"
            "grad('not an array')\n"
            "n: int = grad.verigrad.statz\n"
        )
        stdout, _, _ = api.run(_args(cache, bad))
        ours = [line for line in stdout.splitlines() if line.startswith(str(bad))]
        assert any("arg-type" in line for line in ours), stdout
        assert any("statz" in line and "attr-defined" in line for line in ours), stdout
