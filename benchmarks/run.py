"""The benchmark: every example program and the public SUBLEQ corpus, compiled and run on
every machine-level engine, in one command.

    python benchmarks/run.py            # all 17 programs: 13 minutes on 2 busy cores
    python benchmarks/run.py --quick    # 6 programs, shorter windows: 28 s of CPU time

For each program (the `examples/*.tl` on their default inputs from `examples/expected.py`,
then `hello.dec`, `hi.dec`, `beer.dec` and `self.dec hello.dec` from
`../shared/subleq-corpus`, left out with a message when that directory is absent; set
`$MLPC_SHARED` to point elsewhere) it measures:

- the SUBLEQ program: steps of the whole run, image size, memory size (words);
- the network: compile time (lowering a .tl program plus building the ONNX model), ONNX file
  size, ReLU layers per SUBLEQ step, non-zero weights;
- speed in SUBLEQ steps per second, each engine on the same program in the same run:
  the reference interpreter (the whole run, best of several), the numpy engine, onnxruntime
  at batch 1, and onnxruntime at batch 64 (aggregate: 64 copies of the run in one call),
  onnxruntime on one thread (intra- and inter-op) and numpy's BLAS pinned to one thread.
  The network engines time a window of the first steps only (default 300; batch 64: 60;
  `--quick`: 100 and 20), since whole runs would take minutes; each window's final memory
  and output are checked against the reference interpreter after as many steps;
- the network engines' speed as a fraction of the reference interpreter's.

Prints a table and writes `benchmarks/results/run.json` (`--out` to change).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread for numpy, before it is imported

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402

from mlpc.compiler.codegen import build_step_network, encode_state  # noqa: E402
from mlpc.compiler.driver import (  # noqa: E402
    CompileOptions,
    LoadedProgram,
    compile_model,
    load_program,
    machine_config,
)
from mlpc.compiler.export_onnx import ExportOptions  # noqa: E402
from mlpc.runtime import reference  # noqa: E402
from mlpc.runtime.engines import RunRequest, prepared_image  # noqa: E402
from mlpc.runtime.machine import MachineConfig, Status, initial_state  # noqa: E402
from mlpc.runtime.numpy_exec import NumpyExecutor  # noqa: E402
from mlpc.runtime.onnx_engine import OnnxModel  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLES = REPO / "examples"
CORPUS_PROGRAMS = (("hello.dec",), ("hi.dec",), ("beer.dec",), ("self.dec", "hello.dec"))
QUICK_EXAMPLES = ("gcd", "fib_rec", "sieve", "brainfuck")
QUICK_CORPUS = (("hello.dec",), ("self.dec", "hello.dec"))
BUDGET = 10**8


@dataclass(frozen=True)
class Workload:
    name: str
    paths: tuple[str, ...]
    inputs: tuple[tuple[str, int], ...] = ()
    tape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Windows:
    batch1: int  # steps timed on numpy and onnxruntime at batch 1
    batch64: int  # steps timed on onnxruntime at batch 64
    min_seconds: float  # repeat each timing until this much time has passed (best counts)


def shared_root() -> Path:
    env = os.environ.get("MLPC_SHARED")
    return Path(env).expanduser() if env else REPO.parent / "shared"


def load_expected() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mlpc_examples_expected",
                                                  EXAMPLES / "expected.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def workloads(quick: bool) -> tuple[list[Workload], list[str]]:
    notes: list[str] = []
    found = []
    for example in load_expected().EXAMPLES:
        if quick and example.name not in QUICK_EXAMPLES:
            continue
        run = example.default
        found.append(Workload(example.name, (str(EXAMPLES / example.file),), run.inputs,
                              run.tape_words))
    corpus = shared_root() / "subleq-corpus"
    if (corpus / "hello.dec").is_file():
        for names in QUICK_CORPUS if quick else CORPUS_PROGRAMS:
            found.append(Workload("+".join(names), tuple(str(corpus / n) for n in names)))
    else:
        notes.append(f"SUBLEQ corpus skipped: {corpus} not found (set MLPC_SHARED)")
    return found, notes


def best_time(fn: Callable[[], object], min_seconds: float, min_runs: int = 2) -> float:
    """The shortest wall time of fn() over runs repeated until min_seconds have passed."""
    best = float("inf")
    spent = 0.0
    runs = 0
    while spent < min_seconds or runs < min_runs:
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best = min(best, dt)
        spent += dt
        runs += 1
    return best


def reference_state(cfg: MachineConfig, words: list[int], tape: tuple[int, ...],
                    steps: int) -> Any:
    return reference.run(cfg, initial_state(cfg, words, tape), steps)


def ratio(rate: float, ref_rate: float) -> str:
    """An engine's speed as a fraction of the reference interpreter's ("1/250")."""
    return f"1/{ref_rate / rate:,.0f}" if rate < ref_rate else f"{rate / ref_rate:.1f}x"


def measure(work: Workload, windows: Windows) -> dict[str, Any]:
    # compile: lowering (for .tl) and the ONNX model, timed together
    t0 = time.perf_counter()
    program: LoadedProgram = load_program(list(work.paths), CompileOptions())
    image = program.image
    cfg = machine_config(image)
    model = compile_model(image, cfg, ExportOptions())
    compile_seconds = time.perf_counter() - t0
    data = model.SerializeToString()
    meta = {p.key: p.value for p in model.metadata_props}
    request = RunRequest(program, cfg, work.tape, work.inputs, BUDGET)
    words = prepared_image(request)

    # the reference interpreter: the whole run
    whole = reference_state(cfg, words, work.tape, BUDGET)
    if whole.status != Status.HALTED:
        raise SystemExit(f"{work.name}: did not halt ({whole.status.name.lower()})")
    steps = whole.steps
    ref_seconds = best_time(lambda: reference_state(cfg, words, work.tape, BUDGET),
                            windows.min_seconds, min_runs=3)
    ref_rate = steps / ref_seconds

    n1 = min(windows.batch1, steps)
    n64 = min(windows.batch64, steps)
    expect1 = reference_state(cfg, words, work.tape, n1)
    expect64 = reference_state(cfg, words, work.tape, n64)

    # numpy: the same layers, one step at a time, for the window
    step_net = build_step_network(cfg)
    executor = NumpyExecutor(step_net.network)
    memory0 = initial_state(cfg, words, work.tape).memory
    x0 = encode_state(step_net.layout, memory0, work.tape, BUDGET)[None, :]

    def numpy_window() -> np.ndarray:
        x = x0
        for _ in range(n1):
            x = executor.step(x)
        return x

    x = numpy_window()
    got = (x[0, step_net.layout.memory] - (1 << (cfg.word_bits - 1))).tolist()
    if got != expect1.memory:
        raise SystemExit(f"{work.name}: numpy memory differs from the reference after {n1} steps")
    numpy_seconds = best_time(numpy_window, windows.min_seconds)

    # onnxruntime, one thread, batch 1 and batch 64
    session = OnnxModel(data, threads=1)
    feeds1 = {name: [value] for name, value in work.inputs}

    def onnx_window(batch: int, n: int) -> Any:
        return session.run(feeds1, tapes=[work.tape] * batch, max_steps=n, chunk=1 << 30)

    for batch, n, expect in ((1, n1, expect1), (64, n64, expect64)):
        out = onnx_window(batch, n)
        if (int(out.steps[-1]) != n or out.memory[-1].tolist() != expect.memory
                or list(out.tapes[-1]) != expect.tape_out):
            raise SystemExit(f"{work.name}: onnxruntime (batch {batch}) differs from the "
                             f"reference after {n} steps")
    onnx1_seconds = best_time(lambda: onnx_window(1, n1), windows.min_seconds)
    onnx64_seconds = best_time(lambda: onnx_window(64, n64), windows.min_seconds)

    numpy_rate = n1 / numpy_seconds
    onnx1_rate = n1 / onnx1_seconds
    onnx64_rate = 64 * n64 / onnx64_seconds
    return {
        "program": work.name,
        "files": [os.path.relpath(p, REPO) for p in work.paths],
        "inputs": dict(work.inputs),
        "tape_words": len(work.tape),
        "steps": steps,
        "image_words": len(image.words),
        "memory_words": cfg.memory,
        "compile_seconds": round(compile_seconds, 3),
        "onnx_bytes": len(data),
        "relu_layers_per_step": int(meta["relu_layers_per_step"]),
        "nonzero_weights": int(meta["nonzero_weights"]),
        "window_batch1": n1,
        "window_batch64": n64,
        "reference_steps_per_s": round(ref_rate),
        "numpy_steps_per_s": round(numpy_rate, 1),
        "onnx_batch1_steps_per_s": round(onnx1_rate, 1),
        "onnx_batch64_aggregate_steps_per_s": round(onnx64_rate, 1),
        "numpy_ratio": ratio(numpy_rate, ref_rate),
        "onnx_batch1_ratio": ratio(onnx1_rate, ref_rate),
        "onnx_batch64_aggregate_ratio": ratio(onnx64_rate, ref_rate),
        "numpy_fraction_of_reference": numpy_rate / ref_rate,
        "onnx_batch1_fraction_of_reference": onnx1_rate / ref_rate,
        "onnx_batch64_fraction_of_reference": onnx64_rate / ref_rate,
    }


HEADER = (f"{'program':<18} {'steps':>8} {'image':>6} {'memory':>6} {'compile':>8} "
          f"{'onnx KB':>8} {'relu':>4} {'non-zeros':>10} {'reference':>10} "
          f"{'numpy':>7} {'ratio':>9} {'onnx b1':>8} {'ratio':>9} {'onnx b64':>9} {'ratio':>8}")


def row_text(r: dict[str, Any]) -> str:
    return (f"{r['program']:<18} {r['steps']:>8,} {r['image_words']:>6,} "
            f"{r['memory_words']:>6,} {r['compile_seconds']:>7.2f}s "
            f"{r['onnx_bytes'] / 1024:>8,.0f} {r['relu_layers_per_step']:>4} "
            f"{r['nonzero_weights']:>10,} {r['reference_steps_per_s']:>10,} "
            f"{r['numpy_steps_per_s']:>7,.0f} {r['numpy_ratio']:>9} "
            f"{r['onnx_batch1_steps_per_s']:>8,.0f} {r['onnx_batch1_ratio']:>9} "
            f"{r['onnx_batch64_aggregate_steps_per_s']:>9,.0f} "
            f"{r['onnx_batch64_aggregate_ratio']:>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"only {', '.join(QUICK_EXAMPLES)} and two corpus programs, "
                        "shorter windows (under two minutes)")
    parser.add_argument("--window", type=int, default=None, metavar="STEPS",
                        help="steps timed on the network engines at batch 1 (default 300; "
                        "--quick: 100); batch 64 times a fifth of it")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "run.json")
    args = parser.parse_args(argv)

    window = args.window or (100 if args.quick else 300)
    windows = Windows(batch1=window, batch64=max(window // 5, 1),
                      min_seconds=0.2 if args.quick else 0.5)
    found, notes = workloads(args.quick)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    started = time.perf_counter()
    print("SUBLEQ steps per second; ratios are engine / reference interpreter, same run.")
    print(f"Network engines time the first {windows.batch1} steps (batch 64: "
          f"{windows.batch64}); onnxruntime and numpy on one thread.\n")
    print(HEADER, flush=True)
    rows = []
    for work in found:
        rows.append(measure(work, windows))
        print(row_text(rows[-1]), flush=True)
    elapsed = time.perf_counter() - started
    print(f"\n{len(rows)} programs in {elapsed:.0f} s")

    report = {
        "command": "python benchmarks/run.py" + (" --quick" if args.quick else "")
        + (f" --window {args.window}" if args.window else ""),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "threads": 1,
        "unroll": ExportOptions().unroll,
        "window_batch1": windows.batch1,
        "window_batch64": windows.batch64,
        "notes": notes,
        "seconds": round(elapsed, 1),
        "programs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {os.path.relpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
