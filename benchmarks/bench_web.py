"""The page's speed next to onnxruntime's in Python, on the same model, in one run.

    python benchmarks/bench_web.py             # measure, write benchmarks/results/web.json
    python benchmarks/bench_web.py --readme    # print the README's sentence from the results

The model is examples/fizzbuzz.tl (n = 30) compiled with the default options. Python runs it
with `OnnxModel.run` (what `mlpc run` does: one onnxruntime thread, calls sized by time). The
page (`mlpc web`, served on localhost, in headless Chromium: onnxruntime-web's WebAssembly
build on one thread) runs it with its Run button; its steps/s are the ones it shows (steps
over the wall time of the run, drawing included), and the model-calls-only rate is given too.
Both runs are checked against each other (status, steps, output). Each is timed `--repeats`
times; the median is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import onnxruntime

from mlpc.cli import main as mlpc_main
from mlpc.runtime import web
from mlpc.runtime.onnx_model import OnnxModel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from chromium import DevTools  # noqa: E402  (the tests' stdlib DevTools client)

RESULTS = REPO / "benchmarks" / "results" / "web.json"
PROGRAM = "fizzbuzz.tl"
INPUTS = {"n": 30}


def time_python(model: Path, repeats: int) -> tuple[list[float], dict[str, Any]]:
    """Steps/s of each run in Python's onnxruntime, and the last run's report."""
    session = OnnxModel(str(model))
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        report = session.run({n: [v] for n, v in INPUTS.items()}).report(0)
        rates.append(report.steps / (time.perf_counter() - started))
    return rates, {"status": report.status, "steps": report.steps, "text": report.text()}


def time_page(model: Path, repeats: int, profile: Path) -> dict[str, Any]:
    """Steps/s the page shows for each press of Run, the model-calls-only rate, the page's
    result, and the browser's version."""
    site = profile / "site"
    entry = web.SiteModel(model.name, model.read_bytes(), PROGRAM, dict(INPUTS))
    web.build_site([entry], site, web.onnxruntime_web())
    server = web.site_server(site, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tools = DevTools(profile / "chromium")
    try:
        page = tools.open_page(f"http://localhost:{server.server_address[1]}/")
        while not tools.evaluate(page, "typeof window.mlpc === 'object'"):
            time.sleep(0.05)
        tools.evaluate(page, "window.mlpc.ready")
        shown, calls = [], []
        for _ in range(repeats):
            result = tools.evaluate(page, """(async () => {
  const $ = (id) => document.getElementById(id);
  $('reset').click();
  $('run').click();
  await window.mlpc.idle();
  const s = window.mlpc.snapshot();
  return {rate: Number($('rate').textContent), steps: s.steps, calls: s.callSeconds,
          status: $('status').textContent, text: $('output-text').textContent,
          message: $('message').hidden ? null : $('message').textContent};
})()""")
            if result["message"]:
                raise SystemExit(f"bench_web: the page says {result['message']}")
            shown.append(result["rate"])
            calls.append(result["steps"] / result["calls"])
        version = tools.call("Browser.getVersion")["product"]
    finally:
        tools.close()
        server.shutdown()
        server.server_close()
    return {"shown": shown, "calls": calls, "browser": version,
            "result": {k: result[k] for k in ("status", "steps", "text")}}


def code_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return done.stdout.strip()

    return {"head": git("rev-parse", "--short", "HEAD"),
            "uncommitted": git("status", "--porcelain", "--", "runtime", "compiler",
                               "src").splitlines()}


def measure(repeats: int) -> dict[str, Any]:
    load_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        model = Path(tmp) / "fizzbuzz.onnx"
        if mlpc_main(["compile", str(REPO / "examples" / PROGRAM), "-o", str(model)]) != 0:
            raise SystemExit("bench_web: compiling the program failed")
        python, expected = time_python(model, repeats)
        page = time_page(model, repeats, Path(tmp))
    if page["result"] != expected:
        raise SystemExit(f"bench_web: the page ended with {page['result']}, Python with "
                         f"{expected}")
    return {
        "date": time.strftime("%Y-%m-%d"),
        "program": PROGRAM,
        "inputs": INPUTS,
        "steps": expected["steps"],
        "repeats": repeats,
        "python_steps_per_s": [round(r) for r in python],
        "page_steps_per_s": [round(r) for r in page["shown"]],
        "page_model_calls_steps_per_s": [round(r) for r in page["calls"]],
        "median": {"python": round(statistics.median(python)),
                   "page": round(statistics.median(page["shown"])),
                   "page_model_calls": round(statistics.median(page["calls"]))},
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_web": web.ORT_WEB_VERSION,
        "browser": page["browser"],
        "machine": f"{os.cpu_count()}-core {platform.machine()}",
        "load_average_start": load_start,
        "load_average_end": list(os.getloadavg()),
        "code": code_state(),
    }


def readme_sentence(result: dict[str, Any]) -> str:
    """The README's claim, from the results file (tests/test_docs.py compares the two)."""
    m = result["median"]
    return (f"`{result['program']}` (n = {result['inputs']['n']}, {result['steps']:,} steps) "
            f"runs at {m['page']:,} steps/s in the page ({m['page_model_calls']:,} counting "
            f"only the model's calls) and at {m['python']:,} steps/s in onnxruntime in Python, "
            f"on a {result['machine']} machine")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--readme", action="store_true",
                        help="print the README's sentence from the results file")
    args = parser.parse_args(argv)
    if args.readme:
        print(readme_sentence(json.loads(RESULTS.read_text())))
        return 0
    result = measure(args.repeats)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["median"]), readme_sentence(result), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
