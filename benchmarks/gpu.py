"""A full and a sampled gradient check of a torch model, on a CUDA device against the CPU.

Run by hand (never in the test suite), on a machine with a CUDA GPU and torch:

    python benchmarks/gpu.py                      # a 64-128-10 MLP, about 9,600 parameters
    python benchmarks/gpu.py --hidden 512 --json gpu.json
    python benchmarks/gpu.py --cpu-only           # the CPU half alone (no GPU needed)

Without torch or without a CUDA device it says so and exits with status 0 (unless
``--cpu-only``).

The check runs on ``verigrad._backend``, the array layer the pipeline is being wired to
(issue 13): the parameters (``dict(model.named_parameters())``) become one flat float64 working
vector on the model's device (:class:`verigrad._structured.Structured`); every perturbed point
is written on that device (one element per evaluation, no host copy of the point) and the loss
is read back as one float. Two checks, each timed on both devices:

- full: central differences on every coordinate (2n evaluations);
- sampled: central differences on 64 random coordinates plus 8 random Rademacher directions
  (16 + 128 evaluations, whatever n is), as ``method="auto"`` does above 2,000 parameters.

The same two checks then run through ``verigrad.check_gradient`` itself (method "central",
and "auto" with the same sample), the parameters and autograd's gradients passed as they are.

The gradient compared against is autograd's, so every check must pass; the rows print the
evaluations, the seconds, the time per evaluation and the relative error. A GPU pays a kernel
launch and a device-to-host sync per evaluation, so small models are faster on the CPU; the
crossover comes with the batch and width (``--batch``, ``--hidden``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass
class Row:
    device: str
    check: str
    n_params: int
    evals: int
    seconds: float
    relative_error: float

    @property
    def us_per_eval(self) -> float:
        return self.seconds / self.evals * 1e6


def build(device: str, hidden: int, batch: int, seed: int = 0) -> tuple[Any, Any, Any]:
    """A float64 MLP on ``device`` and a batch of inputs and labels for it."""
    import torch

    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 10)
    ).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.1)
    x = torch.randn(batch, 64, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (batch,), generator=g)
    return model.to(device), x.to(device), y.to(device)


def run(device: str, hidden: int, batch: int, sample: int, n_dirs: int) -> list[Row]:
    import torch

    from verigrad._backend import loss_caller
    from verigrad._structured import Structured

    model, x, y = build(device, hidden, batch)
    params = dict(model.named_parameters())

    def loss_of(p: dict[str, Any]) -> Any:
        out = torch.func.functional_call(model, p, (x,))
        return torch.nn.functional.cross_entropy(out, y)

    # The reference gradient: autograd's, on the same device.
    loss_of(params).backward()
    grads = {k: v.grad for k, v in params.items()}
    s = Structured.of(params)
    g = s.gradient(grads)
    ws = s.workspace
    f = loss_caller(s.loss(loss_of), "torch")
    base = ws.base.reshape(-1)
    steps = np.finfo(np.float64).eps ** (1 / 3) * np.maximum(np.abs(base), 1.0)
    n = base.size
    rows = []

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def coordinates(indices: np.ndarray) -> tuple[np.ndarray, int]:
        est = np.empty(indices.size)
        with ws.evaluating():
            for k, i in enumerate(indices.tolist()):
                v, h = float(base[i]), float(steps[i])
                up, down = ws.stored(v + h), ws.stored(v - h)
                fp = f(ws.set(i, up))
                fm = f(ws.set(i, down))
                ws.reset(i)
                est[k] = (fp - fm) / (up - down)
        return est, 2 * indices.size

    def directions(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        est, exact = np.empty(n_dirs), np.empty(n_dirs)
        h = np.finfo(np.float64).eps ** (1 / 3) * max(float(np.abs(base).max()), 1.0)
        with ws.evaluating():
            for k in range(n_dirs):
                u = rng.choice([-1.0, 1.0], size=n) / np.sqrt(n)
                d = ws.direction(u)
                est[k] = (f(ws.along(d, h)) - f(ws.along(d, -h))) / (2 * h)
                exact[k] = float(u @ g)
        return est, exact, 2 * n_dirs

    # Full check.
    sync()
    t0 = time.perf_counter()
    est, evals = coordinates(np.arange(n))
    sync()
    dt = time.perf_counter() - t0
    rows.append(Row(device, "full", n, evals, dt, _rel(est, g)))

    # Sampled check.
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    sync()
    t0 = time.perf_counter()
    est_c, evals_c = coordinates(idx)
    est_d, exact_d, evals_d = directions(rng)
    sync()
    dt = time.perf_counter() - t0
    err = max(_rel(est_c, g[idx]), _rel(est_d, exact_d))
    rows.append(Row(device, f"sampled ({sample} coords + {n_dirs} dirs)", n, evals_c + evals_d,
                    dt, err))  # fmt: skip

    # The same two checks through the public pipeline: the parameters and autograd's
    # gradients handed to check_gradient as they are (noise probe, second looks and all).
    import verigrad

    for label, options in (
        ("check_gradient full", {"method": "central"}),
        ("check_gradient auto", {"n_coordinates": sample, "n_directions": n_dirs, "seed": 0}),
    ):
        sync()
        t0 = time.perf_counter()
        result = verigrad.check_gradient(loss_of, params, grads, **options)  # type: ignore[arg-type]
        sync()
        dt = time.perf_counter() - t0
        error = result.relative_error if result.passed else float("inf")
        rows.append(Row(device, label, n, result.n_evals, dt, error))
    return rows


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sample", type=int, default=64)
    parser.add_argument("--directions", type=int, default=8)
    parser.add_argument("--cpu-only", action="store_true", help="time the CPU half alone")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to measure (pip install 'verigrad[torch]')")
        return 0
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    elif not args.cpu_only:
        print(
            "no CUDA device here (torch.cuda.is_available() is False): this benchmark compares "
            "a GPU with the CPU; run it on a machine with one, or pass --cpu-only"
        )
        return 0
    rows: list[Row] = []
    for device in devices:
        rows += run(device, args.hidden, args.batch, args.sample, args.directions)
    name = torch.cuda.get_device_name(0) if "cuda" in devices else "none"
    print(f"torch {torch.__version__}, GPU: {name}, MLP 64-{args.hidden}-10, batch {args.batch}")
    head = (
        f"{'device':<6} {'check':<30} {'n':>7} {'evals':>7} {'s':>8} {'us/eval':>9} {'rel err':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.device:<6} {r.check:<30} {r.n_params:>7} {r.evals:>7} {r.seconds:>8.3f} "
            f"{r.us_per_eval:>9.1f} {r.relative_error:>9.1e}"
        )
    if "cuda" in devices:
        for check in ("full", "sampled", "check_gradient full", "check_gradient auto"):
            cpu = next(r for r in rows if r.device == "cpu" and r.check.startswith(check))
            gpu = next(r for r in rows if r.device == "cuda" and r.check.startswith(check))
            print(f"{check}: CUDA takes {gpu.seconds / cpu.seconds:.2f}x the CPU's time")
    bad = [r for r in rows if r.relative_error > 1e-6]
    if bad:
        print(f"UNEXPECTED: {len(bad)} row(s) disagree with autograd beyond 1e-6")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([asdict(r) for r in rows], fh, indent=2)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
