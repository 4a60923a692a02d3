"""Helpers for `benchmarks/run.py`: best-of-N timing of a window of steps, and "today's
encoding" -- the model compiled by an older commit (`TODAY_COMMIT`), timed in a subprocess.

Today's encoding is not copied into the tree. `TodayEncoding` checks the commit out with
`git worktree add --detach` into a temporary directory, builds a package directory there
(`mlpc/` = a copy of the worktree's `src/mlpc/*.py`, with `mlpc/compiler` and `mlpc/runtime`
symlinked to the worktree's `compiler/` and `runtime/`) and starts this file as a worker
(`python today_encoding.py --worker`) with `PYTHONPATH` set to that directory, so that the
worker imports the old `mlpc`. The worker answers one JSON request per line: it loads the
program with the old `load_program`, compiles it with the old `compile_model(image, config)`
and times the old `OnnxModel(model, threads=1).run(...)` at batch 1 and batch 64. It sends
back its timings and the final state of a timed run; `run.py` checks that state against the
reference interpreter. The worktree and the temporary directory are removed at the end.

This module imports nothing from `mlpc` at module level: it is imported by `run.py` (the new
code) and run as the worker (the old code).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TODAY_COMMIT = "b27085f"
STEP_QUANTUM = 8  # windows are whole Loop iterations of the default unroll (8 steps)


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


def time_window(run: Callable[[int], Any], total_steps: int, target_seconds: float,
                runs: int) -> tuple[int, float, Any]:
    """Best-of-`runs` time of `run(n)` (a model run of the first n steps) for a window n
    chosen so that one run takes about `target_seconds`: a warm-up run of one Loop iteration,
    then the window grows 4x at a time until a run takes a quarter of the target, and is
    scaled to the target (whole Loop iterations, at most the whole program).
    Returns (n, best seconds, the result of a run of n steps)."""
    n = min(STEP_QUANTUM, total_steps)
    result = run(n)  # warm-up (session buffers), not timed
    while True:
        t = time.perf_counter()
        result = run(n)
        dt = time.perf_counter() - t
        if n >= total_steps or dt >= target_seconds / 4:
            break
        n = min(total_steps, n * 4)
    first_n, first_dt = n, dt
    scaled = -(-int(n * target_seconds / max(dt, 1e-9)) // STEP_QUANTUM) * STEP_QUANTUM
    n = min(total_steps, max(STEP_QUANTUM, scaled))
    times = [first_dt] if n == first_n else []
    if n != first_n:
        result = None

    def once() -> None:
        nonlocal result
        result = run(n)

    while len(times) < runs:
        times.append(best_time(once, 0.0, min_runs=1))
    return n, min(times), result


def count_nodes(graph: Any, functions: dict[tuple[str, str], Any] | None = None) -> int:
    """Nodes of an ONNX graph, with those of its subgraphs (Loop/If bodies); a call of one of
    the model's local `functions` ((domain, name) -> FunctionProto) counts as its nodes."""
    functions = functions or {}
    total = 0
    for node in graph.node:
        called = functions.get((node.domain, node.op_type))
        if called is not None:
            total += count_nodes(called, functions)
            continue
        total += 1
        for attr in node.attribute:
            if attr.HasField("g"):
                total += count_nodes(attr.g, functions)
            for g in attr.graphs:
                total += count_nodes(g, functions)
    return total


def importable_package(worktree: Path, into: Path) -> Path:
    """The checkout `worktree` laid out as the package `mlpc` under `into` (src/mlpc's files,
    compiler/ and runtime/ linked in), to be imported with PYTHONPATH=into."""
    package = into / "mlpc"
    package.mkdir(parents=True)
    for source in sorted((worktree / "src" / "mlpc").glob("*.py")):
        shutil.copy2(source, package / source.name)
    (package / "compiler").symlink_to(worktree / "compiler")
    (package / "runtime").symlink_to(worktree / "runtime")
    return into


def loop_body_nodes(model: Any) -> int:
    """Nodes of the step Loop's body (the model's one top-level Loop), nested ones and those
    of the local functions it calls included."""
    bodies = [attr.g for node in model.graph.node if node.op_type == "Loop"
              for attr in node.attribute if attr.name == "body"]
    if len(bodies) != 1:
        raise ValueError(f"expected one top-level Loop, found {len(bodies)}")
    functions = {(f.domain, f.name): f for f in getattr(model, "functions", ())}
    return count_nodes(bodies[0], functions)


# ---- the parent side -------------------------------------------------------------------------


class TodayEncoding:
    """A worker process running the old code of `commit`; use as a context manager."""

    def __init__(self, repo: Path, commit: str = TODAY_COMMIT) -> None:
        self.repo = repo
        self.commit = commit
        self.tmp: Path | None = None
        self.worktree: Path | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> TodayEncoding:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="mlpc-today-"))
        self.worktree = self.tmp / "worktree"
        subprocess.run(["git", "-C", str(self.repo), "worktree", "add", "--detach", "--quiet",
                        str(self.worktree), self.commit], check=True)
        sha = subprocess.run(["git", "-C", str(self.worktree), "rev-parse", "HEAD"],
                             check=True, capture_output=True, text=True).stdout.strip()
        importable_package(self.worktree, self.tmp / "pkg")
        env = dict(os.environ)
        env["PYTHONPATH"] = str(self.tmp / "pkg")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            cwd=str(self.tmp),
        )
        hello = self._receive()
        where = Path(hello["compiler"]).resolve()
        if self.worktree.resolve() not in where.parents:
            raise RuntimeError(f"the worker imported mlpc.compiler from {where}, not from the "
                               f"worktree of {self.commit}")
        self.info = {"commit": sha, "worktree_compiler": str(where)}

    def _receive(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker for {self.commit} exited (see its stderr above)")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"worker for {self.commit}: {answer['error']}")
        return answer

    def measure(self, request: dict[str, Any]) -> dict[str, Any]:
        """Compile and time one program (see `_serve` for the request's keys)."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._receive()

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
        if self.worktree is not None:
            subprocess.run(["git", "-C", str(self.repo), "worktree", "remove", "--force",
                            str(self.worktree)], check=False)
            self.worktree = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        subprocess.run(["git", "-C", str(self.repo), "worktree", "prune"], check=False)


# ---- the worker side (runs the old code) -----------------------------------------------------


def _serve(request: dict[str, Any]) -> dict[str, Any]:
    """Request: paths, inputs [[name, value]], tape [words], steps (of the whole run),
    target_seconds, runs. Answer: compile time, model sizes, and for batch 1 and 64 the
    window, its best time and the final state of a timed run (item 0; `items_agree` says
    whether all 64 items ended in the same state)."""
    from mlpc.compiler.driver import CompileOptions, compile_model, load_program, machine_config
    from mlpc.runtime.onnx_engine import OnnxModel

    t0 = time.perf_counter()
    program = load_program(list(request["paths"]), CompileOptions())
    image = program.image
    config = machine_config(image, memory=request.get("memory"))
    model = compile_model(image, config)
    compile_seconds = time.perf_counter() - t0
    data = model.SerializeToString()
    meta = {p.key: p.value for p in model.metadata_props}
    layers = json.loads(meta["layers"])
    session = OnnxModel(data, threads=1)
    inputs = {name: [value] for name, value in request["inputs"]}
    tape = tuple(request["tape"])
    answer: dict[str, Any] = {
        "memory_words": config.memory,
        "image_words": len(image.words),
        "compile_seconds": compile_seconds,
        "onnx_bytes": len(data),
        "unroll": int(meta["unroll"]),
        "weights": meta["weights"],
        "relu_layers_per_step": int(meta["relu_layers_per_step"]),
        "relu_units": sum(layer["width"] for layer in layers if layer["relu"]),
        "nonzero_weights": int(meta["nonzero_weights"]),
        "loop_body_nodes": loop_body_nodes(model),
    }
    for batch in (1, 64):
        def run(n: int, batch: int = batch) -> Any:
            return session.run(inputs, tapes=[tape] * batch, max_steps=n, chunk=1 << 30)

        n, seconds, out = time_window(run, int(request["steps"]),
                                      float(request["target_seconds"]), int(request["runs"]))
        answer[f"batch{batch}"] = {
            "window": n,
            "seconds": seconds,
            "status": int(out.status[0]),
            "steps": [int(s) for s in out.steps],
            "memory": [int(w) for w in out.memory[0]],
            "tape_out": [int(w) for w in out.tapes[0]],
            "items_agree": all(out.memory[i].tolist() == out.memory[0].tolist()
                               and out.tapes[i] == out.tapes[0]
                               and int(out.status[i]) == int(out.status[0])
                               for i in range(batch)),
        }
    return answer


def worker() -> int:
    reply = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # anything the old code prints must not reach the protocol
    import mlpc.compiler

    reply.write(json.dumps({"compiler": str(Path(mlpc.compiler.__file__).parent)}) + "\n")
    reply.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = _serve(json.loads(line))
        except Exception as exc:  # reported to the parent, which stops loudly
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        reply.write(json.dumps(answer) + "\n")
        reply.flush()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(worker())
    sys.exit("usage: today_encoding.py --worker (started by benchmarks/run.py)")
