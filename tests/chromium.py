"""A headless Chromium for the browser tests, driven over the Chrome DevTools Protocol on a
pipe (`--remote-debugging-pipe`, stdlib only: no npm, no driver binary).

`needs_chromium` skips a test when the browser is absent (Debian: `apt-get install chromium`;
`.ci/run` installs it when it can). Chromium's background connections are switched off: this
machine's network is closed, and every refused connection costs time.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("MLPC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--window-size=1280,900")
needs_chromium = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)),
    reason=f"{CHROMIUM} not found (Debian: apt-get install chromium)")



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}: "
                                 f"{proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with socket.create_connection(("localhost", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


class DevTools:
    """A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe` (the browser
    reads commands from fd 3 and writes replies to fd 4, NUL-terminated JSON)."""

    def __init__(self, user_data: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={user_data}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire, close_fds=False,  # pipes are non-inheritable (PEP 446)
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next = 0
        self._buffer = b""

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next:
                    if "error" in reply:
                        raise AssertionError(f"{method}: {reply['error']}")
                    return dict(reply.get("result", {}))
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise AssertionError(f"{method}: no reply from chromium")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise AssertionError(f"{method}: chromium closed the pipe")
            self._buffer += chunk

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


    def open_page(self, url: str) -> str:
        """Open `url` in a new tab; returns the session id for the calls to that tab."""
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        return str(self.call("Target.attachToTarget",
                             {"targetId": target, "flatten": True})["sessionId"])

    def evaluate(self, session: str, expression: str) -> Any:
        """The value of a JavaScript expression in the tab (returned by value)."""
        reply = self.call("Runtime.evaluate", {"expression": expression,
                                               "returnByValue": True,
                                               "awaitPromise": True}, session)
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression[:60]}...: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self, session: str) -> bytes:
        """A PNG of the tab's viewport."""
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session)
        return base64.b64decode(shot["data"])
