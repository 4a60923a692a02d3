"""Codegen: the universal SUBLEQ step as a 3-ReLU-layer MLP, with state encoding/decoding.

The weights depend only on `MachineConfig` (m, W, tape capacities): the program is data in
the state vector, so two programs of the same size run on byte-identical weights, and
self-modifying code works because code is memory.

State vector (every slot non-negative, so carrying a slot through a layer is one ReLU unit):

    u[j]   = M[j] + H                 memory, H = 2^(W-1), in [0, 2^W)
    pc1    = pc + 1                   pc clamped to [-1, m]; -1 = halted
    fault  = fault code (0 = none)    see `runtime.machine.Fault`
    budget = steps still allowed      the step limit, exact for any unroll factor
    ip     = input position           in [0, Tin]
    ol     = output length            in [0, Tout]
    live   = 1 if the machine was running at the start of the last step
    oflag, oval = the last step's output event (flag, word + H): the runner appends `oval - H`
                  to the output tape when `oflag` is 1, so the output tape costs no width
    t[k]   = tape[k] + H              input tape, padded with -1 (end of tape) to Tin words

One step, in three ReLU layers (the floor: fetch -> read operands -> write and branch):

    layer 1  fetch.  From pc: a' = max(M[pc], -2), b' = max(M[pc+1], -2),
             c' = clamp(M[pc+2], -1, m-2), and the input word t[ip]. Each is a sum over j of
             [pc+o == j] * phi(M[j]): the product of an address indicator and a piecewise-linear
             function of a bounded integer, formed in ONE ReLU layer directly from the scalars
             (formula at `_gated_relu_read`). Clamping the operands keeps every later product
             inside int64; the clamps lose nothing: a' = -2 and b' = -2 mean "below -1"
             (a fault), c' = -1 means "halt", c' = m-2 means "past the last instruction".
    layer 2  read.   M[a'] and M[b'] by the same indicator products over u[j]; ramps
             relu(a'-k), relu(b'-k) give the indicators [b'==j] for the write, the modes
             (input a'==-1, output b'==-1) and the range faults.
    layer 3  write.  u[b] += g_j * (wrap(M[b]-M[a]) + H - u[j]) (or the input word), gated by
             g_j = [b==j] + ok - ... which is 1 for the written cell and <= 0 elsewhere, in one
             layer: relu(x + X(g-1)) - relu(-x + X(g-1)) = g*x for g in {1} or g <= 0, |x| <= X.
             The W-bit wrap is two gated steps of the difference. The next pc is pc + 3 or c'
             chosen by [wrap(d) <= 0] = [d >= -H] - [d >= 1] + [d >= H], a sum of steps of the
             difference d multiplied into (c' - pc - 3) by gated half-tents. Faults, the budget,
             the tapes' positions and the output event are a few scalar units.

Each quantity handed from one layer to the next is declared with its range next to the
formula that guarantees it; `compiler.network.Space.unit` proves |pre-activation| < 2^63 for
every unit from those ranges by interval arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from mlpc.compiler.image import SubleqImage
from mlpc.compiler.network import Expr, Network, Space, assemble, linear_space, relu_space, total
from mlpc.runtime.machine import Fault, MachineConfig, MachineState, Status

if TYPE_CHECKING:
    from mlpc.compiler.export_onnx import ModelInterface

MAX_BUDGET = (1 << 62) - 1
MAX_NETWORK_MEMORY = 1 << 16  # ~6.4M non-zero weights; building takes ~30 s


@dataclass(frozen=True)
class StateLayout:
    """Where each part of the machine state lives in the state vector."""

    config: MachineConfig
    names: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    @property
    def memory(self) -> slice:
        return slice(0, self.config.memory)

    @property
    def tape(self) -> slice:
        start = self.index("oval") + 1
        return slice(start, start + self.config.tape_in)


SCALARS = ("pc1", "fault", "budget", "ip", "ol", "live", "oflag", "oval")


@dataclass(frozen=True)
class StepNetwork:
    """The compiled step: the network and the layout of its state vector."""

    network: Network
    layout: StateLayout


@lru_cache(maxsize=8)
def build_step_network(config: MachineConfig) -> StepNetwork:
    """The universal network for machines of this configuration (cached: it depends on
    nothing else)."""
    if config.memory > MAX_NETWORK_MEMORY:
        raise ValueError(
            f"memory of {config.memory} words is larger than the network supports "
            f"({MAX_NETWORK_MEMORY})"
        )
    g = _Gen(config)
    network = g.build()
    return StepNetwork(network, StateLayout(config, network.state_names))


class _Gen:
    """The construction, one method per layer. Notation as in the module docstring."""

    def __init__(self, config: MachineConfig) -> None:
        self.cfg = config
        self.m = config.memory
        self.W = config.word_bits
        self.H = 1 << (self.W - 1)
        self.S = 1 << self.W  # > every offset word u in [0, 2^W)
        self.tin = config.tape_in
        self.tout = config.tape_out

    # ---- the state --------------------------------------------------------------------------
    def state(self) -> Space:
        x = Space("state", doc="machine state")
        m, top = self.m, self.S - 1
        self.u = [x.input(f"u[{j}]", 0, top) for j in range(m)]
        self.pc1 = x.input("pc1", 0, m + 1)
        self.fault = x.input("fault", 0, max(Fault))
        self.budget = x.input("budget", 0, MAX_BUDGET)
        self.ip = x.input("ip", 0, self.tin)
        self.ol = x.input("ol", 0, self.tout)
        x.input("live", 0, 1)
        x.input("oflag", 0, 1)
        x.input("oval", 0, top)
        self.t = [x.input(f"t[{k}]", 0, top) for k in range(self.tin)]
        return x

    def build(self) -> Network:
        x = self.state()
        h1 = self.layer1_fetch(x)
        z2 = self.bottleneck2(h1)
        h2 = self.layer2_read(z2)
        z3 = self.bottleneck3(h2)
        h3 = self.layer3_write(z3)
        out = self.next_state(h3, x)
        return assemble(
            [h1, z2, h2, z3, h3, out],
            x,
            layer_docs=(
                "fetch: a, b, c at pc (clamped) and the input word at ip",
                "read: M[a], M[b]; indicators of b; modes and range faults",
                "write M[b], choose the next pc, faults, tapes, budget",
                "next state",
            ),
            doc=f"one SUBLEQ step, m={self.m}, W={self.W}, tape_in={self.tin}, "
            f"tape_out={self.tout}",
        )

    # ---- layer 1: fetch ---------------------------------------------------------------------
    def layer1_fetch(self, x: Space) -> Space:
        h = relu_space("layer1", x, doc="fetch")
        m, H = self.m, self.H
        pc = self.pc1 - 1
        self.h1_u = [h.unit(f"u[{j}]", self.u[j]) for j in range(m)]
        self.h1_t = [h.unit(f"t[{k}]", self.t[k]) for k in range(self.tin)]
        # ramps R(k) = relu(pc - k): [pc == k] = R(k-1) - 2R(k) + R(k+1), [pc >= k] = R(k-1) - R(k)
        self.R = {k: h.unit(f"pc_ramp[{k}]", pc - k) for k in range(-3, m + 1)}
        # operands, each sum_j [pc + o == j] * phi(M[j]) with phi a clamp (see _gated_relu_read)
        Y = H + m + 2  # >= |y| for every y = M[j] + shift below
        self.fetch_units: dict[str, list[tuple[Expr, Expr]]] = {}
        for tag, offset, shift in (("a", 0, 2), ("b", 1, 2), ("c_lo", 2, 1), ("c_hi", 2, 2 - m)):
            pairs = []
            for j in range(m):
                y = self.u[j] - H + shift  # = M[j] + shift
                d = pc + offset - j
                first = h.unit(f"fetch_{tag}[{j}].0", y + Y * d)
                second = h.unit(f"fetch_{tag}[{j}].1", y + Y + 2 * Y * (d - 1))
                pairs.append((first, second))
            self.fetch_units[tag] = pairs
        self.Y = Y
        # input word t[ip]: half-tents over the tape, ramps RI(k) = relu(ip - k)
        self.RI = {k: h.unit(f"ip_ramp[{k}]", self.ip - k) for k in range(-1, self.tin + 1)}
        self.tape_units = [
            (
                h.unit(f"tape_read[{k}].0", self.t[k] + self.S * (self.ip - k)),
                h.unit(f"tape_read[{k}].1", self.t[k] + self.S * (self.ip - k - 1)),
            )
            for k in range(self.tin)
        ]
        self.h1_ip = h.unit("ip", self.ip)
        self.h1_ol = h.unit("ol", self.ol)
        self.h1_fault = h.unit("fault", self.fault)
        self.h1_fault_m1 = h.unit("fault_ramp1", self.fault - 1)
        self.h1_budget = h.unit("budget", self.budget)
        self.h1_budget_m1 = h.unit("budget_ramp1", self.budget - 1)
        self.h1_ol_full = (
            h.unit("ol_ramp.0", self.ol - self.tout + 1),
            h.unit("ol_ramp.1", self.ol - self.tout),
        )
        return h

    def _eq_pc(self, k: int) -> Expr:
        """[pc == k] for integer pc in [-1, m]."""
        R = self.R
        return R[k - 1] - 2 * R[k] + R[k + 1]

    def _gated_relu_read(self, tag: str, offset: int) -> Expr:
        """sum_j [pc + offset == j] * relu(y_j), |y_j| <= Y, from the layer-1 units.

        With d = pc + offset - j (an integer), S1 = Y and S2 = 2Y:
            [d == 0] relu(y) = relu(y + S1 d) - relu(y + Y + S2 (d-1))
                               + S2 relu(d-1) + Y [d >= 1] - S1 relu(d)
        because relu(y + S1 d) is 0 for d <= -1 and y + S1 d for d >= 1, and
        relu(y + Y + S2 (d-1)) - S2 relu(d-1) = [d >= 1] (y + Y) (a half-tent: y + Y in [0, 2Y]).
        relu(d) = R(j - offset), relu(d-1) = R(j - offset + 1).
        """
        Y, R = self.Y, self.R
        terms = []
        for j, (first, second) in enumerate(self.fetch_units[tag]):
            k = j - offset
            ramps = 2 * Y * R[k + 1] + Y * (R[k] - R[k + 1]) - Y * R[k]
            terms.append(first - second + ramps)
        return total(terms)

    # ---- between layers 1 and 2 -------------------------------------------------------------
    def bottleneck2(self, h1: Space) -> Space:
        z = linear_space("fetched", h1, doc="fetched operands and flags")
        m, H, top = self.m, self.H, self.S - 1
        R = self.R
        self.z2_u = [z.linear(f"u[{j}]", self.h1_u[j], 0, top) for j in range(m)]
        self.z2_t = [z.linear(f"t[{k}]", self.h1_t[k], 0, top) for k in range(self.tin)]
        # a' = max(M[pc], -2) = -2 + relu(M[pc] + 2); 0 when pc is outside [0, m)
        a = total(-2 * self._eq_pc(j) for j in range(m)) + self._gated_relu_read("a", 0)
        b = total(-2 * self._eq_pc(j - 1) for j in range(m)) + self._gated_relu_read("b", 1)
        # c' = clamp(M[pc+2], -1, m-2) = -1 + relu(M + 1) - relu(M - (m-2))
        c = (
            total(-1 * self._eq_pc(j - 2) for j in range(m))
            + self._gated_relu_read("c_lo", 2)
            - self._gated_relu_read("c_hi", 2)
        )
        self.z2_a = z.linear("a", a, -2, H - 1)
        self.z2_b = z.linear("b", b, -2, H - 1)
        self.z2_c = z.linear("c", c, -1, m - 2)
        # input word + H: half-tent pairs [ip == k] t[k]; past the tape the word is -1
        S, RI = self.S, self.RI
        word = total(
            first - S * RI[k] - second + S * RI[k + 1]
            for k, (first, second) in enumerate(self.tape_units)
        )
        ip_full = RI[self.tin - 1] - RI[self.tin]  # [ip >= Tin]
        self.z2_in = z.linear("in_word", word + (H - 1) * ip_full, 0, top)
        self.z2_ip_full = z.linear("ip_full", ip_full, 0, 1)
        self.z2_pc1 = z.linear("pc1", R[-1], 0, m + 1)  # relu(pc + 1) = pc1
        self.z2_pc_ge0 = z.linear("pc_ge0", R[-1] - R[0], 0, 1)
        self.z2_pc_fault = z.linear("pc_fault", R[m - 3] - R[m - 2], 0, 1)  # [pc >= m-2]
        self.z2_fault = z.linear("fault", self.h1_fault, 0, max(Fault))
        self.z2_fault_ge1 = z.linear("fault_ge1", self.h1_fault - self.h1_fault_m1, 0, 1)
        self.z2_budget = z.linear("budget", self.h1_budget, 0, MAX_BUDGET)
        self.z2_budget_ge1 = z.linear("budget_ge1", self.h1_budget - self.h1_budget_m1, 0, 1)
        self.z2_ip = z.linear("ip", self.h1_ip, 0, self.tin)
        self.z2_ol = z.linear("ol", self.h1_ol, 0, self.tout)
        full0, full1 = self.h1_ol_full
        self.z2_ol_full = z.linear("ol_full", full0 - full1, 0, 1)
        return z

    # ---- layer 2: read ----------------------------------------------------------------------
    def layer2_read(self, z: Space) -> Space:
        h = relu_space("layer2", z, doc="read")
        m, S = self.m, self.S
        a, b = self.z2_a, self.z2_b
        self.h2_u = [h.unit(f"u[{j}]", self.z2_u[j]) for j in range(m)]
        self.h2_t = [h.unit(f"t[{k}]", self.z2_t[k]) for k in range(self.tin)]
        self.RA = {k: h.unit(f"a_ramp[{k}]", a - k) for k in range(-2, m + 1)}
        self.RB = {k: h.unit(f"b_ramp[{k}]", b - k) for k in range(-2, m + 1)}
        # M[a] + H = sum_j [a == j] u[j] with half-tents (u in [0, S)); the largest
        # pre-activation is u + S(a - j) <= (2^W - 1) + 2^W (H - 1) = 2^(2W-1) - 1 < 2^63
        self.read_units = {
            name: [
                (
                    h.unit(f"read_{name}[{j}].0", self.z2_u[j] + S * (addr - j)),
                    h.unit(f"read_{name}[{j}].1", self.z2_u[j] + S * (addr - j - 1)),
                )
                for j in range(m)
            ]
            for name, addr in (("a", a), ("b", b))
        }
        # a' = b' = -1 (input and output at once): relu(-a' - b' - 1) is 1 there and 0 for
        # every other pair with a', b' >= -1 (pairs with -2 are range faults anyway)
        self.h2_io_both = h.unit("io_both", -a - b - 1)
        self.h2_act = h.unit(
            "active", self.z2_pc_ge0 + self.z2_budget_ge1 - self.z2_fault_ge1 - 1
        )  # [pc >= 0 and budget >= 1 and fault == 0]
        self.h2_carry = {
            name: h.unit(name, expr)
            for name, expr in (
                ("pc1", self.z2_pc1),
                ("fault", self.z2_fault),
                ("budget", self.z2_budget),
                ("ip", self.z2_ip),
                ("ol", self.z2_ol),
                ("in_word", self.z2_in),
                ("c1", self.z2_c + 1),
                ("pc_fault", self.z2_pc_fault),
                ("ip_full", self.z2_ip_full),
                ("ol_full", self.z2_ol_full),
            )
        }
        return h

    def _read(self, name: str, ramps: dict[int, Expr]) -> Expr:
        """sum_j [addr == j] u[j] = sum_j [d >= 0] u - [d >= 1] u with d = addr - j and
        [d >= 0] q = relu(q + S d) - S relu(d) for q in [0, S]."""
        S = self.S
        return total(
            first - S * ramps[j] - second + S * ramps[j + 1]
            for j, (first, second) in enumerate(self.read_units[name])
        )

    # ---- between layers 2 and 3 -------------------------------------------------------------
    def bottleneck3(self, h2: Space) -> Space:
        z = linear_space("operands", h2, doc="operands, modes, gates")
        m, top = self.m, self.S - 1
        RA, RB = self.RA, self.RB
        self.z3_u = [z.linear(f"u[{j}]", self.h2_u[j], 0, top) for j in range(m)]
        self.z3_t = [z.linear(f"t[{k}]", self.h2_t[k], 0, top) for k in range(self.tin)]
        self.z3_eq_b = [
            z.linear(f"b_is[{j}]", RB[j - 1] - 2 * RB[j] + RB[j + 1], 0, 1) for j in range(m)
        ]
        qa = self._read("a", RA)
        qb = self._read("b", RB)
        self.z3_qa = z.linear("mem_a", qa, 0, top)  # M[a] + H (0 if a is not an address)
        self.z3_diff = z.linear("diff", qb - qa, -top, top)  # M[b] - M[a] in subleq mode
        is_in = RA[-2] - 2 * RA[-1] + RA[0]  # [a' == -1]
        is_out = RB[-2] - 2 * RB[-1] + RB[0]  # [b' == -1]
        a_fault = 1 - (RA[-2] - RA[-1]) + (RA[m - 1] - RA[m])  # [a' <= -2] + [a' >= m]
        b_fault = 1 - (RB[-2] - RB[-1]) + (RB[m - 1] - RB[m])
        carry = self.h2_carry
        self.z3_is_in = z.linear("is_input", is_in, 0, 1)
        self.z3_is_out = z.linear("is_output", is_out, 0, 1)
        self.z3_a_fault = z.linear("a_fault", a_fault, 0, 1)
        self.z3_b_fault = z.linear("b_fault", b_fault, 0, 1)
        self.z3_io = z.linear("io_both", self.h2_io_both, 0, 3)
        self.z3_act = z.linear("active", self.h2_act, 0, 1)
        # ok = 1 exactly when the machine runs this step without a fault of pc, a, b or io;
        # otherwise ok <= 0 (every term after `active` is >= 0)
        self.z3_ok = z.linear(
            "ok",
            self.h2_act - carry["pc_fault"] - a_fault - b_fault - self.h2_io_both,
            -6,
            1,
        )
        self.z3_pc_fault = z.linear("pc_fault", carry["pc_fault"], 0, 1)
        self.z3_in = z.linear("in_word", carry["in_word"], 0, top)
        self.z3_c1 = z.linear("c1", carry["c1"], 0, self.m - 1)
        self.z3_pc1 = z.linear("pc1", carry["pc1"], 0, m + 1)
        self.z3_fault = z.linear("fault", carry["fault"], 0, max(Fault))
        self.z3_budget = z.linear("budget", carry["budget"], 0, MAX_BUDGET)
        self.z3_ip = z.linear("ip", carry["ip"], 0, self.tin)
        self.z3_ol = z.linear("ol", carry["ol"], 0, self.tout)
        self.z3_ip_full = z.linear("ip_full", carry["ip_full"], 0, 1)
        self.z3_ol_full = z.linear("ol_full", carry["ol_full"], 0, 1)
        return z

    # ---- layer 3: write, branch, bookkeeping ------------------------------------------------
    def layer3_write(self, z: Space) -> Space:
        h = relu_space("layer3", z, doc="write")
        m, H, S = self.m, self.H, self.S
        ok, is_in, is_out = self.z3_ok, self.z3_is_in, self.z3_is_out
        diff = self.z3_diff
        X = 2 * S  # >= |x| for every gated value x below
        Z = S  # >= diff - H + 1 and >= -diff - H
        self.h3_u = [h.unit(f"u[{j}]", self.z3_u[j]) for j in range(m)]
        self.h3_t = [h.unit(f"t[{k}]", self.z3_t[k]) for k in range(self.tin)]
        self.write_units = []
        for j in range(m):
            g_sub = self.z3_eq_b[j] + ok - is_in - 1  # 1 iff subleq writes cell j, else <= 0
            g_in = self.z3_eq_b[j] + ok + is_in - 2  # 1 iff input writes cell j, else <= 0
            x_sub = diff + H - self.z3_u[j]
            x_in = self.z3_in - self.z3_u[j]
            self.write_units.append(
                (
                    h.unit(f"sub[{j}].+", x_sub + X * (g_sub - 1)),
                    h.unit(f"sub[{j}].-", -x_sub + X * (g_sub - 1)),
                    h.unit(f"wrap_hi[{j}].0", diff - H + 1 + Z * (g_sub - 1)),
                    h.unit(f"wrap_hi[{j}].1", diff - H + Z * (g_sub - 1)),
                    h.unit(f"wrap_lo[{j}].0", -diff - H + Z * (g_sub - 1)),
                    h.unit(f"wrap_lo[{j}].1", -diff - H - 1 + Z * (g_sub - 1)),
                    h.unit(f"in[{j}].+", x_in + X * (g_in - 1)),
                    h.unit(f"in[{j}].-", -x_in + X * (g_in - 1)),
                )
            )
        # scalars
        act = self.z3_act
        self.h3_ok = h.unit("ok", ok)
        self.h3_out_full = h.unit("out_full", is_out + self.z3_ol_full + ok - 2)
        self.h3_out_write = h.unit("out_write", ok + is_out - self.z3_ol_full - 1)
        self.h3_out_val = h.unit(
            "out_val", self.z3_qa + X * (ok + is_out - self.z3_ol_full - 2)
        )  # (M[a] + H) gated by out_write
        self.h3_in_next = h.unit("in_next", ok + is_in - self.z3_ip_full - 1)
        pcf, af, bf = self.z3_pc_fault, self.z3_a_fault, self.z3_b_fault
        self.h3_faults = (
            h.unit("fault_pc", act + pcf - 1),
            h.unit("fault_a", act + af - pcf - 1),
            h.unit("fault_b", act + bf - pcf - af - 1),
            h.unit("fault_io", act + self.z3_io - 4 * (pcf + af + bf) - 1),
        )
        self.h3_live = h.unit("live", act)
        self.h3_carry = {
            name: h.unit(name, expr)
            for name, expr in (
                ("pc1", self.z3_pc1),
                ("fault", self.z3_fault),
                ("budget", self.z3_budget),
                ("ip", self.z3_ip),
                ("ol", self.z3_ol),
            )
        }
        # branch: [wrap(diff) <= 0] = [diff >= -H] - [diff >= 1] + [diff >= H], each step
        # gated by g = ok - is_in - is_out (1 iff a subleq instruction runs) and multiplied by
        # y = c' - pc - 3 in [-Yj, Yj]: with q = y + Yj in [0, 2Yj] and e = diff - K,
        #   g [e >= 0] q = relu(q + S3 e + G(g-1)) - S3 relu(e + G'(g-1))
        #   g [e >= 0]   = relu(e + 1 + G'(g-1)) - relu(e + G'(g-1))
        g = ok - is_in - is_out
        Yj = m + 4
        S3 = 2 * Yj
        E = 2 * S  # > |e| for every K below
        G = 2 * Yj + S3 * E
        G1 = E + 1
        y = self.z3_c1 - self.z3_pc1 - 3  # c' + 1 - (pc + 1) - 3
        q = y + Yj
        self.jump_units = []
        for sign, K in ((1, -H), (-1, 1), (1, H)):
            e = diff - K
            self.jump_units.append(
                (
                    sign,
                    h.unit(f"jump[{K}].q", q + S3 * e + G * (g - 1)),
                    h.unit(f"jump[{K}].0", e + G1 * (g - 1)),
                    h.unit(f"jump[{K}].1", e + 1 + G1 * (g - 1)),
                )
            )
        self.S3, self.Yj = S3, Yj
        return h

    def next_state(self, h3: Space, x: Space) -> Space:
        out = linear_space("next_state", h3, doc="the next machine state")
        S, m = self.S, self.m
        top = S - 1
        carry = self.h3_carry
        executed = self.h3_ok - self.h3_out_full
        for j in range(m):
            s_p, s_m, hi0, hi1, lo0, lo1, in_p, in_m = self.write_units[j]
            new_u = self.h3_u[j] + s_p - s_m + S * (lo0 - lo1) - S * (hi0 - hi1) + in_p - in_m
            out.linear(f"u[{j}]", new_u, 0, top)
        jump = total(
            sign * (qu - (self.S3 - self.Yj) * e0 - self.Yj * e1)
            for sign, qu, e0, e1 in self.jump_units
        )
        out.linear("pc1", carry["pc1"] + 3 * executed + jump, 0, m + 1)
        fp, fa, fb, fio = self.h3_faults
        fault_code = (
            Fault.PC_RANGE * fp
            + Fault.A_RANGE * fa
            + Fault.B_RANGE * fb
            + Fault.IO_BOTH * fio
            + Fault.OUTPUT_FULL * self.h3_out_full
        )
        out.linear("fault", carry["fault"] + fault_code, 0, max(Fault))
        out.linear("budget", carry["budget"] - executed, 0, MAX_BUDGET)
        out.linear("ip", carry["ip"] + self.h3_in_next, 0, self.tin)
        out.linear("ol", carry["ol"] + self.h3_out_write, 0, self.tout)
        out.linear("live", self.h3_live, 0, 1)
        out.linear("oflag", self.h3_out_write, 0, 1)
        out.linear("oval", self.h3_out_val, 0, top)
        for k in range(self.tin):
            out.linear(f"t[{k}]", self.h3_t[k], 0, top)
        assert out.names == x.names
        return out


# ---- encoding and decoding ------------------------------------------------------------------


def encode_state(
    layout: StateLayout, memory: Sequence[int], tape: Sequence[int], max_steps: int
) -> np.ndarray:
    """The initial state vector: memory at pc = 0, the tape padded with -1 (end of tape)."""
    cfg = layout.config
    H = 1 << (cfg.word_bits - 1)
    if len(tape) > cfg.tape_in:
        raise ValueError("tape longer than its capacity")
    x = np.zeros(layout.size, dtype=np.int64)
    x[layout.memory] = np.asarray(memory, dtype=np.int64) + H
    x[layout.index("pc1")] = 1
    x[layout.index("budget")] = min(max_steps, MAX_BUDGET)
    x[layout.index("live")] = 1
    padded = list(tape) + [-1] * (cfg.tape_in - len(tape))
    x[layout.tape] = np.asarray(padded, dtype=np.int64) + H
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
    cfg = layout.config
    H = 1 << (cfg.word_bits - 1)
    memory = tuple(int(v) - H for v in x[layout.memory])
    flag = int(x[layout.index("oflag")])
    return DecodedState(
        memory=memory,
        pc=int(x[layout.index("pc1")]) - 1,
        fault=Fault(int(x[layout.index("fault")])),
        budget=int(x[layout.index("budget")]),
        out_event=int(x[layout.index("oval")]) - H if flag else None,
    )


def state_of(layout: StateLayout, x: np.ndarray, tape_out: Sequence[int], max_steps: int
             ) -> MachineState:
    """A `MachineState` view of a state vector (for lock-step comparison)."""
    d = decode_state(layout, x)
    return MachineState(
        memory=list(d.memory),
        pc=d.pc,
        tape_out=list(tape_out),
        fault=d.fault,
        steps=min(max_steps, MAX_BUDGET) - d.budget,
    )


def model_interface(step: StepNetwork, image: SubleqImage) -> ModelInterface:
    """Describe the state vector to the (SUBLEQ-agnostic) ONNX exporter."""
    from mlpc.compiler.driver import tensor_name
    from mlpc.compiler.export_onnx import ModelInterface

    layout = step.layout
    cfg = layout.config
    trap = image.trap
    return ModelInterface(
        n_state=layout.size,
        memory=cfg.memory,
        offset=1 << (cfg.word_bits - 1),
        image=tuple(image.words),
        tape_capacity=cfg.tape_in,
        tape_start=layout.tape.start,
        slot=tuple((name, layout.index(name)) for name in SCALARS),
        inputs=tuple((tensor_name(n, "input"), a) for n, a in image.inputs),
        outputs=tuple((tensor_name(n, "output"), a) for n, a in image.outputs),
        trap_code_address=trap.code_address if trap else -1,
        trap_line_address=trap.line_address if trap else -1,
        tape_overflow_fault=int(Fault.TAPE_TOO_LONG),
        max_budget=MAX_BUDGET,
    )
