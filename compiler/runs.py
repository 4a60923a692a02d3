"""Straight-line runs: the SUBLEQ instructions a specialised network executes in one
iteration (docs/network.md, "Many steps per iteration").

A *run* starts at a pc whose instruction is *eligible*: its three words are constant (the
network holds them in its weights), a and b name words of memory, b a writable one (so no
I/O, no range fault, no write to a constant word), and c is a pc inside memory. It goes on
through every eligible instruction whose next pc is known without the memory: c == pc + 3,
or a branch whose new word is the same whatever the memory holds (a == b writes 0, which
always jumps). It ends with the first eligible instruction whose branch depends on the
memory (included: the iteration decides it once), before the first ineligible one, or
where the slots below are full; and it is cut short where the instruction after it would
fetch more words it writes than the network forwards (`_fetches_a_write`).

Why one iteration can execute it: every a and b is a constant, and
wrap(wrap(x) - y) = wrap(x - y), so each word the run writes ends as wrap(e) of an integer
affine expression e = const + sum coef * M0[w] over the words M0 the run read before writing
them. The network computes each e from at most `POSITIVE` + `NEGATIVE` reads with fixed
signs (a coefficient of 2 takes two positions), wraps it once, and lands it; the last
instruction's branch is decided on the word it wrote, which is in write slot 0.

Nothing here knows about layers: `codegen` turns the table into units.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlpc.compiler.machine_config import MachineConfig

# the network's slots: words a run may write, and the reads each written word may use
WRITE_SLOTS = 5
POSITIVE = 2  # reads added per write slot
NEGATIVE = 1  # reads subtracted per write slot
# the last slots may write a word of the instruction after the run (the network forwards
# them to that instruction's fetch, which reads the memory before the run's writes land)
FORWARD_SLOTS = 2
MAX_LENGTH = 64  # instructions per run (also ends a run round a loop of unconditional jumps)


@dataclass(frozen=True)
class RunWrite:
    """One word a run writes: M'[address] = wrap(const + sum(M0[w] for w in plus)
    - sum(M0[w] for w in minus)), M0 the memory before the run."""

    address: int
    const: int
    plus: tuple[int, ...]
    minus: tuple[int, ...]


@dataclass(frozen=True)
class Run:
    """A straight-line run from `start`: `length` SUBLEQ steps (the pcs in `pcs`), its writes
    (slot 0 is the last instruction's b when it branches), and the next pc: `target` when
    `branches` and the word of slot 0 is <= 0 after the run, else `fall`."""

    start: int
    pcs: tuple[int, ...]
    writes: tuple[RunWrite, ...]
    fall: int
    target: int
    branches: bool

    @property
    def length(self) -> int:
        return len(self.pcs)

    @property
    def fetched_next(self) -> frozenset[int]:
        """The words of the instruction after the run, at `fall` or `target`."""
        return frozenset(p + o for p in (self.fall, self.target) for o in range(3))

    def slots(self) -> tuple[RunWrite | None, ...]:
        """Its writes by write slot: the branching word in slot 0, the words the next
        instruction fetches in the last slots (`FORWARD_SLOTS`), the others in order."""
        out: list[RunWrite | None] = [None] * WRITE_SLOTS
        forward = [w for w in self.writes if w.address in self.fetched_next]
        for k, w in enumerate(forward):
            out[WRITE_SLOTS - 1 - k] = w
        free = (k for k in range(WRITE_SLOTS) if out[k] is None)
        for w in self.writes:
            if w not in forward:
                out[next(free)] = w
        return tuple(out)


@dataclass(frozen=True)
class _Affine:
    const: int
    terms: tuple[tuple[int, int], ...]  # (word, coefficient), sorted, no zero

    def minus(self, other: _Affine) -> _Affine:
        coef = dict(self.terms)
        for w, c in other.terms:
            coef[w] = coef.get(w, 0) - c
        return _Affine(self.const - other.const, tuple(sorted((w, c) for w, c in coef.items()
                                                             if c)))


def eligible(config: MachineConfig, constant: frozenset[int], words: tuple[int, ...],
             pc: int) -> bool:
    """The instruction at pc can be part of a run (see the module docstring)."""
    m = config.memory
    if not (0 <= pc and pc + 2 < m and {pc, pc + 1, pc + 2} <= constant):
        return False
    a, b, c = words[pc], words[pc + 1], words[pc + 2]
    return 0 <= a < m and 0 <= b < m and b not in constant and 0 <= c <= m - 3


def find_runs(config: MachineConfig, writable: tuple[int, ...], image: tuple[int, ...]
              ) -> tuple[Run, ...]:
    """The runs of `candidate_runs` that start where an iteration can (`iteration_starts`)."""
    runs = candidate_runs(config, writable, image)
    starts = iteration_starts(config, *_memory(config, writable, image), runs)
    return tuple(r for pc, r in runs.items() if pc in starts)


def _memory(config: MachineConfig, writable: tuple[int, ...], image: tuple[int, ...]
            ) -> tuple[frozenset[int], tuple[int, ...]]:
    """The constant words and every word of memory (the image, then zeros)."""
    m = config.memory
    return (frozenset(range(m)) - frozenset(writable),
            tuple(image[j] if j < len(image) else 0 for j in range(m)))


def candidate_runs(config: MachineConfig, writable: tuple[int, ...], image: tuple[int, ...]
                   ) -> dict[int, Run]:
    """The run from every eligible pc that makes at least two steps (a pc whose run would
    be one step keeps the single step), by its start."""
    constant, words = _memory(config, writable, image)
    runs = {}
    for pc in range(config.memory - 2):
        if eligible(config, constant, words, pc):
            run = _run_from(config, constant, words, pc, MAX_LENGTH)
            while run is not None and _fetches_a_write(run):
                run = _run_from(config, constant, words, pc, run.length - 1)
            if run is not None and run.length >= 2:
                runs[pc] = run
    return runs


def iteration_starts(config: MachineConfig, constant: frozenset[int], words: tuple[int, ...],
                     runs: dict[int, Run]) -> frozenset[int]:
    """The pcs where an iteration can start: pc 0, and the next pc of an iteration from one
    of them: a run's fall and target, a single step's pc + 3 and c, or, where c is a word
    the program writes (`RET` jumps through a patched word), every return site: the pc
    after each constant unconditional jump, where `CALL` returns to.

    A run elsewhere would only be entered after an iteration the budget cut short, or by a
    jump to an address the program computed otherwise (SUBLEQ code from elsewhere): such a
    pc takes single steps, as a pc where no run starts does, so this is a matter of speed
    (fewer run starts: smaller tables), never of the result."""
    m = config.memory
    returns = {q + 3 for q in range(m - 2) if {q, q + 1, q + 2} <= constant
               and words[q] == words[q + 1]}
    seen = {0}
    todo = [0]
    while todo:
        pc = todo.pop()
        if pc in runs:
            run = runs[pc]
            after = {run.fall, run.target}
        elif 0 <= pc < m - 2:
            after = {pc + 3} | (returns if pc + 2 not in constant else {words[pc + 2]})
        else:
            after = set()
        for nxt in after:
            if 0 <= nxt < m and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return frozenset(seen)


def read_words(runs: tuple[Run, ...]) -> tuple[int, ...]:
    """Every word some run reads (sorted), and the words of its forwarding slots (their old
    words are read too): the network reads runs over these only."""
    forwarded = {x.address for r in runs for x in r.slots()[WRITE_SLOTS - FORWARD_SLOTS:]
                 if x is not None}
    return tuple(sorted({w for r in runs for x in r.writes for w in x.plus + x.minus}
                        | forwarded))


def written_words(runs: tuple[Run, ...]) -> tuple[int, ...]:
    """Every word some run writes (sorted): the network lands runs' writes on these only."""
    return tuple(sorted({x.address for r in runs for x in r.writes}))


def _fetches_a_write(run: Run) -> bool:
    """The instruction after the run (at `fall` or `target`) has more words the run writes
    than the forwarding slots hold, or its branching word: the network lands a run's
    writes in the next iteration's first layer, after that layer's fetch, and forwards
    only the last slots to it, so such a run is cut short (its last instructions go to the
    next iteration)."""
    hit = [k for k, w in enumerate(run.writes) if w.address in run.fetched_next]
    return len(hit) > FORWARD_SLOTS or (run.branches and 0 in hit)


def _fits(value: _Affine) -> bool:
    plus = sum(c for _, c in value.terms if c > 0)
    minus = sum(-c for _, c in value.terms if c < 0)
    return plus <= POSITIVE and minus <= NEGATIVE


def _run_from(config: MachineConfig, constant: frozenset[int], words: tuple[int, ...],
              start: int, limit: int) -> Run | None:
    H = 1 << (config.word_bits - 1)
    values: dict[int, _Affine] = {}
    order: list[int] = []  # written words, first write first

    def value(w: int) -> _Affine:
        if w in values:
            return values[w]
        return _Affine(words[w], ()) if w in constant else _Affine(0, ((w, 1),))

    pcs: list[int] = []
    pc = start
    while eligible(config, constant, words, pc) and len(pcs) < limit:
        a, b, c = words[pc], words[pc + 1], words[pc + 2]
        new = value(b).minus(value(a))
        written = set(values) | {b}
        if not _fits(new) or len(written) > WRITE_SLOTS:
            break
        values[b] = new
        if b in order:
            order.remove(b)
        order.append(b)
        pcs.append(pc)
        if c == pc + 3:
            pc += 3
            continue
        if not new.terms:  # the branch is decided without the memory
            pc = c if _wrap(new.const, H) <= 0 else pc + 3
            continue
        writes = _writes(values, order, last=b)
        return Run(start, tuple(pcs), writes, fall=pc + 3, target=c, branches=True)
    if not pcs:
        return None
    return Run(start, tuple(pcs), _writes(values, order, last=None), fall=pc, target=pc,
               branches=False)


def _wrap(x: int, H: int) -> int:
    return (x + H) % (2 * H) - H


def _writes(values: dict[int, _Affine], order: list[int], last: int | None
            ) -> tuple[RunWrite, ...]:
    """The run's writes, the branching word first; a word left as it was is not written."""
    words = ([last] if last is not None else []) + [w for w in order if w != last]
    out = []
    for w in words:
        v = values[w]
        if v.const == 0 and v.terms == ((w, 1),) and w != last:
            continue
        plus = tuple(x for x, c in v.terms if c > 0 for _ in range(c))
        minus = tuple(x for x, c in v.terms if c < 0 for _ in range(-c))
        out.append(RunWrite(w, v.const, plus, minus))
    return tuple(out)
