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
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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



def first_line(text: str) -> str:
    return (text.splitlines() or [""])[0]


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


@contextmanager
def served(argv: list[str], port: int, timeout: float = 60.0) -> Iterator[subprocess.Popen[bytes]]:
    """A server subprocess (`argv`), waited for until it listens on `port`, stopped (SIGTERM,
    then SIGKILL) when the block ends. Its output goes to a temporary file (a pipe nobody
    reads would block a server that logs every request), quoted if it fails to start."""
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            try:
                wait_for_port(port, server, time.monotonic() + timeout)
            except AssertionError as e:
                log.seek(0)
                raise AssertionError(f"{e}; its output: {log.read().decode(errors='replace')}"
                                     ) from None
            yield server
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


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
        # session id -> what the tab reported as an error (console.error, an uncaught
        # exception or rejection, a failed request), for the tabs opened with watch=True
        self.errors: dict[str, list[str]] = {}

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
                if "method" in reply:
                    self._event(reply)
                elif reply.get("id") == self._next:
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


    def _event(self, message: dict[str, Any]) -> None:
        """Keep what a watched tab reports as an error (the events come between replies)."""
        errors = self.errors.get(message.get("sessionId", ""))
        if errors is None:
            return
        method, params = message["method"], message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            said = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
            errors.append(f"console.{params['type']}: {first_line(' '.join(said))}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            thrown = details.get("exception", {}).get("description") or details["text"]
            errors.append(f"uncaught: {first_line(thrown)}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            where = entry.get("url", "").rsplit("/", 1)[-1]
            errors.append(f"{entry['source']}: {entry['text']}" + (f" ({where})" if where else ""))

    def open_page(self, url: str, watch: bool = False) -> str:
        """Open `url` in a new tab; returns the session id for the calls to that tab. With
        `watch`, the tab's errors are collected in `errors[session]` from before the page
        loads (the tab opens blank, is watched, then goes to `url`)."""
        target = self.call("Target.createTarget",
                           {"url": "about:blank" if watch else url})["targetId"]
        session = str(self.call("Target.attachToTarget",
                                {"targetId": target, "flatten": True})["sessionId"])
        if watch:
            self.errors[session] = []
            self.call("Runtime.enable", session=session)
            self.call("Log.enable", session=session)
            self.call("Page.navigate", {"url": url}, session)
        return session

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

    # --- driving a page: waits, clicks, the viewport, clipped screenshots -----------------

    def __enter__(self) -> DevTools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_for(self, session: str, expression: str, timeout: float = 30.0,
                 interval: float = 0.1) -> Any:
        """The first truthy value of a JavaScript expression in the tab, polled every
        `interval` seconds; fails after `timeout` with the last value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(session, expression)
            if value or time.monotonic() > deadline:
                break
            time.sleep(interval)
        if not value:
            raise AssertionError(f"not true within {timeout} s: {expression[:200]} "
                                 f"(last value {value!r})")
        return value

    def set_viewport(self, session: str, width: int, height: int) -> None:
        """The tab's viewport in CSS pixels (device scale 1), whatever the window size."""
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1,
                   "mobile": False}, session)

    def click(self, session: str, x: float, y: float, count: int = 1) -> None:
        """A left click (`count` 2: a double click) at a point of the viewport, in CSS
        pixels, as a mouse gives it: move, press, release (events the page cannot tell
        from a user's)."""
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y}, session)
        for n in range(1, count + 1):
            for kind, buttons in (("mousePressed", 1), ("mouseReleased", 0)):
                self.call("Input.dispatchMouseEvent",
                          {"type": kind, "x": x, "y": y, "button": "left",
                           "buttons": buttons, "clickCount": n}, session)

    def click_element(self, session: str, element: str, count: int = 1) -> None:
        """Scroll the element that the JavaScript expression `element` evaluates to into
        view and click the centre of its box; fails when there is no such element, when it
        has no box, or when something else is on top of its centre."""
        where = self.evaluate(session, f"""(() => {{
  const e = ({element});
  if (!e) return null;
  e.scrollIntoView({{block: 'nearest', inline: 'nearest'}});
  const r = e.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const hit = document.elementFromPoint(x, y);
  const other = hit ? hit.outerHTML.slice(0, 120) : 'nothing';
  return {{x, y, width: r.width, height: r.height,
           hit: hit === e || e.contains(hit) ? '' : other}};
}})()""")
        if where is None:
            raise AssertionError(f"no element: {element}")
        if where["width"] <= 0 or where["height"] <= 0:
            raise AssertionError(f"the element has no box: {element}")
        if where["hit"]:
            raise AssertionError(f"the element is covered by {where['hit']}: {element}")
        self.click(session, where["x"], where["y"], count)

    def box(self, session: str, element: str) -> dict[str, float]:
        """The viewport box (x, y, width, height) of the element that the JavaScript
        expression `element` evaluates to."""
        box = self.evaluate(session, f"""(() => {{
  const e = ({element});
  if (!e) return null;
  const r = e.getBoundingClientRect();
  return {{x: r.left, y: r.top, width: r.width, height: r.height}};
}})()""")
        if box is None:
            raise AssertionError(f"no element: {element}")
        return dict(box)

    def screenshot_clip(self, session: str, x: float, y: float, width: float,
                        height: float) -> bytes:
        """A PNG of a rectangle of the viewport (CSS pixels)."""
        shot = self.call("Page.captureScreenshot",
                         {"format": "png",
                          "clip": {"x": x, "y": y, "width": width, "height": height,
                                   "scale": 1}}, session)
        return base64.b64decode(shot["data"])
