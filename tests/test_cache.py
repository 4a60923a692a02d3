"""mlpc's cache of compiled models (src/mlpc/cache.py) and what `mlpc run` does with it: a
hit runs exactly what a fresh compile runs; a corrupt, foreign or stale entry is rebuilt;
concurrent writers never expose a partial entry; the folder stays within its bound;
`--no-cache` touches nothing."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from test_startup import modules_after

from mlpc import cache
from mlpc.cache import FORMAT, SUFFIX, ModelCache
from mlpc.cli import main

REPO = Path(__file__).resolve().parents[1]
GCD = REPO / "examples" / "gcd.tl"
OPTIONS = {"memory": None, "word_bits": 32, "weights": "families"}


@pytest.fixture
def store(tmp_path: Path) -> ModelCache:
    return ModelCache(tmp_path / "models")


def test_key_is_a_content_hash(tmp_path: Path) -> None:
    prog = tmp_path / "p.tl"
    prog.write_text("output x; x = 1;\n")
    key = ModelCache.key([str(prog)], OPTIONS, code="c1")
    assert key == ModelCache.key([str(prog)], dict(reversed(OPTIONS.items())), code="c1")
    assert key != ModelCache.key([str(prog)], {**OPTIONS, "word_bits": 16}, code="c1")
    assert key != ModelCache.key([str(prog)], OPTIONS, code="c2")  # other mlpc code
    prog.write_text("output x; x = 2;\n")
    assert key != ModelCache.key([str(prog)], OPTIONS, code="c1")
    assert ModelCache.key([str(tmp_path / "missing.tl")], OPTIONS, code="c1") is None


def test_code_fingerprint_follows_mlpc_code(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    before = cache.code_fingerprint([tmp_path / "pkg"])
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert cache.code_fingerprint([tmp_path / "pkg"]) != before
    (tmp_path / "pkg" / "notes.txt").write_text("not code\n")
    assert cache.code_fingerprint([tmp_path / "pkg"]) == cache.code_fingerprint(
        [tmp_path / "pkg"])


def test_store_and_load(store: ModelCache) -> None:
    key = "ab" * 32
    assert store.load(key) is None
    store.store(key, b"model bytes")
    assert store.load(key) == b"model bytes"
    assert [p.name for p in store.folder.iterdir()] == [f"{key}{SUFFIX}"]  # no temporaries


@pytest.mark.parametrize("damage", ["truncated", "flipped", "header", "foreign", "empty"])
def test_an_untrusted_entry_is_dropped(store: ModelCache, damage: str) -> None:
    key, other = "cd" * 32, "ef" * 32
    store.store(key, b"0123456789" * 100)
    path = store.folder / f"{key}{SUFFIX}"
    blob = path.read_bytes()
    if damage == "truncated":
        blob = blob[:-10]
    elif damage == "flipped":
        blob = blob[:-1] + bytes([blob[-1] ^ 1])
    elif damage == "header":
        blob = b"something else\n" + blob[len(FORMAT):]
    elif damage == "foreign":  # a whole, valid entry of another key, under this key's name
        store.store(other, b"0123456789" * 100)
        blob = (store.folder / f"{other}{SUFFIX}").read_bytes()
    else:
        blob = b""
    path.write_bytes(blob)
    assert store.load(key) is None
    assert not path.exists()  # to be rebuilt


def test_concurrent_writers_never_expose_a_partial_entry(store: ModelCache) -> None:
    key = "12" * 32
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    seen: list[bytes | None] = []
    errors: list[BaseException] = []

    def write(data: bytes) -> None:
        try:
            for _ in range(5):
                store.store(key, data)
                seen.append(store.load(key))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(s is None or s in payloads for s in seen)
    assert store.load(key) in payloads
    assert [p.suffix for p in store.folder.iterdir()] == [SUFFIX]


def test_the_folder_is_bounded_least_recently_used_first(tmp_path: Path) -> None:
    store = ModelCache(tmp_path / "models", max_bytes=3_500)
    keys = [f"{i:064x}" for i in range(5)]
    for i, key in enumerate(keys[:3]):
        store.store(key, b"x" * 1_000)
        os.utime(store.folder / f"{key}{SUFFIX}", (1_000 + i, 1_000 + i))
    assert store.load(keys[0]) is not None  # used: now the most recent
    store.store(keys[3], b"x" * 1_000)
    left = {p.stem for p in store.folder.iterdir()}
    assert left == {keys[0], keys[2], keys[3]}
    assert sum(p.stat().st_size for p in store.folder.iterdir()) <= 3_500


def test_an_unwritable_cache_is_skipped(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder would be")
    store = ModelCache(blocker / "models")
    store.store("34" * 32, b"data")  # no exception: the run does not depend on it
    assert store.load("34" * 32) is None


# --- mlpc run ---------------------------------------------------------------------------------


def _entries(folder: Path) -> list[Path]:
    return sorted((folder / "models").glob(f"*{SUFFIX}"))


def test_mlpc_run_caches_and_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLPC_CACHE", str(tmp_path))
    args = ["run", str(GCD), "--input", "a=1071", "--input", "b=462", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    (entry,) = _entries(tmp_path)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first == {
        **first, "outputs": {"g": 21}, "status": "halted"}
    assert _entries(tmp_path) == [entry]
    assert main([*args, "--word-bits", "16"]) == 0  # another option: another model
    assert len(_entries(tmp_path)) == 2
    capsys.readouterr()
    # a hit checks the inputs against the model as a compile does: the same message
    assert main(["run", str(GCD), "--input", "a=1", "--input", "c=2"]) == 1
    assert "unknown input 'c' (the program's inputs: a, b)" in capsys.readouterr().err


def test_a_corrupt_entry_is_rebuilt_by_mlpc_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLPC_CACHE", str(tmp_path))
    args = ["run", str(GCD), "--input", "a=1071", "--input", "b=462"]
    assert main(args) == 0
    (entry,) = _entries(tmp_path)
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 2] + b"garbage" + good[len(good) // 2 + 7:])
    assert main(args) == 0
    assert capsys.readouterr().out == "g = 21\ng = 21\n"
    assert entry.read_bytes() == good


def test_no_cache_reads_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLPC_CACHE", str(tmp_path / "c"))
    args = ["run", str(GCD), "--input", "a=1071", "--input", "b=462", "--no-cache"]
    assert main(args) == 0
    assert capsys.readouterr().out == "g = 21\n"
    assert not (tmp_path / "c").exists()


def test_an_edited_program_is_compiled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLPC_CACHE", str(tmp_path / "c"))
    prog = tmp_path / "p.tl"
    prog.write_text("output x; x = 1;\n")
    assert main(["run", str(prog)]) == 0
    prog.write_text("output x; x = 2;\n")
    assert main(["run", str(prog)]) == 0
    assert capsys.readouterr().out == "x = 1\nx = 2\n"


def test_a_cached_run_imports_neither_the_compiler_nor_onnx(tmp_path: Path) -> None:
    args = ["run", str(GCD), "--input", "a=1071", "--input", "b=462"]
    first = modules_after(args, tmp_path)
    assert {"onnx", "mlpc.compiler.driver", "lark"} <= first  # compiled
    again = modules_after(args, tmp_path)
    assert not again & {"onnx", "mlpc.compiler.driver", "mlpc.compiler.parser", "lark"}
    assert "onnxruntime" in again
