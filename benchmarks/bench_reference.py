"""Reference-interpreter speed in SUBLEQ steps per second.

    python benchmarks/bench_reference.py [--repeat N] [--out PATH]

Workloads: a counting loop (`benchmarks/programs/count.asm`, 10,000,000 steps: the hot
subtract-and-branch path), `beer.dec` (35,232 steps, output-heavy) and
`self.dec self.dec hello.dec` (324,015 steps: a self-interpreter running a self-interpreter).
The corpus workloads need `../shared/subleq-corpus` next to the checkout (or `$MLPC_SHARED`)
and are left out without it. Prints a table and writes `benchmarks/results/reference.json`.
Each figure is the best of `--repeat` runs (the least disturbed by other load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mlpc.compiler.assembler import load_image
from mlpc.compiler.machine_config import MachineConfig, Status
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass(frozen=True)
class Workload:
    name: str
    paths: tuple[Path, ...]
    steps: int  # the expected step count: a run that differs is an error, not a figure
    output: str | None = None  # the expected output text, when checked


@dataclass(frozen=True)
class Measurement:
    name: str
    steps: int
    best_seconds: float
    steps_per_second: float
    repeats: int


def shared_root() -> Path:
    env = os.environ.get("MLPC_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def workloads() -> tuple[list[Workload], list[str]]:
    found = [Workload("count loop", (HERE / "programs" / "count.asm",), 10_000_000)]
    missing = []
    corpus = shared_root() / "subleq-corpus"
    if (corpus / "self.dec").is_file():
        found.append(Workload("beer.dec", (corpus / "beer.dec",), 35_232))
        found.append(
            Workload(
                "self self hello",
                (corpus / "self.dec", corpus / "self.dec", corpus / "hello.dec"),
                324_015,
                "Hello, World!\n",
            )
        )
    else:
        missing.append(f"corpus workloads skipped: {corpus} not found")
    return found, missing


def measure(work: Workload, repeats: int) -> Measurement:
    image = load_image([str(p) for p in work.paths])
    config = MachineConfig(memory=image.default_memory())
    best = float("inf")
    for _ in range(repeats):
        state = initial_state(config, image.words)
        start = time.perf_counter()
        reference.run(config, state, work.steps + 1)
        elapsed = time.perf_counter() - start
        if state.status != Status.HALTED or state.steps != work.steps:
            raise SystemExit(
                f"{work.name}: expected a halt after {work.steps} steps, got "
                f"{state.status.name.lower()} after {state.steps}"
            )
        if work.output is not None and bytes(state.tape_out).decode() != work.output:
            raise SystemExit(f"{work.name}: wrong output {bytes(state.tape_out)!r}")
        best = min(best, elapsed)
    return Measurement(work.name, work.steps, best, work.steps / best, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per workload (best counts)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "reference.json")
    args = parser.parse_args(argv)

    found, missing = workloads()
    for note in missing:
        print(f"note: {note}", file=sys.stderr)
    results = [measure(work, max(args.repeat, 1)) for work in found]

    print(f"{'workload':<18} {'steps':>12} {'best s':>9} {'steps/s':>14}")
    for r in results:
        print(f"{r.name:<18} {r.steps:>12,} {r.best_seconds:>9.3f} {r.steps_per_second:>14,.0f}")

    report = {
        "engine": "reference",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
