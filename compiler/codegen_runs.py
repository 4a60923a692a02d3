"""Codegen of the straight-line runs (`compiler/runs.py`): the units that let one iteration
of a specialised network execute a whole run, beside the single step of `codegen`.

Notation as in `codegen`'s docstring; w = `runs.WRITE_SLOTS`, and for each write slot k the
run's tables (functions of pc, constant from one run start to the next, so every pc reads one
run's values):

    wa_k + 2   the address slot k writes, + 2 (0: slot k writes nothing)
    rd_k,p     the words slot k adds (p < POSITIVE) and subtracts (p < NEGATIVE), -2 for none
    c_k        the constant part of y_k below: const mod 2^W + H minus the read excesses
               (H + S #{j in K: j < rd} for each read; K every writable word when the reads
               are not restricted)
    old_k      for the forwarding slots: the word's address, read as the others are
    df, dt     fall - start and target - fall: the next pc is start + df, + dt when it jumps
    L          the run's length: 0 at a pc where no run starts (exact at every pc)

    layer 2   reads R_k,p,o[j] = relu(M'[j] + S (rd_k,p - o - j)) (as layer 2's reads of a
              and b), over the words K some run reads only (units restricted to K: an
              executor gathers M' at constant indices, when that leaves out more than
              RESTRICT_ABOVE words); [L >= 1] and [budget >= L] as ramps
    tables    each table is a sum of steps [pc1 >= k] = relu(pc1 - k + 1) - relu(pc1 - k)
              at the run starts (layer 1), combined before they are summed (`run_steps`)
    operands  y_k = c_k + sum_p (R_k,+p,0 - R_k,+p,1) - sum_p (R_k,-p,0 - R_k,-p,1)
                  = the run's affine value of word k + H   (Ylo <= y_k <= Yhi)
              taken = [budget >= L] + [L >= 1] - 1   ([budget >= L] is 1 where L = 0), and the
              gate run = taken + active - 1 (1: the run executes; <= 0 otherwise); the single
              step's ok drops by taken, so exactly one of them executes
    layer 3   [y_k >= q 2^W] for the q inside [Ylo, Yhi]: the wrap, M'[wa_k] + H =
              y_k - 2^W floor(y_k / 2^W); for slot 0 also [y_0 >= q 2^W + H + 1]: the
              last instruction jumps when (y_0 mod 2^W) <= H, i.e. its new word <= 0;
              gated by run: wa_k + 2, df, L (the budget)
    next state  the run's writes are pending, as the single step's is: rwa_k = wa_k + 2 (0
              when the run does not execute) and rwv_k = new_k + H; the next iteration's layer 1
              lands them, Q_k,o[j] = relu(V[j] + S (wa_k - o - j)),
              A_k,o[j] = relu(rwv_k + S (wa_k - o - j)), for the words j some run writes
              only: V[j] + sum_k (A_k,0 - A_k,1 - Q_k,0 + Q_k,1) replaces each written word
              (the S [j < wa_k] excesses cancel; 0 at every other word). Layer 1's
              fetch reads V before that, so the words of the instruction after the run go
              to the forwarding slots (`forward_slots`), which read the old word too
              (rwo_k) and are forwarded to the fetch as the single step's pending write is
              (`_Gen._forwarding_units`). The run's jump is gated half-tents in layer 3.

A pc where no run starts, or a run longer than the budget left, takes the single step of
the same network: every budget stops at the reference machine's state.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mlpc.compiler.network import Lin, SpaceBuilder
from mlpc.compiler.runs import (
    FORWARD_SLOTS,
    MAX_LENGTH,
    NEGATIVE,
    POSITIVE,
    WRITE_SLOTS,
    Run,
    read_words,
    written_words,
)


class RunContext(Protocol):
    """What the run units need of the code generator (`codegen._Gen`)."""

    m: int
    memory_words: int  # the units of the memory family
    W: int
    H: int
    S: int
    top: int
    runs: tuple[Run, ...]
    plan: RunPlan  # set once the generator knows the above (`plan_runs`)

    def _written_before(self, p: int) -> int: ...
    def _lookup(self, z: SpaceBuilder, table: str, function: str) -> Lin: ...


@dataclass(frozen=True)
class RunPlan:
    """What the run units of one network are built from, computed once (`plan_runs`)."""

    functions: dict[str, list[int]]  # the run tables over x = pc + 1 (`run_functions`)
    steps: tuple[int, ...]  # the x where some table changes (`step_positions`)
    ranges: tuple[tuple[int, int], ...]  # [Ylo, Yhi] of each slot's y (`slot_ranges`)
    forwarded: dict[int, tuple[int, ...]]  # the fetched words each forwarding slot can hit


def plan_runs(g: RunContext) -> RunPlan:
    functions = run_functions(g)
    return RunPlan(functions, step_positions(functions), slot_ranges(g), forward_offsets(g))


# A family of the runs' reads (landings) covers only the words runs read (write) when that
# leaves out more than this many words: gathering them costs a few ops per iteration, which
# a smaller family repays only then (about 0.4 us per op against 0.5 ns per unit and op).
RESTRICT_ABOVE = 64


def restricted_to(g: RunContext, words: tuple[int, ...]) -> tuple[int, ...]:
    """`words` when a family over them leaves out enough of the memory family, else ()."""
    return words if g.memory_words - len(words) > RESTRICT_ABOVE else ()


def read_positions(g: RunContext) -> tuple[int, ...]:
    """The positions of the runs' reads when restricted (else ())."""
    return restricted_to(g, read_words(g.runs))


def landing_positions(g: RunContext) -> tuple[int, ...]:
    """The positions of the runs' landings when restricted (else ()): the memory family
    that adds them matches its families by position then (`codegen._Gen.matched_memory`)."""
    return restricted_to(g, written_words(g.runs))


def forward_slots() -> range:
    """The write slots whose word the next instruction may fetch (`runs.FORWARD_SLOTS`):
    their old words are read too, and forwarded with the new ones to the next fetch."""
    return range(WRITE_SLOTS - FORWARD_SLOTS, WRITE_SLOTS)


def forward_offsets(g: RunContext) -> dict[int, tuple[int, ...]]:
    """For each forwarding slot k, the o in 0..2 such that some run's write in slot k is the
    word at pc + o of the instruction after it (at its fall or its target): the only words
    of the next fetch that slot's pending write can change (none: no units for it)."""
    hit: dict[int, set[int]] = {k: set() for k in forward_slots()}
    for run in g.runs:
        slots = run.slots()
        for k in forward_slots():
            w = slots[k]
            if w is not None:
                hit[k] |= {w.address - p for p in {run.fall, run.target}} & {0, 1, 2}
    return {k: tuple(sorted(o)) for k, o in hit.items() if o}


def positions() -> list[tuple[int, str, int]]:
    """Every read position (slot, sign '+'/'-', index)."""
    return [(k, sign, p) for k in range(WRITE_SLOTS)
            for sign, count in (("+", POSITIVE), ("-", NEGATIVE)) for p in range(count)]


def slot_ranges(g: RunContext) -> tuple[tuple[int, int], ...]:
    """For each slot k, [Ylo, Yhi] of y_k = (const mod 2^W) + H + sum of the added words -
    the subtracted (each word in [-H, H - 1]) over the runs' writes in slot k, and 0 (an
    unused slot, or a run that leaves it unused): every pc's table holds one run's values,
    so y_k is one of these at every pc. A tight range needs fewer wrap thresholds
    (`thresholds`)."""
    H, Sw = g.H, 1 << g.W
    lo, hi = [0] * WRITE_SLOTS, [0] * WRITE_SLOTS
    for run in g.runs:
        for k, w in enumerate(run.slots()):
            if w is not None:
                c = w.const % Sw + H
                lo[k] = min(lo[k], c - len(w.plus) * H - len(w.minus) * (H - 1))
                hi[k] = max(hi[k], c + len(w.plus) * (H - 1) + len(w.minus) * H)
    return tuple(zip(lo, hi, strict=True))


def run_functions(g: RunContext) -> dict[str, list[int]]:
    """The run tables over x = pc + 1 in [0, m + 1] (see the module docstring): a run's
    values from its start to the next run's start (before the first start, the first run's)."""
    words = read_positions(g)

    def before(p: int) -> int:  # the words of the reads' family below p: the read's excess
        return bisect_left(words, p) if words else g._written_before(p)

    at = {r.start: _run_values(r, g.W, g.H, g.S, before) for r in g.runs}
    current = at[g.runs[0].start]
    rows = []
    for x in range(g.m + 2):
        current = at.get(x - 1, current)
        rows.append(current)
    names = [f"wa{k}" for k in range(WRITE_SLOTS)] + [f"c{k}" for k in range(WRITE_SLOTS)]
    names += [f"old{k}" for k in forward_slots()] + [f"cold{k}" for k in forward_slots()]
    names += [f"rd{k}{s}{p}" for k, s, p in positions()] + ["df", "dt"]
    return {name: [row[name] for row in rows] for name in names}


def _run_values(run: Run, W: int, H: int, S: int, before: Callable[[int], int]
                ) -> dict[str, int]:
    """One run's table values (the module docstring's names)."""
    out: dict[str, int] = {"df": run.fall - run.start,
                           "dt": run.target - run.fall if run.branches else 0}
    slots = run.slots()
    for k in forward_slots():  # the old word of a forwarding slot: its read, + H
        w = slots[k]
        out[f"old{k}"] = w.address if w else -2
        out[f"cold{k}"] = -S * before(w.address) if w else 0
    for k, w in enumerate(slots):
        out[f"wa{k}"] = w.address + 2 if w else 0
        const = (w.const % (1 << W)) + H if w else 0
        for sign, words, count in (("+", w.plus if w else (), POSITIVE),
                                   ("-", w.minus if w else (), NEGATIVE)):
            for p in range(count):
                addr = words[p] if p < len(words) else -2
                out[f"rd{k}{sign}{p}"] = addr
                if addr >= 0:  # the read's sum is M + H + S before(addr): take H + S before
                    excess = H + S * before(addr)
                    const += -excess if sign == "+" else excess
        out[f"c{k}"] = const
    return out


def run_lengths(g: RunContext) -> list[int]:
    """L over x = pc + 1 in [0, m + 1]: the length of the run starting at pc, else 0."""
    at = {r.start: r.length for r in g.runs}
    return [at.get(x - 1, 0) for x in range(g.m + 2)]


# ---- the spaces' run parts, in order ------------------------------------------------------


def step_positions(functions: dict[str, list[int]]) -> tuple[int, ...]:
    """The x = pc + 1 where some run table changes (a run starts at pc)."""
    return tuple(x for x in range(1, len(next(iter(functions.values()))))
                 if any(v[x] != v[x - 1] for v in functions.values()))


def run_steps(g: RunContext, b: SpaceBuilder) -> None:
    """Layer 1: the steps of the run tables, P[k] = relu(pc1 - k + 1), P'[k] = relu(pc1 - k)
    at each x = k where a table changes: [pc1 >= k] = P[k] - P'[k] (integers). A table,
    constant from one run start to the next, is f(0) + sum_k (f(k) - f(k-1)) [pc1 >= k]:
    each step's combination is in [0, 1], so its partial sums stay below
    sum_k |f(k) - f(k-1)|, where ramps relu(pc1 - k) would multiply that by m."""
    ks = g.plan.steps
    if ks:  # (one run, or runs alike: every table is a constant)
        b.unit("run_step", b.s("pc1") + 1 + Lin(slope=-1), "relu(pc1 - k + 1)", index=ks)
        b.unit("run_step'", b.s("pc1") + Lin(slope=-1), "relu(pc1 - k)", index=ks)


def _step_lookup(z: SpaceBuilder, values: list[int], ks: tuple[int, ...]) -> Lin:
    weights = tuple(values[k] - values[k - 1] for k in ks)
    if not any(weights):
        return Lin(const=values[0])
    return values[0] + z.sum(z.v("run_step") - z.v("run_step'"), 0, 1, weights)


def fetched_runs(g: RunContext, z: SpaceBuilder) -> None:
    """z2: the run's tables at pc (steps of layer 1's `run_steps`), L from pc_table."""
    ks = g.plan.steps
    for name, values in g.plan.functions.items():
        z.linear(f"run_{name}", _step_lookup(z, values, ks), min(values), max(values))
    z.linear("run_len", g._lookup(z, "pc_table", "run_len"), 0, max(r.length for r in g.runs))


def layer2_runs(g: RunContext, b: SpaceBuilder) -> None:
    """The run's reads over the memory, its length's ramps, and its tables carried on (each
    shifted to be non-negative: a ReLU of it is the identity)."""
    S, functions = g.S, g.plan.functions
    M, jS = b.v("M"), Lin(slope=-S)
    words = read_positions(g)  # units over these words only, if any
    for k, sign, p in positions():
        rd = b.s(f"run_rd{k}{sign}{p}")
        b.unit(f"R{k}{sign}{p}.0", M + S * rd + jS, "relu(M'[j] + S (rd - j))",
               index=words, restricted=bool(words))
        b.unit(f"R{k}{sign}{p}.1", M + S * (rd - 1) + jS, index=words, restricted=bool(words))
    for k in forward_slots():
        rd = b.s(f"run_old{k}")
        b.unit(f"Rold{k}.0", M + S * rd + jS, "relu(M'[j] + S (old - j))", index=words,
               restricted=bool(words))
        b.unit(f"Rold{k}.1", M + S * (rd - 1) + jS, index=words, restricted=bool(words))
        b.unit(f"run_cold{k}", b.s(f"run_cold{k}") - min(functions[f"cold{k}"]))
    L = b.s("run_len")
    budget = b.s("budget")
    b.unit("run_on.0", L)
    b.unit("run_on.1", L - 1)
    b.unit("run_budget.0", budget - L + 1)
    b.unit("run_budget.1", budget - L)
    b.unit("run_len", L)
    for name in [f"wa{k}" for k in range(WRITE_SLOTS)] + [f"c{k}" for k in range(WRITE_SLOTS)
                                                          ] + ["df", "dt"]:
        b.unit(f"run_{name}", b.s(f"run_{name}") - min(functions[name]))


def operands_runs(g: RunContext, z: SpaceBuilder) -> Lin:
    """z3: y_k, the run's tables, and the gate; returns `taken` (what ok drops by)."""
    S, functions = g.S, g.plan.functions
    s = z.s
    for k in range(WRITE_SLOTS):
        ylo, yhi = g.plan.ranges[k]
        y = s(f"run_c{k}") + min(functions[f"c{k}"])
        for sign, count in (("+", POSITIVE), ("-", NEGATIVE)):
            for p in range(count):
                read = z.sum(z.v(f"R{k}{sign}{p}.0") - z.v(f"R{k}{sign}{p}.1"), 0, S)
                y = y + read if sign == "+" else y - read
        z.linear(f"y{k}", y, ylo, yhi, f"the new word of write slot {k} + H, before its wrap")
    for k in forward_slots():
        read = z.sum(z.v(f"Rold{k}.0") - z.v(f"Rold{k}.1"), 0, S)
        z.linear(f"old{k}", s(f"run_cold{k}") + min(functions[f"cold{k}"]) + read, 0, g.top,
                 f"the old word of write slot {k} + H (0: none)")
    for name in [f"wa{k}" for k in range(WRITE_SLOTS)] + ["df", "dt"]:
        lo = min(functions[name])
        z.linear(f"run_{name}", s(f"run_{name}") + lo, lo, max(functions[name]))
    z.linear("run_len", s("run_len"), 0, max(r.length for r in g.runs))
    taken = (s("run_budget.0") - s("run_budget.1")) + (s("run_on.0") - s("run_on.1")) - 1
    z.linear("run_taken", taken, 0, 1, "a run starts at pc and the budget holds it")
    z.linear("run", taken + s("active") - 1, -1, 1, "1: the run executes")
    return taken


def thresholds(g: RunContext, k: int, offset: int) -> list[int]:
    """The q 2^W + offset inside (Ylo, Yhi] of slot k: [y_k >= t] for each, as two ramps."""
    ylo, yhi = g.plan.ranges[k]
    Sw = 1 << g.W
    return [q * Sw + offset for q in range(ylo // Sw - 1, yhi // Sw + 2)
            if ylo < q * Sw + offset <= yhi]


def jump_thresholds(g: RunContext) -> list[tuple[int, int]]:
    """(sign, t): [the run's last instruction jumps] = const + sum sign [y_0 >= t], since
    it jumps when (y_0 mod 2^W) <= H, i.e. y_0 in [q 2^W, q 2^W + H] for one q."""
    return ([(1, t) for t in thresholds(g, 0, 0)]
            + [(-1, t) for t in thresholds(g, 0, g.H + 1)])


def jumps_below(g: RunContext) -> int:
    """The jump indicator's constant: 1 when Ylo of slot 0 itself jumps (every threshold
    counted in `jump_thresholds` lies above it)."""
    Sw = 1 << g.W
    return 1 if g.plan.ranges[0][0] % Sw <= g.H else 0


def layer3_runs(g: RunContext, b: SpaceBuilder) -> None:
    """The wraps as ramps of y_k; the run's addresses, pc change and length gated by `run`
    (g x = relu(x + X (g - 1)) for x >= 0, two units for a signed x); and its jump, the
    gated half-tents of the single step's layer 3: with q = dt + m in [0, 2m], e = y_0 - t,
        g [e >= 0] dt = relu(q + S3 e + G (g-1)) - (S3 - m) relu(e + G' (g-1))
                        - m relu(e + 1 + G' (g-1)),   S3 = 2m, G = 2m + S3 E, G' = E + 1."""
    s = b.s
    m = g.m
    gate = s("run")
    for k in range(WRITE_SLOTS):
        b.unit(f"y{k}", s(f"y{k}") - g.plan.ranges[k][0])
        for t in thresholds(g, k, 0):
            b.unit(f"wrap_y{k}>={t}.0", s(f"y{k}") - t + 1)
            b.unit(f"wrap_y{k}>={t}.1", s(f"y{k}") - t)
        b.unit(f"run_wa{k}", s(f"run_wa{k}") + (m + 2) * (gate - 1), "wa_k + 2 if run")
    for k in forward_slots():
        b.unit(f"old{k}", s(f"old{k}"))
    X = 2 * m + 2 + MAX_LENGTH  # above |df|, |dt| <= m and L <= MAX_LENGTH
    for name in ("df", "dt"):
        b.unit(f"run_{name}.+", s(f"run_{name}") + X * (gate - 1), f"{name} if run")
        b.unit(f"run_{name}.-", -s(f"run_{name}") + X * (gate - 1))
    b.unit("run_steps", s("run_len") + X * (gate - 1), "L if run")
    S3 = 2 * m
    q = s("run_dt") + m
    ylo, yhi = g.plan.ranges[0]
    for _, t in jump_thresholds(g):
        E = max(abs(ylo - t), abs(yhi - t))
        G, G1 = 2 * m + S3 * E, E + 1
        e = s("y0") - t
        b.unit(f"run_jump[{t}].q", q + S3 * e + G * (gate - 1))
        b.unit(f"run_jump[{t}].0", e + G1 * (gate - 1))
        b.unit(f"run_jump[{t}].1", e + 1 + G1 * (gate - 1))


def decided_runs(g: RunContext, z: SpaceBuilder) -> None:
    """[y_k >= t] as one number in [0, 1] before the next space multiplies it by 2^W (each
    ramp alone can reach Yhi - t, which times 2^W would pass the exact range)."""
    for k in range(WRITE_SLOTS):
        for t in thresholds(g, k, 0):
            z.linear(f"y{k}>={t}", z.s(f"wrap_y{k}>={t}.0") - z.s(f"wrap_y{k}>={t}.1"), 0, 1)


def next_state_runs(g: RunContext, z: SpaceBuilder) -> tuple[Lin, Lin]:
    """The run's change of pc (gated df, and dt where its last instruction jumps) and its
    steps (gated L)."""
    s = z.s
    m = g.m
    gdt = s("run_dt.+") - s("run_dt.-")
    jump = jumps_below(g) * gdt
    for sign, t in jump_thresholds(g):
        jump = jump + sign * (s(f"run_jump[{t}].q") - m * s(f"run_jump[{t}].0")
                              - m * s(f"run_jump[{t}].1"))
    return s("run_df.+") - s("run_df.-") + jump, s("run_steps")


def pending_runs(g: RunContext, z: SpaceBuilder) -> None:
    """The run's pending writes, the next state's last scalars: rwa_k, rwv_k (its new words,
    landed by the next iteration's layer 1, `landing_runs`)."""
    s = z.s
    Sw = 1 << g.W
    for k in range(WRITE_SLOTS):
        ylo, _ = g.plan.ranges[k]
        floor = ylo // Sw + sum((s(f"y{k}>={t}") for t in thresholds(g, k, 0)), Lin())
        z.linear(f"rwa{k}", s(f"run_wa{k}"), 0, g.m + 1,
                 f"write slot {k}'s address + 2, 0: none")
        z.linear(f"rwv{k}", s(f"y{k}") + ylo - Sw * floor, 0, g.top,
                 f"write slot {k}'s new word + H: y - 2^W floor(y / 2^W)")
    for k in forward_slots():
        z.linear(f"rwo{k}", s(f"old{k}"), 0, g.top, f"write slot {k}'s old word + H")


def state_runs(g: RunContext) -> tuple[tuple[str, int, int], ...]:
    """The pending writes of a run in the state: rwa_k (address + 2, 0: none), rwv_k (the
    new word + H)."""
    return tuple(x for k in range(WRITE_SLOTS)
                 for x in ((f"rwa{k}", 0, g.m + 1), (f"rwv{k}", 0, g.top))) + tuple(
        (f"rwo{k}", 0, g.top) for k in forward_slots())


def landing_runs(g: RunContext, b: SpaceBuilder) -> None:
    """Layer 1 (and read-out 1): each pending run write, as a replacement of the word,
    Q_k,o[j] = relu(V[j] + S (rwa_k - 2 - o - j)), A_k,o[j] = relu(rwv_k + S (rwa_k - 2 - o - j));
    Q_k,0 - Q_k,1 = V[j] [j == wa] + S [j < wa] and A_k,0 - A_k,1 = rwv_k [j == wa] + S [j < wa]
    (0 <= V, rwv < S), so V[j] + sum_k (A_k,0 - A_k,1 - Q_k,0 + Q_k,1) writes rwv_k at wa_k
    (rwa_k = 0: wa = -2, no write)."""
    S = g.S
    jS = Lin(slope=-S)
    words = landing_positions(g)  # units over these words only, if any
    every = b.positions("V")
    for k in range(WRITE_SLOTS):
        wa = b.s(f"rwa{k}") - 2
        for o in (0, 1):
            b.unit(f"Q{k}.{o}", b.v("V") + S * (wa - o) + jS, "a pending run write: old word",
                   index=words, restricted=bool(words))
            b.unit(f"A{k}.{o}", b.s(f"rwv{k}") + S * (wa - o) + jS,
                   "a pending run write: new word", index=words or every)


def landed_runs(z: SpaceBuilder) -> Lin:
    """What the pending run writes change in the memory (see `landing_runs`): families over
    the words runs write, so the memory family that adds them matches them by position
    (`SpaceBuilder.linear(index=...)`: 0 at every other word)."""
    change = Lin()
    for k in range(WRITE_SLOTS):
        change = (change + z.v(f"A{k}.0") - z.v(f"A{k}.1") - z.v(f"Q{k}.0")
                  + z.v(f"Q{k}.1"))
    return change
