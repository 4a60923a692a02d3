"""`mlpc verify`: the engines agree on hello.asm and on .tl programs (with the source engine's
final results), a deliberately broken engine is caught at the step it breaks with the cell
named, and usage errors are one line with exit status 2."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mlpc.cli import main
from mlpc.compiler.driver import load_program, machine_config
from mlpc.compiler.options import CompileOptions
from mlpc.runtime import verify
from mlpc.runtime.engines import get_engine
from mlpc.runtime.report import RunReport
from mlpc.runtime.request import RunRequest
from mlpc.runtime.verify import Snapshot

REPO = Path(__file__).resolve().parents[1]
HELLO = str(REPO / "examples" / "hello.asm")
HELLO_LINE_12 = "line 12: loop:   ptr: msg -1         # output M[ptr], the current character"
PROGRAM_TL = """\
input a, b;
output s;
var t[2] = {3, 4};
s = a + b - t[1];
if (s > 10) { print("big ", s, "\\n"); } else { write(s); }
"""
DIVIDE_TL = """\
input a, b;
output q;
q = a / b;
"""


def verify_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["verify", *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def reference_steps(path: str, **inputs: int) -> int:
    program = load_program([path], CompileOptions())
    config = machine_config(program.image)
    request = RunRequest(program, config, (), tuple(inputs.items()))
    return get_engine("reference")(request).steps


def test_hello_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_cli(capsys, HELLO) == (
        0, "agree: reference, numpy, onnx for 56 steps (halted)\n", "")


def test_step_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_cli(capsys, HELLO, "--steps", "10", "--engines", "reference,numpy") == (
        0, "agree: reference, numpy for 10 steps (still running, --steps 10)\n", "")


def test_tl_program_agrees_with_the_source_engine(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    src = tmp_path / "prog.tl"
    src.write_text(PROGRAM_TL)
    steps = reference_steps(str(src), a=9, b=8)
    status, out, err = verify_cli(capsys, str(src), "--input", "a=9", "--input", "b=8")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"agree: reference, numpy, onnx for {steps} steps (halted)",
        f"source: agrees with the full reference run (halted, {steps} SUBLEQ steps, "
        "7 output words, s = 13)",
    ]


def test_tl_trap_agrees(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "div.tl"
    src.write_text(DIVIDE_TL)
    steps = reference_steps(str(src), a=7, b=0)
    status, out, _ = verify_cli(capsys, str(src), "--input", "a=7", "--input", "b=0")
    assert status == 0
    assert out.splitlines() == [
        f"agree: reference, numpy, onnx for {steps} steps (halted)",
        f"source: agrees with the full reference run (trap: division by zero at line 3, "
        f"{steps} SUBLEQ steps, 0 output words, q = 0)",
    ]


def test_fault_agrees(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    prog = tmp_path / "f.sq"
    prog.write_text("0 0 3 7 0 0\n")  # the second instruction's a = 7 is outside memory
    assert verify_cli(capsys, str(prog), "--memory", "6", "--tape-in", "0") == (
        0, "agree: reference, numpy, onnx for 2 steps (fault)\n", "")


def _corrupt(monkeypatch: pytest.MonkeyPatch, stepper: type, at_step: int,
             change: dict[str, object]) -> None:
    """Make `stepper` report a corrupted snapshot after its step number `at_step`."""
    original = stepper.step
    count = {"n": 0}

    def broken(self: object) -> Snapshot:
        snap: Snapshot = original(self)
        count["n"] += 1
        if count["n"] == at_step:
            fields = {k: (v(snap) if callable(v) else v) for k, v in change.items()}
            snap = dataclasses.replace(snap, **fields)  # type: ignore[arg-type]
        return snap

    monkeypatch.setattr(stepper, "step", broken)


def _with_cell(snap: Snapshot, address: int, delta: int) -> tuple[int, ...]:
    memory = list(snap.memory)
    memory[address] += delta
    return tuple(memory)


@pytest.mark.parametrize("k", [1, 5, 30])
def test_broken_numpy_engine_is_caught(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str], k: int) -> None:
    # hello.asm: `count` (M[18]) starts at 14 and drops by one every 4 steps, at steps 3, 7, ...
    count_after = 14 - (k + 1) // 4
    _corrupt(monkeypatch, verify.NumpyStepper, k,
             {"memory": lambda s: _with_cell(s, 18, 100)})
    status, out, err = verify_cli(capsys, HELLO)
    assert (status, err) == (1, "")
    lines = out.splitlines()
    assert lines[0] == f"DIVERGENCE at step {k}: numpy differs from reference"
    assert lines[2:] == [f"  memory count (M[18]): reference {count_after}, "
                         f"numpy {count_after + 100}"]


def test_broken_engine_report_names_the_instruction(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _corrupt(monkeypatch, verify.NumpyStepper, 5, {"memory": lambda s: _with_cell(s, 18, 100)})
    status, out, _ = verify_cli(capsys, HELLO, "--engines", "reference,numpy")
    assert status == 1
    assert out.splitlines() == [
        "DIVERGENCE at step 5: numpy differs from reference",
        f"  step 5 executed pc 0: 20 -1 3   {HELLO_LINE_12}",
        "  memory count (M[18]): reference 13, numpy 113",
    ]


def test_broken_onnx_engine_pc_and_output(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _corrupt(monkeypatch, verify.OnnxStepper, 9,
             {"pc": lambda s: s.pc + 3, "tape_out": lambda s: (*s.tape_out[:-1], 0)})
    status, out, _ = verify_cli(capsys, HELLO)
    assert status == 1
    assert out.splitlines() == [
        "DIVERGENCE at step 9: onnx differs from reference",
        f"  step 9 executed pc 0: 21 -1 3   {HELLO_LINE_12}",
        "  pc: reference 3, onnx 6",
        "  output word 2: reference 108, onnx 0",
    ]


def test_broken_engine_in_a_tl_program_names_variable_and_macro(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = tmp_path / "prog.tl"
    src.write_text(PROGRAM_TL)
    address = dict(load_program([str(src)], CompileOptions()).image.symbols)["s"]
    _corrupt(monkeypatch, verify.NumpyStepper, 2, {"memory": lambda s: _with_cell(s, address, 7)})
    status, out, _ = verify_cli(capsys, str(src), "--input", "a=9", "--input", "b=8",
                                "--engines", "reference,numpy")
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == "DIVERGENCE at step 2: numpy differs from reference"
    assert lines[1].endswith("MOV s, a ; line 4: s = a + b - t[1];")
    assert lines[2:] == [f"  memory s (M[{address}]): reference 0, numpy 7"]


def test_source_divergence_is_reported() -> None:
    result = verify.VerifyResult("p.tl", ("reference",), steps=3,
                                 final=Snapshot((0, 0, 0), -1, verify.Fault.NONE, 3, ()))
    ref = RunReport((("s", 5),), (65,), "halted", "", 3, "reference")
    src = RunReport((("s", 6),), (66,), "trap", "division by zero at line 2", 9, "source")
    verify.compare_with_source(result, ref, src)
    assert not result.agree
    assert result.render(2000).splitlines() == [
        "agree: reference for 3 steps (halted)",
        "DIVERGENCE from the source engine (final results):",
        "  output s: reference 5, source 6",
        "  tape: reference [65], source [66]",
        "  status: reference halted, source trap: division by zero at line 2",
    ]


def test_source_not_compared_after_a_step_limit(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    src = tmp_path / "loop.tl"
    src.write_text("output n;\nwhile (1) { n += 1; }\n")
    status, out, _ = verify_cli(capsys, str(src), "--steps", "20", "--max-steps", "1000",
                                "--engines", "reference,source")
    assert status == 0
    assert out.splitlines() == [
        "agree: reference for 20 steps (still running, --steps 20)",
        "source: not compared (the reference engine did not finish within --max-steps)",
    ]


def test_word_wrap_at_both_ends(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # M[3] -= M[4] with M[3] = -(2^31 - 1), M[4] = 2^31 - 1: the difference -2^32 + 2 wraps
    # to 2, so the next pc is 3 > m - 3 and step 2 faults. verify found onnx giving 0 here:
    # onnxruntime's int64 ReduceSum is exact only to 2^53 (fixed in fb96768 with MatMul)
    prog = tmp_path / "wrap.sq"
    prog.write_text("4 3 -1 -2147483647 2147483647\n")
    assert verify_cli(capsys, str(prog), "--memory", "5", "--tape-in", "0") == (
        0, "agree: reference, numpy, onnx for 2 steps (fault)\n", "")


def test_division_agrees(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # the .tl program where verify first showed the ReduceSum bug: onnx printed q = 1
    src = tmp_path / "div.tl"
    src.write_text(DIVIDE_TL + 'print("q=", q, "\\n");\n')
    steps = reference_steps(str(src), a=7, b=2)
    status, out, _ = verify_cli(capsys, str(src), "--input", "a=7", "--input", "b=2")
    assert status == 0
    assert out.splitlines() == [
        f"agree: reference, numpy, onnx for {steps} steps (halted)",
        f"source: agrees with the full reference run (halted, {steps} SUBLEQ steps, "
        "4 output words, q = 3)",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engines", "reference,gpu"],
         "error: --engines: unknown engine 'gpu' (choose from reference, numpy, onnx, source)\n"),
        (["--engines", "numpy"],
         "error: --engines: name at least two engines, one of them machine-level\n"),
        (["--engines", "numpy,numpy"], "error: --engines: an engine is named twice\n"),
        (["--engines", "reference,source"],
         "error: --engines: the source engine runs .tl programs only\n"),
        (["--steps", "x"], "error: mlpc verify: argument --steps: not an integer: 'x'\n"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], args: list[str],
                      message: str) -> None:
    assert verify_cli(capsys, HELLO, *args) == (2, "", message)


def test_help_documents_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["verify", "--help"])
    assert exc.value.code == 0
    assert ("exit status: 0 all engines agree, 1 a divergence (or errors in the program, its "
            "inputs or\nfiles), 2 usage errors.") in capsys.readouterr().out
