"""Safe exact arithmetic: a tokenizer and recursive-descent evaluator for plain and LaTeX expressions.

The input is untrusted model output, so everything here is bounded: the tokenizer is a linear scan (regular
expressions whose alternatives cannot backtrack over more than a few characters), numbers are capped at about
10,000 digits, and nesting at MAX_DEPTH. Nothing raises on any string; what cannot be decided within the bounds
comes back as ``None``. Arithmetic is exact (``Fraction``) and never uses eval.

:mod:`verl_pdai.core.step_checks` re-exports :func:`evaluate_arithmetic`; :mod:`verl_pdai.core.claims` and
:mod:`verl_pdai.core.quantities` build on the parser (``_analyse``) and the bounded operations.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "evaluate_arithmetic",
]

MAX_BITS = 33_300  # ~10,000 decimal digits: any larger value (or intermediate) is undecidable
MAX_DEPTH = 32  # nesting of groups and exponents; each level costs ~6 Python frames
MAX_FACTORIAL = 3000  # 3000! has 9,131 digits
MAX_BINOM_N = 20_000
MAX_ROOT_INDEX = 64
MAX_LITERAL_CHARS = 400  # also keeps int() below CPython's 4,300-digit conversion limit
MAX_EXPRESSION_CHARS = 2000  # evaluate_arithmetic gives up beyond this


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
