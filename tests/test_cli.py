"""Tests for the ``verigrad`` command line: check, sweep, report."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from training_logs import PINNED, write_log
from verigrad.cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNDECIDED,
    EXIT_USAGE,
    PROGRESS_MIN_SIZE,
    load_point,
    main,
    want_progress,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

MODEL = textwrap.dedent(
    """
    import numpy as np

    def loss(x):
        return float(np.sum(np.sin(x) * x**3))

    def grad(x):
        return np.cos(x) * x**3 + 3 * x**2 * np.sin(x)

    def flipped(x):
        return -grad(x)

    def wrong_shape(x):
        return np.zeros(x.size + 1)

    def raises(x):
        raise ZeroDivisionError("bad gradient")

    def noisy(x):
        return float(np.sum(x**2) + 1e-3 * np.random.default_rng().normal())

    def noisy_grad(x):
        return 2 * x

    NOT_A_FUNCTION = 3
    """
)


@pytest.fixture
def model(tmp_path: Path) -> Iterator[str]:
    """A model file: its path, to be used as ``PATH:loss``."""
    path = tmp_path / "model.py"
    path.write_text(MODEL, encoding="utf-8")
    before = set(sys.modules)
    yield str(path)
    # The command line registers the file's module; keep other tests from seeing it.
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]


def _png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1_000
    assert data.startswith(PNG_SIGNATURE)


def _run(*argv: str) -> int:
    return main(list(argv))


class TestEntryPoint:
    """The installed console script and ``python -m verigrad``."""

    def test_console_script(self, model: str, tmp_path: Path) -> None:
        """The ``verigrad`` script runs a passing check by dotted module name, exit 0."""
        script = Path(sys.executable).parent / "verigrad"
        proc = subprocess.run(
            [str(script), "check", "model:loss", "model:grad", "--shape", "6"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == EXIT_OK, proc.stderr
        assert "gradient check passed for grad" in proc.stdout
        assert "verdict: pass (exit status 0)" in proc.stdout

    def test_python_m(self, model: str, tmp_path: Path) -> None:
        """``python -m verigrad`` reports a flipped sign with exit 1 and the hint."""
        argv = ["check", f"{model}:loss", f"{model}:flipped", "--shape", "3", "2"]
        proc = subprocess.run(
            [sys.executable, "-m", "verigrad", *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == EXIT_FAILED, proc.stderr
        assert "verdict 'mismatch'" in proc.stdout
        assert "a flipped sign" in proc.stdout


class TestCheck:
    """``verigrad check``."""

    def test_pass(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A correct gradient passes with exit 0 and the summary on stdout."""
        assert _run("check", f"{model}:loss", f"{model}:grad", "--shape", "10") == EXIT_OK
        out = capsys.readouterr().out
        assert out.startswith("gradient check passed for grad")
        assert "parameter shape (10,)" in out

    def test_mismatch(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A sign-flipped gradient fails with exit 1."""
        code = _run("check", f"{model}:loss", f"{model}:flipped", "--shape", "4", "--seed", "3")
        assert code == EXIT_FAILED
        assert "verdict: mismatch (exit status 1)" in capsys.readouterr().out

    def test_undecided(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A loss that changes between calls cannot be judged: exit 3."""
        code = _run("check", f"{model}:noisy", f"{model}:noisy_grad", "--shape", "3")
        assert code == EXIT_UNDECIDED
        assert "verdict: nondeterministic (exit status 3)" in capsys.readouterr().out

    def test_options_pass_through(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """--method, --epsilon and --rtol reach check_gradient."""
        argv = ["check", f"{model}:loss", f"{model}:grad", "--shape", "5", "--json"]
        argv += ["--method", "forward", "--epsilon", "1e-7", "--rtol", "1e-3"]
        assert _run(*argv) == EXIT_OK
        event = json.loads(capsys.readouterr().out)
        assert event["method"] == "forward"
        assert event["epsilon"] == 1e-7
        assert event["threshold"] == 1e-3
        assert event["shape"] == [5]

    def test_json(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """--json prints the log event as one JSON object."""
        assert _run("check", f"{model}:loss", f"{model}:flipped", "--shape", "4", "--json") == 1
        event = json.loads(capsys.readouterr().out)
        assert event["verdict"] == "mismatch"
        assert event["function"] == "flipped"
        assert event["relative_error"] == pytest.approx(1.0)

    def test_dotted_module_from_cwd(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """MODULE is importable from the current directory, like ``python -m``."""
        name = f"vg_model_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(MODEL, encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        monkeypatch.delitem(sys.modules, name, raising=False)
        path_before = list(sys.path)
        try:
            assert _run("check", f"{name}:loss", f"{name}:grad", "--shape", "3") == EXIT_OK
        finally:
            sys.modules.pop(name, None)
        assert sys.path == path_before  # the current directory is taken off again

    def test_npy_point(
        self, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--point FILE.npy checks at the saved array."""
        np.save(tmp_path / "w.npy", np.arange(6.0).reshape(2, 3))
        code = _run("check", f"{model}:loss", f"{model}:grad", "--point", str(tmp_path / "w.npy"))
        assert code == EXIT_OK
        assert "parameter shape (2, 3)" in capsys.readouterr().out

    def test_npz_single(
        self, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An .npz with one array checks at that array."""
        np.savez(tmp_path / "w.npz", w=np.ones(4))
        code = _run("check", f"{model}:loss", f"{model}:grad", "--point", str(tmp_path / "w.npz"))
        assert code == EXIT_OK
        assert "parameter shape (4,)" in capsys.readouterr().out

    def test_npz_several(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An .npz with several arrays is checked as a dict, naming the wrong array."""
        path = tmp_path / "params.py"
        path.write_text(
            "import numpy as np\n"
            "def loss(p):\n    return float(np.sum(p['W'] ** 2) + np.sum(p['b'] ** 2))\n"
            "def grad(p):\n    return {'W': 2 * p['W'], 'b': 2 * p['b']}\n"
            "def grad_b_wrong(p):\n    return {'W': 2 * p['W'], 'b': -2 * p['b']}\n",
            encoding="utf-8",
        )
        np.savez(tmp_path / "p.npz", W=np.ones((2, 2)), b=np.ones(2))
        point = str(tmp_path / "p.npz")
        assert _run("check", f"{path}:loss", f"{path}:grad", "--point", point) == EXIT_OK
        out = capsys.readouterr().out
        assert "parameters {'W': (2, 2), 'b': (2,)}" in out
        code = _run("check", f"{path}:loss", f"{path}:grad_b_wrong", "--point", point)
        assert code == EXIT_FAILED
        out = capsys.readouterr().out
        assert "hint: b: analytical = -1 x numerical in every coordinate: a flipped sign" in out

    def test_plot(self, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--plot writes a PNG of numerical against analytical per coordinate."""
        png = tmp_path / "check.png"
        argv = ["check", f"{model}:loss", f"{model}:flipped", "--shape", "20", "--plot", str(png)]
        assert _run(*argv) == EXIT_FAILED
        _png(png)
        assert f"wrote {png}" in capsys.readouterr().err


class TestUsageErrors:
    """Everything that keeps a check from running exits 2 with a message."""

    @pytest.mark.parametrize(
        ("loss", "grad", "message"),
        [
            ("{m}", "{m}:grad", "expected MODULE:FUNCTION"),
            ("{m}:loss", "{m}:nope", "has no attribute 'nope'; its callables: flipped, grad"),
            ("{m}:loss", "{m}:NOT_A_FUNCTION", "is a int, not a function"),
            ("no_such_module_xyz:loss", "{m}:grad", "no module named 'no_such_module_xyz'"),
            ("{d}/missing.py:loss", "{m}:grad", "no such file"),
            ("{m}:loss", "{m}:wrong_shape", "shape"),
        ],
    )
    def test_bad_functions(
        self,
        model: str,
        loss: str,
        grad: str,
        message: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Bad MODULE:ATTR, missing modules, files or attributes, a badly shaped gradient."""
        d = str(Path(model).parent)
        argv = ["check", loss.format(m=model, d=d), grad.format(m=model, d=d), "--shape", "3"]
        assert _run(*argv) == EXIT_USAGE
        err = capsys.readouterr().err
        assert err.startswith("verigrad: error:")
        assert message in err

    @pytest.mark.parametrize(
        "extra",
        [
            [],
            ["--shape", "0"],
            ["--shape", "two"],
            ["--shape", "3", "--point", "x.npy"],
            ["--shape", "3", "--epsilon", "-1"],
            ["--shape", "3", "--method", "secant"],
            ["--shape", "3", "--plot", "x.gif"],
            ["--shape", "3", "--seed", "-1"],
        ],
    )
    def test_bad_options(
        self, model: str, extra: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Missing or malformed options are argparse usage errors (exit 2, usage shown)."""
        assert _run("check", f"{model}:loss", f"{model}:grad", *extra) == EXIT_USAGE
        assert "usage: verigrad check" in capsys.readouterr().err

    def test_bad_rtol(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A threshold check_gradient refuses is a usage error naming it."""
        assert _run("check", f"{model}:loss", f"{model}:grad", "--shape", "3", "--rtol", "2") == 2
        assert "rtol=2.0" in capsys.readouterr().err

    def test_missing_point_file(
        self, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing or unreadable --point file exits 2."""
        bad = tmp_path / "bad.npy"
        bad.write_text("not numpy", encoding="utf-8")
        for point in (tmp_path / "missing.npy", bad):
            assert _run("check", f"{model}:loss", f"{model}:grad", "--point", str(point)) == 2
        err = capsys.readouterr().err
        assert "no such file" in err
        assert "cannot read a point from" in err

    def test_gradient_raises(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A gradient that raises exits 2 with its traceback and a one-line error."""
        assert _run("check", f"{model}:loss", f"{model}:raises", "--shape", "3") == EXIT_USAGE
        err = capsys.readouterr().err
        assert "Traceback" in err
        assert "ZeroDivisionError: bad gradient" in err.splitlines()[-1]

    def test_import_raises(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A module that raises on import exits 2 with its traceback."""
        path = tmp_path / "broken.py"
        path.write_text("raise RuntimeError('broken on import')\n", encoding="utf-8")
        assert _run("check", f"{path}:loss", f"{path}:grad", "--shape", "3") == EXIT_USAGE
        err = capsys.readouterr().err
        assert "RuntimeError: broken on import" in err
        assert "importing" in err.splitlines()[-1]

    def test_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help exits 0 and lists the subcommands; no subcommand is a usage error."""
        assert _run("--help") == EXIT_OK
        out = capsys.readouterr().out
        assert all(cmd in out for cmd in ("check", "sweep", "report"))
        assert _run() == EXIT_USAGE

    def test_plot_without_matplotlib(
        self, model: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without matplotlib, --plot says how to install it, exit 2, before any check."""
        real = importlib.util.find_spec

        def find_spec(name: str, *args: object) -> object:
            return None if name == "matplotlib" else real(name, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)
        argv = ["check", f"{model}:loss", f"{model}:grad", "--shape", "3", "--plot", "x.png"]
        assert _run(*argv) == EXIT_USAGE
        captured = capsys.readouterr()
        assert 'pip install "verigrad[plot]"' in captured.err
        assert captured.out == ""


class TestProgress:
    """The progress bar of long checks."""

    class _Stream(io.StringIO):
        def __init__(self, tty: bool) -> None:
            super().__init__()
            self._tty = tty

        def isatty(self) -> bool:
            return self._tty

    @pytest.mark.parametrize(
        ("flag", "size", "full", "tty", "expected"),
        [
            (None, PROGRESS_MIN_SIZE, True, True, True),
            (None, PROGRESS_MIN_SIZE - 1, True, True, False),
            (None, PROGRESS_MIN_SIZE, True, False, False),
            (None, PROGRESS_MIN_SIZE, False, True, False),
            (True, 3, False, False, True),
            (False, 10**6, True, True, False),
        ],
    )
    def test_when(
        self, flag: bool | None, size: int, full: bool, tty: bool, expected: bool
    ) -> None:
        """A bar for full checks of many coordinates on a terminal, unless forced either way."""
        assert want_progress(flag, size, full, self._Stream(tty)) is expected

    def test_forced_bar(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """--progress draws a tqdm bar of loss evaluations on stderr; stdout stays clean."""
        argv = ["check", f"{model}:loss", f"{model}:grad", "--shape", "50", "--progress"]
        assert _run(*argv) == EXIT_OK
        captured = capsys.readouterr()
        assert "loss evaluations" in captured.err
        assert "eval" in captured.err
        assert captured.out.startswith("gradient check passed")

    def test_no_bar_off_terminal(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A large check whose stderr is not a terminal draws no bar."""
        size = str(PROGRESS_MIN_SIZE)
        assert _run("check", f"{model}:loss", f"{model}:grad", "--shape", size) == EXIT_OK
        assert "loss evaluations" not in capsys.readouterr().err

    def test_forced_without_tqdm(
        self, model: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--progress without tqdm says how to install it, exit 2."""
        monkeypatch.setitem(sys.modules, "tqdm", None)
        real = importlib.util.find_spec

        def find_spec(name: str, *args: object) -> object:
            return None if name == "tqdm" else real(name, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)
        argv = ["check", f"{model}:loss", f"{model}:grad", "--shape", "3", "--progress"]
        assert _run(*argv) == EXIT_USAGE
        assert 'pip install "verigrad[progress]"' in capsys.readouterr().err


class TestLoadPoint:
    """Reading the point from a file."""

    def test_npz_several_is_dict(self, tmp_path: Path) -> None:
        """An .npz with several arrays gives {name: array}."""
        np.savez(tmp_path / "p.npz", W=np.ones((2, 2)), b=np.zeros(2))
        point = load_point(str(tmp_path / "p.npz"))
        assert isinstance(point, dict)
        assert sorted(point) == ["W", "b"]
        assert point["W"].shape == (2, 2)

    def test_refuses_pickles(self, tmp_path: Path) -> None:
        """An object array (a pickle) is refused, not loaded."""
        np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        with pytest.raises(Exception, match="cannot read a point"):
            load_point(str(tmp_path / "o.npy"))


class TestSweep:
    """``verigrad sweep``."""

    def test_table(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """The table lists one row per step from 1e-1 to 1e-13 and a row for the auto rule."""
        assert _run("sweep", f"{model}:loss", f"{model}:grad", "--shape", "10") == EXIT_OK
        out = capsys.readouterr().out
        rows = [line for line in out.splitlines() if line.strip().startswith("1.0e-")]
        assert len(rows) == 13
        assert 'epsilon="auto"' in out
        assert "<- smallest" in out

    def test_json(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """--json gives the steps and errors; the grid follows --largest/--smallest/--per-decade."""
        argv = ["sweep", f"{model}:loss", f"{model}:grad", "--shape", "4", "--json"]
        argv += ["--largest", "1e-2", "--smallest", "1e-8", "--per-decade", "2"]
        assert _run(*argv) == EXIT_OK
        data = json.loads(capsys.readouterr().out)
        assert len(data["steps"]) == 13
        assert data["steps"][0] == pytest.approx(1e-2)
        assert data["auto_relative_error"] < 1e-8

    def test_plot(self, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--plot writes the V-shaped curve as a PNG."""
        png = tmp_path / "sweep.png"
        argv = ["sweep", f"{model}:loss", f"{model}:grad", "--shape", "5", "--plot", str(png)]
        assert _run(*argv) == EXIT_OK
        _png(png)

    def test_dict_point_refused(
        self, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A sweep needs one array: an .npz with several is a usage error."""
        np.savez(tmp_path / "p.npz", W=np.ones(2), b=np.ones(2))
        argv = ["sweep", f"{model}:loss", f"{model}:grad", "--point", str(tmp_path / "p.npz")]
        assert _run(*argv) == EXIT_USAGE
        assert "sweep needs one array" in capsys.readouterr().err

    def test_bad_grid(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A reversed step range is a usage error."""
        argv = ["sweep", f"{model}:loss", f"{model}:grad", "--shape", "3"]
        argv += ["--largest", "1e-9", "--smallest", "1e-3"]
        assert _run(*argv) == EXIT_USAGE
        assert "larger than the largest step" in capsys.readouterr().err


@PINNED
class TestReport:
    """``verigrad report``."""

    def test_summary(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A log with failed checks: the numbers, and exit 1."""
        log = tmp_path / "train.jsonl"
        n = len(write_log(log))
        assert _run("report", str(log)) == EXIT_FAILED
        out = capsys.readouterr().out
        assert out.startswith(f"{n} gradient checks of 2 functions: 2 failed, 0 undecided")
        assert "(2 other lines skipped)" in out
        assert f"verdicts: pass {n - 2}, mismatch 2" in out

    def test_clean_run(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A log without failures exits 0."""
        log = tmp_path / "train.jsonl"
        write_log(log, steps=10)  # the bug starts at step 10
        assert _run("report", str(log)) == EXIT_OK
        assert "0 failed" in capsys.readouterr().out

    def test_json_and_plot(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--json prints the summary; --plot writes the errors over the run."""
        log, png = tmp_path / "train.jsonl", tmp_path / "run.png"
        n = len(write_log(log))
        assert _run("report", str(log), "--json", "--plot", str(png), "--top", "1") == 1
        data = json.loads(capsys.readouterr().out)
        assert data["checks"] == n
        assert data["verdicts"] == {"pass": n - 2, "mismatch": 2}
        assert len(data["functions"]["bad_grad"]["worst"]) == 1
        _png(png)

    def test_stdin(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``-`` reads the log from stdin."""
        log = tmp_path / "train.jsonl"
        n = len(write_log(log))
        monkeypatch.setattr(sys, "stdin", io.StringIO(log.read_text(encoding="utf-8")))
        assert _run("report", "-") == EXIT_FAILED
        assert f"{n} gradient checks" in capsys.readouterr().out

    def test_missing_or_empty(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing file, or one without check events, exits 2 with a message."""
        empty = tmp_path / "empty.jsonl"
        empty.write_text('hello\n{"event": "epoch"}\n', encoding="utf-8")
        assert _run("report", str(tmp_path / "missing.jsonl")) == EXIT_USAGE
        assert _run("report", str(empty)) == EXIT_USAGE
        err = capsys.readouterr().err
        assert "no such file" in err
        assert "no gradient_check events in" in err
        assert "(2 non-empty lines)" in err


class TestClosedPipe:
    """Output to a reader that went away."""

    class _ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    def test_broken_pipe(self, model: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """A closed stdout (``verigrad sweep ... | head``) ends quietly with status 141."""
        monkeypatch.setattr(sys, "stdout", self._ClosedPipe())
        assert _run("sweep", f"{model}:loss", f"{model}:grad", "--shape", "3") == 141
