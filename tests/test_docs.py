"""Docs that cannot go stale: README.md's shell commands and Python snippet are run and their
printed output compared with the README's; every number in the README's prose is either a
claim this file computes (`CLAIMS`) or a literal it knows (`LITERALS`, facts such as a
citation, and example inputs); the example headers' step counts are the reference
interpreter's. `test_an_edited_number_fails` edits every checked number of a copy of the
README in memory and requires the checker to fail.

Skipped here (the lead engineer's sections, checked by tests/test_network_ir.py):
"How the network computes one SUBLEQ step" and "Speed, as measured".
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SHARED_ENV, SLOW_SAMPLE

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
EXAMPLES = REPO / "examples"
SKIPPED_SECTIONS = ("How the network computes one SUBLEQ step", "Speed, as measured")
NUMBER = re.compile(r"(?<![\w.^])\d[\d,.]*\d(?![\w^])|(?<![\w.^])\d(?![\w.,^])")


# --- reading the README ---------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    line: str  # the shell command after `$ `
    expected: tuple[str, ...]  # the lines the README shows after it


def sections(text: str) -> list[tuple[str, list[str]]]:
    """(heading, lines) per `## ` section, the skipped sections left out."""
    out: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        if line.startswith("## "):
            out.append((line[3:].strip(), []))
        else:
            out[-1][1].append(line)
    return [(h, lines) for h, lines in out if not h.startswith(SKIPPED_SECTIONS)]


def blocks(text: str, kind: str) -> list[list[str]]:
    """The fenced blocks of one kind (```console, ```python) outside the skipped sections."""
    found: list[list[str]] = []
    for _, lines in sections(text):
        inside: list[str] | None = None
        for line in lines:
            if inside is None and line.strip() == f"```{kind}":
                inside = []
            elif inside is not None and line.startswith("```"):
                found.append(inside)
                inside = None
            elif inside is not None:
                inside.append(line)
    return found


def console_commands(text: str) -> list[Command]:
    commands: list[Command] = []
    for block in blocks(text, "console"):
        for line in block:
            if line.startswith("$ "):
                commands.append(Command(line[2:], ()))
            else:
                last = commands[-1]
                commands[-1] = Command(last.line, (*last.expected, line))
    return commands


def prose(text: str) -> str:
    """The README's text outside fenced blocks and the skipped sections, whitespace collapsed
    (so that a claim may wrap)."""
    words: list[str] = []
    for _, lines in sections(text):
        fence = False
        for line in lines:
            if line.startswith("```"):
                fence = not fence
            elif not fence:
                words.append(line)
    return " ".join(" ".join(words).split())


# --- what the README's prose claims --------------------------------------------------------


def _relu_layers() -> list[str]:
    from mlpc.compiler.codegen import build_step_network
    from mlpc.compiler.machine_config import MachineConfig

    return [str(build_step_network(MachineConfig(memory=16)).network.relu_layers)]


def _word_bits() -> list[str]:
    from mlpc.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    run = sub.choices["run"]  # type: ignore[attr-defined]
    action = next(a for a in run._actions if a.dest == "word_bits")
    other = [str(c) for c in action.choices if c != action.default]
    return [str(action.default), *other, *other]


def _exit_statuses() -> list[str]:
    from mlpc import errors

    return [str(s) for s in (errors.EXIT_OK, errors.EXIT_PROGRAM_ERROR, errors.EXIT_USAGE,
                             errors.EXIT_TRAP, errors.EXIT_STEP_LIMIT)]


def _batch_statuses() -> list[str]:
    from mlpc import errors

    return [str(s) for s in (errors.EXIT_STEP_LIMIT, errors.EXIT_TRAP, errors.EXIT_OK)]


def _model_statuses() -> list[str]:
    from mlpc.runtime.onnx_model import STATUS_NAMES

    codes = {name: code for code, name in STATUS_NAMES.items()}
    return [str(codes[n]) for n in ("step-limit", "halted", "fault", "trap")]


def _trace_window() -> list[str]:
    from mlpc.cli.trace import TRACE_WINDOW

    return [f"{TRACE_WINDOW:,}"]


def _verify_steps() -> list[str]:
    from mlpc.cli.verify import VERIFY_DEFAULT_STEPS

    return [f"{VERIFY_DEFAULT_STEPS:,}"]


def _opset() -> list[str]:
    from mlpc.compiler.export_onnx import OPSET

    return [str(OPSET)]


def _default_budget() -> list[str]:
    from mlpc.compiler.machine_config import DEFAULT_MAX_STEPS

    return [f"{DEFAULT_MAX_STEPS:,}"]


def _memory_limit() -> list[str]:
    from mlpc.compiler.codegen import MAX_NETWORK_MEMORY, build_step_network
    from mlpc.compiler.machine_config import MachineConfig
    from mlpc.compiler.sparse import lower_to_sparse

    nnz = lower_to_sparse(build_step_network(MachineConfig(memory=MAX_NETWORK_MEMORY))
                          .network).nnz
    return [f"{MAX_NETWORK_MEMORY:,}", f"{nnz / 1e6:.1f}"]


def _budget_limit() -> list[str]:
    from mlpc.compiler.codegen import MAX_BUDGET

    assert MAX_BUDGET + 1 == 1 << int(math.log2(MAX_BUDGET + 1))
    return [str(int(math.log2(MAX_BUDGET + 1)))]


def _dense_limit() -> list[str]:
    from mlpc.compiler.limits import ENCODINGS

    # the word count (804) is checked by tests/test_network_ir.py::test_dense_limit...
    elements = ENCODINGS["dense"].max_elements
    return [str(int(math.log2(elements))), str(elements * 8 >> 20)]


def _netron_counts() -> list[str]:
    """The nodes of gcd.onnx's main graph and Loop body, and the unrolled steps (Netron
    draws exactly these nodes: tests/test_netron.py reads them from the page)."""
    import tempfile

    import onnx

    from mlpc.cli import main
    from mlpc.compiler.encodings import ExportOptions

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gcd.onnx"
        assert main(["compile", str(EXAMPLES / "gcd.tl"), "-o", str(path)]) == 0
        model = onnx.load(str(path))
    (loop,) = [n for n in model.graph.node if n.op_type == "Loop"]
    body = onnx.helper.get_attribute_value(loop.attribute[0])
    steps = ExportOptions().unroll
    layers = [n.op_type for n in body.node if n.op_type.startswith(("layer", "next_state"))]
    assert layers == ["layer1", "layer2", "layer3", "next_state"] * steps
    return [str(len(model.graph.node)), str(len(body.node)), str(steps)]


def _onnxruntime_web() -> list[str]:
    from mlpc.runtime.web import ORT_WEB_VERSION

    return [ORT_WEB_VERSION]


def _web_speed() -> list[str]:
    """The page's and Python's steps/s (benchmarks/bench_web.py's medians)."""
    result = json.loads((REPO / "benchmarks/results/web.json").read_text())
    median = result["median"]
    return [str(result["inputs"]["n"]), f"{result['steps']:,}", f"{median['page']:,}",
            f"{median['page_model_calls']:,}", f"{median['python']:,}"]


def _benchmark_table(bench: str, results: str) -> list[str]:
    """`python benchmarks/BENCH.py --readme`'s output for the committed results file."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    module = importlib.import_module(bench)
    result = json.loads((REPO / "benchmarks/results" / results).read_text())
    return [" ".join(module.readme_table(result).split())]


def _specialise_table() -> list[str]:
    """The table of both network forms (tests/test_specialise.py checks the results
    themselves)."""
    return _benchmark_table("bench_specialise", "specialise.json")


def _runs_table() -> list[str]:
    """The straight-line runs' table of benchmarks/bench_runs.py."""
    return _benchmark_table("bench_runs", "runs.json")


def _run_slots() -> list[str]:
    """The run slots the README names (compiler/runs.py)."""
    from mlpc.compiler.runs import NEGATIVE, POSITIVE, WRITE_SLOTS

    assert (WRITE_SLOTS, POSITIVE, NEGATIVE) == (5, 2, 1)
    return []


def _startup_table() -> list[str]:
    """The start-up table of benchmarks/bench_startup.py."""
    return _benchmark_table("bench_startup", "startup.json")


def _cache_bound() -> list[str]:
    from mlpc.cache import DEFAULT_MAX_BYTES

    return [str(DEFAULT_MAX_BYTES >> 20)]


def _shift_bound() -> list[str]:
    """The most steps `r = x >> 1;` can take at W = 32: the shift routine's longest path
    and the steps around its call (tests/test_lowering_cheap_ops.py checks both)."""
    from test_lowering_cheap_ops import _longest_run, _steps_around_the_call

    return [str(_longest_run("csar.2", 32) + _steps_around_the_call(32))]


def _specialise_batch() -> list[str]:
    """The batch the specialise benchmark measures besides batch 1."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_specialise

    return [str(bench_specialise.BATCHES[1])] * 2


def _scalar_table_limit() -> list[str]:
    from mlpc.compiler.export_families import SCALAR_FAMILY_LIMIT

    return [str(SCALAR_FAMILY_LIMIT)]


def _input_faults() -> list[str]:
    """The fault codes a model gives bad input (`machine_config.Fault`)."""
    from mlpc.compiler.machine_config import Fault

    assert Fault.INPUT_RANGE.describe() == "input out of range"
    assert Fault.INVALID_RESUME.describe() == "invalid resume state"
    return [str(int(Fault.INPUT_RANGE)), str(int(Fault.INVALID_RESUME))]


# pattern (its groups are the numbers) -> the numbers they must be
CLAIMS: tuple[tuple[str, Callable[[], list[str]]], ...] = (
    (r"needs \*\*(\d+) ReLU layers per SUBLEQ step\*\*", _relu_layers),
    (r"\(W = (\d+), or (\d+) with `--word-bits (\d+)`\)", _word_bits),
    (r"Exit status: (\d) halted, (\d) errors in the program or its inputs, (\d) usage errors, "
     r"(\d) trap or fault, (\d) step limit\.", _exit_statuses),
    (r"\((\d) if any ran out of steps, else (\d) if any trapped or faulted, else (\d)\)",
     _batch_statuses),
    (r"`status` \((\d) step limit, (\d) halted, (\d) fault, (\d) trap\)", _model_statuses),
    (r"`trace` shows ([\d,]+) steps unless told", _trace_window),
    (r"`verify` compares ([\d,]+) steps in lock-step unless told", _verify_steps),
    (r"`x >> 1` takes at most (\d+) SUBLEQ steps at W = 32, whatever x", _shift_bound),
    (r"plain ONNX \(opset (\d+), int64\)", _opset),
    (r"`max_steps` \(default ([\d,]+)\)", _default_budget),
    (r"Memory is at most ([\d,]+) words for the network engines \(`MAX_NETWORK_MEMORY`; "
     r"about ([\d.]+) million non-zero weights\)", _memory_limit),
    (r"The step budget is at most 2\^(\d+) − 1", _budget_limit),
    (r"more than 2\^(\d+) entries \((\d+) MB of int64\)", _dense_limit),
    (r"Netron draws (\d+) nodes in the main graph of `gcd.onnx` and (\d+) in the loop body: "
     r"`layer1`, `layer2`, `layer3` and `next_state` for each of its (\d+) unrolled steps",
     _netron_counts),
    (r"in the browser with onnxruntime-web (\d+\.\d+\.\d+)", _onnxruntime_web),
    (r"`fault` (\d+) \(`input out of range`\)", lambda: _input_faults()[:1]),
    (r"`fault` (\d+) \(`invalid resume state`\)", lambda: _input_faults()[1:]),
    (r"<!-- specialise-table --> (.+?) <!-- /specialise-table -->", _specialise_table),
    (r"at batch 1 and at batch (\d+) \((\d+) runs at once", _specialise_batch),
    (r"<!-- startup-table --> (.+?) <!-- /startup-table -->", _startup_table),
    (r"<!-- runs-table --> (.+?) <!-- /runs-table -->", _runs_table),
    (r"Five write slots of two added and one subtracted read each", _run_slots),
    (r"the least recently used entries are removed once the folder passes (\d+) MiB",
     _cache_bound),
    (r"tables of at most (\d+) ramps are computed with the layer's scalars",
     _scalar_table_limit),
    (r"`fizzbuzz.tl` \(n = (\d+), ([\d,]+) steps\) runs at ([\d,]+) steps/s in the page "
     r"\(([\d,]+) counting only the model's calls\) and at ([\d,]+) steps/s in onnxruntime "
     r"in Python", _web_speed),
)

# numbers that are facts or example inputs, not measurements: known by their exact context
LITERALS = (
    "arXiv 2410.09375, AISTATS 2025",
    "a looped 23-layer ReLU-MLP",
    "(Giannou et al. 2023)",
    "`--input a=1071,48 --input b=462,18`",
    "`--tape -1,-1,5`",
    '`{"a": 1071, "b": 462}`',
    '`OnnxModel("gcd.onnx").run({"a": [1071, 48], "b": [462, 18]})`',
    "memories up to 804 words with the default tapes",  # tests/test_network_ir.py
    "99 Bottles of Beer",
    "keyed by a SHA-256",  # the corpora's contents (shared/subleq-corpus, shared/hsq-corpus)
    "`hsq-corpus/`: 148 programs compiled by the Higher Subleq compiler",
    # the command line's refusal (tests/test_model_io.py checks the message)
    "`input a = 2147483648 does not fit in 32 bits`",
)


def check_prose(text: str, computed: dict[str, list[str]]) -> list[str]:
    """Problems with the README's prose: a claim whose numbers are not the computed ones, a
    claim that is missing, or a number of two or more digits that nothing checks. `computed`
    maps each claim pattern to its numbers."""
    body = prose(text)
    problems: list[str] = []
    covered: list[tuple[int, int]] = []
    for pattern, _ in CLAIMS:
        matches = list(re.finditer(pattern, body))
        if not matches:
            problems.append(f"claim not found: {pattern}")
        for m in matches:
            if list(m.groups()) != computed[pattern]:
                problems.append(f"{m.group(0)!r}: the numbers are {computed[pattern]}")
            covered.append(m.span())
    for literal in LITERALS:
        start = body.find(literal)
        if start < 0:
            problems.append(f"literal not found: {literal}")
        else:
            covered.append((start, start + len(literal)))
    for m in NUMBER.finditer(body):
        if len(m.group(0).replace(",", "").replace(".", "")) < 2:
            continue  # single digits: structural (W = 32 aside), claims check the key ones
        if not any(a <= m.start() and m.end() <= b for a, b in covered):
            context = body[max(0, m.start() - 40):m.end() + 20]
            problems.append(f"unchecked number {m.group(0)} in: ...{context}...")
    return problems


# --- running the README's commands ----------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def python_snippet(text: str) -> tuple[str, str]:
    """The snippet of "Using the model without mlpc" and the output its last comment shows."""
    (snippet,) = blocks(text, "python")
    last = snippet[-1]
    code, _, shown = last.partition("#")
    return "\n".join([*snippet[:-1], code.rstrip()]), shown.strip()


def fresh_clone(into: Path) -> Path:
    """A copy of the repository's files as a fresh clone has them: what .gitignore ignores
    (build outputs, models, caches) and git's own folder left out, nothing beside it. (Not
    `git ls-files`: `.ci/run` runs the tests in a copy that is not a git checkout.)"""
    lines = (REPO / ".gitignore").read_text().splitlines()
    patterns = [line.strip().rstrip("/").rsplit("/", 1)[-1] for line in lines
                if line.strip() and not line.startswith("#")]  # (by name: shutil's patterns)
    clone = into / "mlpc"
    shutil.copytree(REPO, clone, ignore=shutil.ignore_patterns(".git", *patterns))
    return clone


def readme_env() -> dict[str, str]:
    """The environment of a user who has only the clone: no MLPC_SHARED."""
    env = dict(os.environ, PYTHONSAFEPATH="1")
    env.pop(SHARED_ENV, None)
    return env


@pytest.fixture(scope="module")
def readme_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """Every console command of the README and its Python snippet, run in order from the
    root of a fresh copy of the repository with nothing beside it, as a user would."""
    work = fresh_clone(tmp_path_factory.mktemp("readme"))
    mlpc = f"{sys.executable} -m mlpc.cli"
    env = readme_env()
    text = README.read_text()
    runs: dict[str, Ran] = {}
    for command in console_commands(text):
        script = f'mlpc() {{ {mlpc} "$@"; }}\nset -o pipefail\n{command.line}'
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              cwd=work, env=env, timeout=300)
        runs[command.line] = Ran(proc.returncode, proc.stdout, proc.stderr)
    snippet, _ = python_snippet(text)
    proc = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True,
                          cwd=work, env=env, timeout=300)
    runs[snippet] = Ran(proc.returncode, proc.stdout, proc.stderr)
    return runs


def check_commands(text: str, runs: dict[str, Ran]) -> list[str]:
    """Problems with the README's console commands and Python snippet, given their runs: a
    failed command, or printed output other than the README's."""
    problems = []
    for command in console_commands(text):
        ran = runs.get(command.line)
        if ran is None:
            problems.append(f"not run: {command.line}")
            continue
        if ran.code != 0:
            problems.append(f"$ {command.line}: exit status {ran.code}: {ran.err.strip()}")
        elif command.expected and ran.out.splitlines() != list(command.expected):
            problems.append(f"$ {command.line}: printed {ran.out!r}, the README shows "
                            f"{chr(10).join(command.expected)!r}")
    snippet, shown = python_snippet(text)
    ran = runs.get(snippet)
    if ran is None:
        problems.append("the python snippet was not run")
    elif ran.code != 0 or ran.out.strip() != shown:
        problems.append(f"python snippet printed {ran.out.strip()!r} (status {ran.code}; "
                        f"{ran.err.strip()[-200:]}), the README shows {shown!r}")
    return problems


@pytest.fixture(scope="module")
def computed() -> dict[str, list[str]]:
    return {pattern: compute() for pattern, compute in CLAIMS}


def test_readme_commands_print_what_it_shows(readme_runs: dict[str, Ran]) -> None:
    assert len(console_commands(README.read_text())) >= 5
    assert check_commands(README.read_text(), readme_runs) == []


def test_readme_prose_numbers_are_checked(computed: dict[str, list[str]]) -> None:
    assert check_prose(README.read_text(), computed) == []


def synopsis(text: str) -> dict[str, str]:
    """The command line's synopsis (the section's first fenced block): each command's entry,
    its continuation lines included, by command name."""
    lines = dict(sections(text))["The command line"]
    start = lines.index("```") + 1
    entries: dict[str, str] = {}
    command = ""
    for line in lines[start:lines.index("```", start)]:
        if line.startswith("mlpc "):
            command = line.split()[1]
            entries[command] = line
        else:
            entries[command] += "\n" + line
    return entries


def test_the_synopsis_shows_every_input_option() -> None:
    """Every command that takes `--input` and `--tape` shows them in the README's synopsis."""
    from mlpc.cli import build_parser

    shown = synopsis(README.read_text())
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    takers = sorted(name for name, parser in commands.items()
                    if {"--input", "--tape"} <= set(parser._option_string_actions))
    assert takers == ["run", "trace", "verify"]
    for name in takers:
        assert "[--input NAME=VALUE ...]" in shown[name] and "[--tape 1,2,3" in shown[name]


def test_readme_first_program_is_the_example() -> None:
    """The gcd.tl of "A first program" is examples/gcd.tl without its header comment."""
    text = README.read_text()
    start = text.index("```c\n// examples/gcd.tl\n") + len("```c\n// examples/gcd.tl\n")
    shown = text[start:text.index("```", start)]
    body = [line for line in (EXAMPLES / "gcd.tl").read_text().splitlines()
            if not line.startswith("//")]
    assert shown.splitlines() == body


def _edits(text: str) -> list[tuple[str, str, str]]:
    """(description, number, edited README) for every checked number: in the prose, in console
    output and in the Python snippet's comment, each changed in place."""
    edits = []
    body = prose(text)
    checked = [m.group(0) for m in NUMBER.finditer(body)
               if len(m.group(0).replace(",", "").replace(".", "")) >= 2
               or any(a <= m.start() < b for p, _ in CLAIMS
                      for c in re.finditer(p, body) for a, b in [c.span()])]
    outputs = [line for c in console_commands(text) for line in c.expected]
    outputs.append(python_snippet(text)[1])
    for line in outputs:
        checked.extend(m.group(0) for m in re.finditer(r"\d+", line))
    seen = set()
    for number in checked:
        if number in seen:
            continue
        seen.add(number)
        changed = number[:-1] + str((int(number[-1]) + 1) % 10)
        pattern = re.compile(rf"(?<![\w.,^]){re.escape(number)}(?![\w^]|[.,]\d)")
        for m in pattern.finditer(text):
            edits.append((f"{number} -> {changed} at {m.start()}", number,
                          text[:m.start()] + changed + text[m.end():]))
    return edits


def test_an_edited_number_fails(readme_runs: dict[str, Ran],
                                computed: dict[str, list[str]]) -> None:
    """Every number the checker relies on, edited in a copy of the README, makes it fail
    (numbers in skipped sections and code listings aside)."""
    text = README.read_text()
    assert check_prose(text, computed) == [] and check_commands(text, readme_runs) == []
    edits = _edits(text)
    assert len(edits) >= 40
    body, blocks_text = prose(text), json.dumps(console_commands(text), default=str)
    claimed = [c.span() for p, _ in CLAIMS for c in re.finditer(p, body)]
    for what, number, edited in edits:
        commands_same = (json.dumps(console_commands(edited), default=str) == blocks_text
                         and python_snippet(edited) == python_snippet(text))
        edited_body = prose(edited)
        if edited_body == body and commands_same:
            continue  # the edit fell in a skipped section or a code listing
        if commands_same and len(number) == 1:
            # a single digit in the prose counts only inside a claim
            at = next(i for i, (a, b) in enumerate(zip(body, edited_body, strict=True))
                      if a != b)
            if not any(a <= at < b for a, b in claimed):
                continue
        assert check_prose(edited, computed) or check_commands(edited, readme_runs), what
    wrong = dict(readme_runs)
    wrong[python_snippet(text)[0]] = Ran(0, "[21  6] [1 1] [1090  953]\n", "")
    assert check_commands(text, wrong)  # a wrong printed output fails too


# --- the example headers --------------------------------------------------------------------

RUN_LINE = re.compile(r"^//\s+((?:printf\s+'[^']*'\s*\|\s*)?mlpc run .*)$")
STEP_CLAIM = re.compile(r"([\d,]+) SUBLEQ steps")


def header(name: str) -> str:
    lines = []
    for line in (EXAMPLES / f"{name}.tl").read_text().splitlines():
        if not line.startswith("//"):
            break
        lines.append(line)
    return "\n".join(lines)


def first_run_line(name: str) -> str:
    return next(m.group(1) for line in header(name).splitlines()
                if (m := RUN_LINE.match(line)))


def run_header_line(line: str, *extra: str) -> tuple[Ran, float]:
    script = (f'mlpc() {{ {sys.executable} -m mlpc.cli "$@"; }}\nset -o pipefail\n'
              f"{line} {' '.join(extra)}")
    started = time.perf_counter()
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, PYTHONSAFEPATH="1"), timeout=600)
    return Ran(proc.returncode, proc.stdout, proc.stderr), time.perf_counter() - started


CLAIMING = sorted(p.stem for p in EXAMPLES.glob("*.tl") if STEP_CLAIM.search(header(p.stem)))


def test_headers_claim_no_minutes() -> None:
    for path in EXAMPLES.glob("*.tl"):
        assert "minute" not in header(path.stem), path.name
    assert len(CLAIMING) >= 5


@pytest.mark.parametrize("name", CLAIMING)
def test_header_step_counts(name: str) -> None:
    """`N SUBLEQ steps` in a header is the step count of its first `mlpc run` line on the
    reference interpreter, exactly."""
    (claim,) = STEP_CLAIM.findall(header(name))
    ran, _ = run_header_line(first_run_line(name), "--engine reference --json --quiet")
    assert ran.code == 0, ran.err
    assert f"{json.loads(ran.out)['steps']:,}" == claim


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.tl") if
                                        "under a second of network time" in header(p.stem)))
def test_header_under_a_second_on_the_network(name: str) -> None:
    """"under a second of network time on the network specialised to this program": the
    first line as written runs on that network (the default onnx engine, `--specialise`),
    and the benchmark that times it (`benchmarks/results/runs.json`: the whole run of those
    inputs in onnxruntime, the README's runs table) found it under a second."""
    line = first_run_line(name)
    assert "--specialise" in line and "--engine" not in line
    ran, _ = run_header_line(line, "--quiet")
    assert ran.code == 0, ran.err
    results = json.loads((REPO / "benchmarks" / "results" / "runs.json").read_text())
    assert {r["program"]: r for r in results["rows"]}[name]["runs"]["header_run_seconds"] < 1


def test_slow_sample_ids_are_collected() -> None:
    """Every id in conftest.SLOW_SAMPLE names a slow test that exists."""
    files = sorted({test_id.split("::")[0] for test_id in SLOW_SAMPLE})
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-m", "slow_sample", "-p", "no:cacheprovider", *files],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    collected = {line.strip() for line in proc.stdout.splitlines() if "::" in line}
    assert collected == set(SLOW_SAMPLE), proc.stdout[-2000:]
