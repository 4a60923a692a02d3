"""`mlpc run` batches (`--input NAME=V1,V2`, `--batch FILE.jsonl`), their exit status, and the
report's layout, as a user runs them: in a subprocess (README.md: command line); plus the batch-size
rule of `OnnxModel.run`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

from mlpc.cli import main
from mlpc.errors import MlpcError
from mlpc.runtime import engines, onnx_model
from mlpc.runtime.progress import Progress

REPO = Path(__file__).resolve().parents[1]
GCD = REPO / "examples" / "gcd.tl"
FACTORIAL = REPO / "examples" / "factorial.tl"
BRAINFUCK = REPO / "examples" / "brainfuck.tl"


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout.decode("utf-8")
        self.err = proc.stderr.decode("utf-8")

    def objects(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines()]


def mlpc(cwd: Path, *args: str | Path, stdin: bytes = b"") -> Result:
    proc = run_cli(args, cwd=cwd, stdin=stdin)
    result = Result(proc)
    assert "Traceback" not in result.err
    return result


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batch")


@pytest.fixture(scope="module")
def gcd_model(work: Path) -> Path:
    result = mlpc(work, "compile", GCD, "-o", "gcd.onnx")
    assert result.code == 0, result.err
    return work / "gcd.onnx"


def one_line_error(result: Result, code: int, *words: str) -> None:
    assert result.code == code
    assert result.out == ""
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    for word in words:
        assert word in result.err


# --- --input lists -------------------------------------------------------------------------


def test_input_lists_run_a_batch(work: Path) -> None:
    result = mlpc(work, "run", GCD, "--input", "a=1071,48", "--input", "b=462,18",
                  "--engine", "reference")
    assert (result.code, result.err) == (0, "")
    assert result.out == "[1] a=1071 b=462\ng = 21\n[2] a=48 b=18\ng = 6\n"


def test_a_single_value_is_every_items(work: Path) -> None:
    result = mlpc(work, "run", GCD, "--input", "a=1071,48,35", "--input", "b=462",
                  "--engine", "source", "--json")
    assert result.code == 0
    assert [o["outputs"] for o in result.objects()] == [{"g": 21}, {"g": 6}, {"g": 7}]


def test_input_lists_of_different_lengths_are_an_error(work: Path) -> None:
    result = mlpc(work, "run", GCD, "--input", "a=1071,48", "--input", "b=462,18,5",
                  "--engine", "reference")
    one_line_error(result, 2, "a has 2 values", "b has 3")


def test_input_list_items_must_be_integers(work: Path) -> None:
    result = mlpc(work, "run", GCD, "--input", "a=1071,x", "--input", "b=462",
                  "--engine", "reference")
    one_line_error(result, 1, "not an integer: 'x'")


def test_an_items_input_is_checked_with_its_number(work: Path) -> None:
    result = mlpc(work, "run", GCD, "--input", "a=1,99999999999", "--input", "b=2",
                  "--engine", "reference")
    one_line_error(result, 1, "item 2:", "does not fit in 32 bits")


def test_single_run_json_is_still_one_object(work: Path) -> None:
    result = mlpc(work, "run", GCD, "--input", "a=1071", "--input", "b=462", "--json",
                  "--engine", "reference")
    assert result.code == 0
    assert result.out.count("\n") == 1
    assert json.loads(result.out)["outputs"] == {"g": 21}


@pytest.mark.parametrize("command", ["trace", "verify"])
def test_lists_are_for_run_only(work: Path, command: str) -> None:
    result = mlpc(work, command, GCD, "--input", "a=1,2", "--input", "b=3")
    one_line_error(result, 2, "one value expected")


# --- the onnx engine: one onnxruntime batch -------------------------------------------------


def test_model_file_batch_matches_the_reference(work: Path, gcd_model: Path) -> None:
    args = ["--input", "a=1071,48,0", "--input", "b=462,18,5", "--json"]
    onnx = mlpc(work, "run", gcd_model, *args)
    reference = mlpc(work, "run", GCD, *args, "--engine", "reference")
    assert onnx.code == reference.code == 0
    got, want = onnx.objects(), reference.objects()
    assert len(got) == 3
    for g, w in zip(got, want, strict=True):
        assert g["engine"] == "onnx"
        assert {k: v for k, v in g.items() if k != "engine"} == {
            k: v for k, v in w.items() if k != "engine"}


def test_program_batch_on_the_onnx_engine(work: Path) -> None:
    result = mlpc(work, "run", GCD, "--input", "a=1071,48", "--input", "b=462,18", "--json")
    assert result.code == 0
    assert [(o["outputs"], o["engine"]) for o in result.objects()] == [
        ({"g": 21}, "onnx"), ({"g": 6}, "onnx")]


# --- --batch FILE.jsonl ---------------------------------------------------------------------


def test_batch_file_with_inputs_and_tapes(work: Path) -> None:
    (work / "bf.jsonl").write_text('{"tape": ",[.,]!hi"}\n\n{"tape": [44, 46, 33, 65]}\n')
    result = mlpc(work, "run", BRAINFUCK, "--batch", "bf.jsonl", "--engine", "reference",
                  "--json")
    assert result.code == 0
    assert [(o["text"], o["outputs"]) for o in result.objects()] == [
        ("hi", {"executed": 8}), ("A", {"executed": 2})]


def test_batch_file_from_stdin_with_a_default_input(work: Path) -> None:
    lines = b'{"a": 1071, "b": 462}\n{"b": 18}\n'
    result = mlpc(work, "run", GCD, "--batch", "-", "--input", "a=48", "--engine", "source",
                  stdin=lines)
    assert (result.code, result.err) == (0, "")
    assert result.out == "[1] a=1071 b=462\ng = 21\n[2] a=48 b=18\ng = 6\n"


def test_batch_file_on_a_model(work: Path, gcd_model: Path) -> None:
    (work / "gcd.jsonl").write_text('{"a": 1071, "b": 462}\n{"a": 48, "b": 18}\n')
    result = mlpc(work, "run", gcd_model, "--batch", "gcd.jsonl", "--json")
    assert result.code == 0
    assert [o["outputs"] for o in result.objects()] == [{"g": 21}, {"g": 6}]


@pytest.mark.parametrize(("text", "code", "words"), [
    ('{"a": 1, "b": 2}\n{"a": 1\n', 1, ["x.jsonl:2:", "not valid JSON"]),
    ('[1, 2]\n', 1, ["x.jsonl:1:", "expected a JSON object"]),
    ('{"a": 1.5, "b": 2}\n', 1, ["x.jsonl:1:", "input a: not an integer: 1.5"]),
    ('{"a": 1, "b": 2, "c": 3}\n', 1, ["x.jsonl:1:", "unknown input 'c'"]),
    ('{"a": 1}\n', 1, ["x.jsonl:1:", "missing input: b"]),
    ('{"a": 1, "b": 2, "tape": {"x": 1}}\n', 1, ["x.jsonl:1:", "\"tape\" must be"]),
    ('\n\n', 1, ["x.jsonl: no batch items"]),
])
def test_batch_file_errors(work: Path, text: str, code: int, words: list[str]) -> None:
    (work / "x.jsonl").write_text(text)
    result = mlpc(work, "run", GCD, "--batch", "x.jsonl", "--engine", "reference")
    one_line_error(result, code, *words)


def test_batch_file_usage_errors(work: Path) -> None:
    missing = mlpc(work, "run", GCD, "--batch", "nowhere.jsonl", "--engine", "reference")
    one_line_error(missing, 1, "nowhere.jsonl: no such file")
    (work / "ok.jsonl").write_text('{"a": 1, "b": 2}\n')
    both = mlpc(work, "run", GCD, "--batch", "ok.jsonl", "--input", "a=1,2")
    one_line_error(both, 2, "cannot be combined")
    stdin = mlpc(work, "run", GCD, "--batch", "-", "--stdin")
    one_line_error(stdin, 2, "standard input")


# --- exit status of a batch: the largest of its items' --------------------------------------


@pytest.mark.parametrize(("n", "max_steps", "code"), [
    ("5,6", None, 0),          # both halt
    ("5,-1", None, 3),         # one traps (the assert)
    ("5,-1,12", "200", 4),     # one traps, one runs out of steps: 4
])
def test_batch_exit_status_is_the_worst_items(work: Path, n: str, max_steps: str | None,
                                              code: int) -> None:
    budget = ["--max-steps", max_steps] if max_steps else []
    result = mlpc(work, "run", FACTORIAL, "--input", f"n={n}", "--engine", "reference",
                  "--json", *budget)
    assert result.code == code
    statuses = [o["status"] for o in result.objects()]
    assert len(statuses) == len(n.split(","))
    if code == 3:
        text = mlpc(work, "run", FACTORIAL, "--input", f"n={n}", "--engine", "reference")
        assert text.code == 3
        assert text.err.startswith("mlpc: [2] trap: assertion failed at line")


def test_help_documents_the_batch_exit_status(work: Path) -> None:
    result = mlpc(work, "run", "--help")
    assert result.code == 0
    text = " ".join(result.out.split())
    assert "--batch FILE.jsonl" in text
    assert "A batch exits with the largest status of its items" in text
    for kind in (".tl", ".sq/.dec", ".asm", "MODEL.onnx"):
        assert kind in text


# --- the report: program text and named outputs apart --------------------------------------


def test_named_outputs_start_on_their_own_line(work: Path) -> None:
    result = mlpc(work, "run", BRAINFUCK, "--stdin", "--engine", "reference",
                  stdin=b",[.,]!hi")
    assert (result.code, result.out) == (0, "hi\nexecuted = 8\n")


def test_text_ending_in_a_newline_gets_no_blank_line(work: Path) -> None:
    result = mlpc(work, "run", FACTORIAL, "--input", "n=3", "--engine", "reference")
    assert (result.code, result.out) == (0, "3! = 6\nf = 6\n")


# --- OnnxModel.run: batch sizes must agree (1 is used for every item) -----------------------


@pytest.fixture(scope="module")
def model(gcd_model: Path) -> onnx_model.OnnxModel:
    return onnx_model.OnnxModel(str(gcd_model))


def test_python_batch_sizes_must_agree(model: onnx_model.OnnxModel) -> None:
    with pytest.raises(MlpcError, match="batch sizes differ: input a has 2 items, the batch has 3"):
        model.run({"a": [1071, 48], "b": [462, 18, 5]})
    with pytest.raises(MlpcError, match="batch sizes differ: tapes has 2 items, the batch has 3"):
        model.run({"a": [1071, 48, 1], "b": [462, 18, 5]}, tapes=((), ()))
    with pytest.raises(MlpcError, match="unknown input 'c'"):
        model.run({"a": [1], "b": [2], "c": [3]})


def test_python_size_one_is_every_items(model: onnx_model.OnnxModel) -> None:
    run = model.run({"a": [1071, 48], "b": [462]})
    assert [r.outputs for r in (run.report(0), run.report(1))] == [(("g", 21),), (("g", 6),)]
    scalar = model.run({"a": 1071, "b": [462, 21]}, tapes=((),))
    assert [int(v) for v in dict(scalar.outputs)["g"]] == [21, 21]


# --- progress in a batch --------------------------------------------------------------------


@pytest.mark.parametrize(("engine", "calls"), [("onnx", 1), ("reference", 2)])
def test_batch_keeps_the_progress_display(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], engine: str,
                                          calls: int) -> None:
    """One display for the onnxruntime batch, one per item on the other engines, with the
    total only for a given --max-steps."""
    made: list[tuple[int | None, bool]] = []

    class Recording(Progress):
        def __init__(self, total: int | None, enabled: bool, unit: str = "step") -> None:
            made.append((total, enabled))
            super().__init__(total, enabled, unit)

    monkeypatch.setattr(engines, "Progress", Recording)
    monkeypatch.setattr(onnx_model, "Progress", Recording)
    args = ["run", str(GCD), "--input", "a=1071,48", "--input", "b=462,18", "--engine", engine]
    assert main(args) == 0
    assert main([*args, "--max-steps", "5000"]) == 0
    assert "g = 21" in capsys.readouterr().out
    assert made == [(None, True)] * calls + [(5000, True)] * calls
