"""`eof()` on every engine: the table's eof cases on all four engines (and the specialised
network), ONNX batches whose items have tapes of different lengths full of -1 words (the
`tape_length` input), plain onnxruntime without `tape_length` (its default), `mlpc verify`,
and the tape-length limit at W = 16."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import run_python_strictly
from tl_cases import CASES, TlCase

from mlpc.compiler.driver import LoadedProgram, machine_config
from mlpc.compiler.model import compile_model
from mlpc.compiler.options import CompileOptions
from mlpc.errors import MlpcError
from mlpc.runtime.engines import get_engine
from mlpc.runtime.onnx_model import OnnxModel
from mlpc.runtime.request import RunRequest, prepared_image

REPO = Path(__file__).resolve().parents[1]
EOF_CASES = [case for case in CASES if "eof()" in case.source]

# Counts the tape's words, sums them and echoes them, -1 included, then shows that the end
# stays the end: `read()` gives -1 and `eof()` 1.
ECHO = """output n, s;
while (!eof()) { var x = read(); n += 1; s += x; write(x); }
write(read());
write(eof());
"""


def _program(tmp_path: Path, source: str, word_bits: int = 32) -> LoadedProgram:
    path = tmp_path / "prog.tl"
    path.write_text(source, encoding="utf-8")
    return LoadedProgram([str(path)], CompileOptions(word_bits=word_bits))


def _observed(report: object) -> tuple[object, ...]:
    return (report.outputs, report.tape, report.status, report.detail)  # type: ignore[attr-defined]


def test_the_table_has_the_eof_cases() -> None:
    names = {case.name for case in EOF_CASES}
    assert {"eof_empty_tape", "eof_tape_of_minus_ones", "eof_reading_past_the_end",
            "eof_in_functions_and_recursion", "eof_sixteen_bits"} <= names


@pytest.mark.parametrize("case", EOF_CASES, ids=[c.name for c in EOF_CASES])
def test_eof_cases_on_every_engine(case: TlCase, tmp_path: Path) -> None:
    program = _program(tmp_path, case.source, case.word_bits)
    config = machine_config(program.image, word_bits=case.word_bits)
    expected = (case.outputs, case.expected_tape, case.status, case.detail)
    for engine in ("source", "reference", "numpy", "onnx"):
        report = get_engine(engine)(RunRequest(program, config, case.tape, case.inputs,
                                               200_000))
        assert _observed(report) == expected, engine
    special = get_engine("onnx")(RunRequest(program, config, case.tape, case.inputs, 200_000,
                                            specialise=True))
    assert _observed(special) == expected


def test_the_tape_length_is_loaded_into_its_cell(tmp_path: Path) -> None:
    """Like a named input: the hidden cell holds the tape's length before the first step;
    a program without eof() has no such cell."""
    program = _program(tmp_path, ECHO)
    image = program.image
    assert image.tape_length_address is not None
    assert image.tape_length_address not in dict(image.symbols).values()
    config = machine_config(image)
    words = prepared_image(RunRequest(program, config, (-1, -1, 7)))
    assert words[image.tape_length_address] == 3
    assert image.words[image.tape_length_address] == 0
    plain = _program(tmp_path, "output x;\nx = read();\n").image
    assert plain.tape_length_address is None


def test_each_read_costs_one_step_more_only_with_eof(tmp_path: Path) -> None:
    """Only programs that use eof() count the tape down: one step per read(), and one more
    for each read that leaves no word (the clamp to 0); a program without eof() runs the
    steps it always did."""
    reads = "output n;\nfor (var i = 0; i < 3; i += 1) { n += read(); }\n"
    steps = {}
    for name, source in (("plain", reads), ("eof", reads + "output e;\ne = eof();\n")):
        program = _program(tmp_path, source)
        config = machine_config(program.image)
        steps[name] = {k: get_engine("reference")(RunRequest(program, config, (5,) * k)).steps
                       for k in (0, 2, 3, 5)}
    assert len(set(steps["plain"].values())) == 1
    extra = {k: steps["eof"][k] - steps["plain"][k] for k in steps["plain"]}
    # 3 reads, each one step; the clamp runs on every read that leaves 0 words or fewer
    assert extra[0] - extra[5] == 3
    assert extra[2] - extra[5] == 2
    assert extra[3] - extra[5] == 1


def test_an_onnx_batch_of_tapes_of_different_lengths(tmp_path: Path) -> None:
    """One onnxruntime batch: the tapes are padded with -1 to the longest, and each item's
    `tape_length` tells its eof() where its own tape ends."""
    program = _program(tmp_path, ECHO)
    config = machine_config(program.image)
    tapes = [(-1, -1, 5), (), (-1,), (7, -1, -1, -1, -1), (-1, -1)]
    model = OnnxModel(compile_model(program.image, config))
    assert model.takes_tape_length
    run = model.run(tapes=tapes, max_steps=100_000)
    for i, tape in enumerate(tapes):
        report = run.report(i)
        source = get_engine("source")(RunRequest(program, config, tape))
        assert _observed(report) == _observed(source)
        assert report.outputs == (("n", len(tape)), ("s", sum(tape)))
        assert report.tape == (*tape, -1, 1)
    assert run.report(3).steps == get_engine("reference")(
        RunRequest(program, config, tapes[3])).steps
    chunked = model.run(tapes=tapes, max_steps=100_000, chunk=7)  # resumed every 7 steps
    assert [_observed(chunked.report(i)) for i in range(len(tapes))] == [
        _observed(run.report(i)) for i in range(len(tapes))]


def test_mlpc_run_batch_with_minus_one_words(tmp_path: Path) -> None:
    prog = tmp_path / "echo.tl"
    prog.write_text(ECHO, encoding="utf-8")
    batch = tmp_path / "items.jsonl"
    tapes = [[-1, -1, -1], [], [4, -1], [-1]]
    batch.write_text("".join(json.dumps({"tape": t}) + "\n" for t in tapes), encoding="utf-8")
    results = {}
    for engine in ("onnx", "source"):
        done = subprocess.run([sys.executable, "-m", "mlpc.cli", "run", str(prog), "--batch",
                               str(batch), "--json", "--engine", engine],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        results[engine] = [json.loads(line) for line in done.stdout.splitlines()]
    for tape, onnx_item, source_item in zip(tapes, results["onnx"], results["source"],
                                            strict=True):
        assert onnx_item["outputs"] == source_item["outputs"] == {"n": len(tape),
                                                                  "s": sum(tape)}
        assert onnx_item["tape"] == source_item["tape"] == [*tape, -1, 1]


def test_plain_onnxruntime_with_and_without_tape_length(tmp_path: Path) -> None:
    """A model of a program that uses eof() has the optional input `tape_length` (no warning
    from a plain session); left out, every item's tape is the fed tape's whole width."""
    program = _program(tmp_path, ECHO)
    path = tmp_path / "echo.onnx"
    path.write_bytes(compile_model(program.image, machine_config(program.image))
                     .SerializeToString())
    script = (
        "import numpy as np, onnxruntime as ort\n"
        f"s = ort.InferenceSession({str(path)!r})\n"
        "print([i.name for i in s.get_inputs()])\n"
        "names = [o.name for o in s.get_outputs()]\n"
        "tape = np.array([[-1, -1, 5], [4, -1, -1]])\n"
        "for feeds in ({'tape': tape}, {'tape': tape, 'tape_length': np.array([3, 1])},\n"
        "              {'tape': tape, 'tape_length': np.array([2])}, {}):\n"
        "    out = dict(zip(names, s.run(None, feeds)))\n"
        "    print(out['n'].tolist(), out['s'].tolist(), out['output_length'].tolist())\n"
    )
    stdout = run_python_strictly(script)
    assert stdout.splitlines() == [
        "['tape', 'tape_length', 'max_steps', 'resume_state']",
        "[3, 3] [3, 2] [5, 5]",  # default: both tapes 3 words long, -1 words included
        "[3, 1] [3, 4] [5, 3]",  # item 1's tape is [4]: its -1 padding is not read
        "[2, 2] [-2, 3] [4, 4]",  # one length for every item
        "[0] [0] [2]",  # no tape at all
    ]


def test_out_of_range_tape_lengths_are_clamped_to_the_tape(tmp_path: Path) -> None:
    """`tape_length` past the fed width counts only the words there are, a negative one
    none: the state stays a valid machine state."""
    program = _program(tmp_path, ECHO)
    model = compile_model(program.image, machine_config(program.image))
    session = ort.InferenceSession(model.SerializeToString())
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {"tape": np.array([[-1, 6], [2, 2]]),
                                             "tape_length": np.array([99, -4])}), strict=True))
    assert out["n"].tolist() == [2, 0]
    assert out["s"].tolist() == [5, 0]


def test_models_without_eof_have_no_tape_length_input() -> None:
    program = LoadedProgram([str(REPO / "examples" / "gcd.tl")], CompileOptions())
    model = OnnxModel(compile_model(program.image, machine_config(program.image)))
    assert not model.takes_tape_length
    assert [i.name for i in model.session.get_inputs()] == [
        "a", "b", "tape", "max_steps", "resume_state"]


def test_verify_agrees_on_a_tape_of_minus_ones(tmp_path: Path) -> None:
    prog = tmp_path / "echo.tl"
    prog.write_text(ECHO, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mlpc.cli", "verify", str(prog),
                           "--tape=-1,-1,9,-1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "agree: reference, numpy, onnx" in done.stdout
    assert "n = 4, s = 6" in done.stdout


def test_a_tape_too_long_to_count_at_sixteen_bits(tmp_path: Path) -> None:
    """At W = 16 eof() counts at most 32,767 words: a longer tape is a one-line error on
    every engine (a program without eof() takes it)."""
    program = _program(tmp_path, "output n;\nwhile (!eof()) { read(); n += 1; }\n", 16)
    config = machine_config(program.image, word_bits=16, tape_in=40_000)
    tape = (1,) * 32_768
    for engine in ("source", "reference"):
        with pytest.raises(MlpcError, match="takes at most 32767 at W = 16"):
            get_engine(engine)(RunRequest(program, config, tape))
    model = OnnxModel(compile_model(program.image, config))
    with pytest.raises(MlpcError, match="takes at most 32767 at W = 16"):
        model.run(tapes=[tape])
    fits = get_engine("reference")(RunRequest(program, config, tape[1:], max_steps=10**7))
    assert fits.outputs == (("n", 32_767),)
    plain = _program(tmp_path, "output x;\nx = read();\n", 16)
    plain_config = machine_config(plain.image, word_bits=16, tape_in=40_000)
    assert get_engine("reference")(RunRequest(plain, plain_config, tape)).outputs == (
        ("x", 1),)


def test_the_readme_example_says_what_it_does(tmp_path: Path) -> None:
    """The README's eof() example, run on the tape its comment names, gives its numbers."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("\n```c\noutput n, sum;\n", 1)[1].split("\n```", 1)[0]
    assert "// a tape of -1, -1, 5: n = 3, sum = 3" in block
    program = _program(tmp_path, "output n, sum;\n" + block + "\n")
    config = machine_config(program.image)
    for engine in ("source", "reference"):
        report = get_engine(engine)(RunRequest(program, config, (-1, -1, 5)))
        assert report.outputs == (("n", 3), ("sum", 3))
