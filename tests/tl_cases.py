"""The shared table of `.tl` programs with their expected results, worked out by hand.

Every engine is tested against this table: the source interpreter now, the SUBLEQ lowering
(reference interpreter), the numpy network and onnxruntime later. Each program is small
(well under 200k SUBLEQ steps once compiled) so the slow engines stay fast.

How to read a case:
- `inputs`: values of the `input` variables; `tape`: the input tape.
- `outputs`: every `output` variable's value when the run ended, in declaration order.
- `out_tape`: the output tape, as words, or as text (one word per character).
- `status`: halted | trap | fault | step-limit; `detail`: exactly what the report says
  (`"division by zero at line 4"`, `"output tape full"`). For "step-limit" cases only the
  status is comparable across engines (a source step is not a SUBLEQ step), so `detail` and
  `outputs` are left empty and their programs have no outputs.
- `word_bits`: W; `tape_out`: output tape capacity (None: the default); `max_steps`: the
  budget (None: a generous default of the engine's choosing).
- Stack overflow cases recurse without bound, so they trap whatever the stack size.
"""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent

INT_MIN = -(1 << 31)
INT_MAX = (1 << 31) - 1


@dataclass(frozen=True)
class TlCase:
    name: str
    source: str
    inputs: tuple[tuple[str, int], ...] = ()
    tape: tuple[int, ...] = ()
    outputs: tuple[tuple[str, int], ...] = ()
    out_tape: tuple[int, ...] | str = ()
    status: str = "halted"
    detail: str = ""
    word_bits: int = 32
    tape_out: int | None = None
    max_steps: int | None = None

    @property
    def expected_tape(self) -> tuple[int, ...]:
        if isinstance(self.out_tape, str):
            return tuple(ord(ch) for ch in self.out_tape)
        return self.out_tape


def _src(text: str) -> str:
    """Source text with the indentation of this file removed; line 1 is the first line."""
    return dedent(text).lstrip("\n")


_CLASSIFY = _src("""
    input x;
    output s;
    if (x < 0) {
        s = -1;
    } else if (x == 0) {
        s = 0;
    } else if (x < 10) {
        s = 1;
    } else {
        s = 2;
    }
""")

CASES: tuple[TlCase, ...] = (
    # --- basics --------------------------------------------------------------------------
    TlCase("empty", ""),
    TlCase("output_starts_at_zero", "output z;", outputs=(("z", 0),)),
    TlCase(
        "gcd_spec_example",
        _src("""
            // gcd.tl
            input a, b;              // named inputs
            output g;                // named outputs
            while (b != 0) { var t = a % b; a = b; b = t; }
            g = a;
        """),
        inputs=(("a", 12), ("b", 18)),
        outputs=(("g", 6),),
    ),
    TlCase(
        "inputs_are_assignable",
        "input x;\noutput y;\nx = x + 1;\ny = x;\n",
        inputs=(("x", 41),),
        outputs=(("y", 42),),
    ),
    TlCase(
        "comments",
        _src("""
            output x, y;
            /* a block comment
               over two lines */ x = 1; // a line comment
            y = 2 /* inline */ + 3;
        """),
        outputs=(("x", 1), ("y", 5)),
    ),
    TlCase(
        "globals_initialised_in_order",
        _src("""
            output r, s;
            var a = 5;
            var b = a * 2;
            r = b;
            s = a;
        """),
        outputs=(("r", 10), ("s", 5)),
    ),
    # --- arithmetic ----------------------------------------------------------------------
    TlCase(
        "precedence_arithmetic",
        _src("""
            output r1, r2, r3, r4, r5;
            r1 = 2 + 3 * 4 - 10 / 3;
            r2 = (2 + 3) * (4 - 1);
            r3 = 10 - 4 - 3;
            r4 = 100 / 10 / 5;
            r5 = 2 + 3 * 4 % 5;
        """),
        outputs=(("r1", 11), ("r2", 15), ("r3", 3), ("r4", 2), ("r5", 4)),
    ),
    TlCase(
        "precedence_mixed",
        _src("""
            output r1, r2, r3, r4, r5, r6, r7, r8, r9, r10;
            r1 = 1 + 2 << 3;
            r2 = 1 << 2 + 3;
            r3 = 5 & 3 == 3;
            r4 = 1 | 2 ^ 3 & 4;
            r5 = -2 * -3;
            r6 = 1 < 2 == 1;
            r7 = 0 || 1 && 0;
            r8 = !0 + 1;
            r9 = ~1 + 2;
            r10 = 7 > 3 > 0;
        """),
        outputs=(("r1", 24), ("r2", 32), ("r3", 1), ("r4", 3), ("r5", 6), ("r6", 1),
                 ("r7", 0), ("r8", 2), ("r9", 0), ("r10", 1)),
    ),
    TlCase(
        "division_truncates_toward_zero",
        _src("""
            input a, b;
            output q1, r1, q2, r2, q3, r3;
            q1 = a / b;
            r1 = a % b;
            q2 = -a / -b;
            r2 = -a % -b;
            q3 = a / -b;
            r3 = a % -b;
        """),
        inputs=(("a", -7), ("b", 2)),
        outputs=(("q1", -3), ("r1", -1), ("q2", -3), ("r2", 1), ("q3", 3), ("r3", -1)),
    ),
    TlCase(
        "division_small_and_extreme",
        _src("""
            input a, m, big;
            output q1, q2, q3, q4, q5, r5, q6;
            q1 = 0 / 5;
            q2 = a / 7;
            q3 = -a / 7;
            q4 = m / 2;
            q5 = m / 3;
            r5 = m % 3;
            q6 = big / 1;
        """),
        inputs=(("a", 5), ("m", INT_MIN), ("big", INT_MAX)),
        outputs=(("q1", 0), ("q2", 0), ("q3", 0), ("q4", -1073741824), ("q5", -715827882),
                 ("r5", -2), ("q6", INT_MAX)),
    ),
    TlCase(
        "int_min_divided_by_minus_one",
        _src("""
            input a, b;
            output q, r, q2;
            q = a / b;
            r = a % b;
            q2 = -2147483648 / -1;
        """),
        inputs=(("a", INT_MIN), ("b", -1)),
        outputs=(("q", INT_MIN), ("r", 0), ("q2", INT_MIN)),
    ),
    TlCase(
        "wrap_add_sub",
        "input a;\noutput r1, r2;\nr1 = a + 1;\nr2 = -a - 2;\n",
        inputs=(("a", INT_MAX),),
        outputs=(("r1", INT_MIN), ("r2", INT_MAX)),
    ),
    TlCase(
        "wrap_mul",
        _src("""
            input a, b;
            output r1, r2, r3, r4, r5;
            r1 = a * a;
            r2 = a * 32768;
            r3 = b * b;
            r4 = -3 * 7;
            r5 = -1 * -1;
        """),
        inputs=(("a", 65536), ("b", 46341)),
        outputs=(("r1", 0), ("r2", INT_MIN), ("r3", -2147479015), ("r4", -21), ("r5", 1)),
    ),
    TlCase(
        "int_min_negation_and_mul",
        "input a;\noutput r1, r2, r3;\nr1 = -a;\nr2 = ~a;\nr3 = a * -1;\n",
        inputs=(("a", INT_MIN),),
        outputs=(("r1", INT_MIN), ("r2", INT_MAX), ("r3", INT_MIN)),
    ),
    TlCase(
        "int_min_literal",
        "output r, s;\nr = -2147483648;\ns = r - 1;\n",
        outputs=(("r", INT_MIN), ("s", INT_MAX)),
    ),
    TlCase(
        "unary_operators",
        _src("""
            output r1, r2, r3, r4, r5, r6, r7;
            r1 = -5;
            r2 = !0;
            r3 = !7;
            r4 = ~0;
            r5 = ~5;
            r6 = - -3;
            r7 = !!9;
        """),
        outputs=(("r1", -5), ("r2", 1), ("r3", 0), ("r4", -1), ("r5", -6), ("r6", 3),
                 ("r7", 1)),
    ),
    TlCase(
        "compound_assignment",
        _src("""
            output x;
            x = 7;
            x += 3;
            x -= 12;
            x *= -6;
            x /= 5;
            x += 9;
            x %= 4;
        """),
        outputs=(("x", 3),),
    ),
    TlCase(
        "factorial_wraps",
        "input n;\noutput f;\nf = 1;\nwhile (n > 1) { f *= n; n -= 1; }\n",
        inputs=(("n", 13),),
        outputs=(("f", 1932053504),),
    ),
    TlCase(
        "factorial_12",
        "input n;\noutput f;\nf = 1;\nwhile (n > 1) { f *= n; n -= 1; }\n",
        inputs=(("n", 12),),
        outputs=(("f", 479001600),),
    ),
    TlCase(
        "division_signs_table",
        _src("""
            input p7, n7, p3, n3, mx, mn;
            output a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14;
            a1 = p7 % p3;
            a2 = n7 % p3;
            a3 = p7 % n3;
            a4 = n7 % n3;
            a5 = mx % 2;
            a6 = mn % 2;
            a7 = mn % mx;
            a8 = mx / mn;
            a9 = mx % mn;
            a10 = mn / mx;
            a11 = p7 / n3;
            a12 = n7 / n3;
            a13 = mn / mn;
            a14 = mn % mn;
        """),
        inputs=(("p7", 7), ("n7", -7), ("p3", 3), ("n3", -3), ("mx", INT_MAX), ("mn", INT_MIN)),
        outputs=(("a1", 1), ("a2", -1), ("a3", 1), ("a4", -1), ("a5", 1), ("a6", 0),
                 ("a7", -1), ("a8", 0), ("a9", INT_MAX), ("a10", -1), ("a11", -2),
                 ("a12", 2), ("a13", 1), ("a14", 0)),
    ),
    TlCase(
        "negation_and_not_of_extremes",
        "input mn, mx;\noutput r1, r2, r3, r4, r5;\nr1 = !mn;\nr2 = ~mx;\nr3 = -mx;\n"
        "r4 = ~-1;\nr5 = -0;\n",
        inputs=(("mn", INT_MIN), ("mx", INT_MAX)),
        outputs=(("r1", 0), ("r2", INT_MIN), ("r3", -INT_MAX), ("r4", 0), ("r5", 0)),
    ),
    # --- comparisons, logic, bits --------------------------------------------------------
    TlCase(
        "comparisons",
        _src("""
            input a, b;
            output lt, le, gt, ge, eq, ne, le2, ge2;
            lt = a < b;
            le = a <= b;
            gt = a > b;
            ge = a >= b;
            eq = a == b;
            ne = a != b;
            le2 = a <= 3;
            ge2 = a >= 3;
        """),
        inputs=(("a", 3), ("b", 5)),
        outputs=(("lt", 1), ("le", 1), ("gt", 0), ("ge", 0), ("eq", 0), ("ne", 1),
                 ("le2", 1), ("ge2", 1)),
    ),
    TlCase(
        "comparisons_at_the_extremes",
        _src("""
            input x, y;
            output lt, gt, le, ge, eq, ne, neg, rev;
            lt = x < y;
            gt = x > y;
            le = x <= y;
            ge = y >= x;
            eq = x == y;
            ne = x != y;
            neg = x < 0;
            rev = y < x;
        """),
        inputs=(("x", INT_MIN), ("y", INT_MAX)),
        outputs=(("lt", 1), ("gt", 0), ("le", 1), ("ge", 1), ("eq", 0), ("ne", 1),
                 ("neg", 1), ("rev", 0)),
    ),
    TlCase(
        "bitwise",
        _src("""
            input a, b, m;
            output and1, or1, xor1, and2, or2, xor2, and3, or3, xor3;
            and1 = a & b;
            or1 = a | b;
            xor1 = a ^ b;
            and2 = -1 & 255;
            or2 = -16 | 3;
            xor2 = 5 ^ -1;
            and3 = m & -1;
            or3 = m | 1;
            xor3 = m ^ -1;
        """),
        inputs=(("a", 12), ("b", 10), ("m", INT_MIN)),
        outputs=(("and1", 8), ("or1", 14), ("xor1", 6), ("and2", 255), ("or2", -13),
                 ("xor2", -6), ("and3", INT_MIN), ("or3", -2147483647), ("xor3", INT_MAX)),
    ),
    TlCase(
        "shifts",
        _src("""
            input one, k0, k1, k31, k32, kneg;
            output s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13;
            s1 = one << k0;
            s2 = one << k31;
            s3 = 3 << k31;
            s4 = -one >> k31;
            s5 = -2147483648 >> k31;
            s6 = 2147483647 >> k31;
            s7 = -8 >> k1;
            s8 = -7 >> k1;
            s9 = 5 >> k0;
            s10 = one << k32;
            s11 = -one >> k32;
            s12 = one << kneg;
            s13 = 64 >> kneg;
        """),
        inputs=(("one", 1), ("k0", 0), ("k1", 1), ("k31", 31), ("k32", 32), ("kneg", -1)),
        outputs=(("s1", 1), ("s2", INT_MIN), ("s3", INT_MIN), ("s4", -1), ("s5", -1),
                 ("s6", 0), ("s7", -4), ("s8", -4), ("s9", 5), ("s10", 0), ("s11", -1),
                 ("s12", 0), ("s13", 0)),
    ),
    TlCase(
        "shifts_of_negative_values",
        _src("""
            input m1, m3, mn, mx, k1, k30, k31;
            output s1, s2, s3, s4, s5, s6, s7;
            s1 = m1 << k31;
            s2 = m3 << k1;
            s3 = mn << k1;
            s4 = m3 >> k1;
            s5 = mn >> k1;
            s6 = mx >> k30;
            s7 = k1 << k30;
        """),
        inputs=(("m1", -1), ("m3", -3), ("mn", INT_MIN), ("mx", INT_MAX), ("k1", 1),
                ("k30", 30), ("k31", 31)),
        outputs=(("s1", INT_MIN), ("s2", -6), ("s3", 0), ("s4", -2), ("s5", -1073741824),
                 ("s6", 1), ("s7", 1073741824)),
    ),
    TlCase(
        "shift_by_constants",
        "output a, b, c;\na = 1 << 10;\nb = -1024 >> 3;\nc = 0x40000000 << 1;\n",
        outputs=(("a", 1024), ("b", -128), ("c", INT_MIN)),
    ),
    TlCase(
        "shift_right_by_constants_at_the_edges",
        _src("""
            input mn, m1, z, p, q, n;
            output a1, a2, a3, a4, a5, a6, b1, b2, b3, b4, b5, c1, c2, c3, c4, c5;
            a1 = mn >> 1; a2 = m1 >> 1; a3 = z >> 1; a4 = p >> 1; a5 = q >> 1; a6 = n >> 1;
            b1 = mn >>> 1; b2 = m1 >>> 1; b3 = z >>> 1; b4 = p >>> 1; b5 = n >>> 1;
            c1 = mn >> 30; c2 = m1 >>> 30; c3 = p >> 30; c4 = n >> 7; c5 = n >>> 7;
        """),
        inputs=(("mn", INT_MIN), ("m1", -1), ("z", 0), ("p", INT_MAX), ("q", 12345),
                ("n", -12345)),
        outputs=(("a1", -1073741824), ("a2", -1), ("a3", 0), ("a4", 1073741823),
                 ("a5", 6172), ("a6", -6173), ("b1", 1073741824), ("b2", INT_MAX), ("b3", 0),
                 ("b4", 1073741823), ("b5", 2147477475), ("c1", -2), ("c2", 3), ("c3", 1),
                 ("c4", -97), ("c5", 33554335)),
    ),
    TlCase(
        "shift_right_by_constants_sixteen_bits",
        _src("""
            input mn, m1, z, p, q, n;
            output a1, a2, a3, a4, a5, a6, b1, b2, b3, b4, b5, c1, c2, c3, c4, c5;
            a1 = mn >> 1; a2 = m1 >> 1; a3 = z >> 1; a4 = p >> 1; a5 = q >> 1; a6 = n >> 1;
            b1 = mn >>> 1; b2 = m1 >>> 1; b3 = z >>> 1; b4 = p >>> 1; b5 = n >>> 1;
            c1 = mn >> 14; c2 = m1 >>> 14; c3 = p >> 14; c4 = n >> 7; c5 = n >>> 7;
        """),
        inputs=(("mn", -32768), ("m1", -1), ("z", 0), ("p", 32767), ("q", 12345),
                ("n", -12345)),
        outputs=(("a1", -16384), ("a2", -1), ("a3", 0), ("a4", 16383), ("a5", 6172),
                 ("a6", -6173), ("b1", 16384), ("b2", 32767), ("b3", 0), ("b4", 16383),
                 ("b5", 26595), ("c1", -2), ("c2", 3), ("c3", 1), ("c4", -97), ("c5", 415)),
        word_bits=16,
    ),
    TlCase(
        "short_circuit",
        _src("""
            input z;
            output calls, r1, r2, r3, r4, r5, r6, r7;
            func bump() { calls += 1; return 1; }
            r1 = 0 && bump();
            r2 = 1 || bump();
            r3 = 1 && bump();
            r4 = 0 || bump();
            r5 = 5 && 7;
            r6 = 0 || 0;
            r7 = z && 10 / z;
        """),
        inputs=(("z", 0),),
        outputs=(("calls", 2), ("r1", 0), ("r2", 1), ("r3", 1), ("r4", 1), ("r5", 1),
                 ("r6", 0), ("r7", 0)),
    ),
    # --- literals and constants ----------------------------------------------------------
    TlCase(
        "literals",
        _src("""
            output r1, r2, r3, r4, r5, r6, r7, r8, r9, r10;
            r1 = 0x7FFFFFFF;
            r2 = 0xFFFFFFFF;
            r3 = 'A';
            r4 = '\\n';
            r5 = '\\0';
            r6 = '\\\\';
            r7 = '\\'';
            r8 = '"';
            r9 = 0x10;
            r10 = 0x80000000;
        """),
        outputs=(("r1", INT_MAX), ("r2", -1), ("r3", 65), ("r4", 10), ("r5", 0), ("r6", 92),
                 ("r7", 39), ("r8", 34), ("r9", 16), ("r10", INT_MIN)),
    ),
    TlCase(
        "constants",
        _src("""
            const N = 4;
            const M = N * N - 1;
            var a[M];
            output r, s;
            a[M - 1] = N;
            r = a[14];
            s = M;
        """),
        outputs=(("r", 4), ("s", 15)),
    ),
    TlCase(
        "constant_expression_array_size",
        "const K = (1 << 3) | 0x2;\nvar b[K];\noutput n;\nb[K - 1] = 7;\nn = K + b[9];\n",
        outputs=(("n", 17),),
    ),
    # --- control flow --------------------------------------------------------------------
    TlCase("classify_negative", _CLASSIFY, inputs=(("x", -5),), outputs=(("s", -1),)),
    TlCase("classify_zero", _CLASSIFY, inputs=(("x", 0),), outputs=(("s", 0),)),
    TlCase("classify_small", _CLASSIFY, inputs=(("x", 7),), outputs=(("s", 1),)),
    TlCase("classify_large", _CLASSIFY, inputs=(("x", 100),), outputs=(("s", 2),)),
    TlCase(
        "if_without_else",
        "input x;\noutput r;\nr = 1;\nif (x > 5) { r = 2; }\nif (x > 50) { r = 3; }\n",
        inputs=(("x", 10),),
        outputs=(("r", 2),),
    ),
    TlCase(
        "while_false_at_start",
        "output x;\nx = 4;\nwhile (x < 0) { x = 100; }\n",
        outputs=(("x", 4),),
    ),
    TlCase(
        "while_break_continue",
        _src("""
            output s, i;
            while (1) {
                i += 1;
                if (i > 7) { break; }
                if (i % 2 == 0) { continue; }
                s += i;
            }
        """),
        outputs=(("s", 16), ("i", 8)),
    ),
    TlCase(
        "for_sum_of_squares",
        "output s;\nfor (var i = 0; i < 5; i += 1) { s += i * i; }\n",
        outputs=(("s", 30),),
    ),
    TlCase(
        "for_empty_header",
        "output n;\nfor (;;) { n += 1; if (n == 4) { break; } }\n",
        outputs=(("n", 4),),
    ),
    TlCase(
        "for_assignment_init",
        "output n, i;\nfor (i = 10; i > 0; i -= 3) { n += 1; }\n",
        outputs=(("n", 4), ("i", -2)),
    ),
    TlCase(
        "nested_loops_break_continue",
        _src("""
            output count, last;
            for (var i = 0; i < 4; i += 1) {
                for (var j = 0; j < 4; j += 1) {
                    if (j == i) { continue; }
                    if (j > i) { break; }
                    count += 1;
                    last = i * 10 + j;
                }
            }
        """),
        outputs=(("count", 6), ("last", 32)),
    ),
    TlCase(
        "while_condition_calls",
        _src("""
            output n;
            var left = 3;
            func more() { left -= 1; return left >= 0; }
            while (more()) { n += 10; }
        """),
        outputs=(("n", 30),),
    ),
    TlCase(
        "collatz",
        _src("""
            input n;
            output steps, peak;
            peak = n;
            while (n != 1) {
                if (n % 2 == 0) { n = n / 2; } else { n = 3 * n + 1; }
                steps += 1;
                if (n > peak) { peak = n; }
            }
        """),
        inputs=(("n", 7),),
        outputs=(("steps", 16), ("peak", 52)),
    ),
    TlCase(
        "halt_stops",
        "output x;\nx = 1;\nhalt;\nx = 2;\n",
        outputs=(("x", 1),),
    ),
    TlCase(
        "halt_in_function_and_loop",
        _src("""
            output x;
            func stop() { while (1) { halt; } }
            x = 1;
            stop();
            x = 2;
        """),
        outputs=(("x", 1),),
    ),
    TlCase(
        "assert_passes",
        "output x;\nassert(1 == 1);\nx = 5;\n",
        outputs=(("x", 5),),
    ),
    # --- scopes --------------------------------------------------------------------------
    TlCase(
        "block_scopes_shadow",
        _src("""
            output r;
            var x = 1;
            { var x = 2; { var x = 3; r = r * 10 + x; } r = r * 10 + x; }
            r = r * 10 + x;
        """),
        outputs=(("r", 321),),
    ),
    TlCase(
        "var_in_loop_is_reset",
        "output r;\nfor (var i = 0; i < 3; i += 1) { var t; t += i + 1; r = r * 10 + t; }\n",
        outputs=(("r", 123),),
    ),
    TlCase(
        "parameter_shadows_global",
        _src("""
            output g, r;
            g = 5;
            func f(g) { g = g + 1; return g; }
            r = f(10);
            { var g = 100; g += 1; }
        """),
        outputs=(("g", 5), ("r", 11)),
    ),
    # --- arrays --------------------------------------------------------------------------
    TlCase(
        "array_computed_indices",
        _src("""
            output s;
            var a[10];
            for (var i = 0; i < 10; i += 1) { a[i] = i * i; }
            for (var i = 0; i < 5; i += 1) { s += a[2 * i + 1]; }
        """),
        outputs=(("s", 165),),
    ),
    TlCase(
        "array_initialiser",
        "var p[5] = {3, 1, 4};\noutput x, y, z;\nx = p[0] + p[1] + p[2];\n"
        "y = p[3] + p[4];\nz = p[4 - 2] * 10;\n",
        outputs=(("x", 8), ("y", 0), ("z", 40)),
    ),
    TlCase(
        "array_compound_assignment",
        _src("""
            var a[3] = {10, 20, 30};
            output x, y, z;
            a[1] += 5;
            a[2] -= 31;
            a[0] *= 3;
            a[1] /= 4;
            a[2] %= 2;
            x = a[0];
            y = a[1];
            z = a[2];
        """),
        outputs=(("x", 30), ("y", 6), ("z", -1)),
    ),
    TlCase(
        "bubble_sort_from_tape",
        _src("""
            const N = 5;
            var a[N];
            for (var i = 0; i < N; i += 1) { a[i] = read(); }
            for (var i = 0; i < N - 1; i += 1) {
                for (var j = 0; j < N - 1 - i; j += 1) {
                    if (a[j] > a[j + 1]) { var t = a[j]; a[j] = a[j + 1]; a[j + 1] = t; }
                }
            }
            for (var i = 0; i < N; i += 1) { write(a[i]); }
        """),
        tape=(5, 3, 9, 1, 7),
        out_tape=(1, 3, 5, 7, 9),
    ),
    TlCase(
        "sieve_of_eratosthenes",
        _src("""
            const N = 30;
            var composite[N + 1];
            output count;
            for (var i = 2; i <= N; i += 1) {
                if (!composite[i]) {
                    count += 1;
                    print(i, " ");
                    for (var j = i * i; j <= N; j += i) { composite[j] = 1; }
                }
            }
        """),
        outputs=(("count", 10),),
        out_tape="2 3 5 7 11 13 17 19 23 29 ",
    ),
    # --- local arrays, array parameters, 2-D arrays, string initialisers ----------------
    TlCase(
        "local_array_in_function",
        _src("""
            output r;
            func sumsq(n) {
                var buf[8];
                for (var i = 0; i < n; i += 1) { buf[i] = i * i; }
                var t = 0;
                for (var i = 0; i < n; i += 1) { t += buf[i]; }
                return t;
            }
            r = sumsq(4) * 100 + sumsq(3);
        """),
        outputs=(("r", 1405),),
    ),
    TlCase(
        "local_array_set_each_time_its_declaration_runs",
        _src("""
            output a, b, s;
            func f(k) {
                var v[4] = {1, 2, 3};
                v[k] += 10;
                return v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3];
            }
            a = f(3);
            b = f(0);
            for (var i = 0; i < 3; i += 1) { var w[2]; w[1] += i + 1; s = s * 10 + w[1]; }
        """),
        outputs=(("a", 1240), ("b", 11230), ("s", 123)),
    ),
    TlCase(
        "local_array_initialisers_are_expressions",
        _src("""
            output r1, r2, r3, r4;
            var g = 3;
            func f(n) {
                var c[4] = {n, n * 2, g + n};
                if (n == 0) { return c[0] + c[1] + c[2] + c[3]; }
                var d[3] = {f(n - 1), c[0], 7};
                return d[0] * 100 + d[1] * 10 + c[2];
            }
            func h(k) { var e[] = {k, k + 1, k / 2}; return e[0] + e[1] * 10 + e[2] * 100; }
            r1 = f(2);
            r2 = h(9);
            { var m[2][2] = {g, g * g, 1}; r3 = m[0][1] + m[1][0] * 10 + m[1][1] * 100; }
            func z(k) { var q[2] = {k, 10 / k}; return q[1]; }
            r4 = z(5);
            r4 = z(0);
        """),
        outputs=(("r1", 31425), ("r2", 509), ("r3", 19), ("r4", 2)),
        status="trap",
        detail="division by zero at line 13",
    ),
    TlCase(
        "local_array_each_activation_its_own",
        _src("""
            output r;
            func f(n) {
                var a[2];
                a[0] = n;
                if (n == 0) { return 0; }
                var below = f(n - 1);
                a[1] = below;
                return a[0] + a[1] * 10;
            }
            r = f(3);
        """),
        outputs=(("r", 123),),
    ),
    TlCase(
        "array_parameter_global_local_and_parameter",
        _src("""
            output r1, r2, r3;
            var xs[5] = {1, 2, 3, 4, 5};
            func sum(a[], n) {
                var t = 0;
                for (var i = 0; i < n; i += 1) { t += a[i]; }
                return t;
            }
            func sum_twice(a[], n) { return sum(a, n) * 2; }
            func local_sum() {
                var ys[3] = {10, 20, 30};
                return sum(ys, 3);
            }
            r1 = sum(xs, 5);
            r2 = local_sum();
            r3 = sum_twice(xs, 3);
        """),
        outputs=(("r1", 15), ("r2", 60), ("r3", 12)),
    ),
    TlCase(
        "array_parameter_writes_reach_the_caller",
        _src("""
            output p, q, r;
            var g[3];
            func fill(a[], n, v) { for (var i = 0; i < n; i += 1) { a[i] = v + i; } }
            func bump(a[], i) { a[i] += 100; a[i] <<= 1; }
            func local() { var l[2]; fill(l, 2, 5); bump(l, 1); return l[0] * 1000 + l[1]; }
            fill(g, 3, 7);
            bump(g, 2);
            p = g[0] * 100 + g[1];
            q = g[2];
            r = local();
        """),
        outputs=(("p", 708), ("q", 218), ("r", 5212)),
    ),
    TlCase(
        "array_parameter_in_recursion",
        _src("""
            output s, first, last;
            var v[6] = {1, 2, 3, 4, 5, 6};
            func rsum(a[], n) { if (n == 0) { return 0; } return a[n - 1] + rsum(a, n - 1); }
            func reverse(a[], lo, hi) {
                if (lo >= hi) { return 0; }
                var t = a[lo];
                a[lo] = a[hi];
                a[hi] = t;
                return reverse(a, lo + 1, hi - 1);
            }
            s = rsum(v, 6);
            reverse(v, 0, 5);
            first = v[0];
            last = v[5];
        """),
        outputs=(("s", 21), ("first", 6), ("last", 1)),
    ),
    TlCase(
        "merge_sort_with_a_local_array_per_activation",
        _src("""
            var data[8] = {5, 2, 7, 1, 8, 3, 6, 4};
            func msort(a[], lo, hi) {
                if (hi - lo < 2) { return 0; }
                var mid = (lo + hi) / 2;
                msort(a, lo, mid);
                msort(a, mid, hi);
                var tmp[8];
                var i = lo, j = mid, k = 0;
                while (i < mid || j < hi) {
                    if (j >= hi || (i < mid && a[i] <= a[j])) {
                        tmp[k] = a[i];
                        i += 1;
                    } else {
                        tmp[k] = a[j];
                        j += 1;
                    }
                    k += 1;
                }
                for (var m = 0; m < k; m += 1) { a[lo + m] = tmp[m]; }
                return 0;
            }
            msort(data, 0, 8);
            for (var i = 0; i < 8; i += 1) { write(data[i]); }
        """),
        out_tape=(1, 2, 3, 4, 5, 6, 7, 8),
    ),
    TlCase(
        "matrix_global_and_local",
        _src("""
            output t, u, d;
            const R = 3;
            const C = 4;
            var m[R][C];
            for (var i = 0; i < R; i += 1) {
                for (var j = 0; j < C; j += 1) { m[i][j] = i * 10 + j; }
            }
            t = m[2][3] + m[1][0] + m[0][2];
            m[1][2] <<= 2;
            u = m[1][2];
            func trace() {
                var id[3][3] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
                id[1][1] *= 10;
                return id[0][0] + id[1][1] + id[2][2];
            }
            d = trace();
        """),
        outputs=(("t", 35), ("u", 48), ("d", 60)),
    ),
    TlCase(
        "matrix_parameters_product",
        _src("""
            var a[2][3] = {1, 2, 3, 4, 5, 6};
            var b[3][2] = {7, 8, 9, 10, 11, 12};
            var c[2][2];
            func mul(x[][3], y[][2], z[][2], n) {
                for (var i = 0; i < n; i += 1) {
                    for (var j = 0; j < 2; j += 1) {
                        var s = 0;
                        for (var k = 0; k < 3; k += 1) { s += x[i][k] * y[k][j]; }
                        z[i][j] = s;
                    }
                }
            }
            mul(a, b, c, 2);
            print(c[0][0], " ", c[0][1], " ", c[1][0], " ", c[1][1]);
        """),
        out_tape="58 64 139 154",
    ),
    TlCase(
        "string_and_brace_initialisers_set_the_length",
        _src("""
            output lz, ln;
            var s[] = "hello";
            var z[] = "ab\\0";
            var n[] = {3, 1, 4, 1, 5};
            func length(a[]) { var k = 0; while (a[k] != 0) { k += 1; } return k; }
            func put(a[], n) { for (var i = 0; i < n; i += 1) { putc(a[i]); } }
            func greet() { var g[] = "hi!"; put(g, 3); }
            put(s, 5);
            putc(' ');
            greet();
            lz = length(z);
            ln = n[2] + n[4] * 10;
        """),
        outputs=(("lz", 2), ("ln", 54)),
        out_tape="hello hi!",
    ),
    TlCase(
        "palindromes_from_the_tape",
        _src("""
            output words, palindromes;
            const MAX = 16;  // longer words are cut into pieces of MAX characters
            var yes[] = " yes\\n";
            var no[] = " no\\n";

            func put(s[], n) {
                for (var i = 0; i < n; i += 1) {
                    putc(s[i]);
                }
            }

            // The next word of the tape into buf; its length, or -1 at the end of the tape.
            func read_word(buf[]) {
                var c = read();
                while (c == ' ') {
                    c = read();
                }
                if (c == -1) {
                    return -1;
                }
                var n = 0;
                while (c != ' ' && c != -1) {
                    buf[n] = c;
                    n += 1;
                    if (n == MAX) {
                        return n;
                    }
                    c = read();
                }
                return n;
            }

            func same_ends(w[], lo, hi) {
                if (lo >= hi) {
                    return 1;
                }
                if (w[lo] != w[hi]) {
                    return 0;
                }
                return same_ends(w, lo + 1, hi - 1);
            }

            func check_next_word() {
                var word[MAX];
                var n = read_word(word);
                if (n < 0) {
                    return 0;
                }
                words += 1;
                put(word, n);
                if (same_ends(word, 0, n - 1)) {
                    palindromes += 1;
                    put(yes, 5);
                } else {
                    put(no, 4);
                }
                return 1;
            }

            while (check_next_word()) { }
        """),
        tape=tuple(map(ord, "level mlpc noon")),
        outputs=(("words", 3), ("palindromes", 2)),
        out_tape="level yes\nmlpc no\nnoon yes\n",
    ),
    # --- functions -----------------------------------------------------------------------
    TlCase(
        "functions_calling_functions",
        _src("""
            output r;
            func sq(x) { return x * x; }
            func sumsq(a, b) { return sq(a) + sq(b); }
            func hyp(a, b, c) { return sumsq(a, b) == sq(c); }
            r = hyp(3, 4, 5) * 100 + hyp(2, 3, 4) * 10 + sumsq(1, 2);
        """),
        outputs=(("r", 105),),
    ),
    TlCase(
        "mutual_recursion_defined_after_use",
        _src("""
            output e, o;
            e = is_even(10);
            o = is_odd(7);
            func is_even(n) { if (n == 0) { return 1; } return is_odd(n - 1); }
            func is_odd(n) { if (n == 0) { return 0; } return is_even(n - 1); }
        """),
        outputs=(("e", 1), ("o", 1)),
    ),
    TlCase(
        "return_defaults_and_call_by_value",
        _src("""
            output r, s;
            func f() { return; }
            func g(x) { x = 5; }
            var v = 3;
            r = f() + g(v) + 7;
            s = v;
        """),
        outputs=(("r", 7), ("s", 3)),
    ),
    TlCase(
        "functions_share_globals",
        _src("""
            output counter, r;
            var step = 2;
            func tick() { counter += step; return counter; }
            var a = tick();
            var b = tick();
            r = a * 10 + b;
        """),
        outputs=(("counter", 4), ("r", 24)),
    ),
    TlCase(
        "locals_survive_recursive_calls",
        _src("""
            output r;
            func f(n) {
                var a = n * 2;
                if (n > 0) { var b = f(n - 1); return a + b; }
                return a;
            }
            r = f(4);
        """),
        outputs=(("r", 20),),
    ),
    TlCase(
        "deep_recursion_sum_200",
        _src("""
            input n;
            output s;
            func sum(k) { if (k == 0) { return 0; } return k + sum(k - 1); }
            s = sum(n);
        """),
        inputs=(("n", 200),),
        outputs=(("s", 20100),),
    ),
    TlCase(
        "fibonacci_recursive",
        _src("""
            output r;
            func fib(n) { if (n < 2) { return n; } return fib(n - 1) + fib(n - 2); }
            r = fib(12);
        """),
        outputs=(("r", 144),),
    ),
    TlCase(
        "ackermann_2_3",
        _src("""
            func ack(m, n) {
                if (m == 0) { return n + 1; }
                if (n == 0) { return ack(m - 1, 1); }
                return ack(m - 1, ack(m, n - 1));
            }
            output r;
            r = ack(2, 3);
        """),
        outputs=(("r", 9),),
    ),
    TlCase(
        "hanoi_moves",
        _src("""
            output moves;
            func hanoi(n, from, to, via) {
                if (n == 0) { return; }
                hanoi(n - 1, from, via, to);
                moves += 1;
                hanoi(n - 1, via, to, from);
            }
            hanoi(5, 1, 3, 2);
        """),
        outputs=(("moves", 31),),
    ),
    TlCase(
        "evaluation_order_left_to_right",
        _src("""
            output r;
            func p(x) { print(x); return x; }
            r = p(1) * 10 + p(2);
            print(",", p(3), "|");
        """),
        outputs=(("r", 12),),
        out_tape="12,33|",
    ),
    TlCase(
        "six_parameters",
        _src("""
            output r;
            func f(a, b, c, d, e, g) { return a - b + c * d - e / g; }
            r = f(10, 3, f(1, 1, 1, 1, 0, 1), 4, 9, 2);
        """),
        outputs=(("r", 7),),
    ),
    TlCase(
        "multiple_declarators",
        "output r;\nvar a = 1, b = a + 1, c = b * 3;\nr = a * 100 + b * 10 + c;\n",
        outputs=(("r", 126),),
    ),
    TlCase(
        "assignment_evaluation_order",
        _src("""
            var a[3];
            var i = 0;
            output x0, x1, x2, d;
            func bump() { i += 1; return 7; }
            func set_a1() { a[1] = 50; return 1; }
            func set_d() { d = 100; return 1; }
            a[i] = bump();
            a[i] += set_a1();
            d += set_d();
            x0 = a[0];
            x1 = a[1];
            x2 = a[2];
        """),
        outputs=(("x0", 7), ("x1", 51), ("x2", 0), ("d", 101)),
    ),
    TlCase(
        "binary_search_recursive",
        _src("""
            var data[8] = {2, 3, 5, 7, 11, 13, 17, 19};
            func find(lo, hi, key) {
                if (lo > hi) { return -1; }
                var mid = (lo + hi) / 2;
                if (data[mid] == key) { return mid; }
                if (data[mid] < key) { return find(mid + 1, hi, key); }
                return find(lo, mid - 1, key);
            }
            output i13, i4, i2, i19;
            i13 = find(0, 7, 13);
            i4 = find(0, 7, 4);
            i2 = find(0, 7, 2);
            i19 = find(0, 7, 19);
        """),
        outputs=(("i13", 5), ("i4", -1), ("i2", 0), ("i19", 7)),
    ),
    TlCase(
        "print_in_recursion",
        _src("""
            func count(n) {
                if (n == 0) { return 0; }
                print(n, " ");
                count(n - 1);
                print(n, ";");
                return 0;
            }
            count(3);
        """),
        out_tape="3 2 1 1;2;3;",
    ),
    TlCase(
        "for_with_call_step",
        _src("""
            output s;
            var k;
            func next() { k += 1; return k; }
            for (k = 0; k < 5; next()) { s += k; }
        """),
        outputs=(("s", 10),),
    ),
    TlCase(
        "else_if_and_continue_in_for",
        _src("""
            output a, b, c;
            for (var i = 0; i < 10; i += 1) {
                if (i % 3 == 0) { a += 1; continue; }
                else if (i % 3 == 1) { b += i; }
                else { c += i; continue; }
                b += 100;
            }
        """),
        outputs=(("a", 4), ("b", 312), ("c", 15)),
    ),
    # --- input and output ----------------------------------------------------------------
    TlCase(
        "read_sum_until_end",
        _src("""
            output s, n;
            var x = read();
            while (x != -1) { s += x; n += 1; x = read(); }
        """),
        tape=(5, 10, 20),
        outputs=(("s", 35), ("n", 3)),
    ),
    TlCase(
        "read_at_end_of_tape",
        "output a, b;\na = read();\nb = read();\n",
        tape=(7,),
        outputs=(("a", 7), ("b", -1)),
    ),
    TlCase(
        "read_empty_tape",
        "output a;\na = read();\n",
        outputs=(("a", -1),),
    ),
    TlCase(
        "read_as_statement_skips",
        "read();\noutput x;\nx = read();\n",
        tape=(1, 2, 3),
        outputs=(("x", 2),),
    ),
    TlCase(
        "write_words",
        "write(65);\nwrite(-1);\nwrite(2147483647);\nwrite(-2147483648);\n",
        out_tape=(65, -1, INT_MAX, INT_MIN),
    ),
    TlCase(
        "write_text",
        "write('O');\nwrite('K');\nwrite(10);\n",
        out_tape="OK\n",
    ),
    TlCase(
        "print_string_and_int",
        'print("x = ", 42, "\\n");\n',
        out_tape="x = 42\n",
    ),
    TlCase(
        "print_negative_and_extremes",
        'input a;\nprint(a, " ", -17, " ", 0, " ", 2147483647, " ", 1 + 2 * 3);\n',
        inputs=(("a", INT_MIN),),
        out_tape="-2147483648 -17 0 2147483647 7",
    ),
    TlCase(
        "print_escapes",
        'print("a\\tb\\\\c\\"d\'\\n");\n',
        out_tape="a\tb\\c\"d'\n",
    ),
    TlCase(
        "print_empty",
        'print();\nprint("");\nprint("ok");\n',
        out_tape="ok",
    ),
    TlCase(
        "uppercase_echo",
        "var c = read();\nwhile (c != -1) { write(c - 32); c = read(); }\n",
        tape=(104, 105),
        out_tape="HI",
    ),
    TlCase(
        "reverse_tape",
        _src("""
            var buf[16];
            output n;
            var c = read();
            while (c != -1) { buf[n] = c; n += 1; c = read(); }
            var i = n - 1;
            while (i >= 0) { write(buf[i]); i -= 1; }
        """),
        tape=(97, 98, 99),
        outputs=(("n", 3),),
        out_tape="cba",
    ),
    TlCase(
        "read_extreme_words",
        _src("""
            output s;
            var x = read();
            while (x != -1) { s += x; write(x); x = read(); }
        """),
        tape=(-5, INT_MAX, INT_MIN),
        outputs=(("s", -6),),
        out_tape=(-5, INT_MAX, INT_MIN),
    ),
    # --- eof(): the tape's end, so that -1 can travel on it ------------------------------
    TlCase(
        "eof_empty_tape",
        "output e, x, f;\ne = eof();\nx = read();\nf = eof();\n",
        outputs=(("e", 1), ("x", -1), ("f", 1)),
    ),
    TlCase(
        "eof_tape_of_minus_ones",
        _src("""
            output n, s;
            while (!eof()) { var x = read(); n += 1; s += x; write(x); }
        """),
        tape=(-1, -1, -1),
        outputs=(("n", 3), ("s", -3)),
        out_tape=(-1, -1, -1),
    ),
    TlCase(
        "eof_before_and_after_each_read",
        _src("""
            write(eof());
            write(read());
            write(eof());
            write(read());
            write(eof());
        """),
        tape=(-1, 0),
        out_tape=(0, -1, 0, 0, 1),
    ),
    TlCase(
        "eof_reading_past_the_end",
        _src("""
            output e;
            for (var i = 0; i < 4; i += 1) { write(read()); write(eof()); }
            e = eof() + eof();
        """),
        tape=(9, -1),
        outputs=(("e", 2),),
        out_tape=(9, 0, -1, 1, -1, 1, -1, 1),
    ),
    TlCase(
        "eof_in_functions_and_recursion",
        _src("""
            output total, count;
            func more() { return eof() == 0; }
            func sum() {
                if (eof()) { return 0; }
                var x = read();
                count += 1;
                return x + sum();
            }
            if (more() && !eof()) { total = sum(); }
            write(more() ? 1 : eof() * 2);
        """),
        tape=(-1, 5, INT_MIN, -1),
        outputs=(("total", INT_MIN + 3), ("count", 4)),
        out_tape=(2,),
    ),
    TlCase(
        "eof_as_a_value_and_a_statement",
        _src("""
            output a, b, c;
            eof();
            a = eof() + read() * 10;
            b = (eof() ? 100 : 200) + read();
            c = eof() << 3 | eof();
        """),
        tape=(4, -1),
        outputs=(("a", 40), ("b", 199), ("c", 9)),
    ),
    TlCase(
        "eof_sixteen_bits",
        _src("""
            output n, s;
            while (!eof()) { s += read(); n += 1; }
            write(read());
        """),
        tape=(-1, -32768, 32767, -1),
        outputs=(("n", 4), ("s", -3)),
        out_tape=(-1,),
        word_bits=16,
    ),
    TlCase(
        "division_in_loop_condition",
        "input d;\noutput n;\nwhile (100 / d > 0) {\n  n += 1;\n  d = d * 10;\n}\n",
        inputs=(("d", 7),),
        outputs=(("n", 2),),
    ),
    # --- traps, faults, limits -----------------------------------------------------------
    TlCase(
        "trap_division_in_loop_condition",
        "input d;\noutput n;\nwhile (100 / d > 0) {\n  n += 1;\n  d = d * 10;\n}\n",
        inputs=(("d", 0),),
        outputs=(("n", 0),),
        status="trap",
        detail="division by zero at line 3",
    ),
    TlCase(
        "trap_index_in_call_argument",
        _src("""
            var a[2];
            output r;
            func id(x) { return x; }
            r = 5;
            r = id(a[id(2)]);
        """),
        outputs=(("r", 5),),
        status="trap",
        detail="index out of range at line 5",
    ),
    TlCase(
        "trap_keeps_the_output_so_far",
        'print("before ");\nwrite(33);\nassert(0);\nprint("after");\n',
        out_tape="before !",
        status="trap",
        detail="assertion failed at line 3",
    ),
    TlCase(
        "trap_assert",
        "output x;\nx = 1;\nassert(x == 2);\nx = 3;\n",
        outputs=(("x", 1),),
        status="trap",
        detail="assertion failed at line 3",
    ),
    TlCase(
        "trap_assert_in_function",
        _src("""
            output x;
            func check(v) {
                x = v;
                assert(v < 3);
            }
            check(1);
            check(5);
        """),
        outputs=(("x", 5),),
        status="trap",
        detail="assertion failed at line 4",
    ),
    TlCase(
        "trap_division_by_zero_operator_line",
        "input d;\noutput q;\nq = 10;\nq = 100 /\n  d;\n",
        inputs=(("d", 0),),
        outputs=(("q", 10),),
        status="trap",
        detail="division by zero at line 4",
    ),
    TlCase(
        "trap_modulo_by_zero_in_function",
        _src("""
            output r;
            func m(a, b) {
                return a % b;
            }
            r = m(7, 0);
        """),
        outputs=(("r", 0),),
        status="trap",
        detail="division by zero at line 3",
    ),
    TlCase(
        "trap_compound_division",
        "output x;\nx = 5;\nx /= 0;\n",
        outputs=(("x", 5),),
        status="trap",
        detail="division by zero at line 3",
    ),
    TlCase(
        "trap_index_past_end",
        "var a[4];\noutput r;\nr = 7;\na[4] = 1;\n",
        outputs=(("r", 7),),
        status="trap",
        detail="index out of range at line 4",
    ),
    TlCase(
        "trap_index_negative_read",
        "var a[4];\noutput r;\nr = 7;\nr = a[0 - 1];\n",
        outputs=(("r", 7),),
        status="trap",
        detail="index out of range at line 4",
    ),
    TlCase(
        "trap_index_in_loop",
        _src("""
            var a[3];
            output n;
            for (var i = 0; i < 10; i += 1) {
                a[i] = i;
                n += 1;
            }
        """),
        outputs=(("n", 3),),
        status="trap",
        detail="index out of range at line 4",
    ),
    TlCase(
        "trap_stack_overflow",
        _src("""
            output r;
            func down(n) {
                return down(n + 1);
            }
            r = down(0);
        """),
        outputs=(("r", 0),),
        status="trap",
        detail="stack overflow at line 3",
    ),
    TlCase(
        "trap_index_through_a_parameter",
        _src("""
            var s[] = "abc";
            output k;
            func length(a[]) {
                var n = 0;
                while (a[n] != 0) { n += 1; k = n; }
                return n;
            }
            k = length(s);
        """),
        outputs=(("k", 3),),
        status="trap",
        detail="index out of range at line 5",
    ),
    TlCase(
        "trap_index_in_a_matrix_column",
        _src("""
            var g[2][3];
            output n;
            for (var j = 0; j < 5; j += 1) {
                g[1][j] = j;
                n += 1;
            }
        """),
        outputs=(("n", 3),),
        status="trap",
        detail="index out of range at line 4",
    ),
    TlCase(
        "trap_index_in_a_matrix_row_through_a_parameter",
        _src("""
            output n;
            func rows(g[][2]) {
                for (var i = 0; i < 10; i += 1) {
                    g[i][0] = i;
                    n += 1;
                }
                return 0;
            }
            var m[3][2];
            rows(m);
        """),
        outputs=(("n", 3),),
        status="trap",
        detail="index out of range at line 4",
    ),
    TlCase(
        "trap_index_in_a_local_array",
        _src("""
            output n;
            func f() {
                var buf[4];
                for (var i = 0; i < 9; i += 1) {
                    buf[i] = i;
                    n += 1;
                }
                return 0;
            }
            f();
        """),
        outputs=(("n", 4),),
        status="trap",
        detail="index out of range at line 5",
    ),
    TlCase(
        "trap_index_in_a_local_array_on_the_stack",
        _src("""
            output n;
            func g(k) {
                var b[2];
                n += 1;
                if (k > 0) { return g(k - 1); }
                return b[k - 1];
            }
            n = g(3);
        """),
        outputs=(("n", 4),),
        status="trap",
        detail="index out of range at line 6",
    ),
    TlCase(
        "trap_stack_overflow_with_a_local_array",
        _src("""
            output r;
            func down(n) {
                var pad[5];
                pad[0] = n;
                return down(n + 1) + pad[0];
            }
            r = down(0);
        """),
        outputs=(("r", 0),),
        status="trap",
        detail="stack overflow at line 5",
    ),
    TlCase(
        "fault_output_tape_full_write",
        "write(1);\nwrite(2);\nwrite(3);\nwrite(4);\n",
        out_tape=(1, 2, 3),
        status="fault",
        detail="output tape full",
        tape_out=3,
    ),
    TlCase(
        "fault_output_tape_full_print",
        'output x;\nx = 1;\nprint("hello");\nx = 2;\n',
        outputs=(("x", 1),),
        out_tape="hel",
        status="fault",
        detail="output tape full",
        tape_out=3,
    ),
    TlCase(
        "step_limit_infinite_loop",
        "while (1) { }\n",
        status="step-limit",
        max_steps=1000,
    ),
    # --- compound assignments, ?:, >>>, unsigned built-ins, putc ------------------------
    TlCase(
        "compound_assignment_every_operator",
        _src("""
            input a;
            output r1, r2, r3, r4, r5, r6, r7, r8, r9, n;
            var t[3] = {1, 2, 3};
            var x = a;
            x *= 3; r1 = x;
            x /= 7; r2 = x;
            x %= 5; r3 = x;
            x = 0x5A; x &= 0x0F; r4 = x;
            x |= 0x30; r5 = x;
            x ^= 0xFF; r6 = x;
            x <<= 4; r7 = x;
            x >>= 2; r8 = x;
            x = -16; x >>>= 2; r9 = x;
            t[a - 99] <<= 3;
            t[a - 98] >>>= 1;
            t[0] ^= t[1] | t[2];
            write(t[0]); write(t[1]); write(t[2]);
            for (var i = 1; i < 256; i <<= 1) { n += 1; }
        """),
        inputs=(("a", 100),),
        outputs=(("r1", 300), ("r2", 42), ("r3", 2), ("r4", 10), ("r5", 58), ("r6", 197),
                 ("r7", 3152), ("r8", 788), ("r9", 1073741820), ("n", 8)),
        out_tape=(16, 16, 1),
    ),
    TlCase(
        "conditional_precedence_and_associativity",
        _src("""
            input a, b;
            output r1, r2, r3, r4, r5, r6, r7;
            r1 = a ? 2 : 3 + 4;
            r2 = b ? 2 : 3 + 4;
            r3 = b ? 1 : a ? 2 : 3;
            r4 = a ? b ? 1 : 2 : 3;
            r5 = b || a ? 10 : 20;
            r6 = (a ? 5 : 6) * 2;
            r7 = 1 ? 8 : 9;
            if (b ? 0 : a) { write(1); }
            while (a < 4 ? 1 : 0) { a += 1; }
            write(a);
        """),
        inputs=(("a", 1), ("b", 0)),
        outputs=(("r1", 2), ("r2", 7), ("r3", 2), ("r4", 2), ("r5", 10), ("r6", 10),
                 ("r7", 8)),
        out_tape=(1, 4),
    ),
    TlCase(
        "conditional_evaluates_only_the_chosen_side",
        _src("""
            input a, b;
            output r1, r2, r3;
            func say(k) { write(k); return k; }
            r1 = b == 0 ? 0 : a / b;
            r2 = a > 0 ? say(1) : say(2);
            r3 = a < 0 ? read() : say(3) + read();
        """),
        inputs=(("a", 7), ("b", 0)),
        tape=(40, 50),
        outputs=(("r1", 0), ("r2", 1), ("r3", 43)),
        out_tape=(1, 3),
    ),
    TlCase(
        "logical_shift_right",
        _src("""
            input x, k, m;
            output r1, r2, r3, r4, r5, r6, r7, r8;
            r1 = x >>> k;
            r2 = m >>> 28;
            r3 = x >>> 0;
            r4 = x >>> 32;
            r5 = x >>> -1;
            r6 = (-2147483647 - 1) >>> 31;
            r7 = 1 << 4 >>> 2;
            r8 = m >>> 1 + 1;
            var c = 0;
            while (x != 0) { c += x & 1; x >>>= 1; }
            write(c);
        """),
        inputs=(("x", -8), ("k", 1), ("m", -1)),
        outputs=(("r1", 2147483644), ("r2", 15), ("r3", -8), ("r4", 0), ("r5", 0), ("r6", 1),
                 ("r7", 4), ("r8", 1073741823)),
        out_tape=(29,),
    ),
    TlCase(
        "unsigned_comparisons_and_division",
        _src("""
            input m1, one, lo, hi;
            output r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12;
            r1 = ult(m1, one);
            r2 = ult(one, m1);
            r3 = ule(one, one);
            r4 = ule(lo, hi);
            r5 = udiv(m1, 10);
            r6 = umod(m1, 10);
            r7 = udiv(-2, m1);
            r8 = umod(m1 - 1, m1);
            r9 = udiv(m1, -2);
            r10 = umod(m1, m1 - 1);
            r11 = udiv(lo, 2);
            r12 = umod(-123456789, 1000) + udiv(-123456789, 1000);
            if (ult(lo, hi)) { write(1); } else { write(0); }
            if (!ule(m1, hi)) { write(2); }
        """),
        inputs=(("m1", -1), ("one", 1), ("lo", INT_MIN), ("hi", INT_MAX)),
        outputs=(("r1", 0), ("r2", 1), ("r3", 1), ("r4", 0), ("r5", 429496729), ("r6", 5),
                 ("r7", 0), ("r8", -2), ("r9", 1), ("r10", 1), ("r11", 1073741824),
                 ("r12", 4171510 + 507)),
        out_tape=(0, 2),
    ),
    TlCase(
        "udiv_by_zero_traps_at_the_name",
        _src("""
            input a, b;
            output r;
            r = a +
                udiv(a, b);
            r = 5;
        """),
        inputs=(("a", 9), ("b", 0)),
        outputs=(("r", 0),),
        status="trap",
        detail="division by zero at line 4",
    ),
    TlCase(
        "umod_by_constant_zero_traps",
        _src("""
            output r;
            r = 1;
            umod(r, 0);
            r = 2;
        """),
        outputs=(("r", 1),),
        status="trap",
        detail="division by zero at line 3",
    ),
    TlCase(
        "output_keeps_its_value_when_the_right_operand_traps",
        _src("""
            input a, b;
            output r, s;
            s = 3;
            s = a - udiv(a, 1) + s;
            r = a + a / b;
        """),
        inputs=(("a", 9), ("b", 0)),
        outputs=(("r", 0), ("s", 3)),
        status="trap",
        detail="division by zero at line 5",
    ),
    TlCase(
        "long_flat_expressions",
        "input a, b;\noutput x, y, z, v;\n"
        + "x = " + " + ".join(["1"] * 5000) + ";\n"
        + "y = a" + "".join(" + b" if k % 2 else " - a" for k in range(1, 300)) + ";\n"
        + "z = a" + " && b" * 99 + ";\n"
        + "if (0" + " || 0" * 98 + " || b) { v = 2; }\n",
        inputs=(("a", 3), ("b", 7)),
        outputs=(("x", 5000), ("y", 606), ("z", 1), ("v", 2)),
    ),
    TlCase(
        "putc_prints_one_character",
        _src("""
            input k;
            putc(72);
            putc('a' + k);
            for (var i = 0; i < 2; putc('!')) { i += 1; }
            putc('\\n');
        """),
        inputs=(("k", 8),),
        out_tape="Hi!!\n",
    ),
    # --- 16-bit words --------------------------------------------------------------------
    TlCase(
        "w16_wrap",
        _src("""
            input a;
            output r1, r2, r3, r4, r5;
            r1 = a + 1;
            r2 = 300 * 300;
            r3 = -32768 / -1;
            r4 = 0xFFFF;
            r5 = -32768 % 7;
        """),
        inputs=(("a", 32767),),
        outputs=(("r1", -32768), ("r2", 24464), ("r3", -32768), ("r4", -1), ("r5", -1)),
        word_bits=16,
    ),
    TlCase(
        "w16_shifts",
        _src("""
            input k15, k16;
            output s1, s2, s3, s4;
            s1 = 1 << k15;
            s2 = -32768 >> k15;
            s3 = 1 << k16;
            s4 = 16384 >> k15;
        """),
        inputs=(("k15", 15), ("k16", 16)),
        outputs=(("s1", -32768), ("s2", -1), ("s3", 0), ("s4", 0)),
        word_bits=16,
    ),
    TlCase(
        "w16_mixed",
        _src("""
            input a, b, k;
            output r1, r2, r3, r4, r5, r6;
            func fib(n) { if (n < 2) { return n; } return fib(n - 1) + fib(n - 2); }
            r1 = a * b;
            r2 = r1 / 7;
            r3 = r1 % 7;
            r4 = fib(10);
            r5 = -32768 >> k;
            r6 = 0x7FFF + 1;
        """),
        inputs=(("a", 1000), ("b", 100), ("k", 3)),
        outputs=(("r1", -31072), ("r2", -4438), ("r3", -6), ("r4", 55), ("r5", -4096),
                 ("r6", -32768)),
        word_bits=16,
    ),
    TlCase(
        "w16_unsigned",
        _src("""
            input m1, lo, hi;
            output r1, r2, r3, r4, r5;
            r1 = m1 >>> 12;
            r2 = udiv(m1, 3);
            r3 = umod(m1, 7);
            r4 = ult(lo, hi);
            r5 = lo >>> 15;
        """),
        inputs=(("m1", -1), ("lo", -32768), ("hi", 32767)),
        outputs=(("r1", 15), ("r2", 21845), ("r3", 1), ("r4", 0), ("r5", 1)),
        word_bits=16,
    ),
    TlCase(
        "w16_print_int_min",
        'input a;\nprint(a, ",", a - 1);\n',
        inputs=(("a", -32768),),
        out_tape="-32768,32767",
        word_bits=16,
    ),
)

CASES_BY_NAME = {case.name: case for case in CASES}
assert len(CASES_BY_NAME) == len(CASES), "case names must be unique"


# --- random programs for differential testing --------------------------------------------
#
# The table above has exact expected values; random programs have none, only the rule that
# every engine must agree with the source interpreter on them. `random_program(seed)` makes
# a valid program that always terminates (loops are counted `for`/`while` loops with small
# bounds, functions only call functions defined before them, and the one recursive function
# `rec` is at most 8 deep) and that uses every construct: constants,
# scalars, arrays (indices masked into range, now and then not, to trap), functions with
# locals, nested blocks, if/else, break/continue, every operator with operands near the
# extremes, read/write/print, assert. About a third of the runs trap.

_BINARY_OPS = ("+", "-", "*", "/", "%", "<<", ">>", "<", "<=", ">", ">=", "==", "!=", "&",
               "^", "|", "&&", "||")
_UNARY_OPS = ("-", "!", "~")
_COMPOUND_OPS = ("=", "=", "=", "+=", "-=", "*=", "/=", "%=")


@dataclass(frozen=True)
class RandomProgram:
    seed: int
    source: str
    inputs: tuple[tuple[str, int], ...]
    tape: tuple[int, ...]
    word_bits: int


class _Generator:
    """Builds one random program; `scalars` lists the readable names in scope and
    `assignable` the ones a statement may assign (loop counters are read-only)."""

    def __init__(self, seed: int, word_bits: int) -> None:
        import random

        self.rng = random.Random(seed)
        self.word_bits = word_bits
        self.lines: list[str] = []
        self.array_size = self.rng.choice((1, 2, 4, 8))
        self.functions: list[tuple[str, int]] = []  # callable so far: name, arity
        self.fresh = 0

    def literal(self) -> str:
        top = (1 << (self.word_bits - 1)) - 1
        value = self.rng.choice((0, 1, 2, 3, 7, 10, 31, 32, 100, top, -top, -1, -2,
                                 self.word_bits - 1, self.word_bits))
        if self.rng.random() < 0.1:
            return f"-{top + 1}"  # INT_MIN as a negated literal
        return str(value) if value >= 0 else f"({value})"

    def expr(self, scalars: list[str], depth: int) -> str:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.25:
            choice = rng.random()
            if choice < 0.45 and scalars:
                return rng.choice(scalars)
            if choice < 0.55:
                return f"arr[{self.index(scalars, depth)}]"
            if choice < 0.6:
                return "read()"
            return self.literal()
        choice = rng.random()
        if choice < 0.6:
            op = rng.choice(_BINARY_OPS)
            right = self.expr(scalars, depth - 1)
            if op in ("/", "%") and rng.random() < 0.85:
                right = f"({right} | 1)"  # mostly not zero, so runs go on past it
            return f"({self.expr(scalars, depth - 1)} {op} {right})"
        if choice < 0.8:
            return f"{rng.choice(_UNARY_OPS)}{self.expr(scalars, depth - 1)}"
        if self.functions:
            return self.call(scalars, depth - 1)
        return self.expr(scalars, depth - 1)

    def call(self, scalars: list[str], depth: int) -> str:
        name, arity = self.rng.choice(self.functions)
        args = [self.expr(scalars, depth) for _ in range(arity)]
        if name == "rec":  # its first argument is its recursion depth: keep it small
            args[0] = f"({args[0]}) & 7"
        return f"{name}({', '.join(args)})"

    def index(self, scalars: list[str], depth: int) -> str:
        inner = self.expr(scalars, min(depth - 1, 1))
        if self.rng.random() < 0.96:
            return f"({inner}) & {self.array_size - 1}"
        return inner  # may be out of range: an index trap

    def block(self, scalars: list[str], assignable: list[str], depth: int, indent: str,
              in_loop: bool, in_function: bool) -> None:
        scalars, assignable = list(scalars), list(assignable)
        for _ in range(self.rng.randint(2, 5)):
            self.statement(scalars, assignable, depth, indent, in_loop, in_function)

    def statement(self, scalars: list[str], assignable: list[str], depth: int, indent: str,
                  in_loop: bool, in_function: bool) -> None:
        rng, out = self.rng, self.lines.append
        kind = rng.random()
        e = self.expr(scalars, 2)
        op = rng.choice(_COMPOUND_OPS)
        if op in ("/=", "%=") and rng.random() < 0.85:
            e = f"({e} | 1)"
        if kind < 0.25 and assignable:
            out(f"{indent}{rng.choice(assignable)} {op} {e};")
        elif kind < 0.35:
            out(f"{indent}arr[{self.index(scalars, 2)}] {op} {e};")
        elif kind < 0.42:
            self.fresh += 1
            name = f"v{self.fresh}"
            out(f"{indent}var {name} = {e};")
            scalars.append(name)
            assignable.append(name)
        elif kind < 0.52 and depth > 0:
            out(f"{indent}if ({e}) {{")
            self.block(scalars, assignable, depth - 1, indent + "    ", in_loop, in_function)
            if rng.random() < 0.5:
                out(f"{indent}}} else {{")
                self.block(scalars, assignable, depth - 1, indent + "    ", in_loop,
                           in_function)
            out(f"{indent}}}")
        elif kind < 0.62 and depth > 0:
            self.fresh += 1
            counter = f"i{self.fresh}"
            if rng.random() < 0.3:
                out(f"{indent}var {counter} = {rng.randint(0, 3)};")
                out(f"{indent}while ({counter} > 0) {{")
                out(f"{indent}    {counter} -= 1;")
            else:
                out(f"{indent}for (var {counter} = 0; {counter} < {rng.randint(0, 3)}; "
                    f"{counter} += 1) {{")
            self.block(scalars + [counter], assignable, depth - 1, indent + "    ", True,
                       in_function)
            out(f"{indent}}}")
        elif kind < 0.67 and in_loop:
            out(f"{indent}if ({e}) {{ {rng.choice(('break', 'continue'))}; }}")
        elif kind < 0.72 and in_function:
            out(f"{indent}if ({e}) {{ return {self.expr(scalars, 1)}; }}")
        elif kind < 0.8:
            out(f"{indent}print(\"[\", {e}, \"]\");")
        elif kind < 0.86:
            out(f"{indent}write({e});")
        elif kind < 0.9:
            out(f"{indent}assert({e} | {rng.choice(('1', '0', '1', '1'))});")
        elif kind < 0.95 and self.functions:
            out(f"{indent}{self.call(scalars, 1)};")
        elif assignable:
            out(f"{indent}{rng.choice(assignable)} = read();")

    def program(self) -> str:
        rng, out = self.rng, self.lines.append
        out("input x0, x1;")
        out("output o0, o1, o2;")
        values = ", ".join(self.literal() for _ in range(rng.randint(0, self.array_size)))
        out(f"var arr[{self.array_size}] = {{{values}}};")
        out("var g = 5;")
        out(f"const K = {self.literal()} + {self.literal()};")
        global_scalars = ["x0", "x1", "o0", "o1", "o2", "g"]
        readable = global_scalars + ["K"]
        for number in range(rng.randint(0, 3)):
            params = [f"p{k}" for k in range(rng.randint(0, 3))]
            out(f"func f{number}({', '.join(params)}) {{")
            self.block(readable + params, global_scalars + params, 2, "    ",
                       in_loop=False, in_function=True)
            out(f"    return {self.expr(readable + params, 2)};")
            out("}")
            self.functions.append((f"f{number}", len(params)))
        if rng.random() < 0.5:  # recursion, at most 8 deep: rec((e) & 7, e)
            out("func rec(n, a) {")
            out(f"    if (n <= 0) {{ return a + {self.expr(readable, 1)}; }}")
            self.block(readable + ["n", "a"], global_scalars + ["a"], 1, "    ",
                       in_loop=False, in_function=True)
            out(f"    return rec(n - 1, {self.expr(readable + ['n', 'a'], 2)})"
                f" + {self.expr(readable + ['n', 'a'], 1)};")
            out("}")
            self.functions.append(("rec", 2))
        self.block(readable, global_scalars, 3, "", in_loop=False, in_function=False)
        for name in ("o0", "o1", "o2"):
            out(f"{name} = {name} + {self.expr(readable, 2)};")
        return "\n".join(self.lines) + "\n"


def random_program(seed: int, word_bits: int = 32) -> RandomProgram:
    """A random valid, terminating program with inputs and a tape, reproducible by seed."""
    generator = _Generator(seed, word_bits)
    source = generator.program()
    top = (1 << (word_bits - 1)) - 1
    pick = generator.rng.choice
    inputs = (("x0", pick((0, 1, -1, 6, top, -top - 1))), ("x1", pick((0, 2, -3, 31, top))))
    tape = tuple(pick((0, 1, -2, 5, top, -top - 1)) for _ in range(generator.rng.randint(0, 4)))
    return RandomProgram(seed, source, inputs, tape, word_bits)
