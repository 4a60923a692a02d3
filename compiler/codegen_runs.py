"""Codegen of the straight-line runs (`compiler/runs.py`): the units that let one iteration
of a specialised network execute a whole run, beside the single step of `codegen`.

Notation as in `codegen`'s docstring; w = `runs.WRITE_SLOTS`, and for each write slot k the
run's tables (functions of pc, constant from one run start to the next, so every pc reads one
run's values):

    wa_k + 2   the address slot k writes, + 2 (0: slot k writes nothing)
    rd_k,p     the words slot k adds (p < POSITIVE) and subtracts (p < NEGATIVE), -2 for none
    c_k        the constant part of y_k below: const mod 2^W + H minus the read excesses
    df, dt     fall - start and target - fall: the next pc is start + df, + dt when it jumps
    L          the run's length: 0 at a pc where no run starts (exact at every pc)

    layer 2   reads R_k,p,o[j] = relu(M'[j] + S (rd_k,p - o - j)) (as layer 2's reads of a
              and b); [L >= 1] and [budget >= L] as ramps
    operands  y_k = c_k + sum_p (R_k,+p,0 - R_k,+p,1) - sum_p (R_k,-p,0 - R_k,-p,1)
                  = the run's affine value of word k + H   (Ylo <= y_k <= Yhi)
              taken = [budget >= L] + [L >= 1] - 1   ([budget >= L] is 1 where L = 0), and the
              gate run = taken + active - 1 (1: the run executes; <= 0 otherwise); the single
              step's ok drops by taken, so exactly one of them executes
    layer 3   [y_k >= q 2^W] for the q inside [Ylo, Yhi]: the wrap, M'[wa_k] + H =
              y_k - 2^W floor(y_k / 2^W); for slot 0 also [y_0 >= q 2^W + H + 1]: the
              last instruction jumps when (y_0 mod 2^W) <= H, i.e. its new word <= 0;
              gated by run: wa_k + 2, df, L (the budget)
    layer 4   lands every slot in one ReLU layer (the new words exist only after layer 3):
              Q_k,o[j] = relu(M[j] + S (wa_k - o - j)), A_k,o[j] = relu(new_k + S (wa_k - o - j))
              give M[j] + sum_k (A_k,0 - A_k,1 - Q_k,0 + Q_k,1) = M[j] with each written word
              replaced (the S [j < wa_k] excesses cancel; wa_k = -2 writes nothing); and the
              jump run [jumps] dt as gated units.

A pc where no run starts, or a run longer than the budget left, takes the single step of
the same network: every budget stops at the reference machine's state.
"""

from __future__ import annotations

from typing import Protocol

from mlpc.compiler.network import Lin, SpaceBuilder
from mlpc.compiler.runs import MAX_LENGTH, NEGATIVE, POSITIVE, WRITE_SLOTS, Run


class RunContext(Protocol):
    """What the run units need of the code generator (`codegen._Gen`)."""

    m: int
    W: int
    H: int
    S: int
    top: int
    runs: tuple[Run, ...]

    def _written_before(self, p: int) -> int: ...
    def _tables(self, b: SpaceBuilder, lo: int, hi: int, tables: dict) -> None: ...
    def _lookup(self, z: SpaceBuilder, table: str, function: str) -> Lin: ...


def positions() -> list[tuple[int, str, int]]:
    """Every read position (slot, sign '+'/'-', index)."""
    return [(k, sign, p) for k in range(WRITE_SLOTS)
            for sign, count in (("+", POSITIVE), ("-", NEGATIVE)) for p in range(count)]


def y_range(g: RunContext) -> tuple[int, int]:
    """[Ylo, Yhi] of y_k = (const mod 2^W) + H + sum of the added words - the subtracted
    (each word in [-H, H - 1]); an unused slot has y_k = 0."""
    H = g.H
    lo = H - POSITIVE * H - NEGATIVE * (H - 1)
    hi = (1 << g.W) - 1 + H + POSITIVE * (H - 1) + NEGATIVE * H
    return min(lo, 0), hi


def run_functions(g: RunContext) -> dict[str, list[int]]:
    """The run tables over x = pc + 1 in [0, m + 1] (see the module docstring): a run's
    values from its start to the next run's start (before the first start, the first run's)."""
    m, H, S = g.m, g.H, g.S
    at = {r.start: r for r in g.runs}
    names = [f"wa{k}" for k in range(WRITE_SLOTS)] + [f"c{k}" for k in range(WRITE_SLOTS)]
    names += [f"rd{k}{s}{p}" for k, s, p in positions()] + ["df", "dt"]
    functions: dict[str, list[int]] = {n: [] for n in names}
    current = g.runs[0]
    for x in range(m + 2):
        current = at.get(x - 1, current)
        values = _run_values(current, g.W, H, S, g._written_before)
        for n in names:
            functions[n].append(values[n])
    return functions


def _run_values(run: Run, W: int, H: int, S: int, before) -> dict[str, int]:
    out: dict[str, int] = {"df": run.fall - run.start,
                           "dt": run.target - run.fall if run.branches else 0}
    for k in range(WRITE_SLOTS):
        w = run.writes[k] if k < len(run.writes) else None
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


def fetched_runs(g: RunContext, z: SpaceBuilder, functions: dict[str, list[int]]) -> None:
    """z2: the run's tables at pc (linear in layer 1's run_table ramps), L from pc_table."""
    for name, values in functions.items():
        z.linear(f"run_{name}", g._lookup(z, "run_table", name), min(values), max(values))
    z.linear("run_len", g._lookup(z, "pc_table", "run_len"), 0, max(r.length for r in g.runs))


def layer2_runs(g: RunContext, b: SpaceBuilder, functions: dict[str, list[int]]) -> None:
    """The run's reads over the memory, its length's ramps, and its tables carried on (each
    shifted to be non-negative: a ReLU of it is the identity)."""
    S = g.S
    M, jS = b.v("M"), Lin(slope=-S)
    for k, sign, p in positions():
        rd = b.s(f"run_rd{k}{sign}{p}")
        b.unit(f"R{k}{sign}{p}.0", M + S * rd + jS, "relu(M'[j] + S (rd - j))")
        b.unit(f"R{k}{sign}{p}.1", M + S * (rd - 1) + jS)
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


def operands_runs(g: RunContext, z: SpaceBuilder, functions: dict[str, list[int]]) -> Lin:
    """z3: y_k, the run's tables, and the gate; returns `taken` (what ok drops by)."""
    S = g.S
    s = z.s
    ylo, yhi = y_range(g)
    for k in range(WRITE_SLOTS):
        y = s(f"run_c{k}") + min(functions[f"c{k}"])
        for sign, count in (("+", POSITIVE), ("-", NEGATIVE)):
            for p in range(count):
                read = z.sum(z.v(f"R{k}{sign}{p}.0") - z.v(f"R{k}{sign}{p}.1"), 0, S)
                y = y + read if sign == "+" else y - read
        z.linear(f"y{k}", y, ylo, yhi, f"the new word of write slot {k} + H, before its wrap")
    for name in [f"wa{k}" for k in range(WRITE_SLOTS)] + ["df", "dt"]:
        lo = min(functions[name])
        z.linear(f"run_{name}", s(f"run_{name}") + lo, lo, max(functions[name]))
    z.linear("run_len", s("run_len"), 0, max(r.length for r in g.runs))
    taken = (s("run_budget.0") - s("run_budget.1")) + (s("run_on.0") - s("run_on.1")) - 1
    z.linear("run_taken", taken, 0, 1, "a run starts at pc and the budget holds it")
    z.linear("run", taken + s("active") - 1, -1, 1, "1: the run executes")
    return taken


def thresholds(g: RunContext, offset: int) -> list[int]:
    """The q 2^W + offset inside (Ylo, Yhi]: [y >= t] for each, as two ramps."""
    ylo, yhi = y_range(g)
    Sw = 1 << g.W
    return [q * Sw + offset for q in range(ylo // Sw - 1, yhi // Sw + 2)
            if ylo < q * Sw + offset <= yhi]


def layer3_runs(g: RunContext, b: SpaceBuilder) -> None:
    """The wraps and the branch as ramps of y_k; the run's addresses, pc change and length
    gated by `run` (g x = relu(x + X (g - 1)) for x >= 0, two units for a signed x)."""
    s = b.s
    m = g.m
    gate = s("run")
    for k in range(WRITE_SLOTS):
        b.unit(f"y{k}", s(f"y{k}") - y_range(g)[0])
        for t in thresholds(g, 0):
            b.unit(f"wrap_y{k}>={t}.0", s(f"y{k}") - t + 1)
            b.unit(f"wrap_y{k}>={t}.1", s(f"y{k}") - t)
        b.unit(f"run_wa{k}", s(f"run_wa{k}") + (m + 2) * (gate - 1), "wa_k + 2 if run")
    for t in thresholds(g, g.H + 1):
        b.unit(f"wrap_y0>={t}.0", s("y0") - t + 1)
        b.unit(f"wrap_y0>={t}.1", s("y0") - t)
    X = 2 * m + 2 + MAX_LENGTH  # above |df| <= m and L <= MAX_LENGTH
    b.unit("run_df.+", s("run_df") + X * (gate - 1), "df if run")
    b.unit("run_df.-", -s("run_df") + X * (gate - 1))
    b.unit("run_steps", s("run_len") + X * (gate - 1), "L if run")
    b.unit("run", gate)
    b.unit("run_dt", s("run_dt") + m)


def decided_runs(g: RunContext, z: SpaceBuilder) -> None:
    """[y_k >= t] as one number in [0, 1] before the next space multiplies it by 2^W (each
    ramp alone can reach Yhi - t, which times 2^W would pass the exact range)."""
    ts = {k: thresholds(g, 0) for k in range(WRITE_SLOTS)}
    ts[0] = ts[0] + thresholds(g, g.H + 1)
    for k, tk in ts.items():
        for t in tk:
            z.linear(f"y{k}>={t}", z.s(f"wrap_y{k}>={t}.0") - z.s(f"wrap_y{k}>={t}.1"), 0, 1)


def _at_least(z: SpaceBuilder, k: int, t: int) -> Lin:
    return z.s(f"y{k}>={t}")


def next_state_runs(g: RunContext, z: SpaceBuilder) -> tuple[Lin, Lin]:
    """The run's new words, addresses, jump condition and gate, for layer 4; returns the
    run's change of pc (gated df) and its steps (gated L)."""
    s = z.s
    Sw = 1 << g.W
    ylo, _ = y_range(g)
    for k in range(WRITE_SLOTS):
        floor = ylo // Sw + sum((_at_least(z, k, t) for t in thresholds(g, 0)), Lin())
        z.linear(f"new{k}", s(f"y{k}") + ylo - Sw * floor, 0, g.top,
                 f"the new word of write slot {k} + H: y - 2^W floor(y / 2^W)")
        z.linear(f"run_wa{k}", s(f"run_wa{k}"), 0, g.m + 1)
    # (y mod 2^W) <= H: y in [q 2^W, q 2^W + H] for one q
    jumps = Lin(const=1 if ylo % Sw <= g.H else 0)
    jumps = jumps + sum((_at_least(z, 0, t) for t in thresholds(g, 0)), Lin())
    jumps = jumps - sum((_at_least(z, 0, t) for t in thresholds(g, g.H + 1)), Lin())
    z.linear("run_jumps", jumps, 0, 1, "the run's last instruction jumps (its word <= 0)")
    z.linear("run", s("run"), 0, 1)
    z.linear("run_dt", s("run_dt") - g.m, -g.m, g.m)
    return s("run_df.+") - s("run_df.-"), s("run_steps")


def layer4_runs(g: RunContext, b: SpaceBuilder) -> None:
    """The landing of every write slot, and the run's jump gated by run and run_jumps."""
    S = g.S
    jS = Lin(slope=-S)
    for k in range(WRITE_SLOTS):
        wa = b.s(f"run_wa{k}") - 2
        for o in (0, 1):
            b.unit(f"Q{k}.{o}", b.v("V") + S * (wa - o) + jS, "the old word of write slot k")
            b.unit(f"A{k}.{o}", b.s(f"new{k}") + S * (wa - o) + jS, "its new word",
                   index=_index(b))
    X = 2 * g.m + 1
    gate = b.s("run") + b.s("run_jumps") - 2
    b.unit("run_dt.+", b.s("run_dt") + X * gate)
    b.unit("run_dt.-", -b.s("run_dt") + X * gate)


def _index(b: SpaceBuilder) -> tuple[int, ...]:
    return b._index["V"] or tuple(range(b._ranges["V"][2]))


def landed_runs(z: SpaceBuilder) -> tuple[Lin, Lin]:
    """The memory's change (every slot landed) and the pc's (the run's jump)."""
    change = Lin()
    for k in range(WRITE_SLOTS):
        change = (change + z.v(f"A{k}.0") - z.v(f"A{k}.1") - z.v(f"Q{k}.0")
                  + z.v(f"Q{k}.1"))
    return change, z.s("run_dt.+") - z.s("run_dt.-")
