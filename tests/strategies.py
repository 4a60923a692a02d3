"""Hypothesis strategies for random well-formed `.tl` programs (differential testing).

`tl_programs(profile)` draws a `GeneratedProgram`: source text, named inputs, an input tape
and the word size. It extends the seeded generator of `tl_cases.random_program` (same
shape: globals, an array, earlier-defined helper functions, one bounded recursive function,
counted loops) to a generator hypothesis drives and shrinks, with more constructs:

- every unary and binary operator (`>>>` too), `c ? x : y`, the built-ins `ult`, `ule`,
  `udiv`, `umod` (dividing by zero now and then) and `putc`, every compound assignment,
  operands mostly at the W-bit edges (0, +-1, INT_MAX, INT_MIN, 2^(W-2), W, W-1),
  hexadecimal and character literals, constant expressions;
- `if`/`else if`/`else`, `while`, `for` (declaring, assigning and empty initialisers),
  `while (1)` with `break`, `continue`, nested blocks, `halt;`, `assert` (sometimes
  failing), expression statements, `return` from inside loops;
- a global array whose size is a `const` expression, a second initialised array, indices
  that are in range (loop counters, comparisons, constants, masks) and, now and then, out
  of range (an index trap);
- local arrays: in blocks of the top-level code, in helper functions (at fixed addresses)
  and in the recursive function (on the stack, one per activation), some initialised from
  a brace list or a string; helper functions that take an array parameter (`a[]`), called
  with a global, local or parameter array (of 4 words, or `pre` of 3: its index checks
  then use the shorter length), and a two-dimensional global `mat[2][N]`;
- helper functions with parameters and locals calling earlier helpers, a recursive
  function of bounded depth, and (rarely) a function that recurses without end (a stack
  overflow trap: it has no side effects, so every engine stops in the same state no matter
  how deep its stack is);
- `read()` (also past the end of the tape), `eof()` as a value and in
  `while (!eof()) { x = read(); ... }` loops that drain the tape (-1 words included),
  `write(e)`, `print` of strings with escapes and of integers, `x = read();`; division by
  zero (a trap) now and then;
- now and then an operator on a line of its own, so the line a trap reports is the
  operator's, not the statement's.

Every program terminates: loop counters are never assigned in their bodies and loops run at
most `loop_max` times; recursion depth is bounded by a comparison sum.

Profiles keep the cost in check: `SMALL` programs stay within a few thousand SUBLEQ steps and
about a thousand words (the network engines run ~1 ms per step at that size), `LARGE` ones are
for the fast engines only. A running cost estimate stops the generator choosing expensive
operators (`* / % >> & | ^` and `print` of integers cost O(W) steps) once the budget is
spent. Drawing is shrink-friendly: every choice shrinks towards the simpler alternative.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st
from tl_cases import _BINARY_OPS, _UNARY_OPS, RandomProgram

BINARY_OPS = (*_BINARY_OPS, ">>>")
CHEAP_BINARY = ("+", "-", "<", "<=", ">", ">=", "==", "!=", "&&", "||", "<<")
COSTLY_BINARY = tuple(op for op in BINARY_OPS if op not in CHEAP_BINARY)
COMPOUND = ("=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", ">>>=")
CHEAP_COMPOUND = ("=", "+=", "-=")
# Rough SUBLEQ steps of one costly operation at W = 32 (half that at W = 16).
COSTLY_STEPS = 500


@dataclass(frozen=True)
class Profile:
    name: str
    functions: int  # at most this many helper functions
    block: int  # at most this many statements per block
    depth: int  # nesting of control flow in the main program
    expr_depth: int
    loop_max: int  # a loop runs at most this many times
    rec_max: int  # the bounded recursive function goes at most this deep
    budget: int  # estimated SUBLEQ steps the costly operators may use


SMALL = Profile("small", functions=2, block=3, depth=2, expr_depth=2, loop_max=3, rec_max=2,
                budget=1800)
LARGE = Profile("large", functions=3, block=5, depth=3, expr_depth=3, loop_max=4, rec_max=6,
                budget=60_000)


@dataclass(frozen=True)
class GeneratedProgram(RandomProgram):
    """A `tl_cases.RandomProgram` (seed is 0: hypothesis reproduces it) with what the
    generator knows: the deepest bounded recursion, and whether it may overflow the stack."""

    recursion_depth: int = 0
    unbounded_recursion: bool = False


class _Gen:
    def __init__(self, draw: st.DrawFn, profile: Profile, word_bits: int) -> None:
        self.draw = draw
        self.p = profile
        self.w = word_bits
        self.top = (1 << (word_bits - 1)) - 1
        self.lines: list[str] = []
        self.fresh = 0
        self.cost = 0
        self.mult = 1  # how many times the code being generated may run
        self.functions: list[tuple[str, int, bool]] = []  # name, scalar arity, array first
        self.vectors = ["arr"]  # the one-dimensional arrays of N words in scope
        self.array_size = 4
        self.in_function = False

    # --- choices (each shrinks towards its first / simplest alternative) -----------------
    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return self.draw(st.sampled_from(tuple(options)))

    def flag(self, percent: int) -> bool:
        """True with about `percent`% probability; shrinks to False."""
        return self.draw(st.integers(0, 99)) >= 100 - percent

    def upto(self, n: int) -> int:
        return self.draw(st.integers(0, n))

    def affordable(self, steps: int) -> bool:
        scaled = steps * self.w // 32 * self.mult
        if self.cost + scaled > self.p.budget:
            return False
        self.cost += scaled
        return True

    def out(self, indent: str, text: str) -> None:
        self.lines.append(indent + text)

    # --- expressions ----------------------------------------------------------------------
    def literal(self) -> str:
        top, w = self.top, self.w
        kind = self.upto(8)
        if kind <= 4:
            value = self.draw(st.sampled_from(
                (0, 1, 2, 3, -1, top, -top, top - 1, 1 << (w - 2), w, w - 1, 7, 100, -2)))
            return str(value) if value >= 0 else f"({value})"
        if kind == 5:
            return f"(-{top + 1})"  # INT_MIN, a negated decimal literal
        if kind == 6:
            return self.pick((f"{top:#x}", f"{top + 1:#x}", f"{(1 << w) - 1:#X}", "0x0",
                              "0x10"))
        if kind == 7:
            return self.pick(("'A'", "'0'", "'\\n'", "'\\\\'", "'\\''", "' '"))
        value = self.draw(st.integers(-top - 1, top))
        return str(value) if value >= 0 else f"({value})"

    def leaf(self, scalars: list[str]) -> str:
        kind = self.upto(9)
        if kind <= 3 and scalars:
            return self.pick(scalars)
        if kind == 4:
            if self.flag(15):
                return f"mat[{self.expr(scalars, 0)} != 0][{self.index(scalars)}]"
            return f"{self.pick(self.vectors)}[{self.index(scalars)}]"
        if kind == 5:
            return f"pre[{self.upto(2)}]"
        if kind == 6:
            return self.pick(("read()", "eof()"))
        if kind == 7:
            return "K"
        return self.literal()

    def expr(self, scalars: list[str], depth: int) -> str:
        if depth <= 0:
            return self.leaf(scalars)
        kind = self.upto(11)
        if kind <= 2:
            return self.leaf(scalars)
        if kind == 10:
            return (f"({self.expr(scalars, depth - 1)} ? {self.expr(scalars, depth - 1)}"
                    f" : {self.expr(scalars, depth - 1)})")
        if kind == 11:
            return self.unsigned(scalars, depth)
        if kind <= 6:
            op = self.pick(BINARY_OPS)
            if op in COSTLY_BINARY and not self.affordable(COSTLY_STEPS):
                op = self.pick(CHEAP_BINARY)
            left = self.expr(scalars, depth - 1)
            right = self.expr(scalars, depth - 1)
            if op in ("/", "%") and not self.flag(12):
                right = f"({right} != 0) + 2"  # not zero: most runs go on past it
            elif op == "<<":
                right = f"({right} > 0) + {self.pick(('1', '3', str(self.w - 1), str(self.w)))}"
            if self.flag(6):  # the operator on a line of its own: trap lines must follow it
                return f"({left}\n    {op}\n    {right})"
            return f"({left} {op} {right})"
        if kind <= 8:
            op = self.pick(_UNARY_OPS)
            return f"{op}{self.expr(scalars, depth - 1)}"
        if self.functions:
            return self.call(scalars, depth - 1)
        return self.leaf(scalars)

    def unsigned(self, scalars: list[str], depth: int) -> str:
        """A call of `ult`, `ule`, `udiv` or `umod`; a divisor is mostly not zero."""
        name = self.pick(("ult", "ule", "udiv", "umod"))
        if name in ("udiv", "umod") and not self.affordable(COSTLY_STEPS):
            name = "ult"
        left, right = self.expr(scalars, depth - 1), self.expr(scalars, depth - 1)
        if name in ("udiv", "umod") and not self.flag(12):
            right = f"({right} == 0) + {right}"
        return f"{name}({left}, {right})"

    def call(self, scalars: list[str], depth: int) -> str:
        name, arity, takes_array = self.draw(st.sampled_from(tuple(self.functions)))
        if name == "rec":
            if not self.affordable(60 * (self.p.rec_max + 1)):
                return self.leaf(scalars)
            bound = " + ".join(f"({self.expr(scalars, 0)} > {k})"
                               for k in range(self.p.rec_max))
            return f"rec({bound}, {self.expr(scalars, depth)})"
        args = [self.expr(scalars, depth) for _ in range(arity)]
        if takes_array:
            args.insert(0, self.pick((*self.vectors, "pre")))
        return f"{name}({', '.join(args)})"

    def index(self, scalars: list[str]) -> str:
        kind = self.upto(19)
        size = self.array_size
        if kind >= 18 and self.flag(60):
            kind = 0  # out of range in about 4% of the indices
        if kind <= 5:
            return str(self.upto(size - 1))
        if kind <= 10:
            return f"({self.expr(scalars, 0)} < {self.expr(scalars, 0)})"
        if kind <= 14:
            counters = [s for s in scalars if s.startswith("i")]
            if counters:
                return self.pick(counters)  # loop counters stay below loop_max < size
            return f"({self.expr(scalars, 0)} != 0) + 1"
        if kind <= 17:
            if self.affordable(COSTLY_STEPS):
                return f"{self.expr(scalars, 1)} & {size - 1}"
            return f"({self.expr(scalars, 0)} >= 0) * 3"
        if kind == 18:
            return self.pick((str(size), "-1", "N", f"{size} - 5"))  # out of range
        return self.expr(scalars, 1)  # anything: usually out of range

    # --- statements -----------------------------------------------------------------------
    def block(self, scalars: list[str], assignable: list[str], depth: int, indent: str,
              loop: bool) -> None:
        scalars, assignable, vectors = list(scalars), list(assignable), list(self.vectors)
        for _ in range(1 + self.upto(self.p.block - 1)):
            self.statement(scalars, assignable, depth, indent, loop)
        self.vectors = vectors  # the block's local arrays go out of scope

    def loop(self, scalars: list[str], assignable: list[str], depth: int, indent: str) -> None:
        self.fresh += 1
        c = f"i{self.fresh}"
        n = self.upto(self.p.loop_max)
        shape = self.upto(4)
        saved = self.mult
        self.mult *= max(n, 1)
        inner = indent + "    "
        if shape <= 1:
            self.out(indent, f"for (var {c} = 0; {c} < {n}; {c} += 1) {{")
        elif shape == 2:
            self.out(indent, f"var {c} = {n};")
            self.out(indent, f"while ({c} > 0) {{")
            self.out(inner, f"{c} -= 1;")
        elif shape == 3:
            self.out(indent, f"var {c};")
            self.out(indent, f"for ({c} = {n}; {c} > 0; {c} = {c} - 1) {{")
        else:
            self.out(indent, f"var {c} = 0;")
            self.out(indent, "while (1) {")
            self.out(inner, f"{c} += 1;")
            self.out(inner, f"if ({c} > {n}) {{ break; }}")
        self.block(scalars + [c], assignable, depth - 1, inner, loop=True)
        self.out(indent, "}")
        self.mult = saved

    def statement(self, scalars: list[str], assignable: list[str], depth: int, indent: str,
                  loop: bool) -> None:
        kind = self.upto(39)
        e = self.expr(scalars, self.p.expr_depth)
        if kind <= 9:
            op = self.pick(COMPOUND)
            if op not in CHEAP_COMPOUND and not self.affordable(COSTLY_STEPS):
                op = "+="
            if op in ("/=", "%=") and not self.flag(12):
                e = f"({e} == 0) + {e}"  # not zero unless e is -1
            target = self.pick(assignable) if assignable and self.upto(3) else (
                f"{self.pick(self.vectors)}[{self.index(scalars)}]")
            self.out(indent, f"{target} {op} {e};")
        elif kind <= 12:
            self.fresh += 1
            name = f"v{self.fresh}"
            self.out(indent, f"var {name} = {e};")
            scalars.append(name)
            assignable.append(name)
        elif kind <= 17 and depth > 0:
            self.out(indent, f"if ({e}) {{")
            self.block(scalars, assignable, depth - 1, indent + "    ", loop)
            while self.flag(30):
                self.out(indent, f"}} else if ({self.expr(scalars, 1)}) {{")
                self.block(scalars, assignable, depth - 1, indent + "    ", loop)
            if self.flag(50):
                self.out(indent, "} else {")
                self.block(scalars, assignable, depth - 1, indent + "    ", loop)
            self.out(indent, "}")
        elif kind <= 21 and depth > 0:
            self.loop(scalars, assignable, depth, indent)
        elif kind <= 23 and loop:
            self.out(indent, f"if ({e}) {{ {self.pick(('break', 'continue'))}; }}")
        elif kind <= 24 and self.in_function:
            self.out(indent, f"if ({e}) {{ return {self.expr(scalars, 1)}; }}")
        elif kind <= 27:
            args = [self.pick(('"[', '"=', '"\\n', '"\\t\\"q\\"', '"\\\\', '"'))
                    + self.pick(('"', ' "', ']"'))]
            if self.affordable(200):
                args.append(e)
            if self.flag(40):
                args.append(f"'{self.pick(('a', 'Z', '!'))}'")
            self.out(indent, f"print({', '.join(args)});")
        elif kind <= 28:
            self.out(indent, f"write({e});")
        elif kind <= 29:
            self.out(indent, f"putc({e});")
        elif kind <= 30:
            self.out(indent, f"assert({e} {self.pick(('|| 1', '!= 12345', '|| 0', ''))});")
        elif kind <= 32 and self.functions:
            call = self.call(scalars, 1)
            self.out(indent, f"{call};" if call[0].isalpha() and call.endswith(")")
                     else f"write({call});")
        elif kind <= 33 and assignable:
            target = self.pick(assignable)
            if self.flag(40):  # drain the tape: at most its length in iterations
                echo = f" write({target});" if self.flag(50) else ""
                self.out(indent, f"while (!eof()) {{ {target} = read();{echo} }}")
            else:
                self.out(indent, f"{target} = read();")
        elif kind <= 34:
            self.out(indent, "{")
            self.block(scalars, assignable, 0, indent + "    ", loop)
            self.out(indent, "}")
        elif kind == 35 and not self.in_function and self.flag(30):
            self.out(indent, f"if ({e}) {{ halt; }}")
        elif kind == 36:
            self.local_array(indent, scalars)
        else:
            self.out(indent, f"write({e});")

    def local_array(self, indent: str, scalars: list[str]) -> None:
        """`var la<k>[N]`, zero, from a brace list (constants, or in a function or a block
        expressions over the scalars in scope) or from a string of N characters. At the top
        level of the program (no indent) the array is global: its initialisers must be
        constants."""
        self.fresh += 1
        name = f"la{self.fresh}"
        shape = self.upto(2)
        local = indent != ""
        if shape == 0:
            self.out(indent, f"var {name}[N];")
        elif shape == 1:
            values = ", ".join(self.expr(scalars, 1) if local and self.flag(40)
                               else self.literal() for _ in range(self.upto(4)))
            self.out(indent, f"var {name}[N] = {{{values}}};")
        else:
            text = self.pick(("abcd", "x\\0yz", "\\n\\t!q"))  # N characters, escapes as written
            self.out(indent, f'var {name}[] = "{text}";')
        self.vectors.append(name)

    # --- the program ----------------------------------------------------------------------
    def program(self) -> tuple[str, int, bool]:
        out = self.lines.append
        out("input x0, x1;")
        out("output o0, o1, o2;")
        out(f"const N = {self.pick(('4', '2 + 2', '1 << 2', '8 / 2', '(5 & 6) | 0'))};")
        self.array_size = 4
        values = ", ".join(self.literal() for _ in range(self.upto(4)))
        out(f"var arr[N] = {{{values}}};")
        out(f"var pre[3] = {{{self.literal()}, {self.literal()}, {self.literal()}}};")
        out("var mat[2][N];")
        out(f"var g = {self.literal()}, h;")
        out(f"const K = {self.literal()} + {self.literal()};")
        globals_ = ["x0", "x1", "o0", "o1", "o2", "g", "h"]
        readable = globals_ + ["K"]
        self.in_function = True
        for number in range(self.upto(self.p.functions)):
            params = [f"p{k}" for k in range(self.upto(3))]
            takes_array = self.flag(40)
            self.vectors = ["arr", "a"] if takes_array else ["arr"]
            listed = ", ".join((["a[]"] if takes_array else []) + params)
            out(f"func f{number}({listed}) {{")
            if self.flag(40):
                out(f"    var l = {self.expr(readable + params, 1)};")
                params = params + ["l"]
            if self.flag(30):
                self.local_array("    ", readable + params)
            self.block(readable + params, globals_ + params, 1, "    ", loop=False)
            out(f"    return {self.expr(readable + params, 1)};")
            out("}")
            self.functions.append((f"f{number}", len(params) - ("l" in params), takes_array))
            self.vectors = ["arr"]
        recursion = 0
        if self.flag(50):
            recursion = self.p.rec_max
            args = readable + ["n", "a"]
            out("func rec(n, a) {")
            if self.flag(50):  # an array on the stack: each activation has its own
                self.local_array("    ", args)
            out(f"    if (n <= 0) {{ return a + {self.expr(readable + ['a'], 1)}; }}")
            self.block(args, globals_ + ["a"], 0, "    ", loop=False)
            out(f"    return rec(n - 1, {self.expr(args, 1)}) + {self.expr(args, 1)};")
            out("}")
            self.functions.append(("rec", 2, False))
            self.vectors = ["arr"]
        unbounded = self.flag(10)
        if unbounded:
            out("func down(n) {")
            out("    if (n == 12345) { return 0; }")
            out("    return down(n + 1) + 1;")
            out("}")
        self.in_function = False
        for _ in range(1 + self.upto(2)):
            self.block(readable, globals_, self.p.depth, "", loop=False)
        if unbounded:
            out(f"o1 = down({self.expr(readable, 0)} & 1);")
        for name in ("o0", "o1", "o2"):
            if self.flag(60):
                out(f"{name} = {name} + {self.expr(readable, 1)};")
        return "\n".join(self.lines) + "\n", recursion, unbounded


def _edge_words(word_bits: int) -> st.SearchStrategy[int]:
    top = (1 << (word_bits - 1)) - 1
    return st.one_of(
        st.sampled_from((0, 1, -1, 2, top, -top - 1, top - 1, -top, word_bits, 65)),
        st.integers(-top - 1, top),
    )


@st.composite
def tl_programs(draw: st.DrawFn, profile: Profile = SMALL,
                word_bits: int | None = None) -> GeneratedProgram:
    """A random well-formed, terminating program with inputs and a tape."""
    bits = word_bits if word_bits is not None else draw(st.sampled_from((16, 32)))
    gen = _Gen(draw, profile, bits)
    source, recursion, unbounded = gen.program()
    inputs = (("x0", draw(_edge_words(bits))), ("x1", draw(_edge_words(bits))))
    tape = tuple(draw(st.lists(_edge_words(bits), max_size=4)))
    return GeneratedProgram(0, source, inputs, tape, bits, recursion, unbounded)
