"""Benchmark of the .tl lowering: image size and SUBLEQ steps of every program in
`tests/tl_cases.py` and every `examples/*.tl`, before and after the CFG clean-ups.

    python benchmarks/bench_lowering.py [--out benchmarks/results/lowering.json]

Each program is compiled twice (CFG clean-ups off and on) and run on the reference
interpreter with its inputs; both runs must report the same outputs, tape, status and trap,
and those must be the expected ones. Examples run their `default` run of
`examples/expected.py` (inputs, tape and expected results).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mlpc.compiler.cfg_opt import optimize
from mlpc.compiler.checker import check_program
from mlpc.compiler.lowering import LoweringOptions, image_of, lower_macros
from mlpc.compiler.parser import parse_program
from mlpc.runtime import reference
from mlpc.runtime.machine import DEFAULT_TAPE_OUT, MachineConfig, initial_state, result_of
from mlpc.runtime.report import RunReport, report_from_machine

ROOT = Path(__file__).resolve().parents[1]
MAX_STEPS = 20_000_000


@dataclass(frozen=True)
class Program:
    name: str
    source: str
    inputs: tuple[tuple[str, int], ...]
    tape: tuple[int, ...]
    word_bits: int = 32
    tape_out: int | None = None
    max_steps: int | None = None
    expected: tuple[object, ...] | None = None  # outputs, tape, status (None: unchecked)


@dataclass(frozen=True)
class Measure:
    macros: int
    code_words: int
    image_words: int
    min_memory: int
    steps: int
    status: str


@dataclass(frozen=True)
class Row:
    name: str
    word_bits: int
    before: Measure
    after: Measure
    removed: dict[str, int]


def programs() -> list[Program]:
    sys.path.insert(0, str(ROOT / "tests"))
    from tl_cases import CASES

    out = [Program(f"case:{c.name}", c.source, c.inputs, c.tape, c.word_bits, c.tape_out,
                   c.max_steps,
                   (c.outputs, c.expected_tape, c.status) if c.status != "step-limit" else None)
           for c in CASES]
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from expected import BY_NAME as EXAMPLES
    except ImportError:
        EXAMPLES = {}
    for path in sorted((ROOT / "examples").glob("*.tl")):
        text = path.read_text(encoding="utf-8")
        run = EXAMPLES[path.stem].default if path.stem in EXAMPLES else None
        if run is None:
            names = [n.strip() for decl in re.findall(r"^\s*input\s+([^;]*);", text, re.M)
                     for n in decl.split(",")]
            out.append(Program(f"example:{path.stem}", text, tuple((n, 10) for n in names), ()))
            continue
        out.append(Program(f"example:{path.stem}", text, run.inputs, run.tape_words,
                           expected=(run.outputs, run.out_words, run.status)))
    return out


def _run(program: Program, image_words: tuple[int, ...], image: object) -> RunReport:
    words = list(image_words)
    addresses = dict(image.inputs)  # type: ignore[attr-defined]
    for name, value in program.inputs:
        words[addresses[name]] = value
    config = MachineConfig(memory=image.default_memory(),  # type: ignore[attr-defined]
                           word_bits=program.word_bits,
                           tape_out=program.tape_out or DEFAULT_TAPE_OUT)
    state = initial_state(config, words, program.tape)
    reference.run(config, state, program.max_steps or MAX_STEPS)
    return report_from_machine(image, result_of(state), "reference")  # type: ignore[arg-type]


def measure(program: Program) -> Row:
    checked = check_program(parse_program(program.source, program.name), program.word_bits)
    plain = lower_macros(checked, LoweringOptions(program.word_bits))
    result = optimize(plain)
    rows = []
    reports = []
    for macros in (plain, result.program):
        image = image_of(macros, checked, program.word_bits)
        report = _run(program, image.words, image)
        reports.append(report)
        code_words = max((s.end for s in image.spans), default=0)
        rows.append(Measure(len(macros.code), code_words, len(image.words), image.min_memory,
                            report.steps, report.status))
    a, b = reports
    if (a.outputs, a.tape, a.status, a.detail) != (b.outputs, b.tape, b.status, b.detail):
        raise SystemExit(f"{program.name}: the CFG clean-ups changed the result: {a} vs {b}")
    if program.expected is not None and (b.outputs, b.tape, b.status) != program.expected:
        raise SystemExit(f"{program.name}: unexpected result {b}, expected {program.expected}")
    stats = asdict(result.stats)
    stats.pop("rounds")
    return Row(program.name, program.word_bits, rows[0], rows[1], stats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "lowering.json"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = [measure(p) for p in programs()]
    header = f"{'program':<42} {'W':>2} {'words':>13} {'steps':>19} {'saved':>6}  status"
    print(header)
    print("-" * len(header))
    for r in rows:
        saved = r.before.steps - r.after.steps
        print(f"{r.name[:42]:<42} {r.word_bits:>2} "
              f"{r.before.image_words:>6}>{r.after.image_words:<6} "
              f"{r.before.steps:>9}>{r.after.steps:<9} {saved:>6}  {r.after.status}")
    finite = [r for r in rows if r.after.status == "halted"]  # traps may run longer
    totals = {
        "programs": len(rows),
        "image_words_before": sum(r.before.image_words for r in rows),
        "image_words_after": sum(r.after.image_words for r in rows),
        "min_memory_before": sum(r.before.min_memory for r in rows),
        "min_memory_after": sum(r.after.min_memory for r in rows),
        "code_words_before": sum(r.before.code_words for r in rows),
        "code_words_after": sum(r.after.code_words for r in rows),
        "macros_before": sum(r.before.macros for r in rows),
        "macros_after": sum(r.after.macros for r in rows),
        "steps_before": sum(r.before.steps for r in finite),
        "steps_after": sum(r.after.steps for r in finite),
        "removed": {k: sum(r.removed[k] for r in rows) for k in rows[0].removed} if rows else {},
    }
    print("-" * len(header))
    print(f"total: {totals['programs']} programs; image words "
          f"{totals['image_words_before']} -> "
          f"{totals['image_words_after']}; code words {totals['code_words_before']} -> "
          f"{totals['code_words_after']}; memory needed {totals['min_memory_before']} -> "
          f"{totals['min_memory_after']}; steps (runs that halt) {totals['steps_before']} -> "
          f"{totals['steps_after']}; macros rewritten or removed {totals['removed']}")
    print(f"({time.perf_counter() - start:.1f} s)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"totals": totals, "programs": [asdict(r) for r in rows]},
                              indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
