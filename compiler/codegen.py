"""Codegen: the universal SUBLEQ step as a 3-ReLU-layer MLP of unit families.

The weights depend only on `MachineConfig` (m, W, tape capacities): the program is data in
the state vector, so two programs of the same size run on byte-identical weights, and
self-modifying code works because code is memory.

State (every slot non-negative, so carrying a slot through a ReLU is the identity):

    V[j]   = M[j] + H                the memory *before* the pending write   (H = 2^(W-1))
    t[k]   = tape[k] + H             the input tape, padded with -1 (no family if Tin = 0)
    pc1    = pc + 1                  pc clamped to [-1, m]; -1 = halted
    fault  = fault code (0 = none)   see `machine_config.Fault`
    budget = steps still allowed     the step limit, exact for any unroll factor
    ip, ol = input position, output length
    live   = 1 if the machine was running at the start of the last step
    oflag, oval = the last step's output event (flag, word + H)
    wa2, wo, wv = the pending write: address + 2, old and new word + H. The machine's memory
             is V with M[wa] = wv - H; no write pending is wv == wo.

One step, in three ReLU layers. S is a power of two with S >= 2^W and S > H + m + 2, so
every per-word quantity q below satisfies 0 <= q < S, and every unit family is one formula
over the word index j (the families are what the exporter turns into a few elementwise ops):

    layer 1  fetch and write back.  Half-tent families over j, with d = pc + o - j:
               T_o[j]  = relu(V[j] + S d)                  o = 1, 2
               L_o[j]  = relu(V[j] - H + 2 + S d)           o = 0, 1   (lower clamp)
               U_o[j]  = relu(V[j] - H - m + S d)           o = 0, 1   (upper clamp)
               I_o[j]  = relu(V[j] + S (m + ip - o - j))    o = 0, 1   (the input word)
               A_o[j]  = relu(wv + S (wa - o - j)),  B_o[j] = relu(wo + S (wa - o - j))
             Summed over j, every excess past the word (S per step of d) is a linear function
             of clamp(pc + o, 0, n), so each sum is one word plus scalar ramps:
               sum_j (L_o - U_o) = clamp(M[pc+o], -2, m) + 2 + (m + 2) clamp(pc + o, 0, n)
               sum_j (T_2 - T_1) = M[pc+2] + H + S clamp(pc + 2, 0, n)
               sum_j (I_0 - I_1) = tape[ip] + H + S (m + ip)
             and the pending write lands: M'[j] = V[j] + A_0 - A_1 - B_0 + B_1
             = V[j] + [wa == j] (wv - wo). The fetch reads V (before the write), so the
             operands are corrected by scalar units: [wa == pc+o] (f(wv) - f(wo)).
    layer 2  read.   M'[a] + H = sum_j relu(M'[j] + S (a - j)) - relu(M'[j] + S (a-1-j))
             - S relu(a), the same for b; ramps of a and b give the modes (input a = -1,
             output b = -1) and the range faults; c is clamped to [-1, m-2].
    layer 3  decide. The new word is a scalar: wrap(M[b] - M[a]) (or the input word) as
             gated units g x = relu(x + X (g-1)) - relu(-x + X (g-1)) for g = 1 or g <= 0,
             |x| <= X; it becomes the next pending write (b, M[b], new). The next pc is pc + 3
             or c by [wrap(d) <= 0] = [d >= -H] - [d >= 1] + [d >= H] multiplied into c - pc - 3
             by gated half-tents. Faults, the budget, the tapes and the output event are a few
             scalar units.

After the loop, two read-out layers (`readout_network`, `StepNetwork.readout`) turn the final
state into the results, once per run: the pending write landed by the units A_o, B_o of
layer 1, the status (halted = relu(1 - pc1 - fault)), and each word gated by that halt (the
trap cells' code and line); the model's decoding then only reads values out.

Per memory word: 10 units in layer 1, 4 in layer 2, none in layer 3 (the memory passes
through layers 2 and 3 unchanged, which a ReLU of a non-negative value is). Every quantity
handed from one space to the next is declared with its range next to the formula that
guarantees it; `compiler.network.SpaceBuilder` proves every pre-activation's bound.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mlpc.compiler.codegen_runs import (
    RunPlan,
    decided_runs,
    fetched_runs,
    landed_runs,
    landing_positions,
    landing_runs,
    layer2_runs,
    layer3_runs,
    next_state_runs,
    operands_runs,
    pending_runs,
    plan_runs,
    run_lengths,
    run_steps,
    state_runs,
)
from mlpc.compiler.limits import MAX_BUDGET, MAX_NETWORK_MEMORY
from mlpc.compiler.machine_config import Fault, MachineConfig, Status
from mlpc.compiler.network import Lin, Network, Space, SpaceBuilder, flat_names, state_space
from mlpc.compiler.runs import WRITE_SLOTS, Run, find_runs

# What each layer computes, with its formula: the doc strings of the layer functions that
# Netron shows (notation as in the module docstring; S > every per-word quantity)
LAYER_DOCS = (
    "fetch and write back: T_o[j] = relu(V[j] + S (pc + o - j)) and the clamps L_o, U_o of "
    "M[pc + o] (summed over j: a, b, c at pc); A_o, B_o land the pending write, "
    "M'[j] = V[j] + A_0 - A_1 - B_0 + B_1; I_o read the input word at ip",
    "read: R_o[j] = relu(M'[j] + S (a - o - j)), summed over j: M'[a] + H + S a (the same "
    "for b); ramps of a and b give the input/output modes and the range faults",
    "decide: gated units g x = relu(x + X (g - 1)) - relu(-x + X (g - 1)) make the new word "
    "of M[b] (the next pending write) and the jump to c when M[b] - M[a] <= 0; faults, "
    "tapes and budget",
    "the next machine state: V = M', pc, fault, budget, tape positions, the output event "
    "and the pending write (b + 2, M[b] + H, new word + H)",
)
# the read-out layers after the loop (`readout_network`)
READOUT_DOCS = (
    "read-out 1: A_o, B_o land the pending write (as in layer 1), M'[j] = V[j] + A_0 - A_1 "
    "- B_0 + B_1; halted = relu(1 - pc1 - fault); faulted = fault - relu(fault - 1)",
    "read-out 2: each word w = M'[j] - H gated by halted, g w = relu(w + X (g - 1)) - "
    "relu(-w + X (g - 1)), and g [w != 0] from the same ramps shifted by one",
    "the results: memory = M' - H, status (0 running, 1 halted, 2 fault), and per word the "
    "word when halted and the status if it were the trap code cell (3: trap)",
)
SCALARS = ("pc1", "fault", "budget", "ip", "ol", "live", "oflag", "oval", "wa2", "wo", "wv")


@dataclass(frozen=True)
class StateLayout:
    """Where each part of the machine state lives in the flat state vector
    [V (memory then tape), scalars]; a specialised state holds only the writable words."""

    config: MachineConfig
    names: tuple[str, ...]
    read_only: ReadOnly | None = None

    @property
    def memory_words(self) -> tuple[int, ...]:
        """The address of each memory slot of the state, in order."""
        if self.read_only is None:
            return tuple(range(self.config.memory))
        return self.read_only.writable

    @property
    def size(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    @property
    def memory(self) -> slice:
        return slice(0, len(self.memory_words))

    @property
    def tape(self) -> slice:
        return slice(self.memory.stop, self.memory.stop + self.config.tape_in)

    @property
    def scalars(self) -> slice:
        return slice(self.tape.stop, self.size)


@dataclass(frozen=True)
class ReadOnly:
    """The words a specialised network holds constant: every word of memory not in
    `writable` (sorted addresses), with its value in `image` (0 past the image).

    `direct_reads`: the program reads a constant word only through an operand word it never
    writes (a `.tl` lowering patches operands with the addresses of variables, arrays and
    stack slots only). Then M[a] of a constant a is a function of pc, looked up with the
    instruction (`pc_table`), and no table over every value of a is needed; a constant word
    named by a written operand faults INDIRECT_READ instead of being read, so a wrong record
    never diverges silently. Without it (SUBLEQ code and `--read-only`), M[a] is looked up
    over a."""

    writable: tuple[int, ...]
    image: tuple[int, ...]
    direct_reads: bool = False

    def value(self, j: int) -> int:
        return self.image[j] if j < len(self.image) else 0


@dataclass(frozen=True)
class StepNetwork:
    """The compiled step: the network and the layout of its state vector."""

    network: Network
    layout: StateLayout
    read_only: ReadOnly | None = None
    # the read-out layers after the loop (`readout_network`): the same state in, the machine's
    # results out
    readout: Network | None = None
    # the straight-line runs one iteration executes (`compiler/runs.py`); () = one step each
    runs: tuple[Run, ...] = ()


@lru_cache(maxsize=8)
def build_step_network(config: MachineConfig, read_only: ReadOnly | None = None,
                       runs: bool = True) -> StepNetwork:
    """The universal network for machines of this configuration (cached: it depends on
    nothing else), or with `read_only` the network specialised to those constant words,
    which executes a straight-line run per iteration where one starts (`compiler/runs.py`;
    `runs=False`: one step per iteration)."""
    if config.memory > MAX_NETWORK_MEMORY:
        raise ValueError(
            f"memory of {config.memory} words is larger than the network supports "
            f"({MAX_NETWORK_MEMORY})"
        )
    if read_only is not None:
        _check_read_only(config, read_only)
    found = find_runs(config, read_only.writable, read_only.image) if read_only and runs else ()
    gen = _Gen(config, read_only, found)
    network = step_network(gen)
    layout = StateLayout(config, flat_names(network.state), read_only)
    return StepNetwork(network, layout, read_only, readout_network(gen), found)


def _check_read_only(config: MachineConfig, read_only: ReadOnly) -> None:
    w = read_only.writable
    if not w or list(w) != sorted(set(w)) or w[0] < 0 or w[-1] >= config.memory:
        raise ValueError("the writable words must be distinct addresses in memory, sorted, "
                         "and at least one")
    if len(read_only.image) > config.memory:
        raise ValueError("the image is larger than the memory")


def ramp_weights(values: Sequence[int]) -> list[int]:
    """w with f(x) = f(0) + sum_k w_k relu(x - k) for x = 0 .. len(values) - 1, where
    f(x) = values[x]: the changes of slope of the piecewise-linear interpolation."""
    slopes = [b - a for a, b in zip(values, values[1:], strict=False)]
    return [slopes[0]] + [b - a for a, b in zip(slopes, slopes[1:], strict=False)]


def multiplier(config: MachineConfig) -> int:
    """S: a power of two above every per-word quantity (words + H, clamps of words)."""
    H = 1 << (config.word_bits - 1)
    S = 1 << config.word_bits
    while S <= H + config.memory + 2:
        S *= 2
    return S


class _Gen:
    """What every space of the construction shares: the machine's constants, the memory
    family, the tables of the specialised form, and the unit groups used in more than one
    space (the landing of the pending write, the fetch and read corrections). The spaces
    themselves are the functions after it, one per space. Notation as in the module
    docstring."""

    plan: RunPlan  # with runs only: what their units are built from (`codegen_runs`)

    def __init__(self, config: MachineConfig, read_only: ReadOnly | None = None,
                 runs: tuple[Run, ...] = ()) -> None:
        self.cfg = config
        self.ro = read_only
        self.runs = runs
        # the memory family: over every word, or over the writable words only
        self.words: dict[str, object] = (
            {"index": read_only.writable} if read_only else {"length": config.memory})
        self.m = config.memory
        self.W = config.word_bits
        self.H = 1 << (self.W - 1)
        self.top = (1 << self.W) - 1  # the largest word + H
        self.S = multiplier(config)
        self.tin = config.tape_in
        self.tout = config.tape_out
        if runs:
            self.plan = plan_runs(self)

    def state(self) -> Space:
        m, top = self.m, self.top
        return state_space(
            scalars=(
                ("pc1", 0, m + 1), ("fault", 0, max(Fault)), ("budget", 0, MAX_BUDGET),
                ("ip", 0, self.tin), ("ol", 0, self.tout), ("live", 0, 1), ("oflag", 0, 1),
                ("oval", 0, top), ("wa2", 0, m + 2), ("wo", 0, top), ("wv", 0, top),
            ) + (state_runs(self) if self.runs else ()),
            families=(self._memory_family(),)
            + ((("t", self.tin, 0, top),) if self.tin else ()),
            doc="machine state: memory and tape words + H, then the scalars",
        )

    @property
    def memory_words(self) -> int:
        return self.m if self.ro is None else len(self.ro.writable)

    def matched_memory(self) -> tuple[int, ...]:
        """The memory's positions, for a memory family that adds the runs' landings when
        they cover only the words runs write (its families are matched by position); ()
        otherwise."""
        if not self.runs or self.ro is None:
            return ()
        return self.ro.writable if landing_positions(self) else ()

    def _memory_family(self) -> tuple:
        if self.ro is None:
            return ("V", self.m, 0, self.top)
        return ("V", len(self.ro.writable), 0, self.top, self.ro.writable)

    # ---- specialisation: functions of one integer scalar as tables ---------------------------
    def _written_before(self, p: int) -> int:
        """#{writable j < p} (every word below p in a universal network)."""
        if self.ro is None:
            return min(max(p, 0), self.m)
        return bisect_left(self.ro.writable, p)

    def _is_constant(self, p: int) -> bool:
        """p is a read-only word (never for a universal network)."""
        return (self.ro is not None and 0 <= p < self.m
                and self._written_before(p + 1) == self._written_before(p))

    def _tables(self, b: SpaceBuilder, lo: int, hi: int,
                tables: dict[str, tuple[Lin, str, dict[str, list[int]]]]) -> None:
        """For each table `name: (x, doc, functions)`, a family `name` of ramps relu(x - k),
        for functions of the integer x in [lo, hi] given by their values; each function is
        then `f(lo) + sum_k w_k relu(x - k)` (`_lookup`). The tables share one k per slope
        change of any of their functions (one stack of units for the exporter). The
        functions (the constant words at pc, M[a] of a constant a) are what a universal
        network computes with per-word units."""
        weights = {(name, f): ramp_weights(v) for name, (_, _, functions) in tables.items()
                   for f, v in functions.items()}
        used = [k for k in range(hi - lo) if any(w[k] for w in weights.values())]
        for name, (x, doc, functions) in tables.items():
            if used:
                b.unit(name, x + Lin(slope=-1), doc, index=tuple(lo + k for k in used))
            self.tables[name] = (hi - lo, {
                f: (v[0], tuple(weights[name, f][k] for k in used)) for f, v in functions.items()})

    def _lookup(self, z: SpaceBuilder, table: str, function: str) -> Lin:
        span, functions = self.tables[table]
        first, weights = functions[function]
        if not weights:
            return Lin(const=first)
        return first + z.sum(z.v(table), 0, span, weights)

    def _carry(self, b: SpaceBuilder, name: str = "M", source: str = "M") -> None:
        """The memory (as `name`) and the input tape passed on unchanged: a ReLU of a
        non-negative family, or a linear copy."""
        pairs = [(name, source)] + ([("t", "t")] if self.tin else [])
        for new, old in pairs:
            if b.relu:
                b.unit(new, b.v(old))
            else:
                b.linear(new, b.v(old), 0, self.top)

    def _landing_units(self, b: SpaceBuilder, wa: Lin) -> None:
        """A_o = relu(wv + S (wa - o - j)), B_o = relu(wo + S (wa - o - j)): summed as
        A_0 - A_1 - B_0 + B_1 they are [wa == j] (wv - wo), the pending write (`_landed`)."""
        jS = Lin(slope=-self.S)
        for o in (0, 1):
            b.unit(f"A{o}", b.s("wv") + self.S * (wa - o) + jS, "pending write: new word",
                   **self.words)
            b.unit(f"B{o}", b.s("wo") + self.S * (wa - o) + jS, "pending write: old word",
                   **self.words)
        if self.runs:  # and a run's pending writes (`codegen_runs.landing_runs`)
            landing_runs(self, b)

    def _landed(self, z: SpaceBuilder, doc: str) -> None:
        """M'[j] = V[j] + [wa == j] (wv - wo): the memory with the pending write landed (and
        a run's, `codegen_runs.landed_runs`), defined as `M`."""
        landed = z.v("V") + z.v("A0") - z.v("A1") - z.v("B0") + z.v("B1")
        if self.runs:
            landed = landed + landed_runs(z)
        z.linear("M", landed, 0, self.top, doc, index=self.matched_memory())

    def _forwarding_units(self, b: SpaceBuilder, pc: Lin, wa: Lin,
                          words: tuple[str, str] = ("wv", "wo"),
                          offsets: tuple[int, ...] = (0, 1, 2)) -> None:
        """[wa == pc + o] (f(wv) - f(wo)) for the fetched words: the pending write is not in
        V yet. For an integer e and |y| < S:
            [e == 0] relu(y) = relu(y + S e) - relu(y + S + 2S (e-1)) + S relu(e-1)
        (the S relu(e-1) terms cancel in every difference f(wv) - f(wo) below), and for
        0 <= q < S: [e == 0] q - S [e >= 1]... differences of half-tents, as in layer 1.
        Only for the fetched words at `offsets` (those a write can hit: `forwarded`)."""
        S, H, m = self.S, self.H, self.m
        for o in (0, 1):
            if o not in offsets:
                continue
            e = wa - pc - o
            for word in words:
                w = b.s(word)
                for tag, y in (("lo", w + (2 - H)), ("hi", w - (H + m))):
                    b.unit(f"fw{o}_{word}_{tag}.0", y + S * e)
                    b.unit(f"fw{o}_{word}_{tag}.1", y + S + 2 * S * (e - 1))
        e = wa - pc - 2
        for word in words if 2 in offsets else ():
            w = b.s(word)
            b.unit(f"fw2_{word}.0", w + S * e)
            b.unit(f"fw2_{word}.1", w + S * (e - 1))

    def forwarded(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """The pending writes forwarded to the fetch: (new word, old word, the fetched
        words at pc + o they can hit): the single step's (any), and each forwarding slot's of
        a run (`codegen_runs.forward_offsets`)."""
        runs = [(f"rwv{k}", f"rwo{k}", offsets)
                for k, offsets in self.plan.forwarded.items()] if self.runs else []
        return [("wv", "wo", (0, 1, 2)), *runs]

    def _constant_operand_word(self, pc: int) -> int:
        """M[a] + H when the word a at pc is constant and names a constant word, else 0:
        what the read of M[a] adds to its half-tents over the writable words."""
        if not self._is_constant(pc):
            return 0
        a = self.ro.value(pc)
        return self.ro.value(a) + self.H if self._is_constant(a) else 0

    def _fetch_correction(self, operand: str, pc: int) -> int:
        """What the fetch adds to the sum of its half-tents over the memory family to get the
        operand at `pc`: minus the excess of the words before it, plus the word itself when
        it is a constant (a and b clamped to [-2, m], as the half-tents clamp them)."""
        o = "abc".index(operand)
        p = pc + o
        count = self._written_before(p)
        const = self.ro.value(p) if self._is_constant(p) else None
        if operand == "c":
            in_state = 0 <= p < self.m and const is None
            return -self.S * count - self.H * in_state + (const or 0)
        in_state = 0 <= p < self.m and const is None
        clamped = min(max(const, -2), self.m) if const is not None else 0
        return -(self.m + 2) * count - 2 * in_state + clamped

    def _read_correction(self, addr: int, constants: bool) -> int:
        """What the read adds to the sum of its half-tents over the memory family to get
        M[addr] + H: minus the excess S of each word before addr, plus the constant word
        itself (`constants`; a write's b never needs it: writing a constant faults)."""
        value = self.ro.value(addr) + self.H if constants and self._is_constant(addr) else 0
        return -self.S * self._written_before(addr) + value


# ---- the step, one function per space: the layers of the README's table --------------------


def step_network(g: _Gen) -> Network:
    """The step: the spaces below in order, from the state to the next state."""
    g.tables: dict[str, tuple[int, dict[str, tuple[int, tuple[int, ...]]]]] = {}
    x = g.state()
    h1 = layer1_fetch(g, x)
    z2 = fetched(g, h1)
    h2 = layer2_read(g, z2)
    z3 = operands(g, h2)
    h3 = layer3_decide(g, z3)
    z4 = decided(g, h3)
    out = next_state(g, z4)
    spaces: tuple[Space, ...] = (h1, z2, h2, z3, h3, z4, out)
    docs = ("fetch a, b, c at pc (clamped) and the input word at ip; land the pending write",
            "read M[a], M[b]; modes and range faults",
            "new word of M[b] (the next pending write), next pc, faults, tapes, budget")
    assert flat_names(out) == flat_names(x)
    return Network(
        x, spaces,
        doc=f"one SUBLEQ step, m={g.m}, W={g.W}, tape_in={g.tin}, "
        f"tape_out={g.tout}" + (f", or one of {len(g.runs)} straight-line runs" if g.runs
                                else ""),
        layer_docs=docs + ("next state",),
    )


# ---- after the loop: the read-out layers -------------------------------------------------


def readout_network(g: _Gen) -> Network:
    """The machine's results from a final state, computed by two ReLU layers (after the
    loop, once per run) so that the model's decoding only reads values out:

        readout1  A_o, B_o as in layer 1 (the pending write), V, and
                  halted = relu(1 - pc1 - fault) = [pc < 0 and no fault] (integers >= 0)
        landed    M'[j] = V[j] + A_0 - A_1 - B_0 + B_1, faulted = fault - relu(fault - 1)
        readout2  per word w = M'[j] - H, gated by g = halted (X = H + 1 > |w|):
                  P_0 = relu(w + X(g-1)), P_1 = relu(w - 1 + X(g-1)), N_0, N_1 for -w
        readout   memory[j] = M'[j] - H; halted_word[j] = P_0 - N_0 = g w;
                  status = halted + 2 faulted (0 running, 1 halted, 2 fault);
                  status_if_trap_cell[j] = status + 2 g [w != 0]
                  (+2: a halt with a trap code set is a trap, 3)

    Every formula is per word, so the weights depend on the machine only, like the
    step's: a program's trap cells (code, line) are read out of `halted_word` and
    `status_if_trap_cell` at their addresses."""
    H = g.H
    x = g.state()
    b = SpaceBuilder("readout1", True, x, doc=READOUT_DOCS[0])
    g._landing_units(b, b.s("wa2") - 2)
    b.unit("V", b.v("V"))
    b.unit("halted", 1 - b.s("pc1") - b.s("fault"), "[pc < 0 and no fault]")
    b.unit("fault", b.s("fault"))
    b.unit("fault_ramp1", b.s("fault") - 1)
    h1 = b.build()
    z = SpaceBuilder("landed", False, h1, doc="the pending write landed")
    g._landed(z, "memory with the pending writes landed, + H")
    z.linear("halted", z.s("halted"), 0, 1)
    z.linear("faulted", z.s("fault") - z.s("fault_ramp1"), 0, 1, "[fault >= 1]")
    z1 = z.build()
    b = SpaceBuilder("readout2", True, z1, doc=READOUT_DOCS[1])
    b.unit("M", b.v("M"))
    gate = (H + 1) * (b.s("halted") - 1)
    word = b.v("M") - H
    b.unit("P0", word + gate, "relu(w + X (g - 1))")
    b.unit("P1", word - 1 + gate, "relu(w - 1 + X (g - 1))")
    b.unit("N0", -word + gate, "relu(-w + X (g - 1))")
    b.unit("N1", -word - 1 + gate, "relu(-w - 1 + X (g - 1))")
    b.unit("halted", b.s("halted"))
    b.unit("faulted", b.s("faulted"))
    h2 = b.build()
    z = SpaceBuilder("readout", False, h2, doc=READOUT_DOCS[2])
    status = z.s("halted") + 2 * z.s("faulted")
    nonzero = z.v("P0") - z.v("P1") + z.v("N0") - z.v("N1")
    z.linear("memory", z.v("M") - H, -H, H - 1, "M[j] with the pending write landed")
    z.linear("halted_word", z.v("P0") - z.v("N0"), -H, H - 1,
             "M[j] when halted without a fault, else 0")
    z.linear("status_if_trap_cell", status + 2 * nonzero, 0, 3,
             "status, 3 (trap) when halted with M[j] != 0")
    z.linear("status", status, 0, 2, "0 running, 1 halted, 2 fault")
    return Network(x, (h1, z1, h2, z.build()),
                   doc=f"the read-out after the loop, m={g.m}, W={g.W}",
                   layer_docs=READOUT_DOCS)


# ---- layer 1: fetch and write back -----------------------------------------------------------


def layer1_fetch(g: _Gen, x: Space) -> Space:
    b = SpaceBuilder("layer1", True, x, doc=LAYER_DOCS[0])
    m, H, S = g.m, g.H, g.S
    V, pc, wa = b.v("V"), b.s("pc1") - 1, b.s("wa2") - 2
    jS = Lin(slope=-S)  # -S j
    for o in (1, 2):
        b.unit(f"T{o}", V + S * (pc + o) + jS, "relu(V[j] + S (pc + o - j))")
    for o in (0, 1):
        b.unit(f"L{o}", V + (2 - H) + S * (pc + o) + jS, "lower clamp of M[pc + o]")
        b.unit(f"U{o}", V - (H + m) + S * (pc + o) + jS, "upper clamp of M[pc + o]")
    ip = b.s("ip")
    if g.tin:
        for o in (0, 1):
            b.unit(f"I{o}", b.v("t") + S * (ip - o) + jS, "the input word tape[ip]")
        b.unit("t", b.v("t"))
    g._landing_units(b, wa)
    b.unit("V", V)
    if g.ro is None:  # clamp(pc + o, 0, m) = relu(pc + o) - relu(pc + o - m)
        for o in range(4):
            b.unit(f"pc_ramp{o}", pc + o)
            b.unit(f"pc_ramp{o}_m", pc + o - m)
    else:
        functions = {f: [g._fetch_correction(f, x - 1) for x in range(m + 2)]
                     for f in ("a", "b", "c")}
        if g.ro.direct_reads:
            functions["mem_a"] = [g._constant_operand_word(x - 1) for x in range(m + 2)]
            functions["dyn_a"] = [int(0 <= x - 1 < m and not g._is_constant(x - 1))
                                  for x in range(m + 2)]
        if g.runs:
            functions["run_len"] = run_lengths(g)
        g._tables(b, 0, m + 1, {"pc_table": (
            b.s("pc1"), "the constant words at pc, pc + 1, pc + 2", functions)})
        if g.runs:
            run_steps(g, b)
    g._forwarding_units(b, pc, wa)
    # a run's writes of the next instruction's words (`forwarded`)
    for k, offsets in g.plan.forwarded.items() if g.runs else ():
        g._forwarding_units(b, pc, b.s(f"rwa{k}") - 2, (f"rwv{k}", f"rwo{k}"), offsets)
    b.unit("ip_full", ip - g.tin + 1)  # [ip >= Tin], ip <= Tin
    for name in ("pc1", "fault", "budget", "ip", "ol"):
        b.unit(name, b.s(name))
    b.unit("fault_ramp1", b.s("fault") - 1)
    b.unit("budget_ramp1", b.s("budget") - 1)
    b.unit("pc_ramp0_only", pc)  # relu(pc): [pc >= 0] = pc1 - relu(pc)
    b.unit("pc_fault0", pc - m + 3)
    b.unit("pc_fault1", pc - m + 2)
    b.unit("ol_full", b.s("ol") - g.tout + 1)  # [ol >= Tout], ol <= Tout
    return b.build()


# ---- between layers 1 and 2 ------------------------------------------------------------------


def fetched(g: _Gen, h: Space) -> Space:
    z = SpaceBuilder("fetched", False, h, doc="fetched operands, the written memory")
    m, H, S, top = g.m, g.H, g.S, g.top
    s = z.s
    g._landed(z, "memory with the pending writes landed")

    def n1(o: int) -> Lin:  # clamp(pc + o, 0, m) = #{j < m : pc + o - j >= 1}
        return s(f"pc_ramp{o}") - s(f"pc_ramp{o}_m")

    def fw(o: int, word: str, tag: str) -> Lin:  # [wa == pc + o] relu(y)
        return s(f"fw{o}_{word}_{tag}.0") - s(f"fw{o}_{word}_{tag}.1")

    def correction(o: int, name: str) -> Lin:
        if g.ro is not None:
            return g._lookup(z, "pc_table", name)
        if name == "c":
            return -S * n1(2) - H * (n1(3) - n1(2))
        return -(m + 2) * n1(o) - 2 * (n1(o + 1) - n1(o))  # [0 <= pc + o < m]

    pending = g.forwarded()
    for o, name in ((0, "a"), (1, "b")):
        fetched = z.sum(z.v(f"L{o}") - z.v(f"U{o}"), 0, m + 2)
        forward = sum((fw(o, new, "lo") - fw(o, new, "hi") - fw(o, old, "lo")
                       + fw(o, old, "hi") for new, old, at in pending if o in at), Lin())
        z.linear(name, fetched + correction(o, name) + forward, -2, m,
                 f"clamp(M'[pc + {o}], -2, m); 0 when pc + {o} is outside")
    forward_c = sum(((s(f"fw2_{new}.0") - s(f"fw2_{new}.1")) - (s(f"fw2_{old}.0")
                                                               - s(f"fw2_{old}.1"))
                     for new, old, at in pending if 2 in at), Lin())
    c = z.sum(z.v("T2") - z.v("T1"), 0, S) + correction(2, "c") + forward_c
    z.linear("c", c, -H, H - 1, "M'[pc + 2]")
    word = Lin()
    if g.tin:  # sum_k (I_0 - I_1) = tape[ip] + H + S ip (0 + S Tin past the end)
        word = z.sum(z.v("I0") - z.v("I1"), 0, S) - S * s("ip")
        z.linear("t", z.v("t"), 0, top)
    z.linear("in_word", word + (H - 1) * s("ip_full"), 0, top, "tape[ip] + H, or -1 + H")
    if g.ro is not None and g.ro.direct_reads:
        z.linear("mem_a_const", g._lookup(z, "pc_table", "mem_a"), 0, top,
                 "M[a] + H when a is a constant operand naming a constant word, else 0")
        z.linear("dyn_a", g._lookup(z, "pc_table", "dyn_a"), 0, 1,
                 "[the operand word a at pc is writable]")
    z.linear("ip_full", s("ip_full"), 0, 1)
    z.linear("pc1", s("pc1"), 0, m + 1)
    z.linear("pc_ge0", s("pc1") - s("pc_ramp0_only"), 0, 1)
    z.linear("pc_fault", s("pc_fault0") - s("pc_fault1"), 0, 1, "[pc >= m-2]")
    z.linear("fault", s("fault"), 0, max(Fault))
    z.linear("fault_ge1", s("fault") - s("fault_ramp1"), 0, 1)
    z.linear("budget", s("budget"), 0, MAX_BUDGET)
    z.linear("budget_ge1", s("budget") - s("budget_ramp1"), 0, 1)
    z.linear("ip", s("ip"), 0, g.tin)
    z.linear("ol", s("ol"), 0, g.tout)
    z.linear("ol_full", s("ol_full"), 0, 1)
    if g.runs:
        fetched_runs(g, z)
    return z.build()


# ---- layer 2: read ---------------------------------------------------------------------------


def layer2_read(g: _Gen, z: Space) -> Space:
    b = SpaceBuilder("layer2", True, z, doc=LAYER_DOCS[1])
    m, S = g.m, g.S
    M, jS = b.v("M"), Lin(slope=-S)
    a, bb = b.s("a"), b.s("b")
    for name, addr in (("a", a), ("b", bb)):
        b.unit(f"R{name}0", M + S * addr + jS, f"relu(M'[j] + S ({name} - j))")
        b.unit(f"R{name}1", M + S * (addr - 1) + jS)
        for k in (-1, 0, m - 1, m):
            b.unit(f"{name}_ramp[{k}]", addr - k)
    if g.ro is not None:
        addresses = range(-2, m + 1)
        direct = g.ro.direct_reads
        constant = [int(g._is_constant(k)) for k in addresses]
        tables = {
            "a_table": (a, "M[a] of a constant a" if not direct else "the words before a",
                        {"mem": [g._read_correction(k, not direct) for k in addresses]}),
            "b_table": (bb, "is b a constant word",
                        {"mem": [g._read_correction(k, False) for k in addresses],
                         "ro": constant}),
        }
        if direct:  # relu(a - k) when dyn_a = 1, else 0 (a - k - (m + 3) <= -1)
            tables["a_indirect"] = (a + (m + 3) * (b.s("dyn_a") - 1),
                                    "is a a constant word named by a written operand",
                                    {"ro": constant})
            b.unit("mem_a_const", b.s("mem_a_const"))
        g._tables(b, -2, m, tables)
    g._carry(b)
    b.unit("a2", a + 2)
    b.unit("b2", bb + 2)
    c = b.s("c")
    b.unit("c_lo", c + 1)
    b.unit("c_hi", c - (m - 2))
    # a = b = -1 (input and output at once): relu(-a - b - 1) is 1 there and 0 for every
    # other pair with a, b >= -1 (pairs with -2 are range faults anyway)
    b.unit("io_both", -a - bb - 1)
    b.unit("active", b.s("pc_ge0") + b.s("budget_ge1") - b.s("fault_ge1") - 1)
    for name in ("pc1", "fault", "budget", "ip", "ol", "in_word", "pc_fault", "ip_full",
                 "ol_full"):
        b.unit(name, b.s(name))
    if g.runs:
        layer2_runs(g, b)
    return b.build()


# ---- between layers 2 and 3 ------------------------------------------------------------------


def operands(g: _Gen, h: Space) -> Space:
    z = SpaceBuilder("operands", False, h, doc="operands, modes, gates")
    m, S, top = g.m, g.S, g.top
    s = z.s
    g._carry(z)
    reads = {}
    for name in ("a", "b"):
        read = z.sum(z.v(f"R{name}0") - z.v(f"R{name}1"), 0, S)
        if g.ro is None:
            read = read - S * s(f"{name}_ramp[0]")
        else:
            read = read + g._lookup(z, f"{name}_table", "mem")
            if name == "a" and g.ro.direct_reads:
                read = read + s("mem_a_const")
        z.linear(f"mem_{name}", read, 0, top, f"M'[{name}] + H, or 0")
        reads[name] = read

    def ramp(name: str, k: int) -> Lin:  # relu(addr - k)
        return s(f"{name}_ramp[{k}]")

    # with addr in [-2, m]: [addr == -1] = (addr + 2) - 2 relu(addr + 1) + relu(addr),
    # [addr <= -2] + [addr >= m] = 1 - [addr >= -1] + [addr >= m]
    a_plus2, b_plus2 = s("a2"), s("b2")
    is_in = a_plus2 - 2 * ramp("a", -1) + ramp("a", 0)
    is_out = b_plus2 - 2 * ramp("b", -1) + ramp("b", 0)
    a_fault = 1 - (a_plus2 - ramp("a", -1)) + (ramp("a", m - 1) - ramp("a", m))
    b_fault = 1 - (b_plus2 - ramp("b", -1)) + (ramp("b", m - 1) - ramp("b", m))
    z.linear("diff", reads["b"] - reads["a"], -top, top, "M[b] - M[a]")
    z.linear("is_input", is_in, 0, 1)
    z.linear("is_output", is_out, 0, 1)
    z.linear("a_fault", a_fault, 0, 1)
    z.linear("b_fault", b_fault, 0, 1)
    z.linear("io_both", s("io_both"), 0, 3)
    z.linear("active", s("active"), 0, 1)
    # ok = 1 exactly when the machine runs this step without a fault of pc, a, b or io
    # (or, specialised, a write to a constant word); otherwise ok <= 0 (every term after
    # `active` is >= 0)
    ok = s("active") - s("pc_fault") - a_fault - b_fault - s("io_both")
    lowest = -6
    if g.runs:  # a run executes instead of the single step
        ok = ok - operands_runs(g, z)
        lowest -= 1
    if g.ro is not None:
        read_only = g._lookup(z, "b_table", "ro")
        z.linear("read_only", read_only, 0, 1, "[b is a constant word]")
        ok = ok - read_only
        lowest -= 1
        if g.ro.direct_reads:  # [dyn_a] [a is constant]: the table's f(-2) is 0
            indirect = g._lookup(z, "a_indirect", "ro")
            z.linear("indirect", indirect, 0, 1,
                     "[a is a constant word named by a written operand]")
            ok = ok - indirect
            lowest -= 1
    z.linear("ok", ok, lowest, 1)
    z.linear("c1", s("c_lo") - s("c_hi"), 0, m - 1, "clamp(c, -1, m-2) + 1")
    z.linear("b2", s("b2"), 0, m + 2)
    for name, hi in (("pc_fault", 1), ("in_word", top), ("pc1", m + 1),
                     ("fault", max(Fault)), ("budget", MAX_BUDGET), ("ip", g.tin),
                     ("ol", g.tout), ("ip_full", 1), ("ol_full", 1)):
        z.linear(name, s(name), 0, hi)
    return z.build()


# ---- layer 3: decide -------------------------------------------------------------------------


def layer3_decide(g: _Gen, z: Space) -> Space:
    b = SpaceBuilder("layer3", True, z, doc=LAYER_DOCS[2])
    m, H = g.m, g.H
    s = b.s
    Sw = 1 << g.W
    ok, is_in, is_out = s("ok"), s("is_input"), s("is_output")
    diff, qa, qb = s("diff"), s("mem_a"), s("mem_b")
    g._carry(b)
    g_sub = ok - is_in - is_out  # 1 iff a subleq instruction runs, else <= 0
    g_in = ok + is_in - 1  # 1 iff an input instruction runs, else <= 0
    # the new word of M[b] minus the old: subleq  -M[a] + S_w ([d <= -H-1] - [d >= H]),
    # input  in_word - M[b]; each gated: g x = relu(x + X(g-1)) - relu(-x + X(g-1))
    x_sub = H - qa
    b.unit("sub.+", x_sub + H * (g_sub - 1))
    b.unit("sub.-", -x_sub + H * (g_sub - 1))
    b.unit("wrap_hi.0", diff - H + 1 + H * (g_sub - 1))
    b.unit("wrap_hi.1", diff - H + H * (g_sub - 1))
    b.unit("wrap_lo.0", -diff - H + H * (g_sub - 1))
    b.unit("wrap_lo.1", -diff - H - 1 + H * (g_sub - 1))
    x_in = s("in_word") - qb
    b.unit("in.+", x_in + Sw * (g_in - 1))
    b.unit("in.-", -x_in + Sw * (g_in - 1))
    b.unit("mem_b", qb)
    b.unit("b2", s("b2"))
    # output, faults, bookkeeping
    b.unit("ok", ok)
    b.unit("out_full", is_out + s("ol_full") + ok - 2)
    b.unit("out_write", ok + is_out - s("ol_full") - 1)
    b.unit("out_val", qa + 2 * Sw * (ok + is_out - s("ol_full") - 2))  # M[a]+H, gated
    b.unit("in_next", ok + is_in - s("ip_full") - 1)
    act, pcf, af, bf = s("active"), s("pc_fault"), s("a_fault"), s("b_fault")
    b.unit("fault_pc", act + pcf - 1)
    b.unit("fault_a", act + af - pcf - 1)
    b.unit("fault_b", act + bf - pcf - af - 1)
    b.unit("fault_io", act + s("io_both") - 4 * (pcf + af + bf) - 1)
    if g.ro is not None:  # b in [0, m) here: no b or io fault
        b.unit("fault_ro", act + s("read_only") - pcf - af - 1)
        if g.ro.direct_reads:  # a in [0, m) here: no a or io fault
            b.unit("fault_indirect", act + s("indirect") - pcf - bf - s("read_only") - 1)
    b.unit("live", act)
    for name in ("pc1", "fault", "budget", "ip", "ol"):
        b.unit(name, s(name))
    # branch: [wrap(diff) <= 0] = [diff >= -H] - [diff >= 1] + [diff >= H], each step
    # gated by g_sub and multiplied by y = c' - pc - 3 in [-Yj, Yj]: with q = y + Yj in
    # [0, 2Yj] and e = diff - K (|e| <= E),
    #   g [e >= 0] q = relu(q + S3 e + G(g-1)) - S3 relu(e + G'(g-1))
    #   g [e >= 0]   = relu(e + 1 + G'(g-1)) - relu(e + G'(g-1))
    # with G = 2Yj + S3 E and G' = E + 1 (so both are 0 when g <= 0)
    Yj = m + 4
    S3 = 2 * Yj
    q = s("c1") - s("pc1") - 3 + Yj
    g.jumps = []
    for sign, K in ((1, -H), (-1, 1), (1, H)):
        e = diff - K
        E = max(abs(-(Sw - 1) - K), abs(Sw - 1 - K))
        G, G1 = 2 * Yj + S3 * E, E + 1
        b.unit(f"jump[{K}].q", q + S3 * e + G * (g_sub - 1))
        b.unit(f"jump[{K}].0", e + G1 * (g_sub - 1))
        b.unit(f"jump[{K}].1", e + 1 + G1 * (g_sub - 1))
        g.jumps.append((sign, K))
    g.S3, g.Yj = S3, Yj
    if g.runs:
        layer3_runs(g, b)
    return b.build()


def decided(g: _Gen, h: Space) -> Space:
    """The wrap of the new word as one number before it is multiplied by 2^W: each wrap
    unit alone can reach H, so 2^W times it would not be float64-exact (an extra factor
    of the last affine map, not an extra layer)."""
    z = SpaceBuilder("decided", False, h, doc="wrap of the new word")
    s = z.s
    g._carry(z)
    z.linear("wrap", (s("wrap_lo.0") - s("wrap_lo.1")) - (s("wrap_hi.0") - s("wrap_hi.1")),
             -1, 1, "[d <= -H-1] - [d >= H] for a subleq write, else 0")
    for d in h.scalars:
        if not d.name.startswith("wrap_"):
            z.linear(d.name, s(d.name), d.lo, d.hi)
    if g.runs:
        decided_runs(g, z)
    return z.build()


def next_state(g: _Gen, h: Space) -> Space:
    z = SpaceBuilder("next_state", False, h, doc=LAYER_DOCS[3])
    m, top = g.m, g.top
    s = z.s
    Sw = 1 << g.W
    g._carry(z, "V", "M")
    executed = s("ok") - s("out_full")
    jump = Lin()
    for sign, K in g.jumps:
        jump = jump + sign * (s(f"jump[{K}].q") - (g.S3 - g.Yj) * s(f"jump[{K}].0")
                              - g.Yj * s(f"jump[{K}].1"))
    pc_change, run_executed = next_state_runs(g, z) if g.runs else (Lin(), Lin())
    z.linear("pc1", s("pc1") + 3 * executed + jump + pc_change, 0, m + 1)
    fault_code = (
        int(Fault.PC_RANGE) * s("fault_pc")
        + int(Fault.A_RANGE) * s("fault_a")
        + int(Fault.B_RANGE) * s("fault_b")
        + int(Fault.IO_BOTH) * s("fault_io")
        + int(Fault.OUTPUT_FULL) * s("out_full")
    )
    if g.ro is not None:
        fault_code = fault_code + int(Fault.READ_ONLY) * s("fault_ro")
        if g.ro.direct_reads:
            fault_code = fault_code + int(Fault.INDIRECT_READ) * s("fault_indirect")
    z.linear("fault", s("fault") + fault_code, 0, max(Fault))
    z.linear("budget", s("budget") - executed - run_executed, 0, MAX_BUDGET)
    z.linear("ip", s("ip") + s("in_next"), 0, g.tin)
    z.linear("ol", s("ol") + s("out_write"), 0, g.tout)
    z.linear("live", s("live"), 0, 1)
    z.linear("oflag", s("out_write"), 0, 1)
    z.linear("oval", s("out_val"), 0, top)
    z.linear("wa2", s("b2"), 0, m + 2)
    z.linear("wo", s("mem_b"), 0, top)
    new = s("mem_b") + s("sub.+") - s("sub.-") + Sw * s("wrap") + s("in.+") - s("in.-")
    z.linear("wv", new, 0, top, "the new word of M[b] + H (M[b] + H when nothing is written)")
    if g.runs:
        pending_runs(g, z)
    return z.build()


# ---- encoding and decoding ------------------------------------------------------------------


def encode_state(
    layout: StateLayout, memory: Sequence[int], tape: Sequence[int], max_steps: int
) -> np.ndarray:
    """The initial state vector: memory at pc = 0, the tape padded with -1 (end of tape), no
    pending write."""
    cfg = layout.config
    H = 1 << (cfg.word_bits - 1)
    if len(tape) > cfg.tape_in:
        raise ValueError("tape longer than its capacity")
    x = np.zeros(layout.size, dtype=np.int64)
    x[layout.memory] = np.asarray(memory, dtype=np.int64)[list(layout.memory_words)] + H
    padded = list(tape) + [-1] * (cfg.tape_in - len(tape))
    x[layout.tape] = np.asarray(padded, dtype=np.int64) + H
    x[layout.index("pc1")] = 1
    x[layout.index("budget")] = min(max(max_steps, 0), MAX_BUDGET)
    x[layout.index("live")] = 1
    return x


@dataclass(frozen=True)
class DecodedState:
    memory: tuple[int, ...]
    pc: int
    fault: Fault
    budget: int
    out_event: int | None  # the word the last step output, if any

    @property
    def status(self) -> Status:
        if self.fault != Fault.NONE:
            return Status.FAULT
        return Status.HALTED if self.pc < 0 else Status.RUNNING


def decode_state(layout: StateLayout, x: np.ndarray) -> DecodedState:
    """The machine state a state vector stands for (the pending write landed; a specialised
    state's constant words filled in)."""
    cfg = layout.config
    H = 1 << (cfg.word_bits - 1)
    ro = layout.read_only
    words = [0] * cfg.memory if ro is None else [ro.value(j) for j in range(cfg.memory)]
    for j, v in zip(layout.memory_words, x[layout.memory], strict=True):
        words[j] = int(v) - H
    wa = int(x[layout.index("wa2")]) - 2
    wo, wv = int(x[layout.index("wo")]), int(x[layout.index("wv")])
    if wv != wo and 0 <= wa < cfg.memory:
        words[wa] = wv - H
    held = set(layout.memory_words)
    for k in range(WRITE_SLOTS if "rwa0" in layout.names else 0):  # a run's pending writes
        wa = int(x[layout.index(f"rwa{k}")]) - 2
        if wa in held:
            words[wa] = int(x[layout.index(f"rwv{k}")]) - H
    flag = int(x[layout.index("oflag")])
    return DecodedState(
        memory=tuple(words),
        pc=int(x[layout.index("pc1")]) - 1,
        fault=Fault(int(x[layout.index("fault")])),
        budget=int(x[layout.index("budget")]),
        out_event=int(x[layout.index("oval")]) - H if flag else None,
    )


def read_out(step: StepNetwork, results: np.ndarray) -> tuple[tuple[int, ...], Status]:
    """The memory and status the read-out network computed (`results`: one row of its
    output, e.g. `NumpyExecutor(step.readout).step(x)[0]`): what the model's decode reads
    out, here for the numpy engine (`decode_state` is the same in plain Python)."""
    assert step.readout is not None
    ro, layout = step.read_only, step.layout
    words = [0] * layout.config.memory if ro is None else [ro.value(j)
                                                          for j in range(layout.config.memory)]
    for k, j in enumerate(layout.memory_words):  # `memory` is the read-out's first family
        words[j] = int(results[k])
    status = int(results[-1])  # `status` is its last scalar: 0 running, 1 halted, 2 fault
    return tuple(words), (Status.RUNNING, Status.HALTED, Status.FAULT)[status]
