"""Wall time of mlpc's commands as a user types them, start-up included, in one run.

    python benchmarks/bench_startup.py            # measure, write results/startup.json
    python benchmarks/bench_startup.py --readme   # the README's table from the results

Each command runs as a subprocess of its own (the `mlpc` script next to this Python, as a
user's shell runs it) `--repeat` times; the table shows the median. In the same run, for
comparison: `python -c pass` (the interpreter alone), `python -c "import onnx"` (the onnx
package's own import), and the reference interpreter on the same program. The commands:

- `mlpc --help`;
- `mlpc run gcd.onnx ...`: a compiled model (only onnxruntime and numpy are imported);
- `mlpc run examples/gcd.tl ...`, a first run (no model in the cache: parse, check, lower,
  compile, export, run) and a repeated run (the compiled model comes from mlpc's cache);
- every `mlpc run` line in the examples' headers, repeated runs.

The bars (issue "On a stranger's machine") are printed beside the numbers: `--help` within
0.15 s, a model file and a repeated run within 0.4 s, a first run within the onnx package's
import time plus 0.3 s, every header line within 1 s. Exit status 1 when a command fails, or
prints something else on one of its runs than on the first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import onnxruntime

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GCD = ["run", "examples/gcd.tl", "--input", "a=1071", "--input", "b=462"]
RUN_LINE = re.compile(r"^//\s+((?:printf\s+'([^']*)'\s*\|\s*)?mlpc run (.*))$")
BARS = {"help": 0.15, "model": 0.4, "repeated": 0.4, "header": 1.0}
FIRST_MARGIN = 0.3  # a first run: at most the onnx package's import time plus this


def mlpc_command() -> list[str]:
    """The `mlpc` script of this Python's environment (as a user runs it)."""
    script = Path(sys.executable).parent / "mlpc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlpc.cli"]


def timed(argv: list[str], env: dict[str, str], stdin: str = "") -> tuple[float, str]:
    """Wall seconds of one run, and what it printed (stdout, then stderr, then its exit
    status when not 0: every command measured here succeeds)."""
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=600)
    status = f"\nexit status {done.returncode}" if done.returncode else ""
    return time.perf_counter() - started, done.stdout + done.stderr + status


def measure(argv: list[str], env: dict[str, str], repeat: int, stdin: str = "",
            no_models: bool = False) -> dict[str, Any]:
    """`repeat` runs (with `no_models`, each with no compiled model in the cache: the
    program is compiled; the parser's tables, built once per installation, stay); the
    median, every time, and whether every run printed what the first one did."""
    times, outputs = [], []
    for _ in range(repeat):
        if no_models:
            shutil.rmtree(Path(env["MLPC_CACHE"]) / "models", ignore_errors=True)
        seconds, out = timed(argv, env, stdin)
        times.append(seconds)
        outputs.append(out)
    return {"command": shlex.join(argv), "median": statistics.median(times),
            "seconds": [round(t, 4) for t in times], "same_output": len(set(outputs)) == 1,
            "failed": any("\nexit status " in out for out in outputs),
            "output": outputs[0][-300:]}


def header_lines() -> list[tuple[str, list[str], str]]:
    """(the line as written, mlpc's arguments, standard input) of every `mlpc run` line in
    the headers of the examples (`examples/*.tl`)."""
    found = []
    for path in sorted((REPO / "examples").glob("*.tl")):
        for line in path.read_text().splitlines():
            if not line.startswith("//"):
                break
            if m := RUN_LINE.match(line):
                # printf's text holds no % or \ in these lines: it is the input as written
                found.append((m.group(1), ["run", *shlex.split(m.group(3)), "--quiet"],
                              m.group(2) or ""))
    return found


def run_all(repeat: int) -> dict[str, Any]:
    mlpc = mlpc_command()
    env = dict(os.environ, PYTHONSAFEPATH="1")
    env.pop("MLPC_SHARED", None)
    # as a user's Python runs: with bytecode caches (pip writes them for an installed
    # package; an editable checkout gets them on its first run, the set-up below)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    work = Path(tempfile.mkdtemp(prefix="mlpc-bench-startup-"))
    env["MLPC_CACHE"] = str(work / "cache")
    model = str(work / "gcd.onnx")
    # (this also builds the parser's tables, as any first use of mlpc does, once)
    subprocess.run([*mlpc, "compile", "examples/gcd.tl", "-o", model], cwd=REPO, env=env,
                   check=True, capture_output=True)
    python = [sys.executable]
    rows = {
        "python": measure([*python, "-c", "pass"], env, repeat),
        "import_onnx": measure([*python, "-c", "import onnx"], env, repeat),
        "help": measure([*mlpc, "--help"], env, repeat),
        "model": measure([*mlpc, "run", model, *GCD[2:]], env, repeat),
        "first": measure([*mlpc, *GCD], env, repeat, no_models=True),
    }
    timed([*mlpc, *GCD], env)  # fills the cache
    rows["repeated"] = measure([*mlpc, *GCD], env, repeat)
    rows["reference"] = measure([*mlpc, *GCD, "--engine", "reference"], env, repeat)
    headers = []
    for line, args, stdin in header_lines():
        timed([*mlpc, *args], env, stdin)  # the first run compiles and caches
        row = measure([*mlpc, *args], env, repeat, stdin)
        row["line"] = line
        headers.append(row)
    shutil.rmtree(work, ignore_errors=True)
    return {"rows": rows, "headers": headers}


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    rows = result["rows"]
    first_bar = rows["import_onnx"]["median"] + FIRST_MARGIN
    return {
        "help": rows["help"]["median"] <= BARS["help"],
        "model": rows["model"]["median"] <= BARS["model"],
        "repeated": rows["repeated"]["median"] <= BARS["repeated"],
        "first": rows["first"]["median"] <= first_bar,
        "header": max(h["median"] for h in result["headers"]) <= BARS["header"],
    }


def readme_table(result: dict[str, Any]) -> str:
    """The README's table (`--readme`): a test checks that the README shows exactly this."""
    rows, ok = result["rows"], verdicts(result)
    onnx_s = rows["import_onnx"]["median"]
    slowest = max(result["headers"], key=lambda h: h["median"])
    seconds = [h["median"] for h in result["headers"]]

    def mark(key: str) -> str:
        return "met" if ok[key] else "NOT met"

    lines = [
        "| command | seconds | bar |",
        "|---|---|---|",
        f"| `python -c pass` | {rows['python']['median']:.2f} | |",
        f"| `python -c \"import onnx\"` | {onnx_s:.2f} | |",
        f"| `mlpc --help` | {rows['help']['median']:.2f} | ≤ {BARS['help']:.2f}: "
        f"{mark('help')} |",
        f"| `mlpc run gcd.onnx --input a=1071 --input b=462` | {rows['model']['median']:.2f} "
        f"| ≤ {BARS['model']:.2f}: {mark('model')} |",
        f"| `mlpc run examples/gcd.tl ...`, first run | {rows['first']['median']:.2f} | "
        f"≤ import onnx + {FIRST_MARGIN:.2f}: {mark('first')} |",
        f"| `mlpc run examples/gcd.tl ...`, repeated | {rows['repeated']['median']:.2f} | "
        f"≤ {BARS['repeated']:.2f}: {mark('repeated')} |",
        f"| `mlpc run examples/gcd.tl ... --engine reference` | "
        f"{rows['reference']['median']:.2f} | |",
        f"| the examples' {len(seconds)} header lines, repeated: median | "
        f"{statistics.median(seconds):.2f} | |",
        f"| slowest header line (`{slowest['line'].split('mlpc run ')[1]}`) | "
        f"{slowest['median']:.2f} | ≤ {BARS['header']:.2f}: {mark('header')} |",
        "",
        f"Medians of {result['repeat']} runs each, measured {result['date'][:10]} on a "
        f"{result['cpus']}-core {result['machine']} machine (load average "
        f"{result['load_average_start'][0]:.1f} at the start), Python {result['python']}, "
        f"onnxruntime {result['onnxruntime']}, code at {result['code_head'][:7]}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true",
                        help="print the README's table from the results file (--out) and exit")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.json")
    args = parser.parse_args(argv)
    if args.readme:
        print(readme_table(json.loads(args.out.read_text())))
        return 0
    load_start = list(os.getloadavg())
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    result = run_all(max(args.repeat, 1))
    result.update({
        "command": "python benchmarks/bench_startup.py" + " ".join(
            [""] + (argv if argv is not None else sys.argv[1:])),
        "repeat": max(args.repeat, 1),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
        "load_average_start": load_start, "load_average_end": list(os.getloadavg()),
        "code_head": head,
    })
    result["bars_met"] = verdicts(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(readme_table(result))
    rows = [*result["rows"].values(), *result["headers"]]
    bad = [f"MISMATCH: {r['command']} printed different outputs" for r in rows
           if not r["same_output"]]
    bad += [f"FAILED: {r['command']}: {r['output']}" for r in rows if r["failed"]]
    for line in bad:
        print(line, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
