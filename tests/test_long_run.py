"""Long-run exactness (slow): over a million SUBLEQ steps through stock onnxruntime compared
with the reference interpreter, and a batch of 64 different inputs through one session.

Exactness must hold "for any number of steps" (docs/network.md): errors that need many steps to
show (a budget counter drifting, a rounding of a large partial sum, an output event lost at a
chunk boundary of `OnnxModel.run`) do not show in short differential tests. Each run compares
status, fault, step count, output tape and every word of the final memory.

- `self.dec self.dec hello.dec`: a SUBLEQ self-interpreter interpreting itself interpreting
  hello (324,015 steps, memory 1,384 words). Runs in chunks of 65,536 steps (`OnnxModel.run`
  resumes from `final_state`), so chunk boundaries are crossed too.
- `LONG_TL`: a .tl loop of 715,599 steps in 227 words, writing words now and then; also
  stopped by the step limit at an odd step count, mid-instruction-sequence.
- A batch of 64 items (different inputs and tapes; some halt early, some trap, some hit the
  limit) through one session, item by item against the reference interpreter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlpc.compiler.assembler import load_image
from mlpc.compiler.checker import check_program
from mlpc.compiler.driver import machine_config
from mlpc.compiler.image import SubleqImage
from mlpc.compiler.lowering import lower_program
from mlpc.compiler.machine_config import MachineConfig
from mlpc.compiler.model import compile_model
from mlpc.compiler.options import CompileOptions
from mlpc.compiler.parser import parse_program
from mlpc.runtime import reference
from mlpc.runtime.machine import MachineState, initial_state
from mlpc.runtime.onnx_model import OnnxModel

pytestmark = pytest.mark.slow

LONG_TL = """\
input n;
output s, c;
var x = 12345, k = 0;
while (c < n) {
    x = x + x + (x < 0) + 40503;
    s = s - x;
    k += 1;
    if (k == 1000) { write(x); write(s); k = 0; }
    c += 1;
}
"""

BATCH_TL = """\
input x;
output q, r, t;
var n = x & 63;
while (n > 0) {
    t = t * 3 + read();
    n -= 1;
}
q = 1000 / (x & 7);
r = t % (x | 1);
print(q, ",", r);
"""


def compile_tl(source: str, word_bits: int = 32) -> SubleqImage:
    checked = check_program(parse_program(source, "long.tl"), word_bits)
    return lower_program(checked, CompileOptions(word_bits=word_bits))


def reference_run(config: MachineConfig, image: SubleqImage, max_steps: int,
                  tape: tuple[int, ...] = (), inputs: dict[str, int] | None = None
                  ) -> MachineState:
    words = list(image.words)
    for name, address in image.inputs:
        words[address] = (inputs or {})[name]
    state = initial_state(config, words, tape)
    reference.run(config, state, max_steps)
    return state


def assert_same(batch, item: int, state: MachineState) -> None:  # type: ignore[no-untyped-def]
    status = {0: 0, 1: 1, 2: 2}[int(state.status)]
    onnx_status = int(batch.status[item])
    # the model reports a trap (3) as its own status; at machine level that is a halt
    assert (onnx_status if onnx_status != 3 else 1) == status
    assert int(batch.fault[item]) == int(state.fault)
    assert int(batch.steps[item]) == state.steps
    assert batch.tapes[item] == tuple(state.tape_out)
    assert batch.memory[item].tolist() == state.memory


def test_self_interpreter_running_itself_running_hello(subleq_corpus: Path) -> None:
    image = load_image([str(subleq_corpus / n) for n in ("self.dec", "self.dec", "hello.dec")])
    config = machine_config(image)
    state = reference_run(config, image, 10_000_000)
    assert (state.steps, bytes(state.tape_out)) == (324_015, b"Hello, World!\n")
    batch = OnnxModel(compile_model(image, config)).run(tapes=((),), max_steps=10_000_000)
    assert_same(batch, 0, state)
    assert int(batch.status[0]) == 1


def test_long_tl_program() -> None:
    image = compile_tl(LONG_TL)
    config = machine_config(image, None, 32, 0, 64)
    model = OnnxModel(compile_model(image, config))
    n = 21_000
    state = reference_run(config, image, 10_000_000, inputs={"n": n})
    assert (state.steps, len(state.tape_out)) == (715_599, 42)
    batch = model.run({"n": [n]}, tapes=((),), max_steps=10_000_000)
    assert_same(batch, 0, state)
    assert int(batch.status[0]) == 1
    assert [int(v[0]) for _, v in batch.outputs] == [state.memory[a] for _, a in image.outputs]
    # stopped by the budget at an odd step count, past several chunk boundaries
    limit = 3 * (1 << 16) + 12_345
    state = reference_run(config, image, limit, inputs={"n": n})
    batch = model.run({"n": [n]}, tapes=((),), max_steps=limit)
    assert_same(batch, 0, state)
    assert int(batch.status[0]) == 0 and int(batch.steps[0]) == limit


def test_batch_of_64_through_one_session() -> None:
    image = compile_tl(BATCH_TL)
    config = machine_config(image, None, 32, 16, 64)
    model = OnnxModel(compile_model(image, config))
    rng = np.random.default_rng(7)
    xs = [0, 1, -1, 8, 63, 64, (1 << 31) - 1, -(1 << 31)] + [
        int(v) for v in rng.integers(-(1 << 31), 1 << 31, size=56)]
    tapes = [tuple(int(w) for w in rng.integers(-(1 << 31), 1 << 31, size=int(k)))
             for k in rng.integers(0, 17, size=64)]
    max_steps = 2_700  # items need 56 to 3,207 steps: about 15 hit the limit
    batch = model.run({"x": xs}, tapes=tapes, max_steps=max_steps)
    outcomes = set()
    for item, (x, tape) in enumerate(zip(xs, tapes, strict=True)):
        state = reference_run(config, image, max_steps, tape, {"x": x})
        assert_same(batch, item, state)
        report = batch.report(item)
        outputs = dict(report.outputs)
        assert outputs == {name: state.memory[a] for name, a in image.outputs}
        outcomes.add(report.status)
    # the batch mixes items that halt, trap (x & 7 == 0) and run out of steps
    assert outcomes == {"halted", "trap", "step-limit"}
