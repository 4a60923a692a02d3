"""`mlpc web`: the static site (files, manifest, package data), its command-line errors, and
the page itself in headless Chromium with the real onnxruntime-web, checked against
onnxruntime in Python on the same models.

The browser tests skip when `/usr/bin/chromium` is absent or onnxruntime-web cannot be had
(no npm, offline, and nothing in the cache). `MLPC_UPDATE_SCREENSHOTS=1` writes the page's
screenshot to docs/web/page.png (shown in the README).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from chromium import DevTools, free_port, needs_chromium, wait_for_port
from onnx import TensorProto, helper

from mlpc.cli import main
from mlpc.compiler.codegen import StateLayout, build_step_network, decode_state
from mlpc.compiler.driver import load_program
from mlpc.compiler.machine_config import MachineConfig
from mlpc.compiler.model import read_only_of
from mlpc.compiler.options import CompileOptions
from mlpc.errors import MlpcError
from mlpc.runtime import reference, web
from mlpc.runtime.machine import initial_state
from mlpc.runtime.onnx_model import OnnxModel

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SCREENSHOT = REPO / "docs" / "web" / "page.png"
GCD = {"a": 1071, "b": 462}
# echoes its tape, -1 words included, as long as eof() says there are words left
ECHO_EOF = "output n;\nwhile (!eof()) { write(read()); n += 1; }\n"


def compile_example(name: str, out: Path) -> Path:
    path = out / f"{Path(name).stem}.onnx"
    assert main(["compile", str(EXAMPLES / name), "-o", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """hello (output text), gcd (named inputs and output), factorial (traps for n < 0),
    echo (eof(): the page feeds the tape's length)."""
    out = tmp_path_factory.mktemp("models")
    found = {name: compile_example(f, out) for name, f in
             (("hello", "hello.asm"), ("gcd", "gcd.tl"), ("factorial", "factorial.tl"))}
    echo = out / "echo.tl"
    echo.write_text(ECHO_EOF, encoding="utf-8")
    found["echo"] = out / "echo.onnx"
    assert main(["compile", str(echo), "-o", str(found["echo"])]) == 0
    found["gcd-specialised"] = out / "gcd-specialised.onnx"
    assert main(["compile", str(EXAMPLES / "gcd.tl"), "--specialise", "-o",
                 str(found["gcd-specialised"])]) == 0
    return found


@pytest.fixture
def fake_ort(tmp_path: Path) -> Path:
    """A folder with onnxruntime-web's file names (not the real files: the site builder only
    copies them)."""
    folder = tmp_path / "ort-dist"
    folder.mkdir()
    for name in web.ORT_WEB_FILES:
        (folder / name).write_text(f"// {name}\n")
    return folder


def not_mlpc_model() -> bytes:
    """A valid ONNX model that mlpc did not make (y = x + x)."""
    x = helper.make_tensor_value_info("x", TensorProto.INT64, [1])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, [1])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "add", [x], [y])
    return helper.make_model(graph).SerializeToString()


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(args)
    return status, capsys.readouterr().err.strip()


# ---- the site builder -----------------------------------------------------------------------


def test_site_holds_page_models_runtime_and_manifest(
        models: dict[str, Path], fake_ort: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site"
    sigterm = signal.getsignal(signal.SIGTERM)
    status, err = cli(["web", str(models["gcd"]), "-o", str(site), "--onnxruntime-web",
                       str(fake_ort)], capsys)
    assert status == 0
    assert signal.getsignal(signal.SIGTERM) is sigterm  # mlpc web's own handler is gone
    files = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file())
    assert files == ["app.js", "index.html", "models/gcd.onnx",
                     "onnxruntime-web/LICENSE.txt", "onnxruntime-web/ort-wasm-simd-threaded.mjs",
                     "onnxruntime-web/ort-wasm-simd-threaded.wasm",
                     "onnxruntime-web/ort.wasm.min.js", "site.json", "style.css"]
    size = sum((site / f).stat().st_size for f in files)
    assert err == (f"wrote {site}: index.html, 1 model, onnxruntime-web {web.ORT_WEB_VERSION} "
                   f"({size / 1e6:.1f} MB in all)")
    assert (site / "models/gcd.onnx").read_bytes() == models["gcd"].read_bytes()
    manifest = json.loads((site / "site.json").read_text())
    assert manifest["models"] == [{"file": "models/gcd.onnx", "title": "gcd.tl",
                                   "inputs": {"a": 0, "b": 0}, "tape": []}]
    assert manifest["onnxruntime_web"] == "1.30.0"
    assert manifest["status_names"] == {"0": "step-limit", "1": "halted", "2": "fault",
                                        "3": "trap"}
    assert manifest["fault_text"]["1"] == "pc out of range"
    assert manifest["fault_text"]["6"] == "input tape longer than its capacity"
    assert manifest["trap_kinds"]["4"] == "assertion failed"
    assert (manifest["max_steps"], manifest["max_budget"]) == (10_000_000, (1 << 50) - 1)
    licence = (site / "onnxruntime-web/LICENSE.txt").read_text()
    assert "MIT License\n\nCopyright (c) Microsoft Corporation" in licence
    page = (site / "index.html").read_text()
    assert '<script src="onnxruntime-web/ort.wasm.min.js"></script>' in page
    assert "http" not in page.replace("http-equiv", "")  # nothing from elsewhere


def test_models_map_words_to_source_lines(models: dict[str, Path]) -> None:
    """The page marks the source line of pc from the `source_lines` metadata."""
    meta = {p.key: p.value for p in onnx.load(str(models["gcd"])).metadata_props}
    spans = json.loads(meta["source_lines"])
    assert spans[:2] == [[0, 3, 8], [3, 21, 8]]
    assert {line for _, _, line in spans} == {8, 9}


def test_page_files_are_package_data() -> None:
    """Read through importlib.resources, as the site builder does (with the non-editable
    install of CI, from the installed wheel)."""
    from importlib import resources

    static = resources.files("mlpc.runtime") / "web_static"
    for name in (*web.PAGE_FILES, web.ORT_WEB_LICENSE):
        assert (static / name).is_file(), name


def test_wheel_holds_the_page(tmp_path: Path) -> None:
    """`pip install .` (what CI does) installs the page: the wheel built from a copy of the
    sources holds every file of web_static/."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("src", "compiler", "runtime", "pyproject.toml", "README.md"):
        copy = subprocess.run(["cp", "-r", str(REPO / name), str(src / name)])
        assert copy.returncode == 0
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q",
                            "-w", str(tmp_path / "dist")], cwd=src, capture_output=True,
                           text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("mlpc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    static = sorted(p.name for p in (REPO / "runtime/web_static").iterdir())
    assert static == sorted([*web.PAGE_FILES, web.ORT_WEB_LICENSE])
    for name in static:
        assert f"mlpc/runtime/web_static/{name}" in names


def test_gallery_of_examples_starts_with_their_header_inputs(
        fake_ort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examples = tmp_path / "examples"
    examples.mkdir()
    for name in ("gcd.tl", "hello.asm", "expected.py"):
        (examples / name).write_bytes((EXAMPLES / name).read_bytes())
    site = tmp_path / "gallery"
    status, err = cli(["web", "--examples", str(examples), "-o", str(site),
                       "--onnxruntime-web", str(fake_ort)], capsys)
    assert status == 0, err
    manifest = json.loads((site / "site.json").read_text())
    assert manifest["models"] == [
        {"file": "models/gcd.onnx", "title": "gcd.tl", "inputs": GCD, "tape": []},
        {"file": "models/hello.onnx", "title": "hello.asm", "inputs": {}, "tape": []},
    ]


def test_header_run_reads_inputs_tape_and_stdin() -> None:
    def read(name: str) -> tuple[dict[str, int], tuple[int, ...]]:
        return web.header_run((EXAMPLES / name).read_text())

    assert read("modpow.tl") == ({"base": 4, "exp": 13, "m": 497}, ())
    assert read("collatz.tl") == ({"n": 4}, ())  # the network's line, not the reference's
    assert read("bubble_sort.tl") == ({}, (31, 4, 15, -9, 26, 5, 3, 58, -97, 9))
    assert read("brainfuck.tl") == ({}, tuple(map(ord, ",[.,]!hi")))
    assert read("hello.asm") == ({}, ())


# ---- obtaining onnxruntime-web ----------------------------------------------------------------


def npm_tarball(path: Path, names: tuple[str, ...]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name in names:
            data = f"// {name}\n".encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def fake_npm(folder: Path, names: tuple[str, ...]) -> None:
    """An `npm` whose `pack` writes a package tarball holding `names` into
    --pack-destination."""
    folder.mkdir()
    tarball = folder / "onnxruntime-web-1.30.0.tgz"
    npm_tarball(tarball, names)
    script = folder / "npm"
    script.write_text(f'#!/bin/sh\n[ "$1" = pack ] && [ "$2" = onnxruntime-web@1.30.0 ] '
                      f'&& /bin/cp {tarball} "$5" && exit 0\necho "npm error 404 $2" >&2\nexit 1\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


PACKAGE = tuple(f"package/dist/{n}" for n in web.ORT_WEB_FILES) + (
    "package/package.json", "package/dist/ort.all.js", "package/README.md")


def test_npm_pack_fills_the_cache_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_npm(tmp_path / "bin", PACKAGE)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = web.onnxruntime_web()
    assert folder == tmp_path / "cache/mlpc/onnxruntime-web-1.30.0"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*web.ORT_WEB_FILES, "package.json"])
    assert sorted(p.name for p in (tmp_path / "cache/mlpc").iterdir()) == [
        "onnxruntime-web-1.30.0"]  # no staging folder left
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # the cache answers now
    assert web.onnxruntime_web() == folder


def test_npm_package_without_the_wasm_is_an_error(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    fake_npm(tmp_path / "bin", PACKAGE[:2] + PACKAGE[3:])
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(MlpcError) as err:
        web.onnxruntime_web()
    assert str(err.value) == ("onnxruntime-web-1.30.0.tgz: the package has no "
                              "package/dist/ort-wasm-simd-threaded.wasm")


def test_without_npm_or_cache_the_error_says_what_to_do(
        monkeypatch: pytest.MonkeyPatch, models: dict[str, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    status, err = cli(["web", str(models["gcd"]), "-o", str(tmp_path / "site")], capsys)
    assert (status, err) == (1, f"error: mlpc web needs onnxruntime-web 1.30.0: install npm "
                             f"(Node.js) to let mlpc fetch it into {tmp_path}/cache/mlpc, or "
                             "give --onnxruntime-web DIR (a copy of the npm package "
                             "onnxruntime-web@1.30.0)")


def test_npm_failing_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text("#!/bin/sh\necho 'npm error code ENOTFOUND' >&2\nexit 1\n")
    (bin_dir / "npm").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(MlpcError) as err:
        web.onnxruntime_web()
    assert str(err.value) == ("npm pack onnxruntime-web@1.30.0 failed (npm error code "
                              "ENOTFOUND); or give --onnxruntime-web DIR (a copy of the npm "
                              "package onnxruntime-web@1.30.0)")


def test_onnxruntime_web_folder_given(fake_ort: Path, tmp_path: Path) -> None:
    package = tmp_path / "node_modules/onnxruntime-web"
    package.mkdir(parents=True)
    fake_ort.rename(package / "dist")
    assert web.onnxruntime_web(str(package)) == package / "dist"
    assert web.onnxruntime_web(str(package / "dist")) == package / "dist"
    with pytest.raises(MlpcError) as err:
        web.onnxruntime_web(str(tmp_path))
    assert str(err.value) == (f"--onnxruntime-web {tmp_path}: no ort.wasm.min.js there (give "
                              "the npm package onnxruntime-web@1.30.0 or a folder of its dist "
                              "files)")


# ---- command-line errors ----------------------------------------------------------------------


def test_bad_models_are_one_line_errors(models: dict[str, Path], fake_ort: Path,
                                        tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "add.onnx"
    foreign.write_bytes(not_mlpc_model())
    step = tmp_path / "step.onnx"
    assert main(["compile", str(EXAMPLES / "gcd.tl"), "--step-model", str(step)]) == 0
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff" * 40)
    capsys.readouterr()
    out = ["-o", str(tmp_path / "site"), "--onnxruntime-web", str(fake_ort)]
    expected = {
        "nope.onnx": "error: nope.onnx: no such file",
        str(foreign): f"error: {foreign}: this ONNX model was not made by mlpc (no program "
                      "metadata)",
        str(garbage): f"error: {garbage}: not a readable ONNX model (DecodeError)",
        str(tmp_path): f"error: {tmp_path}: is a directory, not a file",
        str(step): f"error: {step} is a step model (state in, next_state out: apply it with "
                   "onnxruntime); mlpc runs and describes full models (mlpc compile -o)",
    }
    for model, message in expected.items():
        assert cli(["web", model, *out], capsys) == (1, message)


def test_unwritable_folder_is_one_line(models: dict[str, Path], fake_ort: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder\n")
    status, err = cli(["web", str(models["gcd"]), "-o", str(blocker / "site"),
                       "--onnxruntime-web", str(fake_ort)], capsys)
    assert (status, err) == (1, f"error: {blocker / 'site/models'}: cannot write: Not a "
                             "directory")


def test_port_in_use_is_one_line(models: dict[str, Path], fake_ort: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    with web.site_server(tmp_path, 0) as taken:
        port = taken.server_address[1]
        status, err = cli(["web", str(models["gcd"]), "--serve", "--port", str(port),
                           "--onnxruntime-web", str(fake_ort)], capsys)
    assert (status, err) == (1, f"error: cannot listen on port {port}: Address already in use")


def test_usage_errors(models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    gcd = str(models["gcd"])
    expected = {
        ("web", "-o", "x"): "error: mlpc web takes a MODEL.onnx or --examples (one of them)",
        ("web", gcd, "--examples", "-o", "x"):
            "error: mlpc web takes a MODEL.onnx or --examples (one of them)",
        ("web", "examples/gcd.tl", "-o", "x"):
            "error: mlpc web runs a compiled model (MODEL.onnx), not a program: mlpc compile "
            "examples/gcd.tl -o MODEL.onnx first",
        ("web", gcd): "error: mlpc web needs -o DIR (where to write the site) or --serve",
        ("web", gcd, "-o", "x", "--port", "8000"): "error: --port is the port of --serve",
        ("web", gcd, "-o", "x", "--port", "0"): "error: --port is the port of --serve",
        ("web", gcd, "--serve", "--port", "65536"):
            "error: mlpc web: argument --port: not a port number (0-65535): '65536'",
        ("web", gcd, "--serve", "--port", "-1"):
            "error: mlpc web: argument --port: not a port number (0-65535): '-1'",
    }
    for args, message in expected.items():
        assert cli(list(args), capsys) == (2, message)


def test_missing_examples_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = cli(["web", "--examples", str(tmp_path / "none"), "-o", str(tmp_path)],
                      capsys)
    assert (status, err) == (1, f"error: {tmp_path / 'none'}: no such folder of example "
                             "programs (mlpc web --examples reads examples/ in the mlpc "
                             "checkout, or give --examples DIR)")


def test_serve_prints_the_url_and_stops_on_ctrl_c(models: dict[str, Path], fake_ort: Path
                                                  ) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlpc.cli", "web", str(models["gcd"]), "--serve", "--port",
         str(port), "--onnxruntime-web", str(fake_ort)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, server, time.monotonic() + 60)
        base = f"http://localhost:{port}/"
        types = {}
        for path in ("", "site.json", "app.js", "onnxruntime-web/ort-wasm-simd-threaded.mjs",
                     "onnxruntime-web/ort-wasm-simd-threaded.wasm", "models/gcd.onnx"):
            with urllib.request.urlopen(base + path, timeout=10) as reply:
                types[path] = reply.headers["Content-Type"]
                body = reply.read()
        assert body == models["gcd"].read_bytes()
        assert types == {"": "text/html", "site.json": "application/json",
                         "app.js": "text/javascript",
                         "onnxruntime-web/ort-wasm-simd-threaded.mjs": "text/javascript",
                         "onnxruntime-web/ort-wasm-simd-threaded.wasm": "application/wasm",
                         "models/gcd.onnx": "application/octet-stream"}
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0
    lines = err.decode().splitlines()
    assert lines[1].startswith("mlpc: serving /")  # a temporary folder, removed at the end
    assert lines[1].endswith(f" at http://localhost:{port}/ (Ctrl-C to stop)")
    assert not Path(lines[1].split()[2]).exists()


def stderr_line(server: subprocess.Popen[bytes], start: str, deadline: float) -> str:
    """The first line on the server's stderr (unbuffered) that starts with `start`."""
    assert server.stderr is not None
    said = b""
    while time.monotonic() < deadline and server.poll() is None:
        if not select.select([server.stderr], [], [], 0.2)[0]:
            continue
        said += server.stderr.read(4096) or b""
        for line in said.decode(errors="replace").splitlines(keepends=True):
            if line.startswith(start) and line.endswith("\n"):
                return line.rstrip("\n")
    raise AssertionError(f"no line starting {start!r} on stderr: {said.decode()!r}")


def test_serve_on_port_0_prints_the_port_and_cleans_up_on_sigterm(
        models: dict[str, Path], fake_ort: Path) -> None:
    """`--port 0` binds a free port and the URL names it; SIGTERM (what `kill` sends) stops
    the server as Ctrl-C does: exit status 0, its temporary site removed."""
    server = subprocess.Popen(
        [sys.executable, "-m", "mlpc.cli", "web", str(models["gcd"]), "--serve", "--port", "0",
         "--onnxruntime-web", str(fake_ort)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    try:
        line = stderr_line(server, "mlpc: serving /", time.monotonic() + 60)
        match = re.fullmatch(r"mlpc: serving (\S+) at http://localhost:(\d+)/ \(Ctrl-C to stop\)",
                             line)
        assert match, line
        site, port = Path(match[1]), int(match[2])
        assert port != 0 and site.name.startswith("mlpc-web-")
        with urllib.request.urlopen(f"http://localhost:{port}/models/gcd.onnx",
                                    timeout=10) as reply:
            assert reply.read() == models["gcd"].read_bytes()
        assert (site / "index.html").is_file()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert (server.returncode, out, err) == (0, b"", b"")  # nothing more said: no traceback
    assert not site.exists()


# ---- the page, in headless Chromium ---------------------------------------------------------


@pytest.fixture(scope="module")
def ort_web() -> Path:
    """The real onnxruntime-web (the cache, or npm pack), or a skip saying why not."""
    try:
        return web.onnxruntime_web()
    except MlpcError as err:
        pytest.skip(f"onnxruntime-web cannot be had: {err}")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    tools = DevTools(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield tools
    finally:
        tools.close()


@pytest.fixture(scope="module")
def server_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A folder of sites, served by http.server in a thread (as `mlpc web --serve` does)."""
    root = tmp_path_factory.mktemp("sites")
    server = web.site_server(root, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class Page:
    """A tab showing a site: fields set and buttons clicked as a user would, and what the
    page shows read back. Used in a `with` block, which fails when the tab reported an
    error (console.error, an uncaught exception or rejection, a failed request) other than
    those the test lists in `expected_errors`; `started=False` returns as soon as the tab
    has been sent to the site, without waiting for the page to start."""

    SHOWN = """JSON.stringify({
      status: $('status').textContent, detail: $('detail').textContent,
      steps: Number($('steps').textContent), text: $('output-text').textContent,
      words: $('output-words').textContent,
      outputs: Object.fromEntries(Array.from(
        $('outputs').rows, (r) => [r.dataset.name, Number(r.cells[1].textContent)])),
      message: $('message').hidden ? null : $('message').textContent})"""

    def __init__(self, tools: DevTools, url: str, started: bool = True) -> None:
        self.tools = tools
        self.url = url
        self.session = tools.open_page(url, watch=True)
        self.expected_errors: list[str] = []
        if started:
            self.wait_started()

    def wait_started(self) -> None:
        deadline = time.monotonic() + 60
        while not self._has_api():
            assert time.monotonic() < deadline, f"{self.url}: the page did not start"
            time.sleep(0.05)
        self.js("window.mlpc.ready")

    def __enter__(self) -> Page:
        return self

    def __exit__(self, failed: type[BaseException] | None, *exc: object) -> None:
        try:
            self.js("0")  # the errors reported so far arrive before this reply
        finally:
            errors = self.tools.errors.pop(self.session)
            self.close()
        if failed is None:
            assert errors == self.expected_errors, f"{self.url}: the page reported {errors}"

    def _has_api(self) -> bool:
        try:
            return bool(self.tools.evaluate(self.session, "typeof window.mlpc === 'object'"))
        except AssertionError:  # the document is still being replaced
            return False

    def js(self, expression: str) -> Any:
        return self.tools.evaluate(self.session, f"(async () => {{ const $ = (id) => "
                                   f"document.getElementById(id); return {expression}; }})()")

    def fill(self, inputs: dict[str, object], tape: str = "") -> None:
        for name, value in inputs.items():
            self.js(f"$('input-{name}').value = {json.dumps(str(value))}")
        self.js(f"$('tape').value = {json.dumps(tape)}")

    def press(self, button: str) -> None:
        self.js(f"($('{button}').click(), window.mlpc.idle())")

    def shown(self) -> dict[str, Any]:
        return dict(json.loads(self.js(self.SHOWN)))

    def controls(self) -> dict[str, Any] | None:
        """The status, the message, which controls are off and whether Run has a box on
        screen; None before the page's elements exist."""
        return self.js("""$('run') && $('status') && {
          status: $('status').textContent,
          message: $('message').hidden ? null : $('message').textContent,
          off: CONTROLS.filter((id) => $(id).disabled),
          visible: $('run').getBoundingClientRect().width > 0,
          running: document.body.dataset.running === 'yes'}""".replace(
            "CONTROLS", json.dumps(CONTROLS)))

    def close(self) -> None:
        self.tools.call("Target.closeTarget", {"targetId": self.tools.call(
            "Target.getTargetInfo", session=self.session)["targetInfo"]["targetId"]})


def python_run(model: Path, inputs: dict[str, int], tape: tuple[int, ...] = ()
               ) -> dict[str, Any]:
    """What `mlpc run MODEL --json` prints for the same run (onnxruntime in Python)."""
    report = OnnxModel(str(model)).run({n: [v] for n, v in inputs.items()}, [tape]).report(0)
    return {"status": report.status, "detail": report.detail, "steps": report.steps,
            "text": report.text(), "words": " ".join(map(str, report.tape)),
            "outputs": dict(report.outputs), "message": None}


@pytest.fixture(scope="module")
def sites(models: dict[str, Path], ort_web: Path, server_root: tuple[Path, int]
          ) -> dict[str, str]:
    """One site per model, written by `mlpc web MODEL -o DIR`; their URLs."""
    root, port = server_root
    for name, model in models.items():
        assert main(["web", str(model), "-o", str(root / name)]) == 0
    return {name: f"http://localhost:{port}/{name}/" for name in models}


RUNS = [("hello", {}), ("gcd", GCD), ("factorial", {"n": -1})]
CONTROLS = ["run", "step", "run-n", "pause", "reset", "model-select", "model-file"]
RUN_BUTTONS = ["run", "step", "run-n", "pause", "reset"]  # off while no model is ready
MODEL_DELAY_S = 1.5


class SlowModels(web.SiteHandler):
    """Serves every model MODEL_DELAY_S late, so that a test sees the page while its model
    loads (on a fast machine the load can end before the first look)."""

    def do_GET(self) -> None:
        if self.path.endswith(".onnx"):
            time.sleep(MODEL_DELAY_S)
        super().do_GET()


@pytest.fixture(scope="module")
def slow_sites(sites: dict[str, str], server_root: tuple[Path, int]
               ) -> Iterator[dict[str, str]]:
    """The same sites, served with their models MODEL_DELAY_S late."""
    root, port = server_root
    server = ThreadingHTTPServer(("localhost", 0),
                                 functools.partial(SlowModels, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {name: url.replace(f":{port}/", f":{server.server_address[1]}/")
               for name, url in sites.items()}
    finally:
        server.shutdown()
        server.server_close()


@needs_chromium
def test_the_first_click_runs_the_program(models: dict[str, Path], slow_sites: dict[str, str],
                                          browser: DevTools) -> None:
    """A user who clicks Run the moment it shows, and again and again with no wait: while
    the model loads, Run, Step, Run N, Pause and Reset are off and the status and the message
    say it is loading, and the clicks do nothing; the first click once it is ready runs the
    program to the result Python's onnxruntime gives. (The page used to take those early
    clicks, throw a TypeError in readFields and run nothing.)"""
    with Page(browser, slow_sites["hello"], started=False) as page:
        deadline = time.monotonic() + 60
        state = None
        while not (state and state["visible"]):
            assert time.monotonic() < deadline, f"Run never showed: {state}"
            try:
                state = page.controls()
            except AssertionError:  # about:blank is being replaced by the page
                state = None
        seen = []
        while not (state["running"] or state["status"] not in ("loading", "ready")):
            assert time.monotonic() < deadline, f"no click on Run ran the program: {state}"
            seen.append(state)
            browser.click_element(page.session, "document.getElementById('run')")
            state = page.controls()
        page.js("window.mlpc.idle()")
        assert page.shown() == python_run(models["hello"], {})
        # the model comes MODEL_DELAY_S after the page: the first look is before it
        assert seen[0]["status"] == "loading", f"ready with no model yet: {seen[0]}"
        loading = [s for s in seen if s["status"] == "loading"]
        for s in loading:  # every control off, the message saying why
            assert (s["off"], s["message"][:8]) == (CONTROLS, "Loading "), s
        # then at most one look at the page ready (the click after it ran the program: the
        # model can also become ready between a look and the click)
        assert seen[len(loading):] in ([], [{**loading[0], "status": "ready", "off": ["pause"],
                                             "message": None}])


@needs_chromium
def test_page_shows_every_error(models: dict[str, Path], sites: dict[str, str],
                                browser: DevTools) -> None:
    """A run that throws, an error thrown by a handler and a promise that fails unawaited are
    shown at the top of the page; the two the page did not foresee also go to the console
    (with their stack), and the buttons work again after each."""
    with Page(browser, sites["gcd"]) as page:
        page.js("(model.session.run = () => Promise.reject(new Error('out of memory\\nat x')),"
                " 0)")
        page.press("run")
        shown = page.shown()
        assert (shown["message"], shown["status"], shown["steps"]) == (
            "onnxruntime-web failed to run the model: out of memory", "ready", 0)
        assert page.controls()["off"] == ["pause"]
        page.js("(setTimeout(() => { throw new TypeError('thrown by a handler'); }), 0)")
        page.tools.wait_for(page.session, "document.getElementById('message').textContent"
                            ".includes('handler')")
        assert page.shown()["message"] == "unexpected error: thrown by a handler"
        page.js("(Promise.reject(new RangeError('nobody awaited this')), 0)")
        page.tools.wait_for(page.session, "document.getElementById('message').textContent"
                            ".includes('awaited')")
        assert page.shown()["message"] == "unexpected error: nobody awaited this"
        assert page.controls()["off"] == ["pause"]
        page.expected_errors = ["console.error: TypeError: thrown by a handler",
                                "console.error: RangeError: nobody awaited this"]


@needs_chromium
def test_page_feeds_the_tape_length_to_eof(models: dict[str, Path], sites: dict[str, str],
                                           browser: DevTools) -> None:
    with Page(browser, sites["echo"]) as page:
        assert page.shown()["status"] == "ready"
        page.js("$('tape-kind').value = 'words'")
        page.fill({}, "-1,-1,7,-1")
        page.press("run")
        shown = page.shown()
        assert shown == python_run(models["echo"], {}, (-1, -1, 7, -1))
        assert (shown["outputs"], shown["words"]) == ({"n": 4}, "-1 -1 7 -1")


@needs_chromium
@pytest.mark.parametrize(("name", "inputs"), RUNS, ids=[n for n, _ in RUNS])
def test_page_run_equals_python(name: str, inputs: dict[str, int], models: dict[str, Path],
                                sites: dict[str, str], browser: DevTools) -> None:
    with Page(browser, sites[name]) as page:
        assert page.shown()["status"] == "ready"
        page.fill(inputs)
        page.press("run")
        assert page.shown() == python_run(models[name], inputs)


def _gcd_write(steps: int) -> int:
    """The address the reference machine writes at step `steps` of gcd on GCD's inputs."""
    program = load_program([str(EXAMPLES / "gcd.tl")], CompileOptions())
    image = program.image
    words = list(image.words)
    for name, address in image.inputs:
        words[address] = GCD[name]
    config = MachineConfig(memory=image.default_memory())
    state = initial_state(config, words)
    for _ in range(steps - 1):
        reference.step(config, state)
    event = reference.step(config, state)
    assert event is not None and event.writes
    return event.writes[0][0]


@needs_chromium
@pytest.mark.parametrize("name", ["gcd", "gcd-specialised"])
def test_page_steps_the_network_state(name: str, models: dict[str, Path],
                                      sites: dict[str, str], browser: DevTools) -> None:
    """The page's state is the network's: after each press it holds the final_state that the
    same calls of the model give in Python, and shows the memory and pc decode_state reads
    from it. Run 8 steps is one call that ends with a write pending (1071 into the cell the
    reference machine's 8th step writes), which the decoding lands (the specialised model's
    runs take fewer iterations, so its later idle iterations have landed it); ten Steps,
    then Run, end
    where one Run does. The specialised model's state holds only the writable words (its
    layout in `state_words`)."""
    with Page(browser, sites[name]) as page:
        page.fill(GCD)
        page.js("$('n').value = '8'")
        page.press("run-n")
        layout, state = check_decoding(models[name], page.js("window.mlpc.snapshot()"), [8])
        assert decode_state(layout, state).memory[_gcd_write(8)] == 1071
        if name == "gcd":  # one step per iteration: the 8th step's write is still pending
            assert _pending_writes(layout, state) == [(_gcd_write(8), 1071)]
        page.press("reset")
        for step in range(1, 11):
            page.press("step")
            shown = page.shown()
            assert (shown["status"], shown["steps"]) == ("paused", step)
        check_decoding(models[name], page.js("window.mlpc.snapshot()"), [1] * 10)
        page.press("run")
        assert page.shown() == python_run(models[name], GCD)


def _pending_writes(layout: StateLayout, state: np.ndarray) -> list[tuple[int, int]]:
    """(address, new word) of the writes a state holds pending: the single step's
    (wa2, wo, wv) when it writes, and a straight-line run's (rwa_k, rwv_k) in a specialised
    state (docs/network.md)."""
    H = 1 << 31
    word = {name: int(state[layout.index(name)]) for name in layout.names
            if not name.startswith(("V[", "t["))}
    out = [(word["wa2"] - 2, word["wv"] - H)] if word["wv"] != word["wo"] else []
    k = 0
    while f"rwa{k}" in word:
        if word[f"rwa{k}"]:
            out.append((word[f"rwa{k}"] - 2, word[f"rwv{k}"] - H))
        k += 1
    return out


def check_decoding(model: Path, snapshot: dict[str, Any], calls: list[int]
                   ) -> tuple[StateLayout, np.ndarray]:
    """The page's state equals Python's after the same calls (each continuing from the last
    final_state with its budget set, as the page does); its memory and pc are decode_state's,
    and the machine state is the one a single call of all the steps gives."""
    session = OnnxModel(str(model)).session
    names = [o.name for o in session.get_outputs()]
    meta = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    config = MachineConfig(int(meta["memory_words"]), int(meta["word_bits"]),
                           int(meta["tape_in"]), int(meta["tape_out"]))
    image = load_program([str(EXAMPLES / "gcd.tl")], CompileOptions()).image
    specialised = meta.get("network_form") == "specialised"
    layout = build_step_network(config, read_only_of(image, config) if specialised
                                else None).layout

    def after(calls: list[int]) -> np.ndarray:
        state = None
        for steps in calls:
            feeds = {"a": np.array([GCD["a"]]), "b": np.array([GCD["b"]]),
                     "max_steps": np.array(steps, dtype=np.int64)}
            if state is not None:
                state = state.copy()
                state[0, layout.index("budget")] = steps
                feeds["resume_state"] = state
            state = dict(zip(names, session.run(None, feeds), strict=True))["final_state"]
        assert state is not None
        return state[0]

    state = np.array(snapshot["state"], dtype=np.int64)
    assert state.tolist() == after(calls).tolist()
    decoded = decode_state(layout, state)
    assert (snapshot["memory"], snapshot["pc"]) == (list(decoded.memory), decoded.pc)
    assert decoded == decode_state(layout, after([sum(calls)]))
    return layout, state


@needs_chromium
def test_page_says_what_is_wrong(models: dict[str, Path], sites: dict[str, str],
                                 ort_web: Path, server_root: tuple[Path, int],
                                 browser: DevTools) -> None:
    with Page(browser, sites["gcd"]) as page:
        page.fill({"a": "12x", "b": 462})
        page.press("run")
        shown = page.shown()
        assert shown["message"] == 'input a: not an integer: "12x"'
        assert (shown["status"], shown["steps"]) == ("ready", 0)
        page.fill({"a": 1 << 31, "b": 462})
        page.press("step")
        assert page.shown()["message"] == "input a = 2147483648 does not fit in 32 bits"
    root, port = server_root
    gcd = web.model_from_file(str(models["gcd"]))
    broken = [dataclasses.replace(gcd, name="add.onnx", data=not_mlpc_model(), title="add"),
              dataclasses.replace(gcd, name="cut.onnx", data=gcd.data[: len(gcd.data) // 2],
                                  title="cut"),
              dataclasses.replace(gcd, name="gone.onnx", title="gone")]
    web.build_site(broken, root / "broken", ort_web)
    (root / "broken/models/gone.onnx").unlink()
    with Page(browser, f"http://localhost:{port}/broken/") as page:
        seen = [page.controls()]
        for index in (1, 2):
            page.js(f"(() => {{ const s = $('model-select'); s.value = '{index}'; "
                    "s.dispatchEvent(new Event('change')); return window.mlpc.loading; })()")
            seen.append(page.controls())
        # no model loaded: nothing to run, but another model can be chosen
        assert seen == [{"status": "no model", "message": message, "off": RUN_BUTTONS,
                         "visible": True, "running": False} for message in (
            "add: this ONNX model was not made by mlpc (no program metadata)",
            "cut: not an ONNX model (a field runs past the end)",
            "cannot fetch models/gone.onnx: HTTP 404",
        )]
        page.expected_errors = ["network: Failed to load resource: the server responded with "
                                "a status of 404 (File not found) (gone.onnx)"]
    # sites that cannot start: nothing can be run or chosen, and the message says why
    cut = {"no-runtime": "onnxruntime-web/ort.wasm.min.js", "no-manifest": "site.json"}
    for name, missing in cut.items():
        shutil.copytree(root / "gcd", root / name)
        (root / name / missing).unlink()
    (root / "bad-manifest").mkdir()
    for name in ("index.html", "app.js", "style.css", "onnxruntime-web"):
        (root / "bad-manifest" / name).symlink_to(root / "gcd" / name)
    (root / "bad-manifest/site.json").write_text("{")
    seen = {}
    for name in (*cut, "bad-manifest"):
        with Page(browser, f"http://localhost:{port}/{name}/") as page:
            seen[name] = page.controls()
            page.expected_errors = [
                "network: Failed to load resource: the server responded with a status of 404 "
                f"(File not found) ({cut[name].rsplit('/')[-1]})"] if name in cut else []
    assert seen == {name: {"status": "no model", "off": CONTROLS, "visible": True,
                           "running": False, "message": message} for name, message in (
        ("no-runtime", "onnxruntime-web did not load (onnxruntime-web/ort.wasm.min.js is "
                       "missing): rebuild the site with mlpc web"),
        ("no-manifest", "cannot fetch site.json: HTTP 404"),
        ("bad-manifest", "site.json is not valid JSON: rebuild the site with mlpc web"))}


@needs_chromium
def test_screenshot(models: dict[str, Path], sites: dict[str, str], browser: DevTools,
                    tmp_path: Path) -> None:
    """hello paused after 40 steps: output so far, memory with pc, a and b marked, the source
    line and listing row of pc. MLPC_UPDATE_SCREENSHOTS=1 writes docs/web/page.png."""
    with Page(browser, sites["hello"]) as page:
        page.js("$('n').value = '40'")
        page.press("run-n")
        shown = page.shown()
        assert (shown["status"], shown["steps"], shown["text"]) == ("paused", 40, "Hello, Wor")
        python = OnnxModel(str(models["hello"])).run(max_steps=40).report(0)
        assert (python.steps, python.text()) == (40, "Hello, Wor")
        assert page.js("document.querySelectorAll('.code .current').length") == 2
        png = browser.screenshot(page.session)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    target = SCREENSHOT if os.environ.get("MLPC_UPDATE_SCREENSHOTS") == "1" else (
        tmp_path / "page.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png)
    assert target.stat().st_size < 300_000
