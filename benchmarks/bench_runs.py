"""Straight-line runs (many SUBLEQ steps per iteration of a `--specialise` network) against
one step per iteration, in one run.

    python benchmarks/bench_runs.py            # every example
    python benchmarks/bench_runs.py --quick    # gcd and fizzbuzz
    python benchmarks/bench_runs.py --readme   # the README's table from the results

For each example program (`examples/*.tl` on its header's `mlpc run` inputs, the `default`
run of `examples/expected.py`), three models are compiled with the default encoding
(families, int64) and measured on one onnxruntime thread:

- `universal`: the universal network, one step per iteration;
- `one step`: the specialised network of one step per iteration
  (`compile_model(..., runs=False)`, what `--specialise` compiled before the runs);
- `runs`: the specialised network that executes a straight-line run per iteration where one
  starts (what `--specialise` compiles now);
- `f010992`: the specialised network of commit f010992 (one step per iteration, before the
  proven folds), the issue's baseline, compiled by that commit's own code in a temporary
  worktree (`bench_fold.OldCode`; the commit lowers every example to the same image) and
  run by this tree's `OnnxModel` (`--no-old` leaves it out).

Measured: the iterations of the whole header run (the model's `iterations` output) and so
SUBLEQ steps per iteration; ONNX ops per iteration; steps per second at batch 1 and at
batch 64 (a window of the first steps sized to about --target-seconds, best of --runs, each
window's final state checked against the reference interpreter: a mismatch is printed and
makes the command exit with status 1); and the network time of the whole header run on the
`runs` model (one `OnnxModel.run` call, session built beforehand).

Writes `benchmarks/results/runs.json` (`--out`).
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

import onnx  # noqa: E402
import onnxruntime  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fold import OLD_COMMIT, OldCode  # noqa: E402
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

from mlpc.compiler.driver import load_program, machine_config  # noqa: E402
from mlpc.compiler.machine_config import MachineConfig  # noqa: E402
from mlpc.compiler.model import compile_model  # noqa: E402
from mlpc.compiler.options import CompileOptions  # noqa: E402
from mlpc.runtime.onnx_model import OnnxModel  # noqa: E402
from mlpc.runtime.request import RunRequest, prepared_image  # noqa: E402

HERE = Path(__file__).resolve().parent
QUICK = ("gcd", "fizzbuzz")
FORMS = {"universal": {"specialise": False}, "one_step": {"specialise": True, "runs": False},
         "runs": {"specialise": True}}
BATCHES = (1, 64)


def measure(work: Workload, timing: Timing, mismatches: Mismatches, old: OldCode | None
            ) -> dict[str, Any]:
    program = load_program(list(work.paths), CompileOptions())
    image = program.image
    cfg = machine_config(image)
    words = prepared_image(RunRequest(program, cfg, work.tape, work.inputs, BUDGET))
    steps = reference_state(cfg, words, work.tape, BUDGET).steps
    row: dict[str, Any] = {"program": work.name, "memory_words": cfg.memory, "steps": steps}
    feeds = {name: [value] for name, value in work.inputs}
    for form, options in FORMS.items():
        model = compile_model(image, cfg, **options)
        meta = {p.key: p.value for p in model.metadata_props}
        session = OnnxModel(model.SerializeToString(), threads=1)
        out: dict[str, Any] = {
            "onnx_ops_per_iteration": round(loop_body_nodes(model) / int(meta["unroll"]), 2)}
        if "runs" in meta:
            out["runs"] = json.loads(meta["runs"])["count"]
        started = time.perf_counter()
        whole = session.run(feeds, tapes=[work.tape], max_steps=BUDGET)
        out["header_run_seconds"] = round(time.perf_counter() - started, 4)
        out["iterations"] = int(whole.iterations[0])
        out["steps_per_iteration"] = round(steps / out["iterations"], 3)
        out.update(batches(session, work, cfg, steps, words, f"{work.name} {form}", timing,
                           mismatches))
        row[form] = out
    if old is not None:
        data = old.compile(work.paths[0], "families", "int64", specialise=True)
        model = onnx.load_from_string(data)
        meta = {p.key: p.value for p in model.metadata_props}
        session = OnnxModel(data, threads=1)
        out = {"onnx_ops_per_iteration": round(loop_body_nodes(model) / int(meta["unroll"]),
                                               2)}
        out.update(batches(session, work, cfg, steps, words, f"{work.name} {OLD_COMMIT}",
                           timing, mismatches))
        row["f010992"] = out
    for batch in BATCHES:
        speed = {f: row[f][f"batch{batch}"]["steps_per_s"] for f in (*FORMS, "f010992")
                 if f in row}
        row[f"runs_vs_one_step_batch{batch}"] = round(speed["runs"] / speed["one_step"], 2)
        row[f"runs_vs_universal_batch{batch}"] = round(speed["runs"] / speed["universal"], 2)
        if "f010992" in speed:
            row[f"runs_vs_f010992_batch{batch}"] = round(speed["runs"] / speed["f010992"], 2)
    return row


def batches(session: OnnxModel, work: Workload, cfg: MachineConfig, steps: int,
            words: list[int], what: str, timing: Timing, mismatches: Mismatches
            ) -> dict[str, Any]:
    """Steps/s of a model at each batch size (a timed window of the first steps), each
    window's final state checked against the reference interpreter after as many steps."""
    out: dict[str, Any] = {}
    for batch in BATCHES:
        n, seconds, res = time_model(session, work, steps, timing, batch)
        check_state(mismatches, f"{what} batch {batch}",
                    reference_state(cfg, words, work.tape, n), n,
                    [int(s) for s in res.status], [int(s) for s in res.steps],
                    res.memory.tolist(), [list(t) for t in res.tapes])
        out[f"batch{batch}"] = {"window": n, "seconds": round(seconds, 4),
                                "steps_per_s": round(batch * n / seconds, 1)}
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    steps = sum(r["steps"] for r in rows)
    iterations = sum(r["runs"]["iterations"] for r in rows)
    return {
        "pooled_steps_per_iteration": round(steps / iterations, 3),
        "median_runs_vs_one_step_batch1": statistics.median(
            r["runs_vs_one_step_batch1"] for r in rows),
        "min_runs_vs_universal_batch1": min(r["runs_vs_universal_batch1"] for r in rows),
        "median_runs_vs_universal_batch1": statistics.median(
            r["runs_vs_universal_batch1"] for r in rows),
        "median_runs_vs_one_step_batch64": statistics.median(
            r["runs_vs_one_step_batch64"] for r in rows),
        "max_header_run_seconds": max(r["runs"]["header_run_seconds"] for r in rows),
    } | ({f"median_runs_vs_f010992_batch{b}": statistics.median(
        r[f"runs_vs_f010992_batch{b}"] for r in rows) for b in BATCHES}
         if all("f010992" in r for r in rows) else {})


def table(rows: list[dict[str, Any]]) -> list[str]:
    old = all("f010992" in r for r in rows)
    lines = ["| program | steps | iterations | steps per iteration | ops per iteration 1 → runs "
             "| steps/s batch 1: universal, one step → runs | steps/s batch 64: one step → "
             "runs |" + (f" runs vs {OLD_COMMIT}: batch 1, 64 |" if old else "")
             + " header run |",
             "|---|---|---|---|---|---|---|" + ("---|" if old else "") + "---|"]
    for r in rows:
        u, o, s = r["universal"], r["one_step"], r["runs"]
        lines.append(
            f"| {r['program']} | {r['steps']:,} | {s['iterations']:,} "
            f"| {s['steps_per_iteration']:.2f} "
            f"| {o['onnx_ops_per_iteration']:.1f} → {s['onnx_ops_per_iteration']:.1f} "
            f"| {u['batch1']['steps_per_s']:,.0f}, {o['batch1']['steps_per_s']:,.0f} → "
            f"{s['batch1']['steps_per_s']:,.0f} ({r['runs_vs_one_step_batch1']:.2f}x, "
            f"{r['runs_vs_universal_batch1']:.2f}x universal) "
            f"| {o['batch64']['steps_per_s']:,.0f} → {s['batch64']['steps_per_s']:,.0f} "
            f"({r['runs_vs_one_step_batch64']:.2f}x) "
            + (f"| {r['runs_vs_f010992_batch1']:.2f}x, {r['runs_vs_f010992_batch64']:.2f}x "
               if old else "")
            + f"| {s['header_run_seconds']:.2f} s |")
    return lines


def readme_table(result: dict[str, Any]) -> str:
    """The README's table (`--readme`): a test checks that the README shows exactly this."""
    med = result["summary"]
    load = result.get("load_average_start") or [0.0]
    lines = table(result["rows"])
    lines += ["", f"Pooled over the examples: {med['pooled_steps_per_iteration']:.2f} SUBLEQ "
              f"steps per iteration. Medians: {med['median_runs_vs_one_step_batch1']:.2f}x "
              f"the steps/s of one step per iteration at batch 1 and "
              f"{med['median_runs_vs_one_step_batch64']:.2f}x at batch 64; "
              f"{med['median_runs_vs_universal_batch1']:.2f}x the universal network's at "
              f"batch 1 (at least {med['min_runs_vs_universal_batch1']:.2f}x); the longest "
              f"header run takes {med['max_header_run_seconds']:.2f} s in the network. "
              + (f"Against the specialised network of {OLD_COMMIT} (one step per iteration, "
                 f"the issue's baseline): {med['median_runs_vs_f010992_batch1']:.2f}x at "
                 f"batch 1 and {med['median_runs_vs_f010992_batch64']:.2f}x at batch 64 "
                 "(medians). " if "median_runs_vs_f010992_batch1" in med else "")
              + f"Measured {result['date'][:10]} on a {result['cpus']}-core "
              f"{result['machine']} machine (load average {load[0]:.1f} at the start), "
              f"onnxruntime {result['onnxruntime']}, 1 thread, code at "
              f"{result['code_start']['head'][:7]}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true",
                        help="print the README's table from the results file (--out) and exit")
    parser.add_argument("--quick", action="store_true", help=f"only {' and '.join(QUICK)}")
    parser.add_argument("--target-seconds", type=float, default=0.3, metavar="S")
    parser.add_argument("--runs", type=int, default=2, help="best of this many timed runs")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "runs.json")
    parser.add_argument("--no-old", action="store_true",
                        help=f"leave out the specialised network of {OLD_COMMIT}")
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
    rows = []
    old = None if args.no_old else OldCode()
    try:
        for work in examples:
            rows.append(measure(work, timing, mismatches, old))
            print(table(rows[-1:])[-1], flush=True)
    finally:
        if old is not None:
            old.close()
    result: dict[str, Any] = {"rows": rows, "summary": summary(rows)}
    result.update({
        "command": "python benchmarks/bench_runs.py" + " ".join([""] + (argv or sys.argv[1:])),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_average_start": load_start, "load_average_end": list(os.getloadavg()),
        "onnxruntime": onnxruntime.__version__, "code_start": code_start,
        "seconds": round(time.perf_counter() - started, 1),
        "mismatches": mismatches.items,
    })
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(readme_table(result))
    return 1 if mismatches.items else 0


if __name__ == "__main__":
    sys.exit(main())
