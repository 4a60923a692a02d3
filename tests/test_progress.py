"""The progress display of long runs: runs are made in pieces sized by time (so the display
moves a few times a second) without changing any result, and the display shows a total only
when the user set --max-steps."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlpc.cli import main
from mlpc.compiler.driver import load_program, machine_config
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.model import compile_model
from mlpc.compiler.options import CompileOptions
from mlpc.runtime import engines, onnx_engine, onnx_model, reference
from mlpc.runtime.machine import initial_state
from mlpc.runtime.onnx_model import MIN_CHUNK, OnnxModel
from mlpc.runtime.progress import ChunkSizer, Progress

REPO = Path(__file__).resolve().parents[1]
HELLO = str(REPO / "examples" / "hello.asm")
COUNT_TL = """\
input n;
output last;
var i = 0;
while (i < n) { write(i * 7); last = i; i += 1; }
"""


def test_chunk_sizer_doubles_and_halves_by_measured_time() -> None:
    sizer = ChunkSizer(1024, target_s=0.25, smallest=16, largest=1 << 20)
    assert sizer.size == 1024
    sizer.record(1024, 0.01)  # far too fast: doubled until it would take >= 0.125 s
    assert sizer.size == 16384
    sizer.record(16384, 0.2)  # in [0.125, 0.25]: kept
    assert sizer.size == 16384
    sizer.record(16384, 2.0)  # far too slow: halved until it would take <= 0.25 s
    assert sizer.size == 2048
    sizer.record(100, 10.0)  # a short last piece says nothing about the size
    assert sizer.size == 2048
    sizer.record(2048, 1e9)
    assert sizer.size == 16  # never below the smallest
    sizer.record(16, 0.0)
    assert sizer.size == 1 << 20  # nor above the largest


class _Counting:
    """A session wrapper that counts the model calls and the steps each one ran."""

    def __init__(self, session: Any, budget_input: str = "max_steps") -> None:
        self.session = session
        self.budgets: list[int] = []
        self.budget_input = budget_input

    def run(self, names: Any, feeds: dict[str, np.ndarray]) -> Any:
        self.budgets.append(int(feeds[self.budget_input]))
        return self.session.run(names, feeds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


@pytest.mark.parametrize(("weights", "dtype"), [("families", "int64"), ("families", "float64"),
                                             ("sparse", "int64")])
def test_run_chunked_by_a_tiny_time_target_equals_one_call(tmp_path: Path, weights: str,
                                                           dtype: str) -> None:
    """With a target of a nanosecond every call is shrunk to the smallest piece; the outputs,
    tape, steps, memory and status are those of one call, for a batch of inputs, and the
    reference interpreter's (each piece resumes from the last one's `final_state`)."""
    src = tmp_path / "count.tl"
    src.write_text(COUNT_TL)
    image = load_program([str(src)], CompileOptions()).image
    config = machine_config(image)
    model = OnnxModel(compile_model(image, config, ExportOptions(weights=weights, dtype=dtype)))
    inputs = {"n": [200, 3]}
    one = model.run(inputs, tapes=((), ()), max_steps=100_000, chunk=1 << 24)
    counting = _Counting(model.session)
    model.session = counting
    many = model.run(inputs, tapes=((), ()), max_steps=100_000, target_s=1e-9)
    assert int(one.steps[0]) > 4 * onnx_model.FIRST_CHUNK  # many pieces
    assert counting.budgets[0] == onnx_model.FIRST_CHUNK
    assert counting.budgets[1:] and set(counting.budgets[1:]) == {MIN_CHUNK}  # halved at once
    for run in (one, many):
        assert run.status.tolist() == [1, 1]
        assert [list(t) for t in run.tapes] == [[7 * i for i in range(200)], [0, 7, 14]]
    assert many.steps.tolist() == one.steps.tolist()
    assert many.memory.tolist() == one.memory.tolist()
    assert [(n, v.tolist()) for n, v in many.outputs] == [("last", [199, 2])]
    assert [(n, v.tolist()) for n, v in one.outputs] == [("last", [199, 2])]
    for k, n in enumerate((200, 3)):
        words = list(image.words)
        words[dict(image.inputs)["n"]] = n
        expected = reference.run(config, initial_state(config, words), 100_000)
        assert int(many.steps[k]) == expected.steps
        assert many.memory[k].tolist() == expected.memory


def test_budget_beyond_int64_over_many_pieces(tmp_path: Path) -> None:
    """`--max-steps 99999999999999999999999` on a run longer than one piece: the budget is
    capped (as the model caps it), not an overflow in the resumed state."""
    src = tmp_path / "count.tl"
    src.write_text(COUNT_TL)
    image = load_program([str(src)], CompileOptions()).image
    model = OnnxModel(compile_model(image, machine_config(image)))
    run = model.run({"n": [200]}, max_steps=10**23, chunk=1024)
    limited = model.run({"n": [200]}, max_steps=10**6, chunk=1 << 24)
    assert run.status.tolist() == [1] and run.steps.tolist() == limited.steps.tolist()
    assert int(run.steps[0]) > 1024
    assert [(n, v.tolist()) for n, v in run.outputs] == [("last", [199])]


def test_run_chunked_by_time_stops_exactly_at_the_step_limit() -> None:
    image = load_program([HELLO], CompileOptions()).image
    config = machine_config(image)
    model = OnnxModel(compile_model(image, config))
    expected = reference.run(config, initial_state(config, image.words), 37)
    for target in (1e-9, 10.0):
        run = model.run(max_steps=37, target_s=target)
        assert run.steps.tolist() == [37] and run.status.tolist() == [0]
        assert list(run.tapes[0]) == expected.tape_out
        assert run.memory[0].tolist() == expected.memory


class _FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("total", "shown"), [(None, "step ["), (5000, "/5.00k")])
def test_progress_shows_count_rate_and_total_only_when_known(
        monkeypatch: pytest.MonkeyPatch, total: int | None, shown: str) -> None:
    terminal = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with Progress(total, enabled=True) as progress:
        progress.update(1200)
        progress.update(2500)
    text = terminal.getvalue()
    assert shown in text and "step/s" in text
    assert ("/" in text.replace("step/s", "")) == (total is not None)
    quiet = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    with Progress(total, enabled=False) as progress:
        progress.update(10)
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("engine", ["reference", "numpy", "onnx"])
@pytest.mark.parametrize(("args", "total"), [([], None), (["--max-steps", "5000"], 5000)])
def test_cli_shows_a_total_only_for_a_given_max_steps(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], engine: str,
        args: list[str], total: int | None) -> None:
    totals: list[int | None] = []

    class Recording(Progress):
        def __init__(self, total: int | None, enabled: bool, unit: str = "step") -> None:
            totals.append(total)
            super().__init__(total, enabled, unit)

    monkeypatch.setattr(engines, "Progress", Recording)
    monkeypatch.setattr(onnx_engine, "Progress", Recording)
    monkeypatch.setattr(onnx_model, "Progress", Recording)
    assert main(["run", HELLO, "--engine", engine, *args]) == 0
    assert capsys.readouterr().out == "Hello, World!\n"
    assert totals == [total]
