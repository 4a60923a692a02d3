"""Specialised networks (`--specialise`) next to the universal network, in one run.

    python benchmarks/bench_specialise.py            # every example, at its memory and 4,096
    python benchmarks/bench_specialise.py --quick    # gcd and fizzbuzz
    python benchmarks/bench_specialise.py --readme   # the README's table from the results

For each example program (`examples/*.tl` on its header's `mlpc run` inputs, the `default`
run of `examples/expected.py`), in its default memory and in a memory of 4,096 words, both
networks are compiled with the default encoding (families, int64) and measured on one
onnxruntime thread:

- sizes: the state's width, the elements computed per step (units of every definition that
  is not a pass-through), the non-zero weights of the sparse form, ONNX ops per step (Loop
  body nodes / unroll);
- speed: SUBLEQ steps per second at batch 1 and at batch 64 (64 runs of the program at
  once, as a user who runs one program many times would: steps of all items per second), a
  window of the first steps sized to about --target-seconds, best of --runs (the helpers of
  `benchmarks/run.py`), each window's final state (status, steps, memory, output tape) of
  every item checked against the reference interpreter; a mismatch is printed ("MISMATCH")
  and makes the command exit with status 1.

Ratios are universal / specialised for sizes and specialised / universal for speed, from
the same run. Writes `benchmarks/results/specialise.json` (`--out`).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import onnxruntime  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402
    BUDGET,
    Mismatches,
    Timing,
    Workload,
    check_state,
    code_state,
    reference_state,
    time_model,
    workloads,
)
from today_encoding import loop_body_nodes  # noqa: E402

from mlpc.compiler.codegen import build_step_network  # noqa: E402
from mlpc.compiler.driver import load_program, machine_config  # noqa: E402
from mlpc.compiler.model import compile_model, network_sizes, read_only_of  # noqa: E402
from mlpc.compiler.options import CompileOptions  # noqa: E402
from mlpc.runtime.onnx_model import OnnxModel  # noqa: E402
from mlpc.runtime.request import RunRequest, prepared_image  # noqa: E402

HERE = Path(__file__).resolve().parent
QUICK = ("gcd", "fizzbuzz")
LARGE_MEMORY = 4096
FORMS = ("universal", "specialised")
BATCHES = (1, 64)


def measure_form(work: Workload, image: Any, cfg: Any, words: list[int], steps: int,
                 specialise: bool, timing: Timing, mismatches: Mismatches) -> dict[str, Any]:
    form = FORMS[specialise]
    model = compile_model(image, cfg, specialise=specialise)
    unroll = int({p.key: p.value for p in model.metadata_props}["unroll"])
    read_only = read_only_of(image, cfg) if specialise else None
    out: dict[str, Any] = network_sizes(build_step_network(cfg, read_only).network)
    out["onnx_ops_per_step"] = round(loop_body_nodes(model) / unroll, 2)
    session = OnnxModel(model.SerializeToString(), threads=1)
    for batch in BATCHES:
        n, seconds, res = time_model(session, work, steps, timing, batch)
        check_state(mismatches, f"{work.name} m={cfg.memory} {form} batch {batch}",
                    reference_state(cfg, words, work.tape, n), n, [int(s) for s in res.status],
                    [int(s) for s in res.steps], res.memory.tolist(),
                    [list(t) for t in res.tapes])
        out[f"batch{batch}"] = {"window": n, "seconds": round(seconds, 4),
                                "steps_per_s": round(batch * n / seconds, 1)}
    return out


def measure(work: Workload, memory: int | None, timing: Timing, mismatches: Mismatches
            ) -> dict[str, Any]:
    program = load_program(list(work.paths), CompileOptions())
    image = program.image
    cfg = machine_config(image, memory=memory)
    words = prepared_image(RunRequest(program, cfg, work.tape, work.inputs, BUDGET))
    steps = reference_state(cfg, words, work.tape, BUDGET).steps
    row: dict[str, Any] = {"program": work.name, "memory_words": cfg.memory, "steps": steps,
                           "writable_words": len(read_only_of(image, cfg).writable)}
    for specialise in (False, True):
        row[FORMS[specialise]] = measure_form(work, image, cfg, words, steps, specialise,
                                              timing, mismatches)
    u, s = row["universal"], row["specialised"]
    row["elements_ratio"] = round(u["elements_per_step"] / s["elements_per_step"], 2)
    for batch in BATCHES:
        row[f"speed_ratio_batch{batch}"] = round(
            s[f"batch{batch}"]["steps_per_s"] / u[f"batch{batch}"]["steps_per_s"], 2)
    return row


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| program | memory | writable words | state u → s | elements per step u → s "
             "| ops per step u → s | steps/s batch 1 u → s | steps/s batch 64 u → s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        u, s = r["universal"], r["specialised"]
        speeds = [f"{u[f'batch{b}']['steps_per_s']:,.0f} → {s[f'batch{b}']['steps_per_s']:,.0f} "
                  f"({r[f'speed_ratio_batch{b}']:.2f}x)" for b in BATCHES]
        lines.append(
            f"| {r['program']} | {r['memory_words']:,} | {r['writable_words']:,} "
            f"| {u['state']:,} → {s['state']:,} "
            f"| {u['elements_per_step']:,} → {s['elements_per_step']:,} "
            f"({r['elements_ratio']:.1f}x fewer) "
            f"| {u['onnx_ops_per_step']:.1f} → {s['onnx_ops_per_step']:.1f} "
            f"| {speeds[0]} | {speeds[1]} |")
    return lines


def summary(result: dict[str, Any]) -> dict[str, float]:
    """Medians over the examples, per memory (default, 4,096)."""
    out = {}
    for name, rows in (("default", result["default_memory"]), ("4096", result["memory_4096"])):
        if rows:
            out[f"median_elements_ratio_{name}"] = statistics.median(
                r["elements_ratio"] for r in rows)
            for batch in BATCHES:
                out[f"median_speed_ratio_batch{batch}_{name}"] = statistics.median(
                    r[f"speed_ratio_batch{batch}"] for r in rows)
    return out


def readme_table(result: dict[str, Any]) -> str:
    """The README's table (`--readme`): a test checks that the README shows exactly this."""
    med = result["summary"]
    load = result.get("load_average_start") or [0.0]
    lines = table(result["default_memory"])
    lines += ["", "In a memory of 4,096 words:", ""]
    lines += table(result["memory_4096"])
    lines += ["", f"Medians over the examples, in their default memories: "
              f"{med['median_elements_ratio_default']:.1f}x fewer elements per step, "
              f"{med['median_speed_ratio_batch1_default']:.2f}x the steps/s at batch 1 and "
              f"{med['median_speed_ratio_batch64_default']:.2f}x at batch 64; at 4,096 words "
              f"{med['median_elements_ratio_4096']:.1f}x, "
              f"{med['median_speed_ratio_batch1_4096']:.2f}x and "
              f"{med['median_speed_ratio_batch64_4096']:.2f}x. Measured "
              f"{result['date'][:10]} on a {result['cpus']}-core {result['machine']} machine "
              f"(load average {load[0]:.1f} at the start), onnxruntime "
              f"{result['onnxruntime']}, 1 thread, code at "
              f"{result['code_start']['head'][:7]}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true",
                        help="print the README's table from the results file (--out) and exit")
    parser.add_argument("--quick", action="store_true", help=f"only {' and '.join(QUICK)}")
    parser.add_argument("--target-seconds", type=float, default=0.3, metavar="S")
    parser.add_argument("--runs", type=int, default=2, help="best of this many timed runs")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "specialise.json")
    args = parser.parse_args(argv)
    if args.readme:
        print(readme_table(json.loads(args.out.read_text())))
        return 0
    timing = Timing(args.target_seconds, max(args.runs, 1))
    examples = [w for w in workloads(False)[0] if w.paths[0].endswith(".tl")]
    if args.quick:
        examples = [w for w in examples if w.name in QUICK]
    mismatches = Mismatches()
    load_start = list(os.getloadavg())
    code_start = code_state()
    started = time.perf_counter()
    result: dict[str, Any] = {"default_memory": [], "memory_4096": []}
    for key, memory in (("default_memory", None), ("memory_4096", LARGE_MEMORY)):
        for work in examples:
            result[key].append(measure(work, memory, timing, mismatches))
            print(table(result[key][-1:])[-1], flush=True)
    result["summary"] = summary(result)
    result.update({
        "command": "python benchmarks/bench_specialise.py" + " ".join(
            [""] + (argv or sys.argv[1:])),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_average_start": load_start, "load_average_end": list(os.getloadavg()),
        "onnxruntime": onnxruntime.__version__, "code_start": code_start,
        "seconds": round(time.perf_counter() - started, 1),
        "mismatches": mismatches.items,
    })
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("\n" + readme_table(result))
    if mismatches.items:
        print(f"{len(mismatches.items)} MISMATCH(ES)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
