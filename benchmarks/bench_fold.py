"""The cost of exactness without wraparound (issue 21 section 1): the models of commit
f010992 (which folded every pending linear product, relying on int64 wrapping modulo 2^64,
and never folded in float64) next to this tree's (folds and whole-family sums only where the
build-time bound proves them), in the same run.

    python benchmarks/bench_fold.py            # gcd, fizzbuzz, bubble_sort: a few minutes
    python benchmarks/bench_fold.py --steps 2000 --programs gcd

The old models are compiled by f010992's own code: the commit is checked out with `git worktree
add --detach` into a temporary directory and its `compile_model` runs in a subprocess with
that code on `PYTHONPATH` (as `benchmarks/today_encoding.py` does), writing the models to the
temporary directory; nothing old is copied into the tree. Both models of a pair are then
loaded here into the same onnxruntime (`OnnxModel(model, threads=1)`) and run on the inputs
of the example's `default` run (`examples/expected.py`) for its first `--steps` steps (fewer
if it ends sooner), at batch 1 and batch 64 (64 copies, aggregate rate), alternating old and
new, best of `--runs`. The final states of old and new must agree exactly (else "MISMATCH",
exit status 1). Reported per model: ONNX ops per step (Loop body nodes / unroll, local
functions expanded) and steps per second (the steps the run made over the best time). The
sparse and dense encodings emit the very graphs they emitted before (only the proof was
added), which the script checks instead of timing them.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread for numpy, before it is imported

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import onnx  # noqa: E402

from mlpc.compiler.driver import load_program, machine_config  # noqa: E402
from mlpc.compiler.export_onnx import ExportOptions  # noqa: E402
from mlpc.compiler.model import compile_model  # noqa: E402
from mlpc.compiler.options import CompileOptions  # noqa: E402
from mlpc.runtime.onnx_model import OnnxModel  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import load_expected  # noqa: E402
from today_encoding import importable_package, loop_body_nodes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OLD_COMMIT = "f010992"
ENCODINGS = (("families", "int64"), ("families", "float64"))
SAME = (("sparse", "int64"), ("dense", "int64"))  # unchanged: their graphs are compared

# run by the old code in a subprocess: argv = program, weights, dtype, output path
OLD_COMPILE = """
import sys
from mlpc.compiler.driver import CompileOptions, compile_model, load_program, machine_config
from mlpc.compiler.export_onnx import ExportOptions
import mlpc.compiler.driver as d
path, weights, dtype, out, specialise = sys.argv[1:]
program = load_program([path], CompileOptions())
model = compile_model(program.image, machine_config(program.image),
                      ExportOptions(weights=weights, dtype=dtype), specialise=specialise == "1")
open(out, "wb").write(model.SerializeToString())
print(d.__file__)
"""


class OldCode:
    """f010992 checked out in a temporary directory, its package importable from there."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="mlpc-fold-"))
        self.worktree = self.tmp / "worktree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                        str(self.worktree), OLD_COMMIT], check=True)
        importable_package(self.worktree, self.tmp / "pkg")

    def compile(self, path: str, weights: str, dtype: str, specialise: bool = False) -> bytes:
        """The old `compile_model` of `path` (`--specialise` with `specialise`)."""
        out = self.tmp / f"{Path(path).stem}-{weights}-{dtype}-{int(specialise)}.onnx"
        env = dict(os.environ, PYTHONPATH=str(self.tmp / "pkg"), PYTHONDONTWRITEBYTECODE="1")
        done = subprocess.run([sys.executable, "-c", OLD_COMPILE, path, weights, dtype,
                               str(out), str(int(specialise))], check=True, env=env, cwd=self.tmp,
                              capture_output=True, text=True)
        where = Path(done.stdout.strip()).resolve()
        if self.worktree.resolve() not in where.parents:
            raise RuntimeError(f"the old compiler ran from {where}, not from {OLD_COMMIT}")
        return out.read_bytes()

    def close(self) -> None:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                        str(self.worktree)], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


AROUND_THE_LOOP = ("encode", "readout", "decode")  # (issue 21 section 2 changed these)
_COUNTER = re.compile(r"#\d+$")  # the exporter's running number, shifted by what comes first


def graph_bytes(data: bytes) -> bytes:
    """A model's step: the Loop's body, the local functions it calls and the weights they
    read, with the exporter's running numbers taken out of the names and the doc strings
    cleared (the metadata, which now holds the proof's summary, and the functions around
    the Loop are left out)."""
    model = onnx.load_from_string(data)
    loop = next(n for n in model.graph.node if n.op_type == "Loop")
    body = next(a.g for a in loop.attribute if a.name == "body")
    functions = sorted((f for f in model.functions if f.name not in AROUND_THE_LOOP),
                       key=lambda f: f.name)
    used: set[str] = set()
    for function in functions:  # a layer's parameters are named after the weights it reads
        function.input[:] = [_COUNTER.sub("", n) for n in function.input]
    for graph in (body, *functions):
        graph.doc_string = ""  # the words about a layer, not what it computes
        for node in graph.node:
            node.doc_string = ""
            node.name = _COUNTER.sub("", node.name)
            used.update(node.input)
            for names in (node.input, node.output):
                names[:] = [_COUNTER.sub("", n) for n in names]
    weights = []
    for init in sorted((t for t in model.graph.initializer if t.name in used),
                       key=lambda t: _COUNTER.sub("", t.name)):
        init.name = _COUNTER.sub("", init.name)
        weights.append(init.SerializeToString())
    return b"".join([body.SerializeToString(), *(f.SerializeToString() for f in functions),
                     *weights])


def ops_per_step(data: bytes) -> float:
    model = onnx.load_from_string(data)
    unroll = int({p.key: p.value for p in model.metadata_props}["unroll"])
    return round(loop_body_nodes(model) / unroll, 2)


def measure(models: dict[str, bytes], inputs: dict[str, list[int]], tape: tuple[int, ...],
            steps: int, runs: int) -> tuple[dict[str, dict[str, Any]], bool]:
    """Steps/s of each model at batch 1 and 64 (alternating, best of `runs`) and whether
    their final states agree."""
    sessions = {k: OnnxModel(v, threads=1) for k, v in models.items()}
    out: dict[str, dict[str, Any]] = {k: {"ops_per_step": ops_per_step(v)}
                                      for k, v in models.items()}
    same = True
    for batch in (1, 64):
        best = dict.fromkeys(sessions, float("inf"))
        finals: dict[str, tuple[list[int], list[int], list[list[int]]]] = {}
        for s in sessions.values():  # warm-up
            s.run(inputs, tapes=[tape] * batch, max_steps=8, chunk=1 << 30)
        for _ in range(runs):
            for k, s in sessions.items():
                t = time.perf_counter()
                res = s.run(inputs, tapes=[tape] * batch, max_steps=steps, chunk=1 << 30)
                best[k] = min(best[k], time.perf_counter() - t)
                finals[k] = (res.status.tolist(), res.steps.tolist(), res.memory.tolist())
        same &= len({json.dumps(f) for f in finals.values()}) == 1
        for k in sessions:  # the steps run (a program may halt within the window)
            out[k][f"batch{batch}_steps_per_s"] = round(sum(finals[k][1]) / best[k], 1)
        out["steps_run"] = {"per_item": finals["new"][1][0]}
    return out, same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", nargs="+", default=["gcd", "fizzbuzz", "bubble_sort"])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fold.json"))
    args = parser.parse_args(argv)
    runs = {e.name: e.default for e in load_expected().EXAMPLES}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # remove the worktree on kill
    old = OldCode()
    rows: list[dict[str, Any]] = []
    ok = True
    try:
        for name in args.programs:
            path = str(ROOT / "examples" / f"{name}.tl")
            program = load_program([path], CompileOptions())
            cfg = machine_config(program.image)
            run = runs[name]
            inputs = {k: [v] for k, v in run.inputs}
            for weights, dtype in SAME:
                if weights == "dense" and cfg.memory > 804:
                    continue  # refused: more than 2^25 weights
                new = compile_model(program.image, cfg, ExportOptions(weights=weights))
                same = graph_bytes(old.compile(path, weights, dtype)) == graph_bytes(
                    new.SerializeToString())
                ok &= same
                print(f"{name:12} {weights:8} {dtype:7} the same step as {OLD_COMMIT}: "
                      f"{'yes' if same else 'NO (MISMATCH)'}", flush=True)
            for weights, dtype in ENCODINGS:
                new = compile_model(program.image, cfg, ExportOptions(weights=weights,
                                                                      dtype=dtype))
                models = {"old": old.compile(path, weights, dtype),
                          "new": new.SerializeToString()}
                result, same = measure(models, inputs, run.tape_words, args.steps, args.runs)
                ok &= same
                steps_run = result.pop("steps_run")["per_item"]
                row = {"program": name, "weights": weights, "dtype": dtype,
                       "steps_run": steps_run, **{
                           f"{k}_{m}": v for k, r in result.items() for m, v in r.items()}}
                rows.append(row)
                print(f"{name:12} {weights:8} {dtype:7} {steps_run:5} steps, ops/step "
                      f"{row['old_ops_per_step']:6} -> "
                      f"{row['new_ops_per_step']:6}   steps/s b1 {row['old_batch1_steps_per_s']:9}"
                      f" -> {row['new_batch1_steps_per_s']:9}   b64 "
                      f"{row['old_batch64_steps_per_s']:9} -> {row['new_batch64_steps_per_s']:9}"
                      + ("" if same else "   MISMATCH"), flush=True)
    finally:
        old.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"old_commit": OLD_COMMIT, "steps": args.steps,
                                          "runs": args.runs, "rows": rows}, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
