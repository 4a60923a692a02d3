"""Benchmark of the .tl lowering: image size and SUBLEQ steps of every program in
`tests/tl_cases.py` and every `examples/*.tl`, before and after the CFG clean-ups, and the
SUBLEQ steps of single operations (`OPERATIONS`) on several operand values.

    python benchmarks/bench_lowering.py [--out benchmarks/results/lowering.json]
    python benchmarks/bench_lowering.py --write-baseline   # only when the lowering is frozen

Operation steps are those of the whole program `input x, y; output r; r = <expr>;` (or
`print(x);`) with the CFG clean-ups, on the reference interpreter: the operation plus about
5 steps of copying and HALT. Every run is checked against the Python model of docs/language.md.
`benchmarks/results/lowering_baseline.json` holds the operation and example step counts
measured with the lowering before the cheaper operations of issue 13 item 4 (written once by
`--write-baseline` from that commit); every run reports them next to today's and the ratio.

Each program is compiled with the CFG clean-ups off, then with the first k passes of
`cfg_opt.PASSES` for k = 1, 2, ... (the last is the full clean-up), and run on the reference
interpreter with its inputs; every run must report the same outputs, tape, status and trap,
and those must be the expected ones. What each pass adds to the ones before it (image words
and steps saved) is reported per pass ("by pass"), summed over the programs. Examples run
their `default` run of `examples/expected.py` (inputs, tape and expected results).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mlpc.compiler.cfg_opt import PASSES, optimize
from mlpc.compiler.checker import check_program
from mlpc.compiler.image import SubleqImage
from mlpc.compiler.lowering import LoweringOptions, image_of, lower_macros
from mlpc.compiler.machine_config import DEFAULT_TAPE_OUT, MachineConfig
from mlpc.compiler.parser import parse_program
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state, result_of
from mlpc.runtime.report import RunReport, report_from_machine

ROOT = Path(__file__).resolve().parents[1]
MAX_STEPS = 20_000_000
BASELINE = ROOT / "benchmarks" / "results" / "lowering_baseline.json"
INT_MAX = (1 << 31) - 1

# (name, expression or `print`, operand values as (x, y) pairs)
OPERATIONS: tuple[tuple[str, str, tuple[tuple[int, int], ...]], ...] = (
    ("x >> 1", "x >> 1", ((1000, 0), (-1000, 0), (123456789, 0), (INT_MAX, 0), (-1, 0))),
    ("x >> 7", "x >> 7", ((1000, 0), (-1000, 0), (123456789, 0), (INT_MAX, 0))),
    ("x >>> 1", "x >>> 1", ((1000, 0), (-1000, 0), (123456789, 0))),
    ("x / 2", "x / 2", ((1000, 0), (-1001, 0), (123456789, 0), (-(1 << 31), 0))),
    ("x / 10", "x / 10", ((1000, 0), (-1001, 0), (123456789, 0), (INT_MAX, 0),
                          (-(1 << 31), 0))),
    ("x % 10", "x % 10", ((1000, 0), (-1001, 0), (123456789, 0), (INT_MAX, 0),
                          (-(1 << 31), 0))),
    ("x / 7", "x / 7", ((1000, 0), (-1001, 0), (123456789, 0))),
    ("x % 3", "x % 3", ((1000, 0), (-1001, 0), (123456789, 0))),
    ("x & 1", "x & 1", ((1000, 0), (-1001, 0), (123456789, 0))),
    ("x & 0xFF", "x & 0xFF", ((1000, 0), (-1001, 0), (123456789, 0))),
    ("a & b", "x & y", ((1000, 255), (-1001, 123456789))),
    ("a * b small b", "x * y", ((123456, 7), (-123456, 7), (1000, -3))),
    ("a * b small a", "x * y", ((7, 123456), (7, -123456), (-3, 1000))),
    ("a * b large", "x * y", ((123456, 654321), (-40000, 50000), (46340, 46340))),
    ("a / b", "x / y", ((1000, 7), (123456789, 10), (-123456789, 12345))),
    ("a % b", "x % y", ((1000, 7), (123456789, 10), (-123456789, 12345))),
    ("print 7 digits", "print", ((1234567, 0), (-7654321, 0))),
    ("print 1 digit", "print", ((7, 0),)),
)


# issue 13 item 4's bars: steps of the whole program per operation
BARS = {"x >> 1": 60, "x / 10": 150, "x % 10": 150, "a * b small b": 120,
        "a * b small a": 120}


@dataclass(frozen=True)
class OpRow:
    name: str
    x: int
    y: int
    steps: int
    baseline: int | None
    bar: int | None = None
    meets_bar: bool | None = None


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
    # each pass of cfg_opt.PASSES (by name): the program cleaned up by the passes up to it
    # (empty when only before and after were measured)
    by_pass: dict[str, Measure]


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


def _run(program: Program, image: SubleqImage) -> RunReport:
    words = image.initial_words(program.inputs, len(program.tape))
    config = MachineConfig(memory=image.default_memory(),
                           word_bits=program.word_bits,
                           tape_out=program.tape_out or DEFAULT_TAPE_OUT)
    state = initial_state(config, words, program.tape)
    reference.run(config, state, program.max_steps or MAX_STEPS)
    return report_from_machine(image, result_of(state), "reference")


def measure(program: Program, by_pass: bool = True) -> Row:
    """Compile and run `program` without the CFG clean-ups and with them (`by_pass`: also
    with each prefix of `PASSES`, to tell what each pass adds)."""
    checked = check_program(parse_program(program.source, program.name), program.word_bits)
    plain = lower_macros(checked, LoweringOptions(program.word_bits))
    result = optimize(plain)
    prefixes = [optimize(plain, passes=PASSES[:k]).program
                for k in range(1, len(PASSES))] if by_pass else []
    rows = []
    reports = []
    for macros in (plain, *prefixes, result.program):
        image = image_of(macros, checked, program.word_bits)
        report = _run(program, image)
        reports.append(report)
        code_words = max((s.end for s in image.spans), default=0)
        rows.append(Measure(len(macros.code), code_words, len(image.words), image.min_memory,
                            report.steps, report.status))
    a = reports[0]
    for b in reports[1:]:
        if (a.outputs, a.tape, a.status, a.detail) != (b.outputs, b.tape, b.status, b.detail):
            raise SystemExit(f"{program.name}: the CFG clean-ups changed the result: "
                             f"{a} vs {b}")
    b = reports[-1]
    if program.expected is not None and (b.outputs, b.tape, b.status) != program.expected:
        raise SystemExit(f"{program.name}: unexpected result {b}, expected {program.expected}")
    upto = {run.__name__: rows[k + 1] for k, run in enumerate(PASSES)} if by_pass else {}
    return Row(program.name, program.word_bits, rows[0], rows[-1], dict(result.stats.counts),
               upto)


def _saved(rows: list[Row], name: str) -> dict[str, int]:
    """What pass `name` saved over the passes before it, summed over the programs (steps:
    runs that halt; a trap may come later)."""
    names = [run.__name__ for run in PASSES]
    k = names.index(name)
    pairs = [(r.by_pass[names[k - 1]] if k else r.before, r.by_pass[name]) for r in rows
             if name in r.by_pass]
    return {"image_words": sum(a.image_words - b.image_words for a, b in pairs),
            "code_words": sum(a.code_words - b.code_words for a, b in pairs),
            "steps": sum(a.steps - b.steps for a, b in pairs if b.status == "halted")}


def _wrap(v: int) -> int:
    v &= (1 << 32) - 1
    return v - (1 << 32) if v >> 31 else v


def _model(expr: str, x: int, y: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The outputs and output tape docs/language.md gives for one operation (W = 32)."""
    if expr == "print":
        return (), tuple(map(ord, str(x)))
    op = expr.split()[1]
    k = y if expr.split()[2] == "y" else int(expr.split()[2], 0)
    if op in ("/", "%"):
        q = abs(x) // abs(k) * (1 if (x < 0) == (k < 0) else -1)
        return (_wrap(q if op == "/" else x - q * k),), ()
    value = {">>": lambda: x >> k, ">>>": lambda: (x & 0xFFFFFFFF) >> k,
             "&": lambda: x & k, "*": lambda: x * k}[op]()
    return (_wrap(value),), ()


def measure_operation(name: str, expr: str, x: int, y: int,
                      baseline: dict[str, int]) -> OpRow:
    if expr == "print":
        source = "input x, y;\nprint(x);\n"
    else:
        source = f"input x, y;\noutput r;\nr = {expr};\n"
    outputs, tape = _model(expr, x, y)
    program = Program(name, source, (("x", x), ("y", y)), (),
                      expected=(tuple(zip(("r",) * len(outputs), outputs, strict=True)),
                                tape, "halted"))
    steps = measure(program, by_pass=False).after.steps
    bar = BARS.get(name)
    return OpRow(name, x, y, steps, baseline.get(f"{name} x={x} y={y}"), bar,
                 None if bar is None else steps <= bar)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "lowering.json"))
    parser.add_argument("--write-baseline", action="store_true",
                        help=f"write {BASELINE.relative_to(ROOT)} from this lowering")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    base = (json.loads(BASELINE.read_text(encoding="utf-8"))
            if BASELINE.exists() and not args.write_baseline else {"operations": {},
                                                                      "examples": {}})
    ops = [measure_operation(name, expr, x, y, base["operations"])
           for name, expr, values in OPERATIONS for x, y in values]
    rows = [measure(p) for p in programs()]
    if args.write_baseline:
        BASELINE.write_text(json.dumps({
            "operations": {f"{o.name} x={o.x} y={o.y}": o.steps for o in ops},
            "examples": {r.name: r.after.steps for r in rows if r.name.startswith("example:")},
        }, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {BASELINE}")
        return 0
    print(f"{'operation':<16} {'x':>12} {'y':>10} {'baseline':>9} {'steps':>6}  bar")
    for o in ops:
        before = "-" if o.baseline is None else str(o.baseline)
        bar = "" if o.bar is None else f"<= {o.bar}: {'met' if o.meets_bar else 'NOT met'}"
        print(f"{o.name:<16} {o.x:>12} {o.y:>10} {before:>9} {o.steps:>6}  {bar}")
    examples = [(r.name, base["examples"].get(r.name), r.after.steps) for r in rows
                if r.name.startswith("example:")]
    compared = [(b, a) for _, b, a in examples if b is not None]
    example_summary = {
        "median_steps_baseline": _median([b for b, _ in compared]) if compared else None,
        "median_steps": _median([a for _, _, a in examples]) if examples else None,
        "median_ratio": _median([a / b for b, a in compared]) if compared else None,
        "median_bar": "median steps at least 25% lower than the baseline",
        "meets_median_bar": (bool(compared) and _median([a for _, _, a in examples])
                             <= 0.75 * _median([b for b, _ in compared])),
        "per_example": {n: {"baseline": b, "steps": a} for n, b, a in examples},
    }
    print(f"examples: median steps {example_summary['median_steps_baseline']} -> "
          f"{example_summary['median_steps']}; median ratio {example_summary['median_ratio']}")
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
        "by_pass": {name: _saved(rows, name) for name in (run.__name__ for run in PASSES)},
    }
    print("-" * len(header))
    print(f"total: {totals['programs']} programs; image words "
          f"{totals['image_words_before']} -> "
          f"{totals['image_words_after']}; code words {totals['code_words_before']} -> "
          f"{totals['code_words_after']}; memory needed {totals['min_memory_before']} -> "
          f"{totals['min_memory_after']}; steps (runs that halt) {totals['steps_before']} -> "
          f"{totals['steps_after']}; macros rewritten or removed {totals['removed']}")
    print(f"{'pass (in order)':<22} {'image words saved':>18} {'code words saved':>17} "
          f"{'steps saved':>12}")
    for name, saved in totals["by_pass"].items():
        print(f"{name:<22} {saved['image_words']:>18} {saved['code_words']:>17} "
              f"{saved['steps']:>12}")
    print(f"({time.perf_counter() - start:.1f} s)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"totals": totals, "examples": example_summary,
                               "operations": [asdict(o) for o in ops],
                               # each pass's measures stay out: totals["by_pass"] sums them
                               "programs": [{k: v for k, v in asdict(r).items()
                                             if k != "by_pass"} for r in rows]},
                              indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
