"""`mlpc web`: a static site that runs compiled models in the browser with onnxruntime-web.

The site is self-contained: the page (`web_static/`: hand-written HTML, JavaScript and CSS),
the models, and onnxruntime-web's JavaScript and WebAssembly files with their licence, so it
works from any static file server and fetches nothing from elsewhere. onnxruntime-web is not
part of mlpc: it is fetched once from the npm registry (`npm pack`) into a cache, or taken
from a copy the user names (`--onnxruntime-web DIR`).

The page reads each model's metadata from the model file itself and steps the network with
the model's own `resume_state` / `max_steps` inputs; `site.json` lists the models and the
tables (status names, fault and trap texts) the page needs to word a run as `mlpc run` does.
"""

from __future__ import annotations

import functools
import json
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import onnx

from mlpc import __version__
from mlpc.cache import user_cache_root
from mlpc.compiler.driver import load_program, machine_config
from mlpc.compiler.limits import MAX_BUDGET
from mlpc.compiler.machine_config import DEFAULT_MAX_STEPS, Fault
from mlpc.compiler.model import compile_model
from mlpc.compiler.options import CompileOptions
from mlpc.errors import MlpcError
from mlpc.runtime.onnx_model import STATUS_NAMES, read_model_bytes, refuse_step_model
from mlpc.runtime.report import TRAP_KINDS

ORT_WEB_VERSION = "1.30.0"  # tested with mlpc's models: int64, Loop, If, optional inputs,
# local functions (tests/test_web.py)
ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ORT_WEB_DIR = "onnxruntime-web"  # the site's folder for them
ORT_WEB_LICENSE = "onnxruntime-web-LICENSE.txt"
PAGE_FILES = ("index.html", "app.js", "style.css")
NPM_TIMEOUT_S = 300
GALLERY_SUFFIXES = (".tl", ".asm")


@dataclass(frozen=True)
class SiteModel:
    """A model as the site holds it: its file name in `models/`, the bytes, a title, and the
    inputs and tape the page starts with."""

    name: str
    data: bytes
    title: str
    inputs: dict[str, int] = field(default_factory=dict)
    tape: tuple[int, ...] = ()

    def entry(self) -> dict[str, Any]:
        return {"file": f"models/{self.name}", "title": self.title, "inputs": self.inputs,
                "tape": list(self.tape)}


def onnxruntime_web(given: str | None = None) -> Path:
    """A folder holding onnxruntime-web's files (`ORT_WEB_FILES`): `given` (the npm package,
    or a folder of the files), else the cache, which `npm pack` fills on first use."""
    if given is not None:
        for folder in (Path(given) / "dist", Path(given)):
            if has_files(folder):
                return folder
        missing = [n for n in ORT_WEB_FILES if not (Path(given) / "dist" / n).is_file()
                   and not (Path(given) / n).is_file()]
        raise MlpcError(f"--onnxruntime-web {given}: no {missing[0]} there (give the npm "
                        f"package onnxruntime-web@{ORT_WEB_VERSION} or a folder of its dist "
                        "files)")
    cached = user_cache_root() / f"onnxruntime-web-{ORT_WEB_VERSION}"
    if not has_files(cached):
        fetch_onnxruntime_web(cached)
    return cached


def has_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ORT_WEB_FILES)


def fetch_onnxruntime_web(dest: Path) -> None:
    """`npm pack onnxruntime-web@VERSION` and unpack the files the site needs into `dest`
    (staged, then renamed: an interrupted fetch leaves no half-filled cache)."""
    hint = (f"or give --onnxruntime-web DIR (a copy of the npm package "
            f"onnxruntime-web@{ORT_WEB_VERSION})")
    npm = shutil.which("npm")
    if npm is None:
        raise MlpcError(f"mlpc web needs onnxruntime-web {ORT_WEB_VERSION}: install npm "
                        f"(Node.js) to let mlpc fetch it into {dest.parent}, {hint}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ort-web-", dir=dest.parent) as tmp:
            try:
                done = subprocess.run(
                    [npm, "pack", f"onnxruntime-web@{ORT_WEB_VERSION}", "--silent",
                     "--pack-destination", tmp],
                    capture_output=True, text=True, timeout=NPM_TIMEOUT_S, cwd=tmp)
            except subprocess.TimeoutExpired:
                raise MlpcError(f"npm pack onnxruntime-web@{ORT_WEB_VERSION} took more than "
                                f"{NPM_TIMEOUT_S} s (offline?); {hint}") from None
            tarballs = sorted(Path(tmp).glob("*.tgz"))
            if done.returncode != 0 or not tarballs:
                said = [ln for ln in done.stderr.splitlines() if ln.strip()]
                reason = said[-1].strip() if said else f"exit status {done.returncode}"
                raise MlpcError(f"npm pack onnxruntime-web@{ORT_WEB_VERSION} failed ({reason}); "
                                f"{hint}")
            staged = Path(tmp) / "files"
            unpack_dist(tarballs[0], staged)
            if dest.exists() and not has_files(dest):
                shutil.rmtree(dest)
            try:
                staged.rename(dest)
            except OSError:
                if not has_files(dest):  # else another mlpc web filled it meanwhile
                    raise
    except OSError as exc:
        raise MlpcError(f"{dest.parent}: cannot write the onnxruntime-web cache: "
                        f"{exc.strerror or exc}") from None


def unpack_dist(tarball: Path, dest: Path) -> None:
    """The site's files (and package.json, which says the version and licence) from an npm
    package tarball, into `dest`; nothing else of the archive is extracted."""
    wanted = {f"package/dist/{name}": name for name in ORT_WEB_FILES}
    wanted["package/package.json"] = "package.json"
    dest.mkdir(parents=True)
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            name = wanted.pop(member.name, None)
            source = archive.extractfile(member) if name and member.isfile() else None
            if name and source is not None:
                with source, open(dest / name, "wb") as out:
                    shutil.copyfileobj(source, out)
    if wanted:
        raise MlpcError(f"{tarball.name}: the package has no {sorted(wanted)[0]}")


def model_metadata(data: bytes, path: str) -> dict[str, str]:
    """A model's metadata, refused (one line) unless mlpc made it as a full program model."""
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # truncated or corrupted protobuf
        raise MlpcError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    refuse_step_model(meta, path)
    if "state_layout" not in meta or "listing" not in meta:
        raise MlpcError(f"{path}: this ONNX model was not made by mlpc (no program metadata)")
    return meta


def model_from_file(path: str) -> SiteModel:
    """A compiled model file for the site (checked: readable, made by mlpc, not a step)."""
    data = read_model_bytes(path)
    meta = model_metadata(data, path)
    name = Path(path).name
    title = Path(meta.get("source_path") or name).name
    return SiteModel(name, data, title, {n: 0 for n in json.loads(meta["inputs"])})


def gallery(examples: str) -> list[SiteModel]:
    """Every program in `examples` (.tl, .asm) compiled with the default options, each
    starting with the inputs of the `mlpc run` line in its header that runs it on the
    network."""
    folder = Path(examples)
    if not folder.is_dir():
        raise MlpcError(f"{examples}: no such folder of example programs (mlpc web --examples "
                        "reads examples/ in the mlpc checkout, or give --examples DIR)")
    paths = sorted(p for p in folder.iterdir() if p.suffix in GALLERY_SUFFIXES)
    if not paths:
        raise MlpcError(f"{examples}: no example programs (.tl, .asm) there")
    models = []
    for path in paths:
        image = load_program([str(path)], CompileOptions()).image
        model = compile_model(image, machine_config(image))
        inputs, tape = header_run(image.source_text)
        defaults = {name: inputs.get(name, 0) for name, _ in image.inputs}
        models.append(SiteModel(f"{path.stem}.onnx", model.SerializeToString(), path.name,
                                defaults, tape))
    return models


def header_run(source: str) -> tuple[dict[str, int], tuple[int, ...]]:
    """The named inputs and tape of the `mlpc run` line in a program's header comment that
    runs it on the network (the last one without `--engine`): `--input NAME=V`, `--tape
    1,2,3`, or `printf 'TEXT' | mlpc run ... --stdin`."""
    lines = [ln.lstrip("/#").strip() for ln in source.splitlines() if "mlpc run" in ln
             and ln.lstrip().startswith(("//", "#")) and "--engine" not in ln]
    if not lines:
        return {}, ()
    words = shlex.split(lines[-1])
    inputs: dict[str, int] = {}
    tape: tuple[int, ...] = ()
    for option, value in zip(words, words[1:], strict=False):
        if option == "--input" and "=" in value:
            name, text = value.split("=", 1)
            inputs[name] = int(text, 0)
        elif option == "--tape":
            tape = tuple(int(w, 0) for w in value.split(","))
        elif option == "printf" and "--stdin" in words:
            tape = tuple(ord(ch) for ch in value)
    return inputs, tape


def page_tables() -> dict[str, Any]:
    """What the page needs to word a run as `mlpc run` does (from the Python tables, so the
    two cannot drift apart)."""
    return {
        "status_names": {str(k): v for k, v in STATUS_NAMES.items()},
        "fault_text": {str(int(f)): f.describe() for f in Fault},
        "trap_kinds": {str(k): v for k, v in TRAP_KINDS.items()},
        "max_steps": DEFAULT_MAX_STEPS,
        "max_budget": MAX_BUDGET,
    }


def build_site(models: Sequence[SiteModel], site: Path, ort_dir: Path) -> None:
    """Write the site into `out` (created if needed): the page, `site.json`, the models in
    `models/` and onnxruntime-web in `onnxruntime-web/`."""
    static = resources.files("mlpc.runtime") / "web_static"
    manifest = {"mlpc_version": __version__, "onnxruntime_web": ORT_WEB_VERSION,
                **page_tables(), "models": [m.entry() for m in models]}
    try:
        (site / "models").mkdir(parents=True, exist_ok=True)
        (site / ORT_WEB_DIR).mkdir(exist_ok=True)
        for name in PAGE_FILES:
            (site / name).write_bytes((static / name).read_bytes())
        (site / ORT_WEB_DIR / "LICENSE.txt").write_bytes((static / ORT_WEB_LICENSE).read_bytes())
        for name in ORT_WEB_FILES:
            shutil.copyfile(ort_dir / name, site / ORT_WEB_DIR / name)
        for folder in (ort_dir, ort_dir.parent):  # the cache, or the npm package of dist/
            if (folder / "package.json").is_file():
                shutil.copyfile(folder / "package.json", site / ORT_WEB_DIR / "package.json")
                break
        for model in models:
            (site / "models" / model.name).write_bytes(model.data)
        (site / "site.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        where = exc.filename or site
        raise MlpcError(f"{where}: cannot write: {exc.strerror or exc}") from None


class SiteHandler(SimpleHTTPRequestHandler):
    """Serves the site's files with the types browsers insist on (module scripts, wasm),
    without a log line per request."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm",
                      ".json": "application/json", ".onnx": "application/octet-stream"}

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a page load is a dozen requests."""


def site_server(site: Path, port: int = 0, host: str = "localhost") -> ThreadingHTTPServer:
    """An HTTP server for the site's folder on `host:port` (0: a free port), listening but
    not yet serving (so that a taken port is reported before the site is built)."""
    handler = functools.partial(SiteHandler, directory=str(site))
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        where = f"port {port}" if port else "a free port"
        raise MlpcError(f"cannot listen on {where}: {exc.strerror or exc}") from None


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Meanwhile SIGTERM (what `kill`, systemd and container runtimes send) stops mlpc as
    Ctrl-C does, by raising KeyboardInterrupt, so that the `with` blocks it unwinds clean up
    (`mlpc web --serve`'s temporary site among them); Python's default would end the process
    on the spot. Only the main thread can set a signal handler: elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(server: ThreadingHTTPServer, site: Path) -> int:
    """Serve the site until Ctrl-C or SIGTERM (the URL, with the port the server is bound
    to, on stderr); exit status 0."""
    with server:
        print(f"mlpc: serving {site} at http://localhost:{server.server_address[1]}/ "
              "(Ctrl-C to stop)",
              file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


def summary(site: Path, models: Sequence[SiteModel]) -> str:
    """What was written, for the line on stderr."""
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    return (f"wrote {site}: index.html, {len(models)} model{'s' if len(models) != 1 else ''}, "
            f"onnxruntime-web {ORT_WEB_VERSION} ({size / 1e6:.1f} MB in all)")
