"""The reference pages in docs/ cannot go stale: their tables of faults, traps, statuses,
limits and defaults, the model's inputs, outputs and metadata keys, and the language's
keywords and built-ins are compared with what the code defines and what a compiled model
holds; every link between the pages names a page and a heading that exist."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import onnx
import pytest

from mlpc import errors
from mlpc.cli import main
from mlpc.compiler import codegen, limits
from mlpc.compiler import machine_config as machine
from mlpc.compiler.checker import MAX_ARRAY_SIZE, MAX_ERRORS
from mlpc.compiler.driver import load_program
from mlpc.compiler.driver import machine_config as config_for
from mlpc.compiler.machine_config import DEFAULT_MAX_STEPS as MODEL_MAX_STEPS
from mlpc.compiler.machine_config import Fault
from mlpc.compiler.model import compile_model
from mlpc.compiler.onnx_graph import OPSET
from mlpc.compiler.options import CompileOptions
from mlpc.compiler.stack import DEFAULT_STACK_FRAMES
from mlpc.compiler.tl_ast import BUILTINS
from mlpc.runtime.onnx_model import STATUS_NAMES
from mlpc.runtime.report import TRAP_KINDS

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = ("machine.md", "network.md", "onnx.md", "language.md")


def page(name: str) -> str:
    return (DOCS / name).read_text()


def rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the rows of the first table after `heading` (the header row and the
    separator left out), stripped; `\\|` inside a cell is a `|`."""
    start = text.index(heading)
    table: list[list[str]] = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            table.append([c.strip().replace("\\|", "|") for c in cells])
        elif table:
            break
    return table[2:]


def number(text: str) -> int:
    """`65,536` or `2^50 − 1` as an integer."""
    text = text.strip("`").replace(",", "")
    power = re.fullmatch(r"2\^(\d+)( − 1)?", text)
    if power:
        return (1 << int(power.group(1))) - (1 if power.group(2) else 0)
    return int(text)


def test_every_page_is_linked_from_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for name in PAGES:
        assert f"(docs/{name})" in readme


def test_links_between_pages_name_existing_headings() -> None:
    def slug(heading: str) -> str:
        return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")

    headings = {name: {slug(h) for h in re.findall(r"^#+ (.*)$", page(name), re.M)}
                for name in PAGES}
    for name in PAGES:
        for target, anchor in re.findall(r"\]\(([\w.]+\.md)?#?([\w-]*)\)", page(name)):
            target = target or name
            assert target in PAGES, (name, target)
            assert not anchor or anchor in headings[target], (name, target, anchor)


def test_the_fault_table_is_the_fault_enum() -> None:
    table = rows(page("machine.md"), "## Faults")
    assert [(int(r[0]), r[1].strip("`")) for r in table] == [
        (int(f), f.describe()) for f in Fault]


def test_the_trap_table_is_the_trap_kinds() -> None:
    table = rows(page("machine.md"), "**Traps.**")
    assert [(int(r[0]), r[1].strip("`").removesuffix(" at line N")) for r in table] == sorted(
        TRAP_KINDS.items())
    kinds = [r[0].strip("`") for r in rows(page("language.md"), "## Traps")]
    assert kinds == [TRAP_KINDS[k] for k in sorted(TRAP_KINDS)]


def test_the_status_table() -> None:
    table = rows(page("machine.md"), "## Statuses and traps")
    codes = {name: code for code, name in STATUS_NAMES.items()}
    exits = {"halted": errors.EXIT_OK, "trap": errors.EXIT_TRAP, "fault": errors.EXIT_TRAP,
             "step-limit": errors.EXIT_STEP_LIMIT}
    assert {r[0].strip("`") for r in table} == set(codes)
    for status, model, exit_status, _ in table:
        assert int(model) == codes[status.strip("`")]
        assert int(exit_status) == exits[status.strip("`")]
    assert re.search(
        rf"Exit statuses \(`src/mlpc/errors.py`\): {errors.EXIT_OK} halted, "
        rf"{errors.EXIT_PROGRAM_ERROR} an error in the program, its inputs or\s+files, "
        rf"{errors.EXIT_USAGE} a command-line usage error, {errors.EXIT_TRAP} a trap or fault, "
        rf"{errors.EXIT_STEP_LIMIT} the step budget ran out", page("machine.md"))


def test_the_machine_defaults() -> None:
    table = {r[0]: r for r in rows(page("machine.md"), "## Configuration")}
    assert f"at most {machine_limit()} (`MAX_NETWORK_MEMORY`)" in table["`m` (`--memory`)"][2]
    assert number(table["input tape capacity (`--tape-in`)"][3]) == machine.DEFAULT_TAPE_IN
    assert number(table["output tape capacity (`--tape-out`)"][3]) == machine.DEFAULT_TAPE_OUT
    text = page("machine.md")
    assert f"the image's length plus {machine.DEFAULT_EXTRA_MEMORY:,} words" in text
    assert f"The default is {machine.DEFAULT_MAX_STEPS:,} (`DEFAULT_MAX_STEPS`)" in text


def machine_limit() -> str:
    return f"{limits.MAX_NETWORK_MEMORY:,}"


def test_the_step_functions_named_are_codegen_s_in_order() -> None:
    """The paragraph naming codegen's function for each space of the step: each is one,
    and `step_network` calls them in the order the paragraph gives."""
    text = page("network.md")
    paragraph = text[text.index("In `compiler/codegen.py` each space"):]
    paragraph = paragraph[: paragraph.index("\n\n")]
    named = [n for n in re.findall(r"`(\w+)`", paragraph)
             if n not in ("step_network", "readout_network")]
    assert named == ["layer1_fetch", "fetched", "layer2_read", "operands", "layer3_decide",
                     "decided", "next_state"]
    source = Path(codegen.__file__).read_text()
    body = source[source.index("def step_network("):source.index("def readout_network(")]
    assert sorted(named, key=lambda n: body.index(f"= {n}(g, ")) == named
    assert callable(codegen.readout_network)


def test_the_network_limits() -> None:
    table = {r[0]: r[1] for r in rows(page("network.md"), "## Limits")}
    assert table["memory for the network engines"] == (
        f"at most {machine_limit()} words (`MAX_NETWORK_MEMORY`)")
    budget = re.fullmatch(r"at most `(.+)` \(`MAX_BUDGET`\)", table["step budget"])
    assert budget and number(budget.group(1)) == limits.MAX_BUDGET
    unroll = re.fullmatch(r"default (\d+), at most ([\d,]+) .*",
                          table["steps per Loop iteration (`--unroll`)"])
    assert unroll and (number(unroll.group(1)), number(unroll.group(2))) == (
        limits.DEFAULT_UNROLL, limits.MAX_UNROLL)
    dense = re.fullmatch(r"memories up to (\d+) words .*more than `(2\^\d+)` matrix entries.*",
                         table["`--weights dense`"])
    assert dense and (number(dense.group(1)), number(dense.group(2))) == (
        limits.DENSE_LIMIT, limits.ENCODINGS["dense"].max_elements)
    onnx_page = page("onnx.md")
    assert f"(`--unroll`, default {limits.DEFAULT_UNROLL})" in onnx_page
    assert f"(opset {OPSET})" in onnx_page
    assert f"default {MODEL_MAX_STEPS:,}" in onnx_page


def test_the_language_limits_and_words() -> None:
    text = page("language.md")
    assert f"at most `2^{MAX_ARRAY_SIZE.bit_length() - 1}` words" in text
    assert MAX_ARRAY_SIZE == 1 << (MAX_ARRAY_SIZE.bit_length() - 1)
    assert f"up to {MAX_ERRORS}." in text
    assert f"room for {DEFAULT_STACK_FRAMES} nested saves" in text
    grammar = (REPO / "compiler" / "grammar.lark").read_text()
    keywords = set(re.findall(r'^[A-Z]+: "([a-z]+)"$', grammar, re.M))
    shown = re.search(r"Keywords: (.+?)\. Built-in names", text, re.S)
    assert shown and set(shown.group(1).strip("`").split()) == keywords
    builtins = {name for r in rows(text, "**Built-ins**") for name in re.findall(r"`(\w+)\(", r[0])}
    assert builtins == {*BUILTINS, "read"}


@pytest.fixture(scope="module")
def gcd_model() -> onnx.ModelProto:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gcd.onnx"
        assert main(["compile", str(REPO / "examples" / "gcd.tl"), "-o", str(path)]) == 0
        return onnx.load(str(path))


def test_the_model_interface_tables(gcd_model: onnx.ModelProto) -> None:
    text = page("onnx.md")
    inputs = [r[0].strip("`") for r in rows(text, "## Inputs")]
    assert inputs[0] == "one per program `input"  # the named inputs: gcd's a and b
    model_inputs = [i.name for i in gcd_model.graph.input]
    assert model_inputs == ["a", "b", *[n for n in inputs[1:] if n != limits.TAPE_LENGTH]]
    outputs = [name.strip("`") for r in rows(text, "## Outputs") for name in r[0].split(", ")]
    assert outputs[-1] == "one per program `output"
    assert [o.name for o in gcd_model.graph.output] == [*outputs[:-1], "g"]


def test_the_metadata_table(gcd_model: onnx.ModelProto) -> None:
    keys = [k.strip("`") for r in rows(page("onnx.md"), "## Metadata") for k in r[0].split(", ")]
    specialised_only = ["constant_words", "state_words", "runs"]
    assert sorted(keys) == sorted([p.key for p in gcd_model.metadata_props] + specialised_only)
    image = load_program([str(REPO / "examples" / "gcd.tl")], CompileOptions()).image
    special = compile_model(image, config_for(image), specialise=True)
    assert sorted(keys) == sorted(p.key for p in special.metadata_props)
