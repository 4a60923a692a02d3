"""`mlpc view`: Netron serves a compiled model, and a headless Chromium renders its graph.

Netron's page asks for cookie consent before it opens a model, so the browser is driven over
the Chrome DevTools Protocol on a pipe (`--remote-debugging-pipe`, stdlib only): set the
`consent` cookie, open the page, wait for graph nodes in the DOM, take a screenshot.
The browser test skips when netron or `/usr/bin/chromium` is absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from chromium import DevTools, free_port, needs_chromium, wait_for_port

from mlpc.cli import main

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 60.0


def _have_netron() -> bool:
    try:
        import netron  # noqa: F401
    except ImportError:
        return False
    return True


needs_netron = pytest.mark.skipif(not _have_netron(),
                                  reason="netron is not installed (pip install 'mlpc[view]')")

_PAGE_STATE = """JSON.stringify({
  body: document.body ? document.body.className : '',
  message: (document.getElementById('message-text') || {}).innerText || '',
  nodes: Array.from(document.querySelectorAll('#canvas g.node')).length,
  texts: Array.from(document.querySelectorAll('#canvas text')).map(t => t.textContent)
})"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("view") / "tiny.onnx"
    src = path.with_suffix(".tl")
    src.write_text("input x;\noutput y;\ny = x + 1;\n")
    assert main(["compile", str(src), "-o", str(path)]) == 0
    return path


@needs_netron
@needs_chromium
def test_netron_renders_the_graph_in_headless_chromium(tiny_model: Path, tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlpc.cli", "view", str(tiny_model), "--port", str(port),
         "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    browser: DevTools | None = None
    try:
        deadline = time.monotonic() + TIMEOUT
        wait_for_port(port, server, deadline)
        url = f"http://localhost:{port}/"
        browser = DevTools(tmp_path / "profile")
        browser.call("Storage.setCookies", {"cookies": [
            {"name": "consent", "value": str(int(time.time() * 1000)), "url": url}]})
        session = browser.open_page(url)
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            value = browser.call("Runtime.evaluate", {"expression": _PAGE_STATE,
                                                      "returnByValue": True}, session)
            state = json.loads(value["result"].get("value") or "{}")
            if "update" in state.get("message", "").lower():
                pytest.skip(f"this netron asks to be updated: {state['message']}")
            if state.get("nodes", 0) > 0 and "spinner" not in state.get("body", ""):
                break
            time.sleep(0.25)
        assert state.get("nodes", 0) > 0, f"no graph nodes rendered: {state}"
        texts = set(state["texts"])
        # the model's own names: its input, the Loop around the step body, its outputs
        for name in ("x", "Loop", "subleq_step", "y", "output_tape", "status", "final_state"):
            assert name in texts, f"{name!r} not among the rendered names {sorted(texts)}"
        png = browser.screenshot(session)
        out = tmp_path / "netron.png"
        out.write_bytes(png)
        if os.environ.get("MLPC_KEEP_SCREENSHOT"):
            shutil.copy(out, os.environ["MLPC_KEEP_SCREENSHOT"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(png) > 20_000  # a blank page compresses to a few kB
    finally:
        if browser is not None:
            browser.close()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()
        if server.stderr:
            server.stderr.close()


def test_view_without_netron_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str],
                                         tiny_model: Path) -> None:
    monkeypatch.setitem(sys.modules, "netron", None)  # `import netron` raises ImportError
    assert main(["view", str(tiny_model), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err == "error: mlpc view needs Netron: pip install 'mlpc[view]'\n"


@needs_netron
def test_view_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["view", str(tmp_path / "nope.onnx"), "--no-browser"]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.onnx'}: no such file\n"


@needs_netron
def test_view_port_in_use(capsys: pytest.CaptureFixture[str], tiny_model: Path) -> None:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["view", str(tiny_model), "--port", str(port), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: Netron cannot listen on port {port}: ")
    assert err.count("\n") == 1


@needs_netron
def test_view_serves_the_model_and_stops_on_ctrl_c(tiny_model: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlpc.cli", "view", str(tiny_model), "--port", str(port),
         "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_port(port, server, time.monotonic() + TIMEOUT)  # type: ignore[arg-type]
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=10) as page:
            assert page.status == 200
            html = page.read().decode("utf-8", "replace")
        found = re.search(r'<meta name="file" content="([^"]+)">', html)
        assert found, "the page names no model file"
        with urllib.request.urlopen(f"http://localhost:{port}{found.group(1)}",
                                    timeout=10) as data:
            assert data.read() == tiny_model.read_bytes()  # Netron serves the model file
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0
    assert out == ""
    assert err == (f"mlpc: Netron serves {tiny_model} at http://localhost:{port} "
                   "(Ctrl-C to stop)\n")
