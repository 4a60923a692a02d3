"""mlpc's cache of compiled models, under `$XDG_CACHE_HOME/mlpc` (else `~/.cache/mlpc`, or
the folder `$MLPC_CACHE` names).

`mlpc run PROG` on the onnx engine compiles the program into a model, runs it, and keeps the
model's bytes here, keyed by a content hash of everything the model depends on: the source
files (their names as given and their bytes), every option that shapes the model, mlpc's
version and the bytes of mlpc's own code. A repeated run of an unchanged program loads the
model instead of compiling it, and needs neither the compiler nor the `onnx` package.

The rules an entry follows:
- It is trusted only when its header names this cache format, its file name's key is the key
  written inside it, and its payload's SHA-256 is the one written inside it. Anything else
  (a truncated, corrupt or foreign file, or an entry written by other code: the key would
  differ) is rebuilt, never used.
- It is written to a temporary file in the same folder and renamed into place (atomic on
  POSIX), so concurrent runs see either no entry or a whole one.
- The folder is bounded: after each write the least recently used entries are removed until
  the entries take at most `max_bytes` (a hit refreshes an entry's time).
- `mlpc run --no-cache` neither reads nor writes it (nor the parser tables below).

The parser's tables (lark's own cache, checked by lark against the grammar's hash) live in the
same folder. A leaf module: it imports nothing else of mlpc's but its version.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import mlpc.compiler
import mlpc.runtime
from mlpc import __version__

FORMAT = b"mlpc-model-cache 1\n"  # the first line of every entry
SUFFIX = ".model"
DEFAULT_MAX_BYTES = 256 << 20  # 256 MiB of models
_CODE_SUFFIXES = (".py", ".lark")
CACHE_ENV = "MLPC_CACHE"  # a folder of its own for the cache (the tests use a temporary one)

_enabled = True  # mlpc run --no-cache turns the whole cache off for its command


def set_enabled(enabled: bool) -> None:
    """Whether this process reads and writes the cache (models, parser tables): each command
    of the command line sets it (`--no-cache` turns it off)."""
    global _enabled
    _enabled = enabled


def user_cache_root() -> Path:
    """$XDG_CACHE_HOME/mlpc, else ~/.cache/mlpc: where mlpc keeps what it downloads (`mlpc
    web`'s onnxruntime-web) and, unless $MLPC_CACHE says otherwise, what it compiles."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlpc"


def cache_root() -> Path:
    """The folder of compiled models and parser tables: $MLPC_CACHE, else the user's."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return user_cache_root()


def grammar_cache_file(grammar: str) -> str | bool:
    """Where lark keeps the parser tables of `grammar` (a file name with its hash), or False
    when the cache is off or its folder cannot be made."""
    if not _enabled:
        return False
    folder = cache_root()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    digest = hashlib.sha256(grammar.encode("utf-8")).hexdigest()[:16]
    return str(folder / f"grammar-{digest}.lark")


def code_fingerprint(roots: Iterable[Path]) -> str:
    """SHA-256 of mlpc's own code (every .py and .lark file under `roots`, by relative path):
    a model built by other code never matches."""
    h = hashlib.sha256(__version__.encode())
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.suffix in _CODE_SUFFIXES):
            h.update(str(path.relative_to(root)).encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _package_roots() -> list[Path]:
    """The folders of mlpc's packages (an editable install keeps them apart; one inside
    another is hashed once)."""
    folders = sorted({Path(p).resolve() for m in (mlpc.compiler, mlpc.runtime)
                      for p in m.__path__} | {Path(__file__).resolve().parent})
    return [f for f in folders if not any(o != f and o in f.parents for o in folders)]


@dataclass(frozen=True)
class ModelCache:
    """Compiled models by key, in `folder` (entries `KEY.model`), at most `max_bytes`."""

    folder: Path
    max_bytes: int = DEFAULT_MAX_BYTES

    @staticmethod
    def default() -> ModelCache | None:
        """The user's cache, or None when it is off (`--no-cache`)."""
        return ModelCache(cache_root() / "models") if _enabled else None

    @staticmethod
    def key(sources: Sequence[str], options: Mapping[str, object],
            code: str | None = None) -> str | None:
        """The key of a model compiled from the files `sources` (names as given, then their
        bytes) with `options`, by code whose fingerprint is `code` (default: this mlpc's).
        None when a source cannot be read: compiling it reports why."""
        h = hashlib.sha256(FORMAT)
        h.update((code or code_fingerprint(_package_roots())).encode())
        h.update(json.dumps(dict(options), sort_keys=True, default=list).encode())
        for name in sources:
            try:
                data = Path(name).read_bytes()
            except OSError:
                return None
            h.update(f"\0{len(name)}:{name}\0{len(data)}:".encode() + data)
        return h.hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}{SUFFIX}"

    def load(self, key: str) -> bytes | None:
        """The model stored under `key`, or None (absent, or not to be trusted: then it is
        removed, to be rebuilt)."""
        path = self._path(key)
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        header = FORMAT + key.encode() + b"\n"
        payload = blob[len(header) + 65:]
        digest = blob[len(header):len(header) + 64]
        if (not blob.startswith(header) or blob[len(header) + 64:len(header) + 65] != b"\n"
                or hashlib.sha256(payload).hexdigest().encode() != digest):
            path.unlink(missing_ok=True)
            return None
        try:
            os.utime(path)  # least recently used goes first
        except OSError:
            pass
        return payload

    def store(self, key: str, model: bytes) -> None:
        """Keep `model` under `key` (atomically), then bound the folder's size. A cache that
        cannot be written is skipped: the run does not depend on it."""
        blob = (FORMAT + key.encode() + b"\n" + hashlib.sha256(model).hexdigest().encode()
                + b"\n" + model)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(blob)
                os.replace(tmp, self._path(key))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self.prune()
        except OSError:
            return

    def entries(self) -> list[Path]:
        """The entries, least recently used first."""
        found = []
        for path in self.folder.glob(f"*{SUFFIX}"):
            try:
                found.append((path.stat().st_mtime_ns, path))
            except OSError:  # removed by a concurrent run
                continue
        return [path for _, path in sorted(found)]

    def prune(self) -> None:
        """Remove the least recently used entries until the rest take at most `max_bytes`."""
        entries = self.entries()
        sizes = {}
        for path in entries:
            try:
                sizes[path] = path.stat().st_size
            except OSError:
                sizes[path] = 0
        total = sum(sizes.values())
        for path in entries:
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= sizes[path]
