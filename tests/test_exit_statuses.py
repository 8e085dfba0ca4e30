"""Hostile tests of the command line's exit statuses (issue 12, item 4).

The status is the whole message in CI: 2 for every usage or input error (output paths
checked before the check runs), 0 only when a check ran and passed, 1 only for "the gradient
is wrong", 4 for verigrad's own failures. Each test here failed before the fix it holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from verigrad import cli
from verigrad.cli import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, main

pytest.importorskip("matplotlib")

MODEL = textwrap.dedent(
    """
    import numpy as np

    def loss(x):
        return float(np.sum(x ** 2))

    def grad(x):
        return 2 * x

    def wrong(x):
        return x

    def exits(x):
        raise SystemExit(0)
    """
)

#: Magic bytes of each format a plot may be written in.
SIGNATURES = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".pdf": (b"%PDF",),
    ".svg": (b"<?xml", b"<svg"),
    ".eps": (b"%!PS-Adobe",),
    ".jpg": (b"\xff\xd8\xff",),
    ".tiff": (b"II*\x00", b"MM\x00*"),
}


@pytest.fixture
def model(tmp_path: Path) -> Iterator[str]:
    """A model file's path, for PATH:loss and PATH:grad."""
    path = tmp_path / "model.py"
    path.write_text(MODEL, encoding="utf-8")
    before = set(sys.modules)
    yield str(path)
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]


def _check(model: str, *extra: str, grad: str = "grad") -> list[str]:
    return ["check", f"{model}:loss", f"{model}:{grad}", *extra]


class TestOutputPaths:
    """Unwritable ``--plot`` paths exit 2 before anything is checked."""

    def test_existing_folder(
        self, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--plot onto an existing directory: 2, and the check never ran (nothing on stdout)."""
        folder = tmp_path / "plots.png"
        folder.mkdir()
        capsys.readouterr()
        assert main(_check(model, "--shape", "3", "--plot", str(folder))) == EXIT_USAGE
        out, err = capsys.readouterr()
        assert out == ""
        assert "is a folder" in err

    def test_parent_is_a_file(
        self, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A folder that is really a file: 2 before the check, for check, sweep and report."""
        blocker = tmp_path / "file"
        blocker.write_text("x", encoding="utf-8")
        target = str(blocker / "plot.png")
        log = tmp_path / "log.jsonl"
        log.write_text('{"event": "gradient_check", "verdict": "pass", "passed": true}\n')
        for argv in (
            _check(model, "--shape", "3", "--plot", target),
            ["sweep", f"{model}:loss", f"{model}:grad", "--shape", "3", "--plot", target],
            ["report", str(log), "--plot", target],
        ):
            capsys.readouterr()
            assert main(argv) == EXIT_USAGE, argv
            out, err = capsys.readouterr()
            assert out == "", argv
            assert "is not a folder" in err

    @pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
    def test_unwritable_folder_even_for_root(
        self, model: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A folder nobody can create files in (/proc, also as root): 2, nothing checked."""
        for argv in (
            _check(model, "--shape", "3", "--plot", "/proc/verigrad-plot.png"),
            ["sweep", f"{model}:loss", f"{model}:grad", "--shape", "3", "--plot", "/proc/v.png"],
        ):
            capsys.readouterr()
            assert main(argv) == EXIT_USAGE
            out, err = capsys.readouterr()
            assert out == ""
            assert "cannot write it" in err

    @pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere"
    )
    def test_read_only_folder(
        self, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A folder without write permission: 2 before the sweep runs."""
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        try:
            argv = ["sweep", f"{model}:loss", f"{model}:grad", "--shape", "3"]
            assert main([*argv, "--plot", str(folder / "s.png")]) == EXIT_USAGE
            assert capsys.readouterr().out == ""
        finally:
            folder.chmod(0o700)

    def test_probe_leaves_no_file(self, model: str, tmp_path: Path) -> None:
        """The writability probe removes what it created when the run stops early."""
        target = tmp_path / "never.png"
        assert main(_check(model, "--shape", "3", "--plot", str(target), grad="nothing")) == 2
        assert not target.exists()


class TestPlotFormats:
    """Plots are written in the format the extension names, or refused."""

    @pytest.mark.parametrize("suffix", sorted(SIGNATURES))
    def test_format_follows_extension(self, model: str, tmp_path: Path, suffix: str) -> None:
        """--plot x.pdf writes a PDF (it used to write PNG bytes), and so on for each format."""
        path = tmp_path / f"plot{suffix}"
        assert main(_check(model, "--shape", "4", "--plot", str(path))) == EXIT_OK
        assert path.read_bytes().startswith(SIGNATURES[suffix])

    @pytest.mark.parametrize("name", ["plot.gif", "plot", "plot.txt"])
    def test_unknown_extension_refused_before_checking(
        self, model: str, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An extension that names no format is a usage error, and nothing is written."""
        path = tmp_path / name
        assert main(_check(model, "--shape", "4", "--plot", str(path))) == EXIT_USAGE
        out, err = capsys.readouterr()
        assert out == ""
        assert "names no plot format" in err
        assert not path.exists()


class TestPointFiles:
    """Damaged point files are input errors (2), found without allocating what they claim."""

    def test_truncated_npz(self, model: str, tmp_path: Path) -> None:
        """A .npz cut in half: 2 (it used to raise BadZipFile, exit 1)."""
        whole = tmp_path / "whole.npz"
        np.savez(whole, a=np.arange(1000.0), b=np.ones(50))
        cut = tmp_path / "cut.npz"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        assert main(_check(model, "--point", str(cut))) == EXIT_USAGE

    def test_npz_member_truncated(self, model: str, tmp_path: Path) -> None:
        """A .npz whose array is shorter than its header says: 2."""
        npy = tmp_path / "a.npy"
        np.save(npy, np.arange(100.0))
        data = npy.read_bytes()[:-80]
        bad = tmp_path / "bad.npz"
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("a.npy", data)
        assert main(_check(model, "--point", str(bad))) == EXIT_USAGE

    @pytest.mark.parametrize("suffix", [".npy", ".npz"])
    def test_header_claims_1e11_floats(
        self, model: str, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A header that claims 1e11 floats in a small file: 2 at once, nothing allocated."""
        header = tmp_path / "h.npy"
        with header.open("wb") as stream:
            np.lib.format.write_array_header_1_0(
                stream, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)}
            )
            stream.write(np.ones(4).tobytes())
        path = header
        if suffix == ".npz":
            path = tmp_path / "h.npz"
            with zipfile.ZipFile(path, "w") as archive:
                archive.write(header, "x.npy")
        assert main(_check(model, "--point", str(path))) == EXIT_USAGE
        assert "truncated" in capsys.readouterr().err

    def test_not_a_point_file(self, model: str, tmp_path: Path) -> None:
        """Text, a folder: 2."""
        text = tmp_path / "x.npy"
        text.write_text("hello", encoding="utf-8")
        assert main(_check(model, "--point", str(text))) == EXIT_USAGE
        assert main(_check(model, "--point", str(tmp_path))) == EXIT_USAGE

    def test_good_files_still_load(self, tmp_path: Path) -> None:
        """.npy (C and Fortran order) and .npz round-trip exactly."""
        a = np.arange(12.0).reshape(3, 4)
        np.save(tmp_path / "c.npy", a)
        np.save(tmp_path / "f.npy", np.asfortranarray(a))
        np.savez_compressed(tmp_path / "z.npz", w=a, b=np.ones(2))
        assert np.array_equal(cli.load_point(str(tmp_path / "c.npy")), a)
        assert np.array_equal(cli.load_point(str(tmp_path / "f.npy")), a)
        loaded = cli.load_point(str(tmp_path / "z.npz"))
        assert isinstance(loaded, dict)
        assert np.array_equal(loaded["w"], a)


class TestShapesAndSeeds:
    """Random points that cannot be made, and seeds numpy refuses: 2."""

    def test_shape_beyond_any_memory(self, model: str, capsys: pytest.CaptureFixture[str]) -> None:
        """--shape 99999999999999999999 (it used to raise ValueError, exit 1)."""
        assert main(_check(model, "--shape", "99999999999999999999")) == EXIT_USAGE
        assert "GiB" in capsys.readouterr().err

    def test_shape_beyond_this_machine(
        self, model: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--shape 100000 100000 (80 GB) on a machine with less memory: 2, nothing allocated."""
        monkeypatch.setattr(cli, "_memory_bytes", lambda: 16 * 2**30)
        assert main(_check(model, "--shape", "100000", "100000")) == EXIT_USAGE
        assert "more than this machine's 16.0 GiB" in capsys.readouterr().err

    def test_allocation_failure(self, model: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """A MemoryError while making the point is an input error, not exit 1."""

        def broken(*args: object) -> None:
            raise MemoryError

        monkeypatch.setattr(np.random, "default_rng", broken)
        assert main(_check(model, "--shape", "5")) == EXIT_USAGE

    @pytest.mark.parametrize("command", ["check", "sweep"])
    def test_negative_seed(self, model: str, command: str) -> None:
        """--seed -1 (numpy refuses negative seeds; it used to exit 1)."""
        argv = [command, f"{model}:loss", f"{model}:grad", "--shape", "3", "--seed", "-1"]
        assert main(argv) == EXIT_USAGE


class TestExitingModules:
    """A module or function that exits is a usage error, never 0."""

    SCRIPT = textwrap.dedent(
        """
        import sys
        import numpy as np

        def loss(x):
            return float(np.sum(x ** 2))

        def grad(x):
            return x  # wrong

        print("training...")
        sys.exit({code})
        """
    )

    @pytest.mark.parametrize("code", ["0", "None", "3", "'done'"])
    def test_exit_at_import_by_path(
        self, tmp_path: Path, code: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A script that calls sys.exit(0) at import: 2, even with a wrong gradient (it was 0)."""
        path = tmp_path / "script.py"
        path.write_text(self.SCRIPT.format(code=code), encoding="utf-8")
        assert main(["check", f"{path}:loss", f"{path}:grad", "--shape", "3"]) == EXIT_USAGE
        assert "exited" in capsys.readouterr().err

    def test_exit_at_import_in_a_real_process(self, tmp_path: Path) -> None:
        """The installed command, a dotted module name: exit status 2, not 0."""
        (tmp_path / "script.py").write_text(self.SCRIPT.format(code="0"), encoding="utf-8")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "verigrad",
                "check",
                "script:loss",
                "script:grad",
                "--shape",
                "3",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == EXIT_USAGE, proc.stderr
        assert "if __name__ ==" in proc.stderr

    def test_gradient_that_exits(self, model: str) -> None:
        """A gradient that raises SystemExit(0) while checked: 2."""
        assert main(_check(model, "--shape", "3", grad="exits")) == EXIT_USAGE
        argv = ["sweep", f"{model}:loss", f"{model}:exits", "--shape", "3"]
        assert main(argv) == EXIT_USAGE


class TestInternalErrors:
    """verigrad's own failures are 4 with a traceback, never Python's 1."""

    def test_unexpected_exception(
        self, model: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An exception raised in verigrad's own code: 4, with the traceback."""
        import verigrad.check

        # Compiled as if it were verigrad's code: the innermost frame decides whose bug it is.
        code = compile(
            "def broken(*args, **kwargs):\n    raise RuntimeError('a bug in verigrad')\n",
            verigrad.check.__file__,
            "exec",
        )
        namespace: dict[str, object] = {}
        exec(code, namespace)
        monkeypatch.setattr(verigrad.check, "check_gradient", namespace["broken"])
        assert main(_check(model, "--shape", "3")) == EXIT_INTERNAL
        err = capsys.readouterr().err
        assert "RuntimeError: a bug in verigrad" in err
        assert "please report it" in err


class TestStatusesAreExact:
    """The statuses that remain: 0 for a pass, 1 only for a wrong gradient."""

    def test_pass_and_wrong(self, model: str) -> None:
        assert main(_check(model, "--shape", "4")) == EXIT_OK
        assert main(_check(model, "--shape", "4", grad="wrong")) == EXIT_FAILED

    def test_help_lists_every_status(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["--help"]) == EXIT_OK
        out = capsys.readouterr().out
        for code in cli.EXIT_STATUSES:
            assert f"{code} " in out

    def test_user_code_error_stays_2(
        self, model: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The same exception raised by the user's gradient is the user's: 2."""
        path = Path(model)
        path.write_text(
            path.read_text() + "\ndef buggy(x):\n    raise RuntimeError('user bug')\n",
            encoding="utf-8",
        )
        assert main(_check(model, "--shape", "3", grad="buggy")) == EXIT_USAGE
        assert "RuntimeError: user bug" in capsys.readouterr().err


class TestReportInputs:
    """``report`` input errors are 2."""

    def test_folder_or_missing_log(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A folder given as the log, or no such file: 2 with the reason."""
        assert main(["report", str(tmp_path)]) == EXIT_USAGE
        assert "is a folder" in capsys.readouterr().err
        assert main(["report", str(tmp_path / "missing.jsonl")]) == EXIT_USAGE
        assert "no such file" in capsys.readouterr().err
