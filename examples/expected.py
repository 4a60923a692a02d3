"""What every example program must do, worked out by hand (or from well-known values), not
copied from a run. `tests/test_examples.py` checks every engine against this table and
`benchmarks/run.py` takes its inputs from it.

Each example has two runs:
- `default`: the inputs of the `mlpc run` line in the program's header comment (the source
  and reference engines run these in the default test run; the network engines only in the
  slow tests, since they take tens of thousands of SUBLEQ steps);
- `small`: inputs that keep the compiled program short (about 3,000 SUBLEQ steps at most)
  so that the numpy and onnxruntime engines can run it in a few seconds.

How to read a run:
- `inputs`: the values of the program's `input` variables; `tape`: the input tape (a string
  stands for its characters, one word each, as `mlpc run --stdin` makes them);
- `outputs`: every `output` variable when the run ended, in declaration order;
- `out`: the output tape, as text (one word per character) or as a tuple of words;
- `status`: `halted`, `trap`, `fault` or `step-limit`, and `detail` as the report says it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExampleRun:
    inputs: tuple[tuple[str, int], ...] = ()
    tape: tuple[int, ...] | str = ()
    outputs: tuple[tuple[str, int], ...] = ()
    out: tuple[int, ...] | str = ()
    status: str = "halted"
    detail: str = ""

    @property
    def tape_words(self) -> tuple[int, ...]:
        return tuple(map(ord, self.tape)) if isinstance(self.tape, str) else self.tape

    @property
    def out_words(self) -> tuple[int, ...]:
        return tuple(map(ord, self.out)) if isinstance(self.out, str) else self.out


@dataclass(frozen=True)
class Example:
    name: str  # examples/<name>.tl
    default: ExampleRun
    small: ExampleRun

    @property
    def file(self) -> str:
        return f"{self.name}.tl"


def _hanoi_4() -> str:
    """The 15 moves for 4 disks from A to C, written out (hanoi(k, from, to, via) moves k-1
    disks from -> via, disk k from -> to, then k-1 disks via -> to)."""
    moves = [
        (1, "A", "B"), (2, "A", "C"), (1, "B", "C"),
        (3, "A", "B"),
        (1, "C", "A"), (2, "C", "B"), (1, "A", "B"),
        (4, "A", "C"),
        (1, "B", "C"), (2, "B", "A"), (1, "C", "A"),
        (3, "B", "C"),
        (1, "A", "B"), (2, "A", "C"), (1, "B", "C"),
    ]
    return "".join(f"disk {k}: {a} -> {b}\n" for k, a, b in moves)


FIZZBUZZ_30 = (
    "1\n2\nFizz\n4\nBuzz\nFizz\n7\n8\nFizz\nBuzz\n11\nFizz\n13\n14\nFizzBuzz\n"
    "16\n17\nFizz\n19\nBuzz\nFizz\n22\n23\nFizz\nBuzz\n26\nFizz\n28\n29\nFizzBuzz\n"
)

PRIMES_100 = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71,
              73, 79, 83, 89, 97)

BF_HELLO = "++++++++[>+++++++++<-]>.<+++++[>++++++<-]>-.+++++++..+++.>++++++++++."

EXAMPLES: tuple[Example, ...] = (
    Example(
        "fib_iter",
        # fib(40) = 102,334,155
        ExampleRun(inputs=(("n", 40),), outputs=(("f", 102334155),)),
        ExampleRun(inputs=(("n", 5),), outputs=(("f", 5),)),
    ),
    Example(
        "fib_rec",
        # fib(12) = 144; fib(n) makes 2*fib(n+1) - 1 calls: 2*233 - 1 = 465, 2*5 - 1 = 9
        ExampleRun(inputs=(("n", 12),), outputs=(("f", 144), ("calls", 465))),
        ExampleRun(inputs=(("n", 4),), outputs=(("f", 3), ("calls", 9))),
    ),
    Example(
        "factorial",
        ExampleRun(inputs=(("n", 12),), outputs=(("f", 479001600),), out="12! = 479001600\n"),
        ExampleRun(inputs=(("n", 3),), outputs=(("f", 6),), out="3! = 6\n"),
    ),
    Example(
        "gcd",
        # 1071 = 2*462 + 147, 462 = 3*147 + 21, 147 = 7*21
        ExampleRun(inputs=(("a", 1071), ("b", 462)), outputs=(("g", 21),)),
        ExampleRun(inputs=(("a", 48), ("b", 18)), outputs=(("g", 6),)),
    ),
    Example(
        "sieve",
        # 25 primes below 100
        ExampleRun(inputs=(("n", 100),), outputs=(("count", 25),), out=PRIMES_100),
        ExampleRun(inputs=(("n", 10),), outputs=(("count", 4),), out=(2, 3, 5, 7)),
    ),
    Example(
        "bubble_sort",
        # bubble sort makes one swap per inversion: 31 precedes 8 smaller numbers, 4 three,
        # 15 five, -9 one, 26 four, 5 two, 3 one, 58 two: 26
        ExampleRun(tape=(31, 4, 15, -9, 26, 5, 3, 58, -97, 9),
                   outputs=(("n", 10), ("swaps", 26)), out="-97 -9 3 4 5 9 15 26 31 58\n"),
        ExampleRun(tape=(3, 1, 2), outputs=(("n", 3), ("swaps", 2)), out="1 2 3\n"),
    ),
    Example(
        "collatz",
        # 27 takes 111 steps and climbs to 9,232; 4 -> 2 -> 1
        ExampleRun(inputs=(("n", 27),), outputs=(("stopping_time", 111), ("peak", 9232))),
        ExampleRun(inputs=(("n", 4),), outputs=(("stopping_time", 2), ("peak", 4))),
    ),
    Example(
        "modpow",
        # 4^13 mod 497 = 445 (the textbook example); 5^2 = 25 = 13 + 12
        ExampleRun(inputs=(("base", 4), ("exp", 13), ("m", 497)), outputs=(("r", 445),)),
        ExampleRun(inputs=(("base", 5), ("exp", 2), ("m", 13)), outputs=(("r", 12),)),
    ),
    Example(
        "isqrt",
        # 44721^2 = 1,999,967,841 <= 2e9 < 44722^2 = 2,000,057,284
        ExampleRun(inputs=(("n", 2000000000),), outputs=(("r", 44721),)),
        ExampleRun(inputs=(("n", 17),), outputs=(("r", 4),)),
    ),
    Example(
        "hanoi",
        ExampleRun(inputs=(("n", 4),), outputs=(("moves", 15),), out=_hanoi_4()),
        ExampleRun(inputs=(("n", 1),), outputs=(("moves", 1),), out="disk 1: A -> C\n"),
    ),
    Example(
        "fizzbuzz",
        ExampleRun(inputs=(("n", 30),), out=FIZZBUZZ_30),
        ExampleRun(inputs=(("n", 3),), out="1\n2\nFizz\n"),
    ),
    Example(
        "crc32",
        # the CRC-32 check value: crc32("123456789") = 0xCBF43926 = -873187034 as int32;
        # the CRC of no bytes is 0 (~0 ^ ~0)
        ExampleRun(tape="123456789", outputs=(("crc", 0xCBF43926 - (1 << 32)), ("length", 9)),
                   out="CBF43926\n"),
        ExampleRun(tape="", outputs=(("crc", 0), ("length", 0)), out="00000000\n"),
    ),
    Example(
        "brainfuck",
        # commands executed by BF_HELLO: 8 '+', the 8 x 9 loop (1 + 8 * 13), '>.', '<',
        # 5 '+', the 5 x 6 loop (1 + 5 * 10), '>-.', 7 '+' and '..', '+++.', '>', 10 '+',
        # '.': 8 + 105 + 2 + 1 + 5 + 51 + 3 + 9 + 4 + 12 = 200.
        # ',[.,]' on "hi": ',' '[' '.' ',' ']' '.' ',' ']' = 8
        ExampleRun(tape=BF_HELLO, outputs=(("executed", 200),), out="Hello\n"),
        ExampleRun(tape=",[.,]!hi", outputs=(("executed", 8),), out="hi"),
    ),
    Example(
        "palindromes",
        # level and noon read the same backwards, mlpc does not
        ExampleRun(tape="level mlpc noon", outputs=(("words", 3), ("palindromes", 2)),
                   out="level yes\nmlpc no\nnoon yes\n"),
        ExampleRun(tape="aba", outputs=(("words", 1), ("palindromes", 1)), out="aba yes\n"),
    ),
)

BY_NAME = {e.name: e for e in EXAMPLES}
