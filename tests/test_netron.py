"""Netron shows a compiled model as what it is (issue 12, item 5): the README's gcd, compiled
with the default options, served by `mlpc view` and looked at in headless Chromium as a user
would (Netron's consent cookie set, then mouse clicks on the page). The test reads what the
page draws and compares it with the ONNX file:

- the main graph: its operator boxes (Netron's `g.graph-node`), all inside the window at the
  default zoom, are exactly the file's main-graph nodes (an `OptionalHasElement` and an `If`
  per optional input, `encode`, `Loop`, `readout`, `decode`: at most 13), with the inputs
  above `encode`, `encode` above `Loop`, `Loop` above `readout` above `decode`, and
  `readout` above the outputs;
- the Loop's body, opened with the "Show Graph" button of the Loop's `body` attribute: the
  boxes are exactly the body's nodes, among them `layer1`, `layer2`, `layer3`, `next_state`
  (local functions) for each of the K unrolled steps, named `s{k}/...`, drawn top to bottom
  in that order;
- the node properties of the first and the last step's layers (a click on the box): the type
  is the layer's function and the description its doc string in the file;
- `layer1` opened with its "ƒ" button: the function's nodes.

It saves the main graph and the opened body as PNGs; with MLPC_UPDATE_SCREENSHOTS=1 into
docs/netron/, the pictures README.md shows (`test_readme_shows_the_screenshots`).
"""

from __future__ import annotations

import os
import re
import struct
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import pytest
from chromium import DevTools, free_port, needs_chromium, served
from conftest import needs_netron

from mlpc.cli import main
from mlpc.compiler.codegen import LAYER_DOCS
from mlpc.compiler.encodings import ExportOptions

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHOTS = REPO / "docs" / "netron"
SCREENSHOTS = ("main.png", "body.png")
MAX_PNG_BYTES = 300_000
VIEWPORT = (1280, 1024)
TIMEOUT = 60.0
LAYERS = ("layer1", "layer2", "layer3", "next_state")  # the local functions of one step


# What the page draws: every box of the shown graph (operators, inputs, outputs) with its
# label (the op type, or the input/output name), its tooltip (the node's name) and its box.
_BOXES = """Array.from(document.querySelectorAll('#canvas g.nodes > g.node')).map(g => {
  const item = g.querySelector('g.node-item');
  const tip = item ? item.querySelector(':scope > title') : null;
  const r = g.getBoundingClientRect();
  const kind = g.classList.contains('graph-node') ? 'node'
    : g.classList.contains('graph-input') ? 'input' : 'output';
  return {kind, label: (item || g).querySelector('text').textContent,
          name: tip ? tip.textContent : '', x: r.left, y: r.top, width: r.width,
          height: r.height};
})"""
_READY = ("document.body && !document.body.className.includes('spinner') && "
          "document.querySelectorAll('#canvas g.nodes > g.graph-node').length")
_PATH = ("Array.from(document.querySelectorAll('#toolbar-path .toolbar-path-name-button'))"
         ".map(b => b.textContent)")
# The node properties in the sidebar: name -> the first line of its value.
_PROPERTIES = """(() => {
  const sidebar = document.getElementById('sidebar');
  if (!sidebar || getComputedStyle(sidebar).opacity !== '1') return null;
  const out = {title: document.getElementById('sidebar-title').textContent};
  for (const item of sidebar.querySelectorAll('.sidebar-object > .sidebar-item')) {
    const name = item.querySelector('.sidebar-item-name input');
    const line = item.querySelector('.sidebar-item-value-line');
    if (name && line && !(name.value in out)) out[name.value] = line.textContent;
  }
  return out;
})()"""


def _box_of(name: str) -> str:
    """JavaScript: the shown graph's operator box whose node is called `name`."""
    return ("Array.from(document.querySelectorAll('#canvas g.nodes > g.graph-node'))"
            ".find(g => { const t = g.querySelector('g.node-item > title'); "
            f"return t && t.textContent === {name!r}; }})")


def _button_of(box: str, tooltip: str) -> str:
    """JavaScript: the item of an operator box with this tooltip (Netron's buttons on a box:
    "Show Graph", "Show Function Definition")."""
    return (f"(() => {{ const box = {box}; return box ? Array.from("
            "box.querySelectorAll('g.node-item')).find(i => { "
            "const t = i.querySelector(':scope > title'); "
            f"return t && t.textContent === {tooltip!r}; }}) : null; }})()")


def _title_of(name: str) -> str:
    """JavaScript: the title (the op type's label) of the box of node `name`."""
    return f"{_box_of(name)}.querySelector('g.node-item')"


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def _save(png: bytes, name: str, tmp_path: Path) -> Path:
    """A screenshot, checked (a PNG of a drawn page, small enough for the README) and saved:
    into docs/netron/ with MLPC_UPDATE_SCREENSHOTS=1, else into tmp_path."""
    width, height = _png_size(png)
    assert 600 <= width <= VIEWPORT[0] and 500 <= height <= VIEWPORT[1], (width, height)
    assert 20_000 < len(png) < MAX_PNG_BYTES, len(png)  # a blank page is a few kB
    folder = SHOTS if os.environ.get("MLPC_UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(png)
    return folder / name


def _node_list(graph: onnx.GraphProto | onnx.FunctionProto) -> list[tuple[str, str]]:
    return sorted((n.op_type, n.name) for n in graph.node)


def _shown(boxes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((b["label"], b["name"]) for b in boxes if b["kind"] == "node")


@pytest.fixture(scope="module")
def gcd_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/gcd.tl (the README's first program) compiled with the default options."""
    path = tmp_path_factory.mktemp("netron") / "gcd.onnx"
    assert main(["compile", str(REPO / "examples" / "gcd.tl"), "-o", str(path)]) == 0
    return path


@pytest.fixture
def page(gcd_model: Path, tmp_path: Path) -> Iterator[tuple[DevTools, str]]:
    """Netron serving gcd.onnx (`mlpc view`), opened in a headless Chromium tab at
    VIEWPORT with the consent cookie set, once the main graph is drawn."""
    port = free_port()
    url = f"http://localhost:{port}/"
    argv = [sys.executable, "-m", "mlpc.cli", "view", str(gcd_model), "--port", str(port),
            "--no-browser"]
    with served(argv, port, TIMEOUT), DevTools(tmp_path / "profile") as browser:
        browser.call("Storage.setCookies", {"cookies": [
            {"name": "consent", "value": str(int(time.time() * 1000)), "url": url}]})
        session = browser.open_page("about:blank")
        browser.set_viewport(session, *VIEWPORT)
        browser.call("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + TIMEOUT
        while not browser.evaluate(session, _READY):
            message = browser.evaluate(
                session, "(document.getElementById('message-text') || {}).innerText || ''")
            if "update" in message.lower():
                pytest.skip(f"this netron asks to be updated: {message}")
            assert time.monotonic() < deadline, f"no graph drawn: {message!r}"
            time.sleep(0.1)
        yield browser, session


@needs_netron
@needs_chromium
def test_netron_shows_the_main_graph_the_step_layers_and_their_doc_strings(
        gcd_model: Path, page: tuple[DevTools, str], tmp_path: Path) -> None:
    model = onnx.load(str(gcd_model))
    functions = {f.name: f for f in model.functions}
    (loop_node,) = [n for n in model.graph.node if n.op_type == "Loop"]
    body = onnx.helper.get_attribute_value(loop_node.attribute[0])
    K = ExportOptions().unroll
    assert K == 8
    browser, session = page

    # --- the main graph: one glance --------------------------------------------------------
    boxes = browser.evaluate(session, _BOXES)
    nodes = [b for b in boxes if b["kind"] == "node"]
    assert len(nodes) == len(model.graph.node) == 10 <= 13
    assert _shown(boxes) == _node_list(model.graph)
    assert Counter(b["label"] for b in nodes) == {
        "OptionalHasElement": 3, "If": 3, "encode": 1, "Loop": 1, "readout": 1, "decode": 1}
    for b in boxes:  # every box drawn, inside the window at the default zoom
        assert b["width"] > 0 and b["height"] > 0, b
        assert 0 <= b["x"] and b["x"] + b["width"] <= VIEWPORT[0], b
        assert 0 <= b["y"] and b["y"] + b["height"] <= VIEWPORT[1], b
    assert sorted(b["label"] for b in boxes if b["kind"] == "input") == sorted(
        i.name for i in model.graph.input)
    assert sorted(b["label"] for b in boxes if b["kind"] == "output") == sorted(
        o.name for o in model.graph.output)
    (encode,) = [b for b in nodes if b["label"] == "encode"]
    (loop,) = [b for b in nodes if b["label"] == "Loop"]
    (readout,) = [b for b in nodes if b["label"] == "readout"]
    (decode,) = [b for b in nodes if b["label"] == "decode"]
    for b in boxes:
        if b["kind"] == "input":
            assert b["y"] + b["height"] < encode["y"], b
        if b["kind"] == "output":  # final_state leaves readout, the others decode
            assert readout["y"] + readout["height"] < b["y"], b
    assert encode["y"] + encode["height"] < loop["y"]
    assert loop["y"] + loop["height"] < readout["y"]
    assert readout["y"] + readout["height"] < decode["y"]
    canvas = browser.box(session, "document.getElementById('canvas')")
    x, y = max(0.0, canvas["x"]), max(0.0, canvas["y"])
    main_png = browser.screenshot_clip(
        session, x, y, min(canvas["x"] + canvas["width"], VIEWPORT[0]) - x,
        min(canvas["y"] + canvas["height"], VIEWPORT[1]) - y)
    _save(main_png, "main.png", tmp_path)

    # encode's node properties: its doc string
    browser.click_element(session, _title_of("encode"))
    props = browser.wait_for(session, _PROPERTIES)
    assert props["title"] == "Node Properties"
    assert (props["type"], props["name"]) == ("encode", "encode")
    assert props["description"] == functions["encode"].doc_string
    browser.click_element(session, "document.getElementById('sidebar-closebutton')")
    browser.wait_for(session, f"!({_PROPERTIES})")

    # --- the Loop's body, opened ----------------------------------------------------------
    show_body = _button_of(_box_of("loop"), "Show Graph")
    assert browser.evaluate(
        session, f"{show_body}.closest('g.graph-node').querySelector('text').textContent"
    ) == body.name == "subleq_step"
    browser.click_element(session, show_body)
    browser.wait_for(session, f"{_READY} && {_BOXES}.some(b => b.label === 'layer1')")
    assert browser.wait_for(session, f"{_PATH}.length && {_PATH}") == ["subleq_step"]
    boxes = browser.evaluate(session, _BOXES)
    nodes = [b for b in boxes if b["kind"] == "node"]
    assert len(nodes) == len(body.node) == 49
    assert _shown(boxes) == _node_list(body)
    by_name = {b["name"]: b for b in nodes}
    steps = [[by_name[f"s{k}/{layer}"] for layer in LAYERS] for k in range(K)]
    for k, step in enumerate(steps):
        assert [b["label"] for b in step] == list(LAYERS), k
    flow = [b["y"] for step in steps for b in step]  # s0/layer1, ..., s{K-1}/next_state
    assert flow == sorted(flow) and len(set(flow)) == len(flow), flow
    assert Counter(b["label"] for b in nodes if b["label"] in LAYERS) == dict.fromkeys(LAYERS, K)

    # the screenshot: the window, scrolled to the body's first two steps (default zoom)
    browser.evaluate(session, "document.getElementById('target').scrollTo(0, 0)")
    by_name = {b["name"]: b for b in browser.evaluate(session, _BOXES)}
    two = [by_name[f"s{k}/{layer}"] for k in (0, 1) for layer in LAYERS]
    left, right = min(b["x"] for b in two), max(b["x"] + b["width"] for b in two)
    top, bottom = min(b["y"] for b in two), max(b["y"] + b["height"] for b in two)
    assert right - left <= VIEWPORT[0] and bottom - top <= VIEWPORT[1], (left, right, top, bottom)
    browser.evaluate(session, "document.getElementById('target')"  # centred in the window
                              f".scrollBy({(left + right - VIEWPORT[0]) / 2}, "
                              f"{max(0.0, (top + bottom - VIEWPORT[1]) / 2)})")
    by_name = {b["name"]: b for b in browser.evaluate(session, _BOXES)}
    for b in (by_name[f"s{k}/{layer}"] for k in (0, 1) for layer in LAYERS):
        assert 0 <= b["x"] and b["x"] + b["width"] <= VIEWPORT[0], b  # wholly in the window
        assert 0 <= b["y"] and b["y"] + b["height"] <= VIEWPORT[1], b
    _save(browser.screenshot(session), "body.png", tmp_path)

    # --- each layer's node properties: the doc string, for the first and the last step ----
    for k in (0, K - 1):
        for layer in LAYERS:
            name = f"s{k}/{layer}"
            browser.click_element(session, _title_of(name))
            props = browser.wait_for(
                session, f"(() => {{ const p = {_PROPERTIES}; "
                         f"return p && p.name === {name!r} ? p : null; }})()")
            (node,) = [n for n in body.node if n.name == name]
            assert (props["type"], props["module"]) == (layer, "mlpc") == (node.op_type,
                                                                            node.domain)
            assert props["description"] == functions[layer].doc_string == node.doc_string
            assert props["description"], name
    # each doc string names the layer's job and its formula (compiler/codegen.py LAYER_DOCS)
    assert [functions[layer].doc_string for layer in LAYERS] == list(LAYER_DOCS)
    assert all("relu(" in doc for doc in LAYER_DOCS[:3])
    browser.click_element(session, "document.getElementById('sidebar-closebutton')")
    browser.wait_for(session, f"!({_PROPERTIES})")

    # --- layer1 opened: the function's own nodes -----------------------------------------
    browser.click_element(session, _button_of(_box_of("s0/layer1"), "Show Function Definition"))
    browser.wait_for(session, f"{_READY} && !{_BOXES}.some(b => b.label === 'layer2')")
    boxes = browser.evaluate(session, _BOXES)
    assert _shown(boxes) == _node_list(functions["layer1"])
    assert len([b for b in boxes if b["kind"] == "node"]) == len(functions["layer1"].node)
    assert browser.wait_for(session, f"{_PATH}.includes('layer1') && {_PATH}")[-1] == "layer1"


def test_readme_shows_the_screenshots() -> None:
    """README.md shows exactly the screenshots the Netron test writes, and they are in the
    repository (regenerate: MLPC_UPDATE_SCREENSHOTS=1 pytest tests/test_netron.py)."""
    shown = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", README.read_text())
    netron = [s for s in shown if s.startswith("docs/netron/")]
    assert netron == [f"docs/netron/{name}" for name in SCREENSHOTS]
    assert sorted(p.name for p in SHOTS.iterdir()) == sorted(SCREENSHOTS)
    for name in SCREENSHOTS:
        png = (SHOTS / name).read_bytes()
        width, height = _png_size(png)
        assert width <= VIEWPORT[0] and height <= VIEWPORT[1]
        assert 20_000 < len(png) < MAX_PNG_BYTES, name
