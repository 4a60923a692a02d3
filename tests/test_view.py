"""`mlpc view`: Netron serves a compiled model until Ctrl-C; one-line errors. What the page
draws is tests/test_netron.py's (headless Chromium)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from chromium import free_port, wait_for_port
from conftest import needs_netron

from mlpc.cli import main

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("view") / "tiny.onnx"
    src = path.with_suffix(".tl")
    src.write_text("input x;\noutput y;\ny = x + 1;\n")
    assert main(["compile", str(src), "-o", str(path)]) == 0
    return path


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
