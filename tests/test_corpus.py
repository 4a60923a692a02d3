"""The public SUBLEQ corpus and the 148 compiled Higher Subleq tests on the reference
interpreter: outputs and step counts written down by others."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import IndexRow, hsq_index_names, load_index

from mlpc.compiler.assembler import load_image
from mlpc.compiler.machine_config import Fault, MachineConfig, Status
from mlpc.errors import MlpcError
from mlpc.runtime import reference
from mlpc.runtime.machine import MachineState, initial_state

MAX_STEPS = 2_000_000


def run_files(
    paths: list[Path], memory: int | None = None, word_bits: int = 32, max_steps: int = MAX_STEPS
) -> MachineState:
    """Load and run like `mlpc run --engine reference`: default memory = image + 1024."""
    image = load_image([str(p) for p in paths])
    config = MachineConfig(
        memory=image.default_memory() if memory is None else memory, word_bits=word_bits
    )
    return reference.run(config, initial_state(config, image.words), max_steps)


def text_of(state: MachineState) -> str:
    assert all(0 <= w < 256 for w in state.tape_out)
    return bytes(state.tape_out).decode("ascii")


# --- the public SUBLEQ corpus ------------------------------------------------------------


def test_hello(subleq_corpus: Path) -> None:
    state = run_files([subleq_corpus / "hello.dec"])
    assert (state.status, text_of(state), state.steps) == (Status.HALTED, "Hello, World!\n", 167)
    assert len(state.memory) == 54 + 1024


def test_hi(subleq_corpus: Path) -> None:
    state = run_files([subleq_corpus / "hi.dec"])
    assert (state.status, text_of(state), state.steps) == (Status.HALTED, "Hi", 3)


def bottles(n: int) -> str:
    if n == 0:
        return "no more bottles"
    return f"{n} bottle{'s' if n != 1 else ''}"


def beer_song() -> str:
    verses = [
        f"{bottles(n)} of beer on the wall, {bottles(n)} of beer.\n"
        f"Take one down and pass it around, {bottles(n - 1)} of beer on the wall.\n"
        for n in range(99, 0, -1)
    ]
    verses.append(
        "No more bottles of beer on the wall, no more bottles of beer.\n"
        "Go to the store and buy some more, 99 bottles of beer on the wall.\n"
    )
    return "\n".join(verses)


def test_beer(subleq_corpus: Path) -> None:
    state = run_files([subleq_corpus / "beer.dec"])
    text = text_of(state)
    assert (state.status, state.steps) == (Status.HALTED, 35_232)
    assert text.startswith(
        "99 bottles of beer on the wall, 99 bottles of beer.\n"
        "Take one down and pass it around, 98 bottles of beer on the wall.\n\n"
        "98 bottles of beer on the wall, 98 bottles of beer.\n"
    )
    assert text.endswith(
        "1 bottle of beer on the wall, 1 bottle of beer.\n"
        "Take one down and pass it around, no more bottles of beer on the wall.\n\n"
        "No more bottles of beer on the wall, no more bottles of beer.\n"
        "Go to the store and buy some more, 99 bottles of beer on the wall.\n"
    )
    assert len(text) == 11_885
    assert text == beer_song()


def test_beer_step_limit_and_resume(subleq_corpus: Path) -> None:
    """Stopping at the step limit and continuing gives the same run as one go."""
    image = load_image([str(subleq_corpus / "beer.dec")])
    config = MachineConfig(memory=image.default_memory())
    state = initial_state(config, image.words)
    for limit in range(1000, 37_000, 1000):
        reference.run(config, state, limit)
        assert state.steps == min(limit, 35_232)
    assert (state.status, bytes(state.tape_out).decode()) == (Status.HALTED, beer_song())


def test_self_interpreter_runs_hello(subleq_corpus: Path) -> None:
    state = run_files([subleq_corpus / "self.dec", subleq_corpus / "hello.dec"])
    assert (state.status, text_of(state), state.steps) == (Status.HALTED, "Hello, World!\n", 7_321)


def test_self_interpreter_runs_itself_running_hello(subleq_corpus: Path) -> None:
    paths = [subleq_corpus / "self.dec", subleq_corpus / "self.dec", subleq_corpus / "hello.dec"]
    state = run_files(paths)
    assert (state.status, text_of(state), state.steps) == (
        Status.HALTED, "Hello, World!\n", 324_015
    )


@pytest.mark.parametrize(("name", "steps"), [("hello", 167), ("beer", 35_232)])
def test_public_corpus_at_16_bits(subleq_corpus: Path, name: str, steps: int) -> None:
    state = run_files([subleq_corpus / f"{name}.dec"], word_bits=16)
    assert (state.status, state.steps) == (Status.HALTED, steps)
    assert text_of(state) == ("Hello, World!\n" if name == "hello" else beer_song())


# --- the Higher Subleq corpus ------------------------------------------------------------

# Parametrise by name; without the corpus there is one placeholder case, which the
# `hsq_corpus` fixture skips with the reason.
HSQ_NAMES = hsq_index_names() or ["hsq-corpus-missing"]

# The four programs that need words wider than 16 bits (hsq-corpus/README.md).
NEEDS_32_BITS = {"big-ex065", "big-ex066", "big-ex068", "big-ex073"}


def hsq_row(hsq_corpus: Path, name: str) -> IndexRow:
    rows = {row.name: row for row in load_index(hsq_corpus / "INDEX.tsv")}
    return rows[name]


def test_hsq_index(hsq_corpus: Path) -> None:
    rows = load_index(hsq_corpus / "INDEX.tsv")
    assert len(rows) == 148
    assert len({row.name for row in rows}) == 148
    assert sum(row.steps for row in rows) == 1_317_913
    assert rows[0] == IndexRow("big-ex062", 1452, 1464, 7412, 42, "test/big/ex062.hsq")
    for row in rows:
        assert (hsq_corpus / f"{row.name}.dec").is_file()
        assert (hsq_corpus / f"{row.name}.out").stat().st_size == row.output_bytes


@pytest.mark.parametrize("name", HSQ_NAMES)
def test_hsq_program(hsq_corpus: Path, name: str) -> None:
    row = hsq_row(hsq_corpus, name)
    expected = (hsq_corpus / f"{name}.out").read_bytes()
    dec = hsq_corpus / f"{name}.dec"

    state = run_files([dec])
    assert len(state.memory) == row.words + 1024
    assert state.status == Status.HALTED, state.fault.describe()
    assert bytes(state.tape_out) == expected
    assert state.steps == row.steps

    # The smallest memory the program runs in is max_address_touched + 1 words; one word
    # less and it touches an address that does not exist: a fault, not a wrong answer.
    tight = run_files([dec], memory=row.max_address_touched + 1)
    assert (tight.status, bytes(tight.tape_out), tight.steps) == (
        Status.HALTED, expected, row.steps
    )
    short = run_files([dec], memory=row.max_address_touched)
    assert short.status == Status.FAULT
    assert short.fault in (Fault.PC_RANGE, Fault.A_RANGE, Fault.B_RANGE)
    assert short.steps < row.steps


@pytest.mark.parametrize("name", HSQ_NAMES)
def test_hsq_program_at_16_bits(hsq_corpus: Path, name: str) -> None:
    expected = (hsq_corpus / f"{name}.out").read_bytes()
    dec = hsq_corpus / f"{name}.dec"
    if name in ("big-ex065", "big-ex066"):  # image constants wider than 16 bits
        with pytest.raises(MlpcError, match=r"outside the 16-bit range"):
            run_files([dec], word_bits=16)
        return
    state = run_files([dec], word_bits=16)
    ok = state.status == Status.HALTED and bytes(state.tape_out) == expected
    assert ok == (name not in NEEDS_32_BITS)
