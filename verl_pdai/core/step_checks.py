"""Rule-based checks on reasoning steps: arithmetic claims, key quantities, repeated steps.

The input is untrusted model output, so everything here is bounded: scans are linear (regular expressions
whose alternatives cannot backtrack over more than a few characters), numbers are capped at about 10,000
digits, nesting at MAX_DEPTH, and the number of relations, numerals and candidates looked at per call is
capped. Nothing raises on any string; what cannot be decided within the bounds comes back as ``None``.
Arithmetic is exact (``Fraction``) and never uses eval.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "ArithmeticClaim",
    "evaluate_arithmetic",
    "find_arithmetic_claims",
    "key_quantities",
    "quantities_in",
    "repeated_steps",
]

MAX_BITS = 33_300  # ~10,000 decimal digits: any larger value (or intermediate) is undecidable
MAX_DEPTH = 32  # nesting of groups and exponents; each level costs ~6 Python frames
MAX_FACTORIAL = 3000  # 3000! has 9,131 digits
MAX_BINOM_N = 20_000
MAX_ROOT_INDEX = 64
MAX_LITERAL_CHARS = 400  # also keeps int() below CPython's 4,300-digit conversion limit
MAX_EXPRESSION_CHARS = 2000  # evaluate_arithmetic gives up beyond this
MAX_KEY_BITS = 200  # ~60 digits: larger values make no useful quantity keys
MAX_RELATION_RUNS = 4096  # equality chains examined per text
MAX_NUMERALS = 20_000  # numerals examined per text by quantities_in
MAX_QUANTITIES = 4096
NEAR_DUPLICATE_JACCARD = 0.9

_WINDOW = 320  # a side of a relation longer than about this is not a claim
_EDGE = 16  # a run starting this close to the window edge may be cut off: skip it
_TRIVIAL_KEYS = frozenset({"0", "1", "2", "-1"})


class _Invalid(Exception):
    """Not an arithmetic expression (syntax we do not support)."""


# ---------------------------------------------------------------------------------------------- tokenizer

_NUMBER = r"[0-9]{1,3}(?:(?:,|\{,\}|\\,)[0-9]{3}(?![0-9]))+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?|\.[0-9]+"
_TOKEN = re.compile(
    r"(?P<space>(?:\s|~|\\[,;:! ]|\\q?quad(?![A-Za-z]))+)"
    r"|(?P<num>" + _NUMBER + r")"
    r"|(?P<cmd>\\[A-Za-z]+)"
    r"|(?P<op>!!|[-+*/^!()\[\]{}×·÷−⋅∗])"
)
_COMMANDS = {
    "cdot": "*",
    "times": "*",
    "ast": "*",
    "div": "/",
    "frac": "frac",
    "dfrac": "frac",
    "tfrac": "frac",
    "sqrt": "sqrt",
    "binom": "binom",
    "dbinom": "binom",
    "tbinom": "binom",
}
# Sizing commands before a delimiter carry no meaning for the value.
_IGNORED_COMMANDS = frozenset({"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr"})
_UNICODE_OPS = {"×": "*", "·": "*", "⋅": "*", "∗": "*", "÷": "/", "−": "-"}
_CLOSING = {"(": ")", "[": "]", "{": "}"}
_FACTOR_OPENERS = frozenset({"+", "-", "*", "/", "(", "[", "{"})


def _tokenize(expr: str) -> list[list[str]]:
    """Tokens as mutable ``[kind, text]`` pairs (a number token may be split by ``\\frac12``)."""
    tokens: list[list[str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise _Invalid
        pos = match.end()
        kind = match.lastgroup
        text = match.group()
        if kind == "space":
            continue
        if kind == "cmd":
            name = text[1:]
            if name in _IGNORED_COMMANDS:
                continue
            if name not in _COMMANDS:
                raise _Invalid
            tokens.append([_COMMANDS[name], text])
        elif kind == "num":
            tokens.append(["num", text])
        else:
            tokens.append([_UNICODE_OPS.get(text, text), text])
    return tokens


# ------------------------------------------------------------------------------------ exact arithmetic
# Values are Fraction, or None for "undecidable within the bounds"; None propagates through every operation.

Value = Fraction | None


def _fit(value: Fraction) -> Value:
    if value.numerator.bit_length() > MAX_BITS or value.denominator.bit_length() > MAX_BITS:
        return None
    return value


def _literal(text: str) -> Value:
    digits = text.replace("{,}", "").replace("\\,", "").replace(",", "")
    if len(digits) > MAX_LITERAL_CHARS:
        return None
    whole, _, frac = digits.partition(".")
    return Fraction(int(whole or "0") * 10 ** len(frac) + int(frac or "0"), 10 ** len(frac))


def _add(a: Value, b: Value) -> Value:
    return None if a is None or b is None else _fit(a + b)


def _mul(a: Value, b: Value) -> Value:
    return None if a is None or b is None else _fit(a * b)


def _div(a: Value, b: Value) -> Value:
    return None if a is None or b is None or b == 0 else _fit(a / b)


def _power(base: Value, exponent: Value) -> Value:
    if base is None or exponent is None:
        return None
    if exponent.denominator != 1:  # b^(p/q) is exact only when b is a perfect q-th power
        if exponent.denominator > MAX_ROOT_INDEX:
            return None
        return _power(_root(base, exponent.denominator), Fraction(exponent.numerator))
    e = exponent.numerator
    if base == 0:
        return Fraction(0) if e > 0 else None  # 0^0 and 0^-k are undefined
    if abs(base) == 1:
        return Fraction(1) if base == 1 or e % 2 == 0 else Fraction(-1)
    bits = max(abs(base.numerator).bit_length(), base.denominator.bit_length())
    if (bits - 1) * abs(e) > MAX_BITS:  # lower bound on the result's size: decided without computing it
        return None
    return _fit(base**e)


def _root(value: Value, index: int) -> Value:
    """Exact ``index``-th root, or None when it is irrational or undefined."""
    if value is None or index < 1:
        return None
    if value < 0:
        if index % 2 == 0:
            return None
        root = _root(-value, index)
        return None if root is None else -root
    num = _exact_int_root(value.numerator, index)
    den = _exact_int_root(value.denominator, index)
    return None if num is None or den is None else Fraction(num, den)


def _exact_int_root(n: int, k: int) -> int | None:
    if n < 2 or k == 1:
        return n
    if k == 2:
        r = math.isqrt(n)
    else:  # Newton's method from an over-estimate decreases monotonically to the floor root
        r = 1 << -(-n.bit_length() // k)
        while True:
            nxt = ((k - 1) * r + n // r ** (k - 1)) // k
            if nxt >= r:
                break
            r = nxt
    return r if r**k == n else None


def _factorial(value: Value, step: int) -> Value:
    if value is None or value.denominator != 1 or value < 0 or value > MAX_FACTORIAL:
        return None
    n = int(value)
    if step == 1:
        return _fit(Fraction(math.factorial(n)))
    return _fit(Fraction(math.prod(range(n, 0, -step))))


def _binom(n: Value, k: Value) -> Value:
    if n is None or k is None or n.denominator != 1 or k.denominator != 1 or n < 0 or n > MAX_BINOM_N:
        return None
    if k < 0 or k > n:
        return Fraction(0)
    return _fit(Fraction(math.comb(int(n), int(k))))


# ---------------------------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over a token list; depth is counted explicitly (deep nesting -> _Invalid).

    expr    := term (("+" | "-") term)*
    term    := signed (("*" | "/") signed | <implicit product> power)*
    signed  := ("+" | "-")* power
    power   := postfix ("^" signed-power)?         right associative: 2^3^2 = 2^9
    postfix := primary ("!" | "!!")*
    primary := number | "(" expr ")" | "[" expr "]" | "{" expr "}"
             | \\frac arg arg | \\sqrt ("[" expr "]")? arg | \\binom arg arg
    arg     := "{" expr "}" | one digit             \\frac12 = 1/2, as in LaTeX

    An unbraced exponent takes a whole numeral (``2^10`` = 1024, the plain-text reading models mean), and
    only "(", "[", \\frac, \\sqrt, \\binom, or a numeral after "!", start an implicit product.
    """

    def __init__(self, tokens: list[list[str]]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0
        self.compound = False  # saw an operator: a bare (signed) number is not a computation
        self.ambiguous = False  # "2\frac{1}{2}": mixed number or product? undecidable

    def parse(self) -> Value:
        value = self.expr()
        if self.i != len(self.tokens):
            raise _Invalid
        return None if self.ambiguous else value

    def peek(self) -> str:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else ""

    def take(self) -> list[str]:
        if self.i >= len(self.tokens):
            raise _Invalid
        self.i += 1
        return self.tokens[self.i - 1]

    def expect(self, kind: str) -> None:
        if self.take()[0] != kind:
            raise _Invalid

    def expr(self) -> Value:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Invalid
        value = self.term()
        while self.peek() in ("+", "-"):
            negate = self.take()[0] == "-"
            self.compound = True
            rhs = self.term()
            value = _add(value, None if rhs is None else (-rhs if negate else rhs))
        self.depth -= 1
        return value

    def term(self) -> Value:
        value = self.signed()
        while True:
            kind = self.peek()
            if kind in ("*", "/"):
                self.take()
                self.compound = True
                rhs = self.signed()
                value = _mul(value, rhs) if kind == "*" else _div(value, rhs)
            elif kind in ("(", "[", "frac", "sqrt", "binom") or (kind == "num" and self.after_factorial()):
                # implicit product: 2(3+4), 2\sqrt{9}, 5!5!
                if kind == "frac" and self.after_bare_number():
                    self.ambiguous = True
                self.compound = True
                value = _mul(value, self.power())
            else:
                return value

    def after_factorial(self) -> bool:
        return self.tokens[self.i - 1][0] in ("!", "!!")

    def after_bare_number(self) -> bool:
        """The last token is a number that starts its factor, as in "2\frac{1}{2}" or "(2\frac12)"."""
        i = self.i
        return self.tokens[i - 1][0] == "num" and (i < 2 or self.tokens[i - 2][0] in _FACTOR_OPENERS)

    def signed(self) -> Value:
        negate = False
        while self.peek() in ("+", "-"):
            negate ^= self.take()[0] == "-"
        value = self.power()
        return None if value is None else (-value if negate else value)

    def power(self) -> Value:
        base = self.postfix()
        if self.peek() != "^":
            return base
        self.take()
        self.compound = True
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Invalid
        exponent = self.signed()
        self.depth -= 1
        return _power(base, exponent)

    def postfix(self) -> Value:
        value = self.primary()
        while self.peek() in ("!", "!!"):
            self.compound = True
            value = _factorial(value, 1 if self.take()[0] == "!" else 2)
        return value

    def primary(self) -> Value:
        kind, text = self.take()
        if kind == "num":
            return _literal(text)
        if kind in _CLOSING:
            value = self.expr()
            self.expect(_CLOSING[kind])
            return value
        if kind in ("frac", "binom"):
            self.compound = True
            first = self.arg()
            second = self.arg()
            return _div(first, second) if kind == "frac" else _binom(first, second)
        if kind == "sqrt":
            self.compound = True
            index: Value = Fraction(2)
            if self.peek() == "[":
                self.take()
                index = self.expr()
                self.expect("]")
            radicand = self.arg()
            if index is None or index.denominator != 1 or not 1 <= index <= MAX_ROOT_INDEX:
                return None
            return _root(radicand, int(index))
        raise _Invalid

    def arg(self) -> Value:
        if self.peek() == "{":
            self.take()
            value = self.expr()
            self.expect("}")
            return value
        if self.peek() == "num" and self.tokens[self.i][1][0].isdigit():
            token = self.tokens[self.i]
            digit, rest = token[1][0], token[1][1:]
            if rest and rest[0].isdigit():
                token[1] = rest  # the remaining digits stay in the stream
            elif rest:
                raise _Invalid  # "\frac1.5" and the like
            else:
                self.i += 1
            return Fraction(int(digit))
        raise _Invalid


@dataclass(frozen=True)
class _Parsed:
    value: Value
    compound: bool  # contains an operator (not just a signed number)
    decimals: int | None  # digits after the point when the text is a bare (signed) decimal numeral


def _analyse(expr: str) -> _Parsed | None:
    """Parse and evaluate; None when ``expr`` is not an arithmetic expression we support."""
    try:
        tokens = _tokenize(expr)
        if not tokens:
            return None
        parser = _Parser(tokens)
        value = parser.parse()
    except (_Invalid, ArithmeticError, ValueError, RecursionError):
        return None
    decimals = None
    if not parser.compound:
        numerals = [text for kind, text in tokens if kind == "num"]
        if len(numerals) == 1:
            decimals = len(numerals[0].partition(".")[2])
    return _Parsed(value, parser.compound, decimals)


_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))


def evaluate_arithmetic(expr: str) -> Fraction | None:
    """Exact value of a plain or LaTeX arithmetic expression, or None (unsupported, undefined, too large)."""
    if not isinstance(expr, str) or len(expr) > MAX_EXPRESSION_CHARS:
        return None
    expr = expr.strip()
    for left, right in _DELIMITERS:
        if len(expr) >= len(left) + len(right) and expr.startswith(left) and expr.endswith(right):
            expr = expr[len(left) : -len(right)]
            break
    parsed = _analyse(expr)
    return None if parsed is None else parsed.value


# ---------------------------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class ArithmeticClaim:
    start: int  # char span of the claim within the text passed in
    end: int
    expression: str  # left side as written
    claimed: str  # right side as written
    holds: bool | None  # None: could not be decided within the bounds (too large, unsupported)


# A "run": a maximal stretch of characters that can belong to a numeric expression or a relation between
# two. It starts with a non-space character; every alternative starts with a distinct character or is
# fixed-length, so the scan never backtracks more than a few characters. Escaped brackets (\( \[ \{) are not
# part of a run: they delimit math.
_RUN_CHARS = "0-9+\\-*/^!×·÷−⋅∗=≈"  # single characters that are always part of a run (tried first: fastest)
_RUN_OTHER = (
    r"(?<=[0-9])\{,\}(?=[0-9])"
    r"|(?<!\\)[()\[\]{}]"
    r"|(?<!\\)\\(?:cdot|times|div|frac|dfrac|tfrac|sqrt|binom|left|right|approx)(?![A-Za-z])"
    r"|(?<!\\)\\[,;:! ]"
    r"|\.(?=[0-9])|(?<=[0-9]),(?=[0-9]{3}(?![0-9]))"
)
_RUN = re.compile(r"(?:[" + _RUN_CHARS + r"]|" + _RUN_OTHER + r")(?:[" + _RUN_CHARS + r" \t]|" + _RUN_OTHER + r")*")
# The leading look-ahead lets the scan reject most positions on one character test.
_RELATION = re.compile(r"(?=[=≈\\])(?:=+|≈|(?<!\\)\\approx(?![A-Za-z]))")
_DIGIT = re.compile(r"[0-9]")
_BINARY_START = re.compile(r"(?:[*/^!×·÷⋅∗=≈]|\\(?:cdot|times|div|approx)(?![A-Za-z]))")
_SIGN_START = re.compile(r"[-+−]")
_OPERATOR_END = re.compile(r"(?:[-+*/^×·÷−⋅∗]|\\(?:cdot|times|div|frac|dfrac|tfrac|sqrt|binom|left|right)|[(\[{])\s*\Z")
# What may touch a side without a space: math delimiters and punctuation, never a letter or digit.
_PREV_OK = frozenset("$([{,;:&")
_NEXT_OK = frozenset("$,;:&?")
_NEXT_COMMAND_OK = re.compile(
    r"\\(?:[)\]\\]|(?:text|textrm|mathrm|mbox|quad|qquad|end|tag|label|pmod|bmod|mod|ldots|dots|cdots"
    r"|hfill|implies|Rightarrow)(?![A-Za-z]))"
)
_WORDISH_PREV = re.compile(r"[0-9A-Za-z_)\]}'|\\]")


@dataclass(frozen=True)
class _Link:
    """One relation of a run, with the validated spans of its numeric sides (None: not a numeric side)."""

    relation: str  # "=", "approx" or "other" ("==", "!=")
    left: tuple[int, int] | None
    right: tuple[int, int] | None


def _links(text: str) -> Iterator[_Link]:
    """Every relation inside a numeric run, in order, for at most MAX_RELATION_RUNS runs."""
    pos = 0
    for _ in range(MAX_RELATION_RUNS):
        match = _RELATION.search(text, pos)
        if match is None:
            return
        run = _run_around(text, match.start())
        if run is None:
            pos = match.end()
            continue
        start, end = run
        if start < 0:  # over-long run: every relation in it is skipped at once
            pos = max(end, match.end())
            continue
        relations = list(_RELATION.finditer(text, start, end))
        bounds = [start] + [x for m in relations for x in (m.start(), m.end())] + [end]
        for k, rel in enumerate(relations):
            left = _left_side(text, bounds[2 * k], rel.start(), start if k == 0 else -1)
            right = _right_side(text, rel.end(), bounds[2 * k + 3], end if k == len(relations) - 1 else -1)
            yield _Link(_relation_kind(text, rel), left, right)
        pos = end


def _relation_kind(text: str, rel: re.Match[str]) -> str:
    symbol = rel.group()
    if symbol in ("≈", "\\approx"):
        return "approx"
    if symbol == "=" and not (rel.start() > 0 and text[rel.start() - 1] == "!"):
        return "="
    return "other"  # "==", and "!=" (read as "not equal", not as a factorial)


def _run_around(text: str, index: int) -> tuple[int, int] | None:
    """The run containing ``index``; None when there is none or it has no digit nearby, and ``(-1, end)``
    when it is too long to hold a claim (``end``: where scanning may resume)."""
    hi = min(len(text), index + _WINDOW)
    if _DIGIT.search(text, max(0, index - _WINDOW), hi) is None:
        return None
    # Look back a little first, then as far as a side may reach: a run found well inside the scanned
    # range cannot have been cut by where the scan began.
    for reach in (64, _WINDOW):
        lo = max(0, index - reach)
        for match in _RUN.finditer(text, lo, hi):
            if match.end() > index:
                break
        else:
            return None
        start, end = match.span()
        if start > index:
            return None
        if hi < len(text) and end >= hi:
            tail = _RUN.match(text, index)
            return -1, tail.end() if tail is not None else index + 1
        if lo == 0 or start >= lo + _EDGE:
            return start, end
    return -1, end


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in " \t":
        start += 1
    while end > start and text[end - 1] in " \t":
        end -= 1
    return start, end


def _left_side(text: str, start: int, end: int, run_start: int) -> tuple[int, int] | None:
    """Validated span of a relation's left side; ``run_start >= 0`` when the side opens its run."""
    start, end = _strip(text, start, end)
    if start >= end or _BINARY_START.match(text, start, end):
        return None
    opened = _unmatched_openers(text, start, end)
    if opened is None:
        return None
    if opened:  # "(3 + 4 = 7)": drop the opening bracket that belongs to the surrounding text
        start, end = _strip(text, opened[-1] + 1, end)
        if start >= end or _BINARY_START.match(text, start, end):
            return None
    if run_start >= 0:
        prev = text[run_start - 1] if run_start > 0 else ""
        signed = _SIGN_START.match(text, start, end) is not None
        if prev == "" or prev.isspace():  # a space before: fine, unless a sign makes it "x - 3"
            if signed and _WORDISH_PREV.match(_prev_non_space(text, run_start)):
                return None
        elif prev not in _PREV_OK:
            return None  # "f(3)", "x^2", "a_1": the run continues something that is not a number
    return start, end


def _right_side(text: str, start: int, end: int, run_end: int) -> tuple[int, int] | None:
    """Validated span of a relation's right side; ``run_end >= 0`` when the side closes its run."""
    start, end = _strip(text, start, end)
    if start >= end or _BINARY_START.match(text, start, end):
        return None
    cut = _first_unmatched_closer(text, start, end)
    if cut == -2:
        return None
    if cut >= 0:
        if text[cut:end].strip(" \t)]}") not in ("", "\\right"):
            return None
        start, end = _strip(text, start, cut)
        if end - start >= 6 and text.endswith("\\right", start, end):
            start, end = _strip(text, start, end - 6)
        if start >= end:
            return None
    if _OPERATOR_END.search(text, max(start, end - 8), end):
        return None  # "= 3 \cdot x": the expression goes on with a variable
    if run_end >= 0 and end == run_end and run_end < len(text) and not _next_ok(text, run_end):
        return None  # "= 12x", "= 0.\overline{3}", "= 50\%"
    return start, end


def _next_ok(text: str, index: int) -> bool:
    nxt = text[index]
    if nxt.isspace() or nxt in _NEXT_OK:
        return True
    if nxt == ".":  # a full stop, not "0.\overline{3}"
        after = text[index + 1 : index + 2]
        return after == "" or after.isspace() or after == "$" or text.startswith(("\\)", "\\]"), index + 1)
    return nxt == "\\" and _NEXT_COMMAND_OK.match(text, index) is not None


def _prev_non_space(text: str, index: int) -> str:
    """The character before the spaces that precede ``index`` (looks back a bounded distance)."""
    k = index - 1
    while k >= 0 and index - k < 64 and text[k] in " \t":
        k -= 1
    return text[k] if k >= 0 else ""


def _unmatched_openers(text: str, start: int, end: int) -> list[int] | None:
    """Positions of brackets left open in ``text[start:end]``; None when the brackets cannot be a prefix of
    a larger bracket (a mismatch, a stray closer, or an opener left open after other content)."""
    stack: list[int] = []
    for k in range(start, end):
        ch = text[k]
        if ch in _CLOSING:
            stack.append(k)
        elif ch in ")]}":
            if not stack or _CLOSING[text[stack[-1]]] != ch:
                return None
            stack.pop()
    if stack and text[start : stack[-1]].replace("\\left", "").strip(" \t([{"):
        return None
    return stack


def _first_unmatched_closer(text: str, start: int, end: int) -> int:
    """Position of the first closer without an opener (-1: none; -2: brackets are broken)."""
    stack: list[str] = []
    for k in range(start, end):
        ch = text[k]
        if ch in _CLOSING:
            stack.append(ch)
        elif ch in ")]}":
            if not stack:
                return k
            if _CLOSING[stack.pop()] != ch:
                return -2
    return -2 if stack else -1


def _judge(left: _Parsed, right: _Parsed, approx: bool) -> bool | None:
    if left.value is None or right.value is None:
        return None
    if left.value == right.value or _rounds_to(left.value, right, approx) or _rounds_to(right.value, left, approx):
        return True
    return None if approx else False


def _rounds_to(value: Fraction, numeral: _Parsed, approx: bool) -> bool:
    """A written decimal matches ``value`` truncated or rounded to its digits (integers only under ≈)."""
    if numeral.decimals is None or numeral.value is None or (numeral.decimals == 0 and not approx):
        return False
    scale = 10**numeral.decimals
    target = numeral.value * scale
    scaled = value * scale
    return target in (math.trunc(scaled), round(scaled), math.floor(scaled + Fraction(1, 2)))


def find_arithmetic_claims(text: str, *, max_claims: int = 64) -> list[ArithmeticClaim]:
    """Equalities (and ≈) between numeric expressions, at least one side computed, each with its verdict.

    A claim is one link ``A = B`` of a run of numeric characters (digits, operators, brackets, \\frac,
    \\sqrt, \\cdot, ...) whose sides both parse and at least one contains an operator, so each link of
    ``2+2 = 4 = 2^2`` counts. A side that touches a variable or function (``x + 2``, ``2x``, ``f(3)``,
    ``x^2``, ``= 7x``, ``= 50\\%``) is not numeric. ``holds`` is exact, except that a written decimal
    matches a value truncated or rounded to its digits (``\\frac{1}{3} = 0.333``), and ≈ is never False
    (True when it rounds, else None). Undecidable values (too large, irrational, division by zero,
    ``2\\frac{1}{2}``) give None. ``!=`` and ``==`` are not claims.
    """
    if max_claims < 0:
        raise ValueError(f"max_claims must be >= 0, got {max_claims}")
    if not isinstance(text, str):
        return []
    claims: list[ArithmeticClaim] = []
    cache: dict[tuple[int, int], _Parsed | None] = {}
    for link in _links(text):
        if len(claims) >= max_claims:
            break
        if link.relation == "other" or link.left is None or link.right is None:
            continue
        left = _parsed_span(text, link.left, cache)
        right = _parsed_span(text, link.right, cache)
        if left is None or right is None or not (left.compound or right.compound):
            continue
        claims.append(
            ArithmeticClaim(
                start=link.left[0],
                end=link.right[1],
                expression=text[link.left[0] : link.left[1]],
                claimed=text[link.right[0] : link.right[1]],
                holds=_judge(left, right, link.relation == "approx"),
            )
        )
    return claims


def _parsed_span(text: str, span: tuple[int, int], cache: dict[tuple[int, int], _Parsed | None]) -> _Parsed | None:
    if span not in cache:
        cache[span] = _analyse(text[span[0] : span[1]])
    return cache[span]


# -------------------------------------------------------------------------------------------- quantities


def _canonical(value: Value) -> str | None:
    """``str(Fraction)``: 0.5, 1/2 and \\frac{1}{2} all become "1/2"."""
    if value is None or value.numerator.bit_length() > MAX_KEY_BITS or value.denominator.bit_length() > MAX_KEY_BITS:
        return None
    return str(value)


_PLAIN_NUMBER = r"[0-9]{1,3}(?:(?:,|\{,\})[0-9]{3}(?![0-9]))+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"
_NUMERAL = re.compile(
    r"(?=[\\0-9])(?:\\[dt]?frac[ \t]*\{[ \t]*(?P<fnum>"
    + _PLAIN_NUMBER
    + r")[ \t]*\}[ \t]*\{[ \t]*(?P<fden>"
    + _PLAIN_NUMBER
    + r")[ \t]*\}"
    r"|\\[dt]?frac[ \t]*(?P<snum>[0-9])(?P<sden>[0-9])(?![0-9])"
    r"|(?<![0-9.])(?P<num>" + _PLAIN_NUMBER + r")(?:[ \t]*/[ \t]*(?P<den>" + _PLAIN_NUMBER + r")(?![0-9.]))?)"
)
_UNARY_CONTEXT = frozenset("=([{,;:$&<>\n")


def _numeral_value(text: str, match: re.Match[str]) -> Value:
    groups = match.groupdict()
    if groups["fnum"] is not None:
        return _div(_literal(groups["fnum"]), _literal(groups["fden"]))
    if groups["snum"] is not None:
        return _div(Fraction(int(groups["snum"])), Fraction(int(groups["sden"])))
    value = _literal(groups["num"])
    if groups["den"] is not None:
        value = _div(value, _literal(groups["den"]))
    if value is not None and _negated(text, match.start()):
        value = -value
    return value


def _negated(text: str, index: int) -> bool:
    """A minus right before a numeral is a sign when nothing that could be an operand precedes it."""
    k = index - 1
    while k >= 0 and index - k < 8 and text[k] in " \t":
        k -= 1
    if k < 0 or text[k] not in "-−":
        return False
    before = _prev_non_space(text, k)
    return before == "" or before in _UNARY_CONTEXT


def quantities_in(text: str) -> set[str]:
    """Canonical numbers in ``text``: numerals, fractions, and the values of numeric sides of equalities."""
    if not isinstance(text, str):
        return set()
    found: set[str] = set()
    for count, match in enumerate(_NUMERAL.finditer(text)):
        if count >= MAX_NUMERALS or len(found) >= MAX_QUANTITIES:
            return found
        if match.end() - match.start() > 2 * MAX_LITERAL_CHARS:
            continue
        key = _canonical(_numeral_value(text, match))
        if key is not None:
            found.add(key)
    cache: dict[tuple[int, int], _Parsed | None] = {}
    for link in _links(text):
        if len(found) >= MAX_QUANTITIES:
            break
        for span in (link.left, link.right):
            parsed = None if span is None else _parsed_span(text, span, cache)
            key = None if parsed is None else _canonical(parsed.value)
            if key is not None:
                found.add(key)
    return found


_BOXED = re.compile(r"\\(?:boxed|fbox)[ \t]*\{")
# "so/therefore ... is N": find "is N" first (a cheap literal-led scan), then look back within the sentence.
_IS_NUMBER = re.compile(r"\b(?:is|equals|are|be)[ \t]+(?:\$\$?[ \t]*|\\[(\[][ \t]*)?(?=[-−0-9(\[{\\])", re.IGNORECASE)
_CONCLUDES = re.compile(r"\b(?:so|therefore|thus|hence)\b", re.IGNORECASE)
_CONCLUSION_REACH = 120
_MAX_CONCLUSIONS = 1024
_MAX_BOXED = 64
_MAX_BOXED_CHARS = 512


def key_quantities(reference_solution: str, *, max_keys: int = 16) -> list[str]:
    """Numeric results a reference solution reaches, canonical, de-duplicated in order of appearance.

    Sources: right-hand sides of equalities (``x = 3 \\cdot 4 = 12`` gives 12), ``\\boxed{}`` contents, and
    "so/therefore/thus/hence ... is N". The trivial values 0, 1, 2 and -1 are left out.
    """
    if max_keys < 0:
        raise ValueError(f"max_keys must be >= 0, got {max_keys}")
    if not isinstance(reference_solution, str):
        return []
    text = reference_solution
    found: list[tuple[int, str]] = []
    cache: dict[tuple[int, int], _Parsed | None] = {}
    for link in _links(text):
        if link.relation == "=" and link.right is not None:
            _add_key(found, link.right[0], _parsed_span(text, link.right, cache))
    for count, match in enumerate(_BOXED.finditer(text)):
        if count >= _MAX_BOXED:
            break
        content = _braced(text, match.end())
        if content is not None:
            _add_key(found, match.start(), _boxed_value(text, content))
    for count, match in enumerate(_IS_NUMBER.finditer(text)):
        if count >= _MAX_CONCLUSIONS:
            break
        span = _conclusion(text, match)
        if span is not None:
            _add_key(found, span[0], _parsed_span(text, span, cache))
    found.sort(key=lambda item: item[0])
    keys: list[str] = []
    for _, key in found:
        if len(keys) >= max_keys:
            break
        if key not in keys:
            keys.append(key)
    return keys


def _conclusion(text: str, match: re.Match[str]) -> tuple[int, int] | None:
    """Span of N in "so/therefore/thus/hence ... is N" (same sentence), or None."""
    lo = max(0, match.start() - _CONCLUSION_REACH)
    lo = max(lo, text.rfind(".", lo, match.start()) + 1, text.rfind("\n", lo, match.start()) + 1)
    if _CONCLUDES.search(text, lo, match.start()) is None:
        return None
    run = _RUN.match(text, match.end())
    if run is None:
        return None
    relation = _RELATION.search(text, run.start(), run.end())
    if relation is None:
        return _right_side(text, run.start(), run.end(), run.end())
    return _right_side(text, run.start(), relation.start(), -1)


def _add_key(found: list[tuple[int, str]], position: int, parsed: _Parsed | None) -> None:
    key = None if parsed is None else _canonical(parsed.value)
    if key is not None and key not in _TRIVIAL_KEYS:
        found.append((position, key))


def _braced(text: str, start: int) -> tuple[int, int] | None:
    """Span of the brace group content that starts at ``start`` (just after "{"), scanning a bounded prefix."""
    depth = 1
    for k in range(start, min(len(text), start + _MAX_BOXED_CHARS)):
        ch = text[k]
        if ch == "{" and text[k - 1] != "\\":
            depth += 1
        elif ch == "}" and text[k - 1] != "\\":
            depth -= 1
            if depth == 0:
                return start, k
    return None


def _boxed_value(text: str, span: tuple[int, int]) -> _Parsed | None:
    content = text[span[0] : span[1]].strip()
    parsed = _analyse(content)
    if parsed is None and "=" in content:  # \boxed{x = 5}: the value after the last "="
        parsed = _analyse(content.rpartition("=")[2])
    return parsed


# ------------------------------------------------------------------------------------------- repetition

_SKETCH = 6  # smallest shingle hashes indexed per step; J >= 0.9 pairs share one with prob ~1 - 0.1^6
_BUCKET_CAP = 16
_CANDIDATE_CAP = 16


def repeated_steps(step_texts: Sequence[str], *, min_chars: int = 20) -> list[bool]:
    """True for a step that repeats an earlier one: equal up to whitespace and case, or a near duplicate
    (Jaccard >= NEAR_DUPLICATE_JACCARD of word 3-gram shingles). Steps shorter than ``min_chars`` (after
    whitespace normalisation) are never marked, nor matched against.

    Cost is linear in the total length: exact repeats are found by hashing the normalised text, near
    duplicates through an index of each step's few smallest shingle hashes (a bottom-k sketch), and each
    step is verified against at most a fixed number of candidates.
    """
    if min_chars < 0:
        raise ValueError(f"min_chars must be >= 0, got {min_chars}")
    result: list[bool] = []
    seen: set[str] = set()
    word_ids: dict[str, int] = {}
    shingle_sets: list[frozenset[tuple[int, ...]]] = []
    index: dict[int, list[int]] = {}
    for step in step_texts:
        words = step.casefold().split() if isinstance(step, str) else []
        normalised = " ".join(words)
        if len(normalised) < max(min_chars, 1):
            result.append(False)
            continue
        if normalised in seen:
            result.append(True)
            continue
        seen.add(normalised)
        # ids in order of first appearance: deterministic, unlike str hashes, so the output is too
        ids = [word_ids.setdefault(word, len(word_ids)) for word in words]
        shingles = frozenset(zip(ids, ids[1:], ids[2:], strict=False)) if len(ids) >= 3 else frozenset([tuple(ids)])
        sketch = heapq.nsmallest(_SKETCH, set(map(hash, shingles)))
        candidates: list[int] = []
        for h in sketch:
            for other in index.get(h, ()):
                if other not in candidates and len(candidates) < _CANDIDATE_CAP:
                    candidates.append(other)
        result.append(any(_jaccard(shingles, shingle_sets[c]) >= NEAR_DUPLICATE_JACCARD for c in candidates))
        me = len(shingle_sets)
        shingle_sets.append(shingles)
        for h in sketch:
            bucket = index.setdefault(h, [])
            if len(bucket) < _BUCKET_CAP:
                bucket.append(me)
    return result


def _jaccard(a: frozenset[tuple[int, ...]], b: frozenset[tuple[int, ...]]) -> float:
    if min(len(a), len(b)) < NEAR_DUPLICATE_JACCARD * max(len(a), len(b)):
        return 0.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)
