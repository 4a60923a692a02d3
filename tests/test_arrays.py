"""Arrays beyond the global one-dimensional kind (issue 13) on every engine: local arrays
(on the stack in recursive functions), arrays passed by reference, two-dimensional arrays,
string initialisers.

The table (`tl_cases.py`) runs every case on the source and reference engines
(`test_source_interp`, `test_lowering`); here its array cases also run on the numpy and
onnx networks, and a recursion with a local array meets the stack limit at the same call on
all four engines: its frames are counted the same way everywhere (the saved cells plus the
callee's arrays, `stack.StackPlan`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tl_cases import CASES_BY_NAME, TlCase

from mlpc.compiler.driver import LoadedProgram, machine_config
from mlpc.compiler.options import CompileOptions
from mlpc.runtime.engines import get_engine
from mlpc.runtime.report import RunReport
from mlpc.runtime.request import RunRequest

ENGINES = ("source", "reference", "numpy", "onnx")
# the array cases of the table that stay within a few thousand SUBLEQ steps and a couple of
# thousand words (the network engines run about a millisecond per step at that size)
NETWORK_CASES = (
    "local_array_in_function",
    "local_array_set_each_time_its_declaration_runs",
    "local_array_each_activation_its_own",
    "array_parameter_global_local_and_parameter",
    "array_parameter_writes_reach_the_caller",
    "array_parameter_in_recursion",
    "merge_sort_with_a_local_array_per_activation",
    "matrix_global_and_local",
    "matrix_parameters_product",
    "string_and_brace_initialisers_set_the_length",
    "trap_index_through_a_parameter",
    "trap_index_in_a_matrix_column",
    "trap_index_in_a_matrix_row_through_a_parameter",
    "trap_index_in_a_local_array",
    "trap_index_in_a_local_array_on_the_stack",
)


def load(source: str, tmp_path: Path, word_bits: int = 32, stack: int | None = None
         ) -> LoadedProgram:
    path = tmp_path / "arrays.tl"
    path.write_text(source, encoding="utf-8")
    return LoadedProgram([str(path)], CompileOptions(word_bits=word_bits, stack=stack))


def observable(report: RunReport) -> tuple[object, ...]:
    return report.outputs, report.tape, report.status, report.detail


@pytest.mark.parametrize("name", NETWORK_CASES)
def test_array_case_on_every_engine(name: str, tmp_path: Path) -> None:
    case: TlCase = CASES_BY_NAME[name]
    program = load(case.source, tmp_path, case.word_bits)
    config = machine_config(program.image, word_bits=case.word_bits, tape_out=case.tape_out)
    expected = (case.outputs, case.expected_tape, case.status, case.detail)
    steps = {}
    for engine in ENGINES:
        report = get_engine(engine)(RunRequest(program, config, case.tape, case.inputs,
                                               100_000))
        assert observable(report) == expected, engine
        steps[engine] = report.steps
    assert steps["numpy"] == steps["onnx"] == steps["reference"]


# `down` keeps a two-word array on the stack. A recursive call saves the return address and
# the array's address (`pad[1]` is read after the call; k is not) and places the callee's
# two words: 4 words; the first call, from the top level, saves nothing and places 2. So
# depth d needs 2 + 4 (d - 1) words: the default stack (256 of the largest frame, 1024
# words) holds depth 256, `--stack 100` depth 25. r = d + (1 + ... + d - 1).
DOWN = ("input depth;\noutput r;\nfunc down(k) {\n    var pad[2];\n    pad[1] = k;\n"
        "    if (k == depth) { return k; }\n    return down(k + 1) + pad[1];\n}\n"
        "r = down(1);\n")
STACK_LIMIT = (
    (256, None, ("source", "reference", "onnx"), ("halted", 256 + 255 * 256 // 2)),
    (257, None, ("source", "reference", "onnx"), ("trap", 0)),
    (25, 100, ENGINES, ("halted", 25 + 24 * 25 // 2)),
    (26, 100, ENGINES, ("trap", 0)),
    (25, 97, ("source", "reference"), ("trap", 0)),
    (25, 98, ("source", "reference"), ("halted", 325)),
)


@pytest.mark.parametrize("depth, stack, engines, expected", STACK_LIMIT,
                         ids=[f"{d}-{s}" for d, s, _, _ in STACK_LIMIT])
def test_recursion_with_a_local_array_stops_at_the_same_call_everywhere(
        depth: int, stack: int | None, engines: tuple[str, ...], expected: tuple[str, int],
        tmp_path: Path) -> None:
    program = load(DOWN, tmp_path, stack=stack)
    config = machine_config(program.image)
    status, r = expected
    detail = "stack overflow at line 7" if status == "trap" else ""
    for engine in engines:
        report = get_engine(engine)(RunRequest(program, config, (), (("depth", depth),),
                                               1_000_000))
        assert observable(report) == ((("r", r),), (), status, detail), engine


# --- where arrays live ----------------------------------------------------------------------


def test_local_arrays_of_functions_that_do_not_recurse_need_no_stack(tmp_path: Path) -> None:
    """No two activations of a function off every cycle overlap: its arrays sit at fixed
    addresses (their words are in the image), the program has no stack."""
    source = ("output r;\nfunc f(k) { var big[100]; big[k] = k; return big[k] + big[0]; }\n"
              "func g(a[]) { a[99] = 5; return a[99]; }\n"
              "func h() { var big[100]; return g(big) + big[99]; }\nr = f(7) + h();\n")
    program = load(source, tmp_path)
    image = program.image
    assert image.min_memory == len(image.words)
    names = dict(image.symbols)
    assert abs(names["h.big"] - names["f.big"]) >= 100  # two blocks of 100 words
    assert max(names["h.big"], names["f.big"]) + 100 <= len(image.words)
    report = get_engine("reference")(RunRequest(program, machine_config(image)))
    assert report.outputs == (("r", 17),)


def test_a_recursive_function_has_its_arrays_on_the_stack(tmp_path: Path) -> None:
    """`walk` keeps `seen[6]` on the stack: each recursive call saves the return address and
    the array's address (read after the call) and places 6 words, 8 in all; the default stack
    is 256 of those. Each activation writes its own array, which the caller reads back after
    the call returns."""
    source = ("output r;\nfunc walk(n) {\n    var seen[6];\n    seen[5] = n;\n"
              "    if (n == 0) { return 0; }\n    return walk(n - 1) * 10 + seen[5];\n}\n"
              "r = walk(4);\n")
    program = load(source, tmp_path)
    image = program.image
    assert image.min_memory - len(image.words) == 256 * 8
    assert "walk.seen" in dict(image.symbols)  # a cell: the address of this activation's
    for engine in ("source", "reference"):
        report = get_engine(engine)(RunRequest(program, machine_config(image)))
        assert report.outputs == (("r", 1234),), engine
