"""Symbolic dimensions: integer expressions over named dims, kept in one canonical spelling.

A dimension is an ``int`` (known), a ``str`` (a symbol or an expression over symbols) or ``None``
(unknown). The strings this module writes follow a small grammar::

    expr   := term (("+" | "-") term)*
    term   := factor ("*" factor)*
    factor := INT | SYMBOL | "(" expr ")" | "-" factor
            | "floor(" expr "/" INT ")" | "ceil(" expr "/" INT ")"
    SYMBOL := [A-Za-z_][A-Za-z0-9_.:]*

Internally an expression is a polynomial with integer coefficients whose variables ("atoms") are
symbols or ``floor(E/k)`` terms; ``ceil(E/k)`` is rewritten as ``floor((E+k-1)/k)`` and multiples
of ``k`` are taken out of a floor (``floor((2*N+3)/2)`` is ``N+1+floor(1/2)`` = ``N+1``), so two
expressions that these rules make equal print identically. Printing orders terms by degree and
name and puts the constant last: ``2*N*S+N+1``, ``floor((H+1)/2)``.

A string that does not parse (a dim_param such as ``"batch size"``) is one opaque symbol.
Arithmetic on an unknown (``None``) dim gives ``None``; arithmetic that is all integers gives an
``int``; nothing here guesses.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from pyonnx.ir.types import Dim

__all__ = [
    "Poly",
    "parse",
    "render",
    "dim_add",
    "dim_sub",
    "dim_mul",
    "dim_neg",
    "dim_floordiv",
    "dim_ceildiv",
    "dim_exact_div",
    "dim_prod",
    "is_concrete",
]

# monomial: sorted tuple of atom names (with repetition); () is the constant term
Monomial = tuple[str, ...]
Poly = dict[Monomial, int]

_TOKEN = re.compile(r"\s*(?:(\d+)|(floor|ceil)\s*\(|([A-Za-z_][A-Za-z0-9_.:]*)|(.))")


class _ParseError(ValueError):
    pass


def _const(c: int) -> Poly:
    return {(): c} if c else {}


def _atom(name: str) -> Poly:
    return {(name,): 1}


def _add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for m, c in b.items():
        v = out.get(m, 0) + sign * c
        if v:
            out[m] = v
        else:
            out.pop(m, None)
    return out


def _mul(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m = tuple(sorted(ma + mb))
            v = out.get(m, 0) + ca * cb
            if v:
                out[m] = v
            else:
                out.pop(m, None)
    return out


def _floordiv(a: Poly, k: int) -> Poly:
    """floor(a / k) for a positive integer k, with multiples of k taken out of the floor."""
    if k == 1:
        return dict(a)
    quotient: Poly = {}
    rest: Poly = {}
    for m, c in a.items():
        q, r = divmod(c, k)
        if q:
            quotient[m] = q
        if r:
            rest[m] = r
    if not rest:
        return quotient
    if set(rest) == {()}:  # 0 < r < k: floor(r/k) == 0
        return quotient
    inner = render(rest)
    assert isinstance(inner, str)
    body = inner if _is_name(inner) else f"({inner})"
    return _add(quotient, _atom(f"floor({body}/{k})"))


def _is_name(s: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.:]*", s) is not None


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise _ParseError(text)
            pos = m.end()
            if m.group(1):
                self.toks.append(("int", m.group(1)))
            elif m.group(2):
                self.toks.append(("fn", m.group(2)))
            elif m.group(3):
                self.toks.append(("name", m.group(3)))
            elif m.group(4) and not m.group(4).isspace():
                self.toks.append(("op", m.group(4)))
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, text: str | None = None) -> str:
        t = self.peek()
        if t is None or t[0] != kind or (text is not None and t[1] != text):
            raise _ParseError(str(t))
        self.i += 1
        return t[1]

    def expr(self) -> Poly:
        p = self.term()
        while (t := self.peek()) is not None and t == ("op", "+") or t == ("op", "-"):
            self.i += 1
            p = _add(p, self.term(), 1 if t[1] == "+" else -1)
        return p

    def term(self) -> Poly:
        p = self.factor()
        while self.peek() == ("op", "*"):
            self.i += 1
            p = _mul(p, self.factor())
        return p

    def factor(self) -> Poly:
        t = self.peek()
        if t is None:
            raise _ParseError("end")
        self.i += 1
        kind, text = t
        if kind == "int":
            return _const(int(text))
        if kind == "name":
            return _atom(text)
        if t == ("op", "-"):
            return _mul(_const(-1), self.factor())
        if t == ("op", "("):
            p = self.expr()
            self.take("op", ")")
            return p
        if kind == "fn":
            inner = self.expr()
            self.take("op", "/")
            k = int(self.take("int"))
            self.take("op", ")")
            if k <= 0:
                raise _ParseError("division by a non-positive number")
            if text == "ceil":
                inner = _add(inner, _const(k - 1))
            return _floordiv(inner, k)
        raise _ParseError(text)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> tuple[tuple[Monomial, int], ...]:
    try:
        p = _Parser(text)
        poly = p.expr()
        if p.peek() is not None:
            raise _ParseError(text)
    except (_ParseError, ValueError):
        poly = _atom(text)
    return tuple(sorted(poly.items()))


def parse(d: int | str) -> Poly:
    """The polynomial of a known or symbolic dim (an unparsable string is one symbol)."""
    if isinstance(d, int):
        return _const(d)
    return dict(_parse_cached(d))


def _mono_str(m: Monomial) -> str:
    return "*".join(m)


def render(p: Poly) -> int | str:
    """The dim a polynomial denotes: an ``int`` when constant, else its canonical string."""
    if not p:
        return 0
    if set(p) == {()}:
        return p[()]
    terms = sorted((m for m in p if m), key=lambda m: (-len(m), m))
    out = ""
    for m in terms:
        c = p[m]
        body = _mono_str(m)
        if c == 1:
            s = body
        elif c == -1:
            s = "-" + body
        else:
            s = f"{c}*{body}"
        out += s if not out or s.startswith("-") else "+" + s
    c = p.get((), 0)
    if c:
        out += f"+{c}" if c > 0 else str(c)
    return out


def is_concrete(d: Dim) -> bool:
    """Whether a dim is a known integer."""
    return isinstance(d, int) and not isinstance(d, bool)


def _binary(a: Dim, b: Dim, fn) -> Dim:  # type: ignore[no-untyped-def]
    if a is None or b is None:
        return None
    if is_concrete(a) and is_concrete(b):
        return fn(a, b, True)
    return render(fn(parse(a), parse(b), False))


def dim_add(a: Dim, b: Dim) -> Dim:
    """a + b."""
    return _binary(a, b, lambda x, y, c: x + y if c else _add(x, y))


def dim_sub(a: Dim, b: Dim) -> Dim:
    """a - b."""
    return _binary(a, b, lambda x, y, c: x - y if c else _add(x, y, -1))


def dim_mul(a: Dim, b: Dim) -> Dim:
    """a * b."""
    return _binary(a, b, lambda x, y, c: x * y if c else _mul(x, y))


def dim_neg(a: Dim) -> Dim:
    """-a."""
    return dim_mul(a, -1)


def dim_prod(dims: Iterable[Dim]) -> Dim:
    """The product of dims (1 for none)."""
    out: Dim = 1
    for d in dims:
        out = dim_mul(out, d)
    return out


def dim_floordiv(a: Dim, k: Dim) -> Dim:
    """floor(a / k); ``k`` must be a positive integer to stay symbolic, else the result is None."""
    if a is None or not is_concrete(k) or k <= 0:  # type: ignore[operator]
        return None
    if is_concrete(a):
        return a // k  # type: ignore[operator]
    return render(_floordiv(parse(a), k))  # type: ignore[arg-type]


def dim_ceildiv(a: Dim, k: Dim) -> Dim:
    """ceil(a / k) for a positive integer k."""
    if a is None or not is_concrete(k) or k <= 0:  # type: ignore[operator]
        return None
    return dim_floordiv(dim_add(a, k - 1), k)  # type: ignore[operator]


def dim_exact_div(a: Dim, b: Dim) -> Dim:
    """a / b when it divides exactly as polynomials (``6*N*S / (2*N)`` is ``3*S``), else None.

    Used where the spec guarantees exact division (the ``-1`` entry of Reshape), so a remainder
    means the facts do not determine the quotient, not that it is fractional.
    """
    if a is None or b is None:
        return None
    if is_concrete(a) and is_concrete(b):
        if b == 0 or a % b:  # type: ignore[operator]
            return None
        return a // b  # type: ignore[operator]
    pa, pb = parse(a), parse(b)
    if len(pb) != 1:
        if pa == pb:
            return 1
        return None
    (mb, cb), = pb.items()
    if cb == 0:
        return None
    out: Poly = {}
    for m, c in pa.items():
        rest = list(m)
        for atom in mb:
            if atom not in rest:
                return None
            rest.remove(atom)
        if c % cb:
            return None
        out[tuple(rest)] = out.get(tuple(rest), 0) + c // cb
    return render({m: c for m, c in out.items() if c})
