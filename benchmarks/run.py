"""The benchmark: the new network (unit families) next to today's encoding (the model compiled
by commit b27085f) and the reference interpreter, on every example program and the public
SUBLEQ corpus, in one command.

    python benchmarks/run.py            # 16 programs: 3.6 minutes on 2 shared cores
    python benchmarks/run.py --quick    # hello.dec and fizzbuzz: 22 s

Programs: `beer.dec`, `examples/fizzbuzz.tl` (n=30), `self.dec hello.dec` and `hello.dec`
from `../shared/subleq-corpus` (`$MLPC_SHARED` to point elsewhere; left out with a message
when absent), then every `examples/*.tl` on the inputs of its header's `mlpc run` line (the
`default` run of `examples/expected.py`). For each it measures, in SUBLEQ steps per second:

- the reference interpreter (`mlpc.runtime.reference`), the whole run, best of 3;
- today's encoding: commit b27085f's `compile_model(image, config)` (sparse factors in
  GatherElements buckets) of the same image in the same memory, handed over as a `.dec` file
  with the inputs stored (today's compiler lowers `.tl` differently), run by its own
  `OnnxModel(model, threads=1)`, at batch 1 and batch 64. The old code is checked out with
  `git worktree add` into a temporary directory and run in a subprocess (see
  `benchmarks/today_encoding.py`); nothing old is copied into the tree;
- the new network in three encodings: `weights=families` with `dtype=int64` and `float64`,
  and `weights=sparse` int64 (the new network lowered to today's style of sparse factors),
  each on `OnnxModel(model, threads=1)` at batch 1 and batch 64.

Network engines time a window of the first steps (whole Loop iterations), sized so that one
run takes about --target-seconds, best of --runs after a warm-up; batch 64 runs 64 copies of
the same inputs and reports the aggregate rate (64 * steps / time). Each timed window's final
state (status, steps, memory, output tape) is checked against the reference interpreter after
as many steps, for every batch item; the new families/int64 model also runs the whole program
once and is checked against the whole reference run. A mismatch is printed at once
("MISMATCH") and makes the command exit with status 1.

Also reported: ratios new/today and new/reference (same run); the new network's ReLU units per
memory word (families of the ReLU spaces, computed ones and all of them with pass-throughs),
elements per step (`sum(d.length or 1)` over the non-pass-through definitions of all spaces),
and ONNX ops per step (Loop body nodes / unroll) of each encoding; for today's encoding its
ReLU units (widths of its ReLU layers), its elements per step (non-zeros of its sparse factors)
and ops per step; families/int64 on 1 thread vs all cores (threads=0) for fizzbuzz; and the
wall time of each example's header `mlpc run` line run through the installed `mlpc` script
(the bar: under 10 s for the default, onnx, engine on an idle 2-core machine).

Prints tables and writes `benchmarks/results/run.json` (`--out` to change).
"""

from __future__ import annotations

import os

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_PRESET_ENV = {var: os.environ.get(var) for var in _THREAD_VARS}
for _var in _THREAD_VARS:
    os.environ.setdefault(_var, "1")  # one thread for numpy, before it is imported

import argparse  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from today_encoding import (  # noqa: E402
    TODAY_COMMIT,
    TodayEncoding,
    best_time,
    loop_body_nodes,
    time_window,
)

from mlpc.compiler.codegen import build_step_network  # noqa: E402
from mlpc.compiler.driver import LoadedProgram, load_program, machine_config  # noqa: E402
from mlpc.compiler.encodings import ExportOptions  # noqa: E402
from mlpc.compiler.machine_config import MachineConfig, Status  # noqa: E402
from mlpc.compiler.model import compile_model  # noqa: E402
from mlpc.compiler.options import CompileOptions  # noqa: E402
from mlpc.runtime import reference  # noqa: E402
from mlpc.runtime.machine import initial_state  # noqa: E402
from mlpc.runtime.onnx_model import OnnxModel  # noqa: E402
from mlpc.runtime.request import RunRequest, prepared_image  # noqa: E402

# modules the code above imports lazily, imported now: the code measured is the code on disk
# when this starts (`code_start` in the report), even if the checkout is edited meanwhile
for _module in ("mlpc.compiler.sparse", "mlpc.compiler.parser", "mlpc.compiler.checker",
                "mlpc.compiler.lowering", "mlpc.compiler.assembler"):
    try:
        importlib.import_module(_module)
    except ImportError:
        pass

__all__ = ["best_time", "main"]  # best_time: imported from here by bench_network.py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLES = REPO / "examples"
HEADLINE = ("beer.dec", "fizzbuzz", "self.dec+hello.dec", "hello.dec", "hello.dec@4096")
CORPUS_PROGRAMS = (("beer.dec",), ("self.dec", "hello.dec"), ("hello.dec",))
QUICK_PROGRAMS = ("hello.dec", "fizzbuzz")
THREADS_PROGRAM = "fizzbuzz"
ENCODINGS = (("families", "int64"), ("families", "float64"), ("sparse", "int64"))
BUDGET = 10**8
CLI_BAR_SECONDS = 10.0


@dataclass(frozen=True)
class Workload:
    name: str
    paths: tuple[str, ...]
    inputs: tuple[tuple[str, int], ...] = ()
    tape: tuple[int, ...] = ()
    expected_out: tuple[int, ...] | None = None
    memory: int | None = None  # the program's default memory unless given


@dataclass(frozen=True)
class Timing:
    target_seconds: float  # one timed run of a network engine takes about this long
    runs: int  # best of this many timed runs


class Mismatches:
    """Disagreements between engines: printed at once, kept for the report and exit status."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        self.items.append(text)
        print(f"\n*** MISMATCH: {text}\n", file=sys.stderr, flush=True)


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
    """The headline programs first (HEADLINE order), then the other examples."""
    notes: list[str] = []
    found: dict[str, Workload] = {}
    for example in load_expected().EXAMPLES:
        run = example.default
        found[example.name] = Workload(example.name, (str(EXAMPLES / example.file),),
                                       run.inputs, run.tape_words, run.out_words)
    corpus = shared_root() / "subleq-corpus"
    if (corpus / "hello.dec").is_file():
        for names in CORPUS_PROGRAMS:
            found["+".join(names)] = Workload("+".join(names), tuple(str(corpus / n)
                                                                    for n in names))
        # the bar at m = 4,096: hello.dec in a memory of that size
        found["hello.dec@4096"] = Workload("hello.dec@4096", (str(corpus / "hello.dec"),),
                                           memory=4096)
    else:
        notes.append(f"SUBLEQ corpus skipped: {corpus} not found (set MLPC_SHARED)")
    order = [n for n in HEADLINE if n in found] + [n for n in found if n not in HEADLINE]
    if quick:
        order = [n for n in order if n in QUICK_PROGRAMS]
    return [found[n] for n in order], notes


def reference_state(cfg: MachineConfig, words: list[int], tape: tuple[int, ...],
                    steps: int) -> Any:
    return reference.run(cfg, initial_state(cfg, words, tape), steps)


def ratio(rate: float, base: float) -> str:
    """A speed as a fraction or multiple of another ("1/250", "6.3x")."""
    return f"1/{base / rate:,.0f}" if rate < base else f"{rate / base:.1f}x"


def check_state(mismatches: Mismatches, what: str, expect: Any, n: int, status: list[int],
                steps: list[int], memory: list[list[int]], tapes: list[list[int]]) -> None:
    """Every batch item's final state after a window of n steps against the reference's."""
    problems = []
    if any(s != n for s in steps):
        problems.append(f"steps {sorted(set(steps))} != {n}")
    if any(s != int(expect.status) for s in status):
        problems.append(f"status {sorted(set(status))} != {int(expect.status)}")
    bad = [i for i, m in enumerate(memory) if m != expect.memory]
    if bad:
        first = next(j for j, (a, b) in enumerate(zip(memory[bad[0]], expect.memory,
                                                       strict=True)) if a != b)
        problems.append(f"memory of {len(bad)} item(s) differs (item {bad[0]}, first at word "
                        f"{first}: {memory[bad[0]][first]} != {expect.memory[first]})")
    bad = [i for i, t in enumerate(tapes) if list(t) != list(expect.tape_out)]
    if bad:
        problems.append(f"output tape of {len(bad)} item(s) differs")
    if problems:
        mismatches.add(f"{what}: after {n} steps vs the reference: " + "; ".join(problems))


def new_network_stats(cfg: MachineConfig) -> dict[str, Any]:
    """Sizes of the new network's IR (the same for every encoding of it). Units per word: the
    families over the memory (length m) in the ReLU spaces; families over the input tape
    (length Tin) are counted apart. If no family has length m (a layout with families over
    memory and tape together) the longest families count as the memory's."""
    net = build_step_network(cfg).network
    relu_families = [d for s in net.spaces if s.relu for d in s.families]
    lengths = {d.length for d in relu_families}
    word_length = cfg.memory if cfg.memory in lengths else max(lengths, default=0)
    memory_families = [d for d in relu_families if d.length == word_length]
    other_families = [d for d in relu_families if d.length != word_length]
    elements = sum(d.length or 1 for s in net.spaces for d in s.definitions()
                   if not d.passthrough)
    return {
        "relu_layers_per_step": net.relu_layers,
        "memory_family_length": word_length,
        "relu_units_per_word": sum(1 for d in memory_families if not d.passthrough),
        "relu_units_per_word_with_passthroughs": len(memory_families),
        "relu_memory_families": [d.name + ("" if not d.passthrough else " (pass-through)")
                                 for d in memory_families],
        "relu_other_families": [f"{d.name}[{d.length}]"
                                + ("" if not d.passthrough else " (pass-through)")
                                for d in other_families],
        "elements_per_step": elements,
        "elements_per_word": round(elements / cfg.memory, 2),
    }


def time_model(session: OnnxModel, work: Workload, steps: int, timing: Timing,
               batch: int) -> tuple[int, float, Any]:
    feeds = {name: [value] for name, value in work.inputs}

    def run(n: int) -> Any:
        return session.run(feeds, tapes=[work.tape] * batch, max_steps=n, chunk=1 << 30)

    return time_window(run, steps, timing.target_seconds, timing.runs)


def measure_new(work: Workload, image: Any, cfg: MachineConfig, words: list[int], steps: int,
                weights: str, dtype: str, timing: Timing, mismatches: Mismatches,
                ) -> dict[str, Any]:
    what = f"{work.name}: new {weights}/{dtype}"
    t0 = time.perf_counter()
    model = compile_model(image, cfg, ExportOptions(weights=weights, dtype=dtype))
    compile_seconds = time.perf_counter() - t0
    data = model.SerializeToString()
    meta = {p.key: p.value for p in model.metadata_props}
    unroll = int(meta["unroll"])
    session = OnnxModel(data, threads=1)
    out: dict[str, Any] = {
        "compile_seconds": round(compile_seconds, 3),
        "onnx_bytes": len(data),
        "onnx_ops_per_step": round(loop_body_nodes(model) / unroll, 2),
        "sparse_nonzeros_per_step": int(meta["nonzero_weights"]),
    }
    for batch in (1, 64):
        n, seconds, res = time_model(session, work, steps, timing, batch)
        expect = reference_state(cfg, words, work.tape, n)
        check_state(mismatches, f"{what} batch {batch}", expect, n,
                    [int(s) for s in res.status], [int(s) for s in res.steps],
                    res.memory.tolist(), [list(t) for t in res.tapes])
        out[f"batch{batch}"] = {"window": n, "seconds": round(seconds, 4),
                                "steps_per_s": round(batch * n / seconds, 1)}
    if (weights, dtype) == ENCODINGS[0]:
        # the whole run, once, against the whole reference run
        expect = reference_state(cfg, words, work.tape, BUDGET)
        t = time.perf_counter()
        res = session.run({name: [value] for name, value in work.inputs}, tapes=[work.tape],
                          max_steps=BUDGET, chunk=1 << 30)
        whole = time.perf_counter() - t
        check_state(mismatches, f"{what} whole run", expect, steps,
                    [int(s) for s in res.status], [int(s) for s in res.steps],
                    res.memory.tolist(), [list(t) for t in res.tapes])
        out["whole_run"] = {"steps": int(res.steps[0]), "seconds": round(whole, 3),
                            "steps_per_s": round(int(res.steps[0]) / whole, 1)}
    return out


def measure_today(today: TodayEncoding, work: Workload, cfg: MachineConfig, words: list[int],
                  steps: int, timing: Timing, mismatches: Mismatches) -> dict[str, Any]:
    # the very image the new encodings run (inputs stored), as a .dec file: today's compiler
    # would lower a .tl program differently (the lowering has changed since b27085f)
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / f"{work.name}.dec"
        image.write_text(" ".join(map(str, words)) + "\n")
        answer = today.measure({"paths": [str(image)], "inputs": [], "tape": list(work.tape),
                                "steps": steps, "memory": cfg.memory,
                                "target_seconds": timing.target_seconds, "runs": timing.runs})
    what = f"{work.name}: today's encoding ({TODAY_COMMIT})"
    if answer["memory_words"] != cfg.memory:
        mismatches.add(f"{what}: memory {answer['memory_words']} words, new code "
                       f"{cfg.memory}")
    out: dict[str, Any] = {
        "compile_seconds": round(answer["compile_seconds"], 3),
        "onnx_bytes": answer["onnx_bytes"],
        "weights": answer["weights"],
        "relu_layers_per_step": answer["relu_layers_per_step"],
        "relu_units": answer["relu_units"],
        "relu_units_per_word": round(answer["relu_units"] / cfg.memory, 2),
        "elements_per_step": answer["nonzero_weights"],
        "elements_per_word": round(answer["nonzero_weights"] / cfg.memory, 2),
        "onnx_ops_per_step": round(answer["loop_body_nodes"] / answer["unroll"], 2),
    }
    for batch in (1, 64):
        got = answer[f"batch{batch}"]
        n = got["window"]
        if not got["items_agree"]:
            mismatches.add(f"{what} batch {batch}: the 64 items ended in different states")
        expect = reference_state(cfg, words, work.tape, n)
        check_state(mismatches, f"{what} batch {batch}", expect, n, [got["status"]],
                    got["steps"], [got["memory"]], [got["tape_out"]])
        out[f"batch{batch}"] = {"window": n, "seconds": round(got["seconds"], 4),
                                "steps_per_s": round(batch * n / got["seconds"], 1)}
    return out


def encoding_key(weights: str, dtype: str) -> str:
    return f"{weights}-{dtype}"


def measure(work: Workload, today: TodayEncoding | None, timing: Timing,
            mismatches: Mismatches) -> dict[str, Any]:
    t0 = time.perf_counter()
    program: LoadedProgram = load_program(list(work.paths), CompileOptions())
    image = program.image
    cfg = machine_config(image, memory=work.memory)
    load_seconds = time.perf_counter() - t0
    words = prepared_image(RunRequest(program, cfg, work.tape, work.inputs, BUDGET))

    whole = reference_state(cfg, words, work.tape, BUDGET)
    if whole.status != Status.HALTED:
        raise SystemExit(f"{work.name}: did not halt ({whole.status.name.lower()})")
    steps = whole.steps
    if work.expected_out is not None and tuple(whole.tape_out) != work.expected_out:
        mismatches.add(f"{work.name}: the reference's output differs from examples/expected.py")
    ref_seconds = best_time(lambda: reference_state(cfg, words, work.tape, BUDGET), 0.2,
                            min_runs=3)
    ref_rate = steps / ref_seconds

    row: dict[str, Any] = {
        "program": work.name,
        "files": [os.path.relpath(p, REPO) for p in work.paths],
        "inputs": dict(work.inputs),
        "tape_words": len(work.tape),
        "steps": steps,
        "image_words": len(image.words),
        "memory_words": cfg.memory,
        "load_seconds": round(load_seconds, 3),
        "reference_steps_per_s": round(ref_rate),
    }
    if today is not None:
        row["today"] = measure_today(today, work, cfg, words, steps, timing, mismatches)
    row["new_network"] = new_network_stats(cfg)
    encodings: dict[str, Any] = {}
    for weights, dtype in ENCODINGS:
        enc = measure_new(work, image, cfg, words, steps, weights, dtype, timing, mismatches)
        for batch in (1, 64):
            rate = enc[f"batch{batch}"]["steps_per_s"]
            if today is not None:
                base = row["today"][f"batch{batch}"]["steps_per_s"]
                enc[f"batch{batch}"]["new_over_today"] = round(rate / base, 2)
            enc[f"batch{batch}"]["new_over_reference"] = ratio(rate, ref_rate)
        encodings[encoding_key(weights, dtype)] = enc
    row["new"] = encodings
    return row


def thread_study(work: Workload, timing: Timing, mismatches: Mismatches) -> dict[str, Any]:
    """families/int64 at batch 1 and 64 on one onnxruntime thread and on all cores."""
    program = load_program(list(work.paths), CompileOptions())
    cfg = machine_config(program.image, memory=work.memory)
    words = prepared_image(RunRequest(program, cfg, work.tape, work.inputs, BUDGET))
    steps = reference_state(cfg, words, work.tape, BUDGET).steps
    data = compile_model(program.image, cfg,
                         ExportOptions(weights="families", dtype="int64")).SerializeToString()
    out: dict[str, Any] = {"program": work.name, "encoding": "families-int64",
                           "cpus": os.cpu_count()}
    for threads in (1, 0):
        session = OnnxModel(data, threads=threads)
        for batch in (1, 64):
            n, seconds, res = time_model(session, work, steps, timing, batch)
            check_state(mismatches, f"{work.name}: threads={threads} batch {batch}",
                        reference_state(cfg, words, work.tape, n), n,
                        [int(s) for s in res.status], [int(s) for s in res.steps],
                        res.memory.tolist(), [list(t) for t in res.tapes])
            out[f"threads{threads}_batch{batch}"] = {
                "window": n, "steps_per_s": round(batch * n / seconds, 1)}
    return out


def code_state() -> dict[str, Any]:
    """The commit and the uncommitted changes of the code measured (compiler/, runtime/,
    src/), with a fingerprint of its files: another checkout may be edited while this runs,
    and the `mlpc run` subprocesses import whatever is on disk when they start."""
    dirs = ["compiler", "runtime", "src"]

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    digest = hashlib.sha1()
    for path in sorted(p for d in dirs for p in (REPO / d).rglob("*") if p.is_file()
                       and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return {"head": git("rev-parse", "HEAD"),
            "uncommitted": git("status", "--porcelain", "--", *dirs).splitlines(),
            "fingerprint": digest.hexdigest()[:16]}


# ---- the header `mlpc run` lines -------------------------------------------------------------


def header_commands(path: Path) -> list[str]:
    """The `mlpc run` command lines in a program's header comment."""
    commands = []
    for line in path.read_text().splitlines():
        if not line.startswith("//"):
            break
        text = line[2:].strip()
        if re.search(r"(^|\|\s*)mlpc run\b", text):
            commands.append(text)
    return commands


def time_cli(quick: bool, mismatches: Mismatches) -> list[dict[str, Any]]:
    """Wall time of each example's header `mlpc run` line, run by the installed script in a
    shell (pipes as written), with the user's thread settings (not this script's pins)."""
    mlpc = Path(sys.executable).parent / "mlpc"
    env = dict(os.environ)
    for var, value in _PRESET_ENV.items():
        if value is None:
            env.pop(var, None)
        else:
            env[var] = value
    rows = []
    for path in sorted(EXAMPLES.glob("*.tl")):
        if quick and path.stem not in QUICK_PROGRAMS:
            continue
        for command in header_commands(path):
            engine = re.search(r"--engine\s+(\S+)", command)
            shell = re.sub(r"\bmlpc run\b", f"{shlex.quote(str(mlpc))} run", command, count=1)
            t = time.perf_counter()
            done = subprocess.run(["bash", "-c", shell], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=600)
            seconds = time.perf_counter() - t
            row = {"program": path.stem, "command": command,
                   "engine": engine.group(1) if engine else "onnx (default)",
                   "seconds": round(seconds, 2), "exit_status": done.returncode}
            if done.returncode != 0:
                tail = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
                mismatches.add(f"`{command}` exited with {done.returncode}: {tail}")
                row["error"] = tail
            if not engine:
                row["under_bar"] = seconds < CLI_BAR_SECONDS
            rows.append(row)
            print(f"  {seconds:6.2f} s  {'' if engine or seconds < CLI_BAR_SECONDS else 'SLOW '}"
                  f"{command}", flush=True)
    return rows


# ---- tables ----------------------------------------------------------------------------------

SHORT = {"families-int64": "fam i64", "families-float64": "fam f64", "sparse-int64": "sparse"}


def speed_header(with_today: bool) -> str:
    cols = [f"{'program':<19}", f"{'steps':>7}", f"{'memory':>6}", f"{'reference':>10}"]
    if with_today:
        cols += [f"{'today b1':>9}", f"{'today b64':>9}"]
    for key in SHORT.values():
        cols += [f"{key + ' b1':>10}", f"{key + ' b64':>11}"]
    return " ".join(cols)


def speed_row(r: dict[str, Any]) -> str:
    cols = [f"{r['program']:<19}", f"{r['steps']:>7,}", f"{r['memory_words']:>6,}",
            f"{r['reference_steps_per_s']:>10,}"]
    if "today" in r:
        cols += [f"{r['today']['batch1']['steps_per_s']:>9,.0f}",
                 f"{r['today']['batch64']['steps_per_s']:>9,.0f}"]
    for key in SHORT:
        enc = r["new"][key]
        cols += [f"{enc['batch1']['steps_per_s']:>10,.0f}",
                 f"{enc['batch64']['steps_per_s']:>11,.0f}"]
    return " ".join(cols)


def ratio_table(rows: list[dict[str, Any]], with_today: bool) -> list[str]:
    lines = []
    cols = [f"{'program':<19}"]
    for key in SHORT.values():
        if with_today:
            cols += [f"{key + ' b1/today':>16}", f"{'b64/today':>9}"]
        cols += [f"{key + ' b1/ref':>14}", f"{'b64/ref':>8}"]
    lines.append(" ".join(cols))
    for r in rows:
        cols = [f"{r['program']:<19}"]
        for key in SHORT:
            enc = r["new"][key]
            if with_today:
                cols += [f"{enc['batch1']['new_over_today']:>15.1f}x",
                         f"{enc['batch64']['new_over_today']:>8.1f}x"]
            cols += [f"{enc['batch1']['new_over_reference']:>14}",
                     f"{enc['batch64']['new_over_reference']:>8}"]
        lines.append(" ".join(cols))
    return lines


def size_table(rows: list[dict[str, Any]], with_today: bool) -> list[str]:
    cols = [f"{'program':<19}", f"{'memory':>6}"]
    if with_today:
        cols += [f"{'today u/w':>9}", f"{'el/step':>9}", f"{'el/w':>6}", f"{'ops/st':>6}"]
    cols += [f"{'new u/w':>7}", f"{'(+pass)':>7}", f"{'tape':>4}", f"{'el/step':>8}",
             f"{'el/w':>5}"]
    cols += [f"{key + ' ops/st':>14}" for key in SHORT.values()]
    cols += [f"{'sparse nz/step':>14}", f"{'nz/w':>5}"]
    lines = [" ".join(cols)]
    for r in rows:
        net = r["new_network"]
        cols = [f"{r['program']:<19}", f"{r['memory_words']:>6,}"]
        if "today" in r:
            t = r["today"]
            cols += [f"{t['relu_units_per_word']:>9.1f}", f"{t['elements_per_step']:>9,}",
                     f"{t['elements_per_word']:>6.1f}", f"{t['onnx_ops_per_step']:>6.1f}"]
        cols += [f"{net['relu_units_per_word']:>7}",
                 f"{net['relu_units_per_word_with_passthroughs']:>7}",
                 f"{sum(1 for d in net['relu_other_families'] if 'pass' not in d):>4}",
                 f"{net['elements_per_step']:>8,}", f"{net['elements_per_word']:>5.1f}"]
        cols += [f"{r['new'][key]['onnx_ops_per_step']:>14.1f}" for key in SHORT]
        nz = r["new"]["sparse-int64"]["sparse_nonzeros_per_step"]
        cols += [f"{nz:>14,}", f"{nz / r['memory_words']:>5.1f}"]
        lines.append(" ".join(cols))
    return lines


README_PROGRAMS = ("hello.dec", "self.dec+hello.dec", "beer.dec", "fizzbuzz", "crc32",
                   "brainfuck", "hello.dec@4096")


def readme_table(result: dict[str, Any]) -> str:
    """The README's speed table, made from a results file (`--readme`): a test checks that
    the README shows exactly this."""
    lines = [
        "| program | memory | reference | today b1 | families int64 b1 | b64 (aggregate) "
        "| families float64 b1 | elements per word, today → new |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = {r["program"]: r for r in result["programs"]}
    for name in README_PROGRAMS:
        if name not in rows:
            continue
        r = rows[name]
        today, new = r["today"], r["new"]
        i64, f64 = new["families-int64"], new["families-float64"]
        lines.append(
            f"| {name} | {r['memory_words']:,} | {r['reference_steps_per_s'] / 1e6:.1f} M "
            f"| {today['batch1']['steps_per_s']:,.0f} "
            f"| {i64['batch1']['steps_per_s']:,.0f} ({i64['batch1']['new_over_today']:.1f}x) "
            f"| {i64['batch64']['steps_per_s']:,.0f} ({i64['batch64']['new_over_today']:.1f}x) "
            f"| {f64['batch1']['steps_per_s']:,.0f} ({f64['batch1']['new_over_today']:.1f}x) "
            f"| {today['elements_per_word']:.0f} → {r['new_network']['elements_per_word']:.1f} |"
        )
    load = result.get("load_average_start") or [0.0]
    lines.append("")
    lines.append(f"Measured {result['date'][:10]} on a {result['cpus']}-core {result['machine']} "
                 f"machine (load average {load[0]:.1f} at the start), onnxruntime "
                 f"{result['onnxruntime']}, code at {result['code_start']['head'][:7]}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true",
                        help="print the README's speed table from the results file (--out) "
                        "and exit")
    parser.add_argument("--quick", action="store_true",
                        help=f"only {' and '.join(QUICK_PROGRAMS)}, shorter timing runs")
    parser.add_argument("--target-seconds", type=float, default=None, metavar="S",
                        help="length of one timed network run (default 0.3; --quick: 0.15)")
    parser.add_argument("--runs", type=int, default=2, help="best of this many timed runs")
    parser.add_argument("--no-today", action="store_true",
                        help=f"skip today's encoding (the worktree of {TODAY_COMMIT})")
    parser.add_argument("--no-cli", action="store_true", help="skip the `mlpc run` wall times")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "run.json")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="measure only these programs (by their name in the table)")
    args = parser.parse_args(argv)
    if args.readme:
        print(readme_table(json.loads(args.out.read_text())))
        return 0

    timing = Timing(args.target_seconds or (0.15 if args.quick else 0.3), max(args.runs, 1))
    found, notes = workloads(args.quick)
    if args.only:
        found = [w for w in found if w.name in args.only]
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    mismatches = Mismatches()
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    code_start = code_state()
    started = time.perf_counter()
    print("SUBLEQ steps per second, same run; onnxruntime on 1 thread; b64 = aggregate of 64 "
          "copies.")
    print(f"today = the model of commit {TODAY_COMMIT} (sparse factors, GatherElements "
          "buckets); fam i64/f64 = new network, families encoding; sparse = new network in "
          "today's style.")
    print(f"Network runs time windows of about {timing.target_seconds} s, best of "
          f"{timing.runs}.\n")
    rows: list[dict[str, Any]] = []
    threads: dict[str, Any] | None = None
    today_info: dict[str, Any] | None = None
    today = None if args.no_today else TodayEncoding(REPO)
    try:
        if today is not None:
            today.__enter__()
            today_info = today.info
        print(speed_header(today is not None), flush=True)
        for work in found:
            rows.append(measure(work, today, timing, mismatches))
            print(speed_row(rows[-1]), flush=True)
    finally:
        if today is not None:
            today.close()
    with_today = today is not None
    print("\nSpeed ratios: new / today (same run) and new / reference interpreter")
    print("\n".join(ratio_table(rows, with_today)))
    print("\nSizes per SUBLEQ step: u/w = ReLU units per memory word (today: widths of its "
          "ReLU layers / memory;\nnew: computed families over the memory in the ReLU spaces, "
          "(+pass) with pass-throughs; tape: computed\nfamilies over the input tape); el = "
          "elements per step (today: non-zeros of its sparse factors; new: units\nof the "
          "non-pass-through definitions of every space), el/w = el / memory words; ops/st = "
          "Loop body nodes / unroll")
    print("\n".join(size_table(rows, with_today)))
    study = next((w for w in found if w.name == THREADS_PROGRAM), None)
    if study is not None:
        threads = thread_study(study, timing, mismatches)
        print(f"\nonnxruntime threads, {study.name}, families/int64 ({threads['cpus']} cpus):")
        for batch in (1, 64):
            one = threads[f"threads1_batch{batch}"]["steps_per_s"]
            every = threads[f"threads0_batch{batch}"]["steps_per_s"]
            print(f"  batch {batch:>2}: threads=1 {one:>9,.0f}  threads=0 (all) {every:>9,.0f}"
                  f"  ({every / one:.2f}x)")
    cli: list[dict[str, Any]] = []
    if not args.no_cli:
        print(f"\nWall time of the examples' header `mlpc run` lines (bar: under "
              f"{CLI_BAR_SECONDS:.0f} s for the default engine):")
        cli = time_cli(args.quick, mismatches)
    elapsed = time.perf_counter() - started
    code_end = code_state()
    if code_end["fingerprint"] != code_start["fingerprint"]:
        notes.append("the code under compiler/, runtime/ or src/ changed during the run: the "
                     "models were measured with the code of `code_start`, the `mlpc run` "
                     "lines (run last) with newer code")
        print(f"note: {notes[-1]}", file=sys.stderr)
    print(f"\n{len(rows)} programs in {elapsed:.0f} s")
    if mismatches.items:
        print(f"\n{len(mismatches.items)} MISMATCH(ES):", file=sys.stderr)
        for item in mismatches.items:
            print(f"  {item}", file=sys.stderr)
    else:
        print("every timed window and whole run agreed with the reference interpreter")

    report = {
        "command": "python benchmarks/run.py" + " ".join([""] + (argv or sys.argv[1:])),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_start": load_start,
        "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_threads": 1,
        "code_start": code_start,
        "code_end": code_end,
        "unroll": ExportOptions().unroll,
        "today": {"commit": today_info["commit"] if today_info else None,
                  "encoding": "sparse factors, GatherElements buckets (its default export)"},
        "timing": {"target_seconds": timing.target_seconds, "best_of": timing.runs,
                   "reference": "whole run, best of 3 (at least 0.2 s)",
                   "batch64": "aggregate: 64 * window steps / time"},
        "definitions": {
            "relu_units_per_word": "new: families over the memory (length m) of the ReLU "
                                   "spaces that are not pass-throughs (relu_other_families: "
                                   "those over the input tape); today: sum of its ReLU layer "
                                   "widths / memory",
            "elements_per_step": "new: sum(d.length or 1) over the non-pass-through "
                                 "definitions of every space; today: non-zeros of its sparse "
                                 "factors",
            "sparse_nonzeros_per_step": "non-zeros of the new network lowered to sparse "
                                        "factors (model metadata nonzero_weights)",
            "onnx_ops_per_step": "nodes of the Loop body (nested ones included) / unroll",
        },
        "notes": notes,
        "mismatches": mismatches.items,
        "seconds": round(elapsed, 1),
        "programs": rows,
        "threads": threads,
        "cli": cli,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {os.path.relpath(args.out)}")
    return 1 if mismatches.items else 0


if __name__ == "__main__":
    sys.exit(main())
