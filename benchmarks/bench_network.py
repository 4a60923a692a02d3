"""Network benchmark: size of the step network and its speed next to the reference
interpreter, measured in the same run.

    python benchmarks/bench_network.py            # hello, self+hello, beer
    python benchmarks/bench_network.py --quick    # hello and self+hello only

Prints a table and writes benchmarks/results/network.json. Speeds are SUBLEQ steps per
second; ratios are engine / reference interpreter on the same program. onnxruntime runs on
one thread (intra- and inter-op) unless --threads says otherwise; batch 64 runs 64 copies of
the program in one session and reports the aggregate rate.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import onnxruntime

from mlpc.compiler.assembler import load_image
from mlpc.compiler.codegen import build_step_network, encode_state
from mlpc.compiler.driver import machine_config
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.machine_config import DEFAULT_TAPE_IN, MachineConfig
from mlpc.compiler.model import compile_model
from mlpc.compiler.sparse import lower_to_sparse
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state
from mlpc.runtime.numpy_exec import NumpyExecutor
from mlpc.runtime.onnx_model import OnnxModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import best_time  # noqa: E402  (benchmarks/run.py, the benchmark suite)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "subleq-corpus"


def sizes(memories: list[int]) -> list[dict]:
    """Size of the step for each memory size: ReLU layers, units per memory word, elements
    computed per step (every family unit and scalar that is not a pass-through), and the
    lowered sparse form's widest layer and non-zero weights."""
    rows = []
    for m in memories:
        assert m != DEFAULT_TAPE_IN, "units per word are told from tape units by their length"
        t = time.perf_counter()
        net = build_step_network(MachineConfig(memory=m)).network
        sparse = lower_to_sparse(net)
        per_word = [d for s in net.spaces if s.relu for d in s.families if d.length == m]
        elements = sum(d.length or 1 for s in net.spaces for d in s.definitions()
                       if not d.passthrough)
        rows.append({
            "memory": m,
            "relu_layers": net.relu_layers,
            "units_per_word": sum(1 for d in per_word if not d.passthrough),
            "units_per_word_with_passthrough": len(per_word),
            "elements_per_step": elements,
            "elements_per_word": round(elements / m, 1),
            "widths": [layer.width for layer in sparse.layers],
            "max_width": max(layer.width for layer in sparse.layers),
            "nonzeros": sparse.nnz,
            "nonzeros_per_word": round(sparse.nnz / m, 1),
            "float64_max_partial_sum_log2": round(math.log2(net.max_magnitude()), 2),
            "build_seconds": round(time.perf_counter() - t, 2),
        })
    return rows


README_MEMORIES = [512, 1024, 4096, 65536]


def sizes_table(rows: list[dict]) -> str:
    """The README's size table (a test checks the README shows exactly this)."""
    lines = ["| m | ReLU layers | units per memory word | elements computed per step | "
             "per memory word | sparse form: widest layer | non-zero weights | per word |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['memory']:,} | {r['relu_layers']} | {r['units_per_word']} | "
                     f"{r['elements_per_step']:,} | {r['elements_per_word']} | "
                     f"{r['max_width']:,} | {r['nonzeros']:,} | {r['nonzeros_per_word']} |")
    return "\n".join(lines)


def timed(fn, min_seconds: float = 0.5) -> float:
    """Best-of-runs wall time of fn() (repeats until min_seconds have passed)."""
    return best_time(fn, min_seconds)


def speeds(names: list[str], unroll: int, threads: int, window: int) -> dict:
    """Steps/s of every engine on one program. The reference interpreter runs the whole
    program; the network engines run its first `window` steps (batch 64: a quarter of that)
    after a check that onnxruntime reproduces the whole run exactly."""
    image = load_image([str(SHARED / n) for n in names])
    cfg = machine_config(image)
    state = reference.run(cfg, initial_state(cfg, image.words), 10**8)
    steps = state.steps
    ref_time = timed(lambda: reference.run(cfg, initial_state(cfg, image.words), 10**8))
    model = OnnxModel(compile_model(image, cfg, ExportOptions(unroll=unroll)), threads=threads)
    t = time.perf_counter()
    check = model.run(max_steps=steps + 1, chunk=1 << 30)
    whole = time.perf_counter() - t
    assert list(check.tapes[0]) == state.tape_out and int(check.steps[0]) == steps
    n1 = min(window, steps)
    one = timed(lambda: model.run(max_steps=n1, chunk=1 << 30), min_seconds=0.2)
    n64 = max(min(window // 4, steps), 1)
    b64 = timed(lambda: model.run(tapes=[()] * 64, max_steps=n64, chunk=1 << 30),
                min_seconds=0.2)
    step_net = build_step_network(cfg)
    ex = NumpyExecutor(step_net.network)
    x = encode_state(step_net.layout, initial_state(cfg, image.words).memory, (), 10**8)[None]
    t = time.perf_counter()
    for _ in range(n1):
        x = ex.step(x)
    np_rate = n1 / (time.perf_counter() - t)
    ref_rate = steps / ref_time
    res = {
        "program": "+".join(names),
        "memory": cfg.memory,
        "steps": steps,
        "onnx_whole_run_seconds": round(whole, 2),
        "reference_steps_per_s": round(ref_rate),
        "onnx_batch1_steps_per_s": round(n1 / one),
        "onnx_batch64_aggregate_steps_per_s": round(64 * n64 / b64),
        "numpy_steps_per_s": round(np_rate),
    }
    for key in ("onnx_batch1", "onnx_batch64_aggregate", "numpy"):
        res[f"{key}_ratio"] = f"1/{ref_rate / res[f'{key}_steps_per_s']:.0f}"
    return res


def unroll_sweep(values: list[int], threads: int) -> list[dict]:
    image = load_image([str(SHARED / "self.dec"), str(SHARED / "hello.dec")])
    cfg = machine_config(image)
    rows = []
    for k in values:
        model = OnnxModel(compile_model(image, cfg, ExportOptions(unroll=k)), threads=threads)
        dt = timed(lambda m=model: m.run(max_steps=400, chunk=1 << 30), min_seconds=0.1)
        rows.append({"unroll": k, "steps_per_s": round(400 / dt)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--unroll", type=int, default=ExportOptions.unroll)
    args = ap.parse_args()
    if not (SHARED / "hello.dec").is_file():
        print(f"shared corpus not found at {SHARED}", file=sys.stderr)
        return 1
    programs = [["hello.dec"], ["self.dec", "hello.dec"]]
    if not args.quick:
        programs.append(["beer.dec"])
    result = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "threads": args.threads,
        "unroll": args.unroll,
        "sizes": sizes([512, 1024] if args.quick else README_MEMORIES),
        "speeds": [speeds(p, args.unroll, args.threads, 200 if args.quick else 800)
                   for p in programs],
        "unroll_sweep": unroll_sweep([1, 4, 8, 16] if not args.quick else [1, 8],
                                     args.threads),
    }
    print(f"{'m':>6} {'relu':>5} {'units/word':>10} {'elements':>10} {'per word':>9} "
          f"{'sparse nnz':>11} {'per word':>9} {'f64 bound':>9}")
    for r in result["sizes"]:
        print(f"{r['memory']:>6} {r['relu_layers']:>5} {r['units_per_word']:>10} "
              f"{r['elements_per_step']:>10,} {r['elements_per_word']:>9} "
              f"{r['nonzeros']:>11,} {r['nonzeros_per_word']:>9} "
              f"2^{r['float64_max_partial_sum_log2']:>6}")
    print()
    print(f"{'program':<18} {'m':>5} {'steps':>7} {'reference':>10} {'onnx b1':>9} "
          f"{'ratio':>7} {'onnx b64':>9} {'ratio':>7} {'numpy':>7} {'ratio':>7}")
    for r in result["speeds"]:
        print(f"{r['program']:<18} {r['memory']:>5} {r['steps']:>7} "
              f"{r['reference_steps_per_s']:>10,} {r['onnx_batch1_steps_per_s']:>9,} "
              f"{r['onnx_batch1_ratio']:>7} {r['onnx_batch64_aggregate_steps_per_s']:>9,} "
              f"{r['onnx_batch64_aggregate_ratio']:>7} {r['numpy_steps_per_s']:>7,} "
              f"{r['numpy_ratio']:>7}")
    print()
    print("unroll K:", ", ".join(f"K={r['unroll']}: {r['steps_per_s']:,} steps/s"
                                 for r in result["unroll_sweep"]))
    out = ROOT / "benchmarks" / "results" / "network.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
