"""CFG clean-ups on the macro program: unreachable code, jump threading, dead stores.

Why at the macro level: the lowering emits straightforward code (a jump over every `else`,
a `return` that jumps to the function's exit, temporaries copied once too often); these
patterns are easy to see on macros, where the control flow is explicit (jump targets are
labels), and impossible to see on SUBLEQ words.

The control-flow graph (`digraph`: each macro's successors) has one node per macro.
Edges: fall-through to the next macro, jump targets, and for `CALL` both the callee's entry
and the return point (the callee's `RET` has no successors: returns land on call
fall-throughs, which are already edges).

A pass is a function from a `MacroProgram` to a `MacroProgram` plus its statistics
(`PassResult`: how many macros it removed or rewrote, by kind). `PASSES` lists them in the
order each round runs them; `optimize` repeats the rounds until no pass changes anything,
then runs `FINAL_PASSES` once. Adding an optimisation is writing one `Pass` and listing it.
The passes, repeated until nothing changes:

1. unreachable-code removal: macros not reachable from the entry (macro 0) are dropped;
2. jump threading: a jump to a `JMP` (or to `HALT`) goes straight to its final target, a
   jump to the next macro is dropped, and `Jcc x, L1; JMP L2; L1:` becomes
   `J!cc x, L2; L1:`;
3. dead-store removal: a `MOV`/`CLEAR`/`NEG`/`LOAD` into a cell only its own function
   reads (`MacroProgram.local_cells`: temporaries, parameters, locals) that no path reads
   before overwriting it is dropped. Globals never qualify: other functions, the outputs
   and whoever inspects memory after the run may read them;
4. save pruning: a cell saved around a recursive call (`SAVE`/`RESTORE`) that is dead after
   the call is neither pushed nor popped.

Then, once: labels no jump names any more are dropped (`drop_unused_labels`).

Liveness is a backward data-flow fix-point over the same graph; a `CALL` has the callee's
entry as a successor, so a parameter stored before a call is live when the callee reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from mlpc.compiler import macros as mc
from mlpc.compiler.digraph import descendants, dfs_postorder


@dataclass(frozen=True)
class PassResult:
    """What a pass returns: the program it rewrote and how many macros it removed or
    rewrote, by kind (every kind the pass reports is present, 0 included, so that tables of
    several programs have the same columns)."""

    program: mc.MacroProgram
    counts: Mapping[str, int]


# A pass: one macro program to the same IR plus its statistics. Behaviour must not change;
# a pass that finds nothing to do returns counts that are all 0 (what stops `optimize`).
Pass = Callable[[mc.MacroProgram], PassResult]


@dataclass(frozen=True)
class OptStats:
    """How many macros each clean-up removed or rewrote (summed over the rounds), by kind in
    the order of `PASSES`, and the rounds it took to reach the fixed point."""

    counts: Mapping[str, int]
    rounds: int = 0

    def __getitem__(self, kind: str) -> int:
        return self.counts.get(kind, 0)

    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class OptResult:
    program: mc.MacroProgram
    stats: OptStats


def _falls_through(m: mc.Macro) -> bool:
    return not isinstance(m, (mc.Jmp, mc.Ret, mc.Halt, mc.Trap))


def build_cfg(code: tuple[mc.Macro, ...]) -> dict[int, list[int]]:
    """The control-flow graph of `code`: each macro index's successors (fall-through first,
    then its targets; each once)."""
    labels = {m.name: i for i, m in enumerate(code) if isinstance(m, mc.Label)}
    graph: dict[int, list[int]] = {}
    for i, m in enumerate(code):
        succ = [i + 1] if _falls_through(m) and i + 1 < len(code) else []
        succ += [labels[t] for t in m.targets() if t in labels]
        graph[i] = list(dict.fromkeys(succ))
    return graph


def remove_unreachable(program: mc.MacroProgram) -> PassResult:
    """Macros no path from the entry (macro 0) reaches are dropped (labels too, uncounted:
    they cost no words)."""
    code = program.code
    if not code:
        return PassResult(program, {"unreachable": 0})
    reachable = descendants(build_cfg(code), 0) | {0}
    kept = tuple(m for i, m in enumerate(code) if i in reachable)
    removed = sum(1 for i, m in enumerate(code) if i not in reachable
                  and not isinstance(m, mc.Label))
    return PassResult(replace(program, code=kept), {"unreachable": removed})


def _resolve(code: tuple[mc.Macro, ...], labels: dict[str, int], label: str) -> mc.Macro | None:
    """The first non-label macro at `label`."""
    i = labels.get(label)
    while i is not None and i < len(code) and isinstance(code[i], mc.Label):
        i += 1
    return code[i] if i is not None and i < len(code) else None


def _next_labels(code: tuple[mc.Macro, ...], i: int) -> set[str]:
    """Labels sitting between macro i and the next real macro."""
    out = set()
    j = i + 1
    while j < len(code) and isinstance(code[j], mc.Label):
        out.add(code[j].name)  # type: ignore[union-attr]
        j += 1
    return out


def thread_jumps(program: mc.MacroProgram) -> PassResult:
    """Jump threading: jumps to jumps (or to HALT) go to the final target, jumps to the
    next macro are dropped, and a conditional jump over a `JMP` is inverted."""
    code = program.code
    labels = {m.name: i for i, m in enumerate(code) if isinstance(m, mc.Label)}
    threaded = removed = inverted = 0
    out: list[mc.Macro] = list(code)
    for i, m in enumerate(out):
        if isinstance(m, (mc.Jmp, mc.Jump)):
            target, seen = m.target, {m.target}
            while True:
                dest = _resolve(code, labels, target)
                if isinstance(dest, mc.Jmp) and dest.target not in seen:
                    target = dest.target
                    seen.add(target)
                    continue
                break
            dest = _resolve(code, labels, target)
            if isinstance(m, mc.Jmp) and isinstance(dest, mc.Halt):
                out[i] = mc.Halt(line=m.line)
                threaded += 1
            elif target != m.target:
                out[i] = replace(m, target=target)
                threaded += 1
    code = tuple(out)
    result: list[mc.Macro] = []
    skip = set()
    for i, m in enumerate(code):
        if i in skip:
            continue
        if isinstance(m, (mc.Jmp, mc.Jump)) and m.target in _next_labels(code, i):
            removed += 1
            continue
        if isinstance(m, mc.Jump) and i + 1 < len(code) and isinstance(code[i + 1], mc.Jmp):
            jmp = code[i + 1]
            assert isinstance(jmp, mc.Jmp)
            if m.target in _next_labels(code, i + 1):
                result.append(mc.Jump(mc.negate(m.cond), m.cell, jmp.target, line=m.line))
                skip.add(i + 1)
                inverted += 1
                continue
        result.append(m)
    return PassResult(replace(program, code=tuple(result)),
                      {"threaded": threaded, "jumps_removed": removed,
                       "branches_inverted": inverted})


_PURE_STORES = (mc.Mov, mc.Clear, mc.Neg, mc.Load)


@dataclass(frozen=True)
class Liveness:
    """live_out of every macro as a bit set over the tracked cells."""

    bit: dict[str, int]
    live_out: tuple[int, ...]

    def live_after(self, index: int, cell: str) -> bool:
        b = self.bit.get(cell)
        return b is not None and bool(self.live_out[index] >> b & 1)


def liveness(code: tuple[mc.Macro, ...], tracked: frozenset[str]) -> Liveness:
    """Which tracked cells some path from after each macro reads before writing (a backward
    fix-point; bit sets keep it fast on programs of thousands of macros)."""
    graph = build_cfg(code)
    bit = {c: i for i, c in enumerate(sorted(tracked))}

    def bits(cells: tuple[str, ...]) -> int:
        return sum(1 << bit[c] for c in set(cells) if c in bit)

    uses = [bits(m.reads()) for m in code]
    kills = [~bits(m.writes()) for m in code]
    succs = [graph[i] for i in range(len(code))]
    live_in = [0] * len(code)
    live_out = [0] * len(code)
    order = dfs_postorder(graph, 0) if code else []
    seen = set(order)
    order += [i for i in range(len(code)) if i not in seen]
    changed = True
    while changed:
        changed = False
        for i in order:
            out = 0
            for j in succs[i]:
                out |= live_in[j]
            new_in = uses[i] | (out & kills[i])
            if new_in != live_in[i] or out != live_out[i]:
                live_out[i], live_in[i] = out, new_in
                changed = True
    return Liveness(bit, tuple(live_out))


def remove_dead_stores(program: mc.MacroProgram) -> PassResult:
    """A pure store into a local cell (`MacroProgram.local_cells`) that no path reads before
    overwriting it is dropped."""
    code, tracked = program.code, program.local_cells
    live = liveness(code, tracked)
    kept: list[mc.Macro] = []
    removed = 0
    for i, m in enumerate(code):
        if isinstance(m, _PURE_STORES):
            written = m.writes()
            if written and all(c in tracked and not live.live_after(i, c) for c in written):
                removed += 1
                continue
        kept.append(m)
    return PassResult(replace(program, code=tuple(kept)), {"dead_stores": removed})


def prune_saves(program: mc.MacroProgram) -> PassResult:
    """Drop from each SAVE/RESTORE pair the cells that are dead after the RESTORE: what the
    recursive call does to them does not matter, so they need no stack words. The return
    address is always kept, so that every recursive call takes stack space and unbounded
    recursion ends in the stack-overflow trap even in a function that never returns."""
    code, tracked = program.code, program.local_cells
    if not any(isinstance(m, mc.Restore) for m in code):
        return PassResult(program, {"saves_pruned": 0})
    live = liveness(code, tracked)
    keep: dict[int, tuple[str, ...]] = {}
    for i, m in enumerate(code):
        if isinstance(m, mc.Restore):
            keep[m.group] = tuple(c for c in m.cells if c not in tracked
                                  or live.live_after(i, c) or c.endswith(".$ra"))
    pruned = 0
    out: list[mc.Macro] = []
    for m in code:
        if isinstance(m, (mc.Save, mc.Restore)) and m.group in keep:
            cells = keep[m.group]
            if isinstance(m, mc.Restore):
                pruned += len(m.cells) - len(cells)
            m = replace(m, cells=cells)
        out.append(m)
    return PassResult(replace(program, code=tuple(out)), {"saves_pruned": pruned})


def drop_unused_labels(program: mc.MacroProgram) -> PassResult:
    """Labels nothing refers to any more (they cost no words but clutter listings); the
    entry's and named ones (functions, routines) stay."""
    used = {t for m in program.code for t in m.targets()}
    code = tuple(m for i, m in enumerate(program.code)
                 if not isinstance(m, mc.Label) or m.name in used or i == 0
                 or not m.name.startswith("."))
    return PassResult(replace(program, code=code),
                      {"labels_dropped": len(program.code) - len(code)})


# The clean-ups, in the order each round runs them: unreachable code first (the others need
# not look at it), threading before liveness (fewer edges), saves after dead stores (a store
# dropped can make a saved cell dead). A new optimisation is one more `Pass` here.
PASSES: tuple[Pass, ...] = (remove_unreachable, thread_jumps, remove_dead_stores, prune_saves)

# run once after the fixed point: they tidy what the rounds leave and never enable them
FINAL_PASSES: tuple[Pass, ...] = (drop_unused_labels,)


def optimize(program: mc.MacroProgram, max_rounds: int = 10,
             passes: tuple[Pass, ...] = PASSES) -> OptResult:
    """Run `passes` in order, round after round, to a fixed point (a round in which no pass
    changed anything) or `max_rounds`; then `FINAL_PASSES` once. `passes` is a parameter so
    that a benchmark can measure what each one adds (`benchmarks/bench_lowering.py`)."""
    counts: dict[str, int] = {}
    rounds = 0
    while rounds < max_rounds:
        rounds += 1
        program, changed = _run_passes(passes, program, counts)
        if not changed:
            break
    program, _changed = _run_passes(FINAL_PASSES, program, counts)
    return OptResult(program, OptStats(counts, rounds))


def _run_passes(passes: tuple[Pass, ...], program: mc.MacroProgram, counts: dict[str, int]
                ) -> tuple[mc.MacroProgram, int]:
    """Run each pass once, in order, adding its counts to `counts`; returns the program and
    how many changes the passes made together."""
    changed = 0
    for run in passes:
        result = run(program)
        program = result.program
        for kind, n in result.counts.items():
            counts[kind] = counts.get(kind, 0) + n
            changed += n
    return program, changed
