"""Loaders for SUBLEQ images: numeric `.sq`/`.dec` files and the mlpc assembly format, and a
disassembler that prints a readable listing.

Assembly format (one statement per line; `#` or `;` starts a comment):

    label:                  # a label names the address of the next word
    A B C                   # instruction: M[B] -= M[A]; jump to C if the result <= 0
    A B                     # the same with C = ?  (fall through to the next instruction)
    A                       # A A ?  : clear M[A]
    .word 1 2 -3 'x' lbl    # data words
    .string "Hi\\n"          # one word per character
    .zero 16                # sixteen zero words

Operands are sums and differences of integers, character literals ('A', '\\n'), labels and
`?`, separated by spaces. A sign with a space before it and none after it starts a new operand
(`z z -1` is three operands, `lbl -1` two); otherwise it joins terms (`lbl+1`, `? - 2`).
In an instruction `?` is the address of the next instruction; in `.word` the address of the
next word. `-1` as A reads the input tape into M[B]; `-1` as B writes M[A] to the output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlpc.compiler.image import CodeSpan, SubleqImage
from mlpc.errors import MlpcError, SourceError, SourcePos

ASSEMBLY_SUFFIXES = (".asm", ".sasm", ".s")
NUMERIC_SUFFIXES = (".sq", ".dec")

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>0[xX][0-9a-fA-F]+|[0-9]+)
      | (?P<char>'(?:\\.|[^'\\])')
      | (?P<str>"(?:\\.|[^"\\])*")
      | (?P<name>\.?[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<op>[-+?:])
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)


def read_text(path: str) -> str:
    """Read a UTF-8 text file, turning every OS and decoding problem into one-line errors."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise MlpcError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MlpcError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise MlpcError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MlpcError(f"{path}:{line}: file is not valid UTF-8 text") from None


def parse_numeric(text: str, path: str) -> list[int]:
    """Whitespace-separated decimal integers (a leading sign allowed)."""
    words: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for match in re.finditer(r"\S+", line):
            token = match.group()
            if not re.fullmatch(r"[-+]?[0-9]+", token):
                raise SourceError(
                    f"expected an integer, found {token!r}",
                    path,
                    SourcePos(lineno, match.start() + 1),
                    text,
                )
            words.append(int(token))
    return words


def _unescape(body: str) -> str:
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    col: int


@dataclass(frozen=True)
class _Item:
    """One word to be resolved: an operand expression (terms with signs) at an address."""

    address: int
    terms: tuple[tuple[int, _Token], ...]
    next_address: int  # what `?` means here
    line: int


def _tokenize(line: str, lineno: int, path: str, text: str) -> list[_Token]:
    code = line
    tokens: list[_Token] = []
    pos = 0
    while pos < len(code):
        if code[pos:].strip() == "":
            break
        if code[pos:].lstrip().startswith(("#", ";")):
            break
        match = _TOKEN.match(code, pos)
        if match is None:  # pragma: no cover - the pattern matches any non-space
            break
        kind = match.lastgroup or "bad"
        tok_text = match.group(kind)
        col = match.start(kind) + 1
        if kind == "bad":
            where = SourcePos(lineno, col)
            raise SourceError(f"unexpected character {tok_text!r}", path, where, text)
        tokens.append(_Token(kind, tok_text, col))
        pos = match.end()
    return tokens


def parse_assembly(text: str, path: str) -> SubleqImage:
    """Assemble mlpc assembly text into an image (two passes: layout, then resolve labels)."""
    labels: dict[str, int] = {}
    items: list[_Item | int] = []
    spans: list[CodeSpan] = []
    address = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = _tokenize(line, lineno, path, text)
        while len(tokens) >= 2 and tokens[0].kind == "name" and tokens[1].text == ":":
            name = tokens[0].text
            if name in labels:
                raise SourceError(
                    f"label {name!r} defined twice", path, SourcePos(lineno, tokens[0].col), text
                )
            labels[name] = address
            tokens = tokens[2:]
        if not tokens:
            continue
        start = address
        head = tokens[0]
        if head.kind == "name" and head.text.startswith("."):
            address = _directive(head, tokens[1:], items, address, lineno, path, text)
        else:
            operands = _split_operands(tokens, lineno, path, text)
            if len(operands) > 3:
                raise SourceError(
                    f"an instruction has at most 3 operands, found {len(operands)}",
                    path,
                    SourcePos(lineno, head.col),
                    text,
                )
            if len(operands) == 1:
                operands = [operands[0], operands[0]]
            if len(operands) == 2:
                operands.append(((1, _Token("op", "?", head.col)),))
            for terms in operands:
                items.append(_Item(address, tuple(terms), start + 3, lineno))
                address += 1
        spans.append(CodeSpan(start, address, lineno, line.strip()))
    words = [
        item if isinstance(item, int) else _resolve(item, labels, path, text) for item in items
    ]
    return SubleqImage(
        words=tuple(words),
        source_path=path,
        symbols=tuple(sorted(labels.items(), key=lambda kv: (kv[1], kv[0]))),
        spans=tuple(spans),
        source_text=text,
    )


def _directive(
    head: _Token,
    args: list[_Token],
    items: list[_Item | int],
    address: int,
    lineno: int,
    path: str,
    text: str,
) -> int:
    where = SourcePos(lineno, head.col)
    if head.text == ".string":
        if len(args) != 1 or args[0].kind != "str":
            raise SourceError(".string takes one string literal", path, where, text)
        for ch in _unescape(args[0].text[1:-1]):
            items.append(ord(ch))
            address += 1
        return address
    if head.text == ".zero":
        if len(args) != 1 or args[0].kind != "num":
            raise SourceError(".zero takes one count", path, where, text)
        count = int(args[0].text, 0)
        items.extend([0] * count)
        return address + count
    if head.text == ".word":
        operands = _split_operands(args, lineno, path, text)
        if not operands:
            raise SourceError(".word needs at least one value", path, where, text)
        for terms in operands:
            items.append(_Item(address, tuple(terms), address + 1, lineno))
            address += 1
        return address
    raise SourceError(f"unknown directive {head.text!r}", path, where, text)


def _split_operands(
    tokens: Sequence[_Token], lineno: int, path: str, text: str
) -> list[list[tuple[int, _Token]]]:
    """Group tokens into operand expressions: `x`, `-1`, `lbl+3`, `? - 2`."""
    operands: list[list[tuple[int, _Token]]] = []
    sign = 1
    expect_term = True
    for i, tok in enumerate(tokens):
        if tok.kind == "op" and tok.text in "+-":
            if expect_term:
                sign = -sign if tok.text == "-" else sign
            elif _starts_operand(tokens, i):
                operands.append([])  # `A B -1`: a signed term after a space is a new operand
                sign = -1 if tok.text == "-" else 1
                expect_term = True
            else:
                sign = -1 if tok.text == "-" else 1
                expect_term = True
            continue
        if tok.kind in ("num", "char", "name") or tok.text == "?":
            if not expect_term:
                operands.append([])
            if not operands:
                operands.append([])
            operands[-1].append((sign, tok))
            sign = 1
            expect_term = False
            continue
        raise SourceError(f"unexpected {tok.text!r}", path, SourcePos(lineno, tok.col), text)
    if expect_term and tokens:
        last = tokens[-1]
        raise SourceError("operand missing after sign", path, SourcePos(lineno, last.col), text)
    return operands


def _starts_operand(tokens: Sequence[_Token], i: int) -> bool:
    """A sign after a complete term starts a new operand when a space precedes it and none
    follows it (`z z -1`, `x -y`); otherwise it is a binary operator (`lbl+3`, `? - 2`)."""
    prev, tok = tokens[i - 1], tokens[i]
    spaced_before = tok.col > prev.col + len(prev.text)
    attached_after = i + 1 < len(tokens) and tokens[i + 1].col == tok.col + 1
    return spaced_before and attached_after


def _resolve(item: _Item, labels: dict[str, int], path: str, text: str) -> int:
    total = 0
    for sign, tok in item.terms:
        if tok.kind == "num":
            value = int(tok.text, 0)
        elif tok.kind == "char":
            value = ord(_unescape(tok.text[1:-1]))
        elif tok.text == "?":
            value = item.next_address
        elif tok.text in labels:
            value = labels[tok.text]
        else:
            raise SourceError(
                f"unknown label {tok.text!r}", path, SourcePos(item.line, tok.col), text
            )
        total += sign * value
    return total


def load_image(paths: Sequence[str], texts: Sequence[str] | None = None) -> SubleqImage:
    """Load and concatenate one or more `.sq`/`.dec`/assembly files into one image.
    `texts`, when given, are the files' contents (a program held in memory: the files are
    not read, and `paths` name them in messages and the image)."""
    if not paths:
        raise MlpcError("no program given")
    parts: list[SubleqImage] = []
    for i, path in enumerate(paths):
        text = read_text(path) if texts is None else texts[i]
        if path.endswith(ASSEMBLY_SUFFIXES):
            parts.append(parse_assembly(text, path))
        else:
            words = parse_numeric(text, path)
            parts.append(SubleqImage(words=tuple(words), source_path=path, source_text=text))
    if not any(part.words for part in parts):
        # An empty image would run `0 0 0` (an endless loop at address 0) over zeroed memory.
        raise MlpcError(f"{'+'.join(paths)}: the program is empty (no words)")
    if len(parts) == 1:
        return parts[0]
    words: list[int] = []
    symbols: list[tuple[str, int]] = []
    for part in parts:
        symbols.extend((name, addr + len(words)) for name, addr in part.symbols)
        words.extend(part.words)
    return SubleqImage(
        words=tuple(words), source_path="+".join(paths), symbols=tuple(symbols)
    )


def disassemble(words: Sequence[int], symbols: dict[str, int] | None = None) -> str:
    """A listing of `words` read as consecutive instructions from address 0."""
    names: dict[int, str] = {}
    for name, addr in (symbols or {}).items():
        names.setdefault(addr, name)
    lines = []
    for pc in range(0, len(words), 3):
        triple = list(words[pc : pc + 3])
        label = f"{names[pc]}:" if pc in names else ""
        cells = " ".join(f"{w:>6}" for w in triple)
        note = ""
        if len(triple) == 3:
            a, b, c = triple
            if a == -1 and b == -1:
                note = "faults: a == b == -1"
            elif a == -1:
                note = f"M[{_name(b, names)}] <- input"
            elif b == -1:
                note = f"output M[{_name(a, names)}]"
            else:
                jump = "halt" if c < 0 else ("next" if c == pc + 3 else _name(c, names))
                note = f"M[{_name(b, names)}] -= M[{_name(a, names)}]; if <= 0 goto {jump}"
        line = f"{label:<12}{pc:>6}: {cells:<22}"
        lines.append(f"{line} ; {note}" if note else line.rstrip())
    return "\n".join(lines)


def _name(address: int, names: dict[int, str]) -> str:
    return names.get(address, str(address))
