"""Text contrib operator (com.microsoft): Tokenizer, which skl2onnx writes in front of every
CountVectorizer / TfidfVectorizer.

Tokenizer splits each string of a [C] or [N, C] tensor into tokens and returns them padded to
one width: Y has X's shape plus a last axis as long as the longest row. Three ways to split:

- character tokenization (``separators == [""]`` or ``tokenexp == "."``): one token per
  character (Unicode code point);
- ``separators``: RE2 patterns applied one after the other: each cuts every piece left by the
  previous ones at its matches (the matched text is dropped); pieces shorter than
  ``mincharnum`` characters are dropped;
- ``tokenexp``: an RE2 pattern whose matches are the tokens; a match shorter than
  ``mincharnum`` is not a token, and the search goes on one character after its start.

``separators`` wins when both are given. With ``mark`` each row is framed by a start token
"\\x02" and an end token "\\x03"; ``pad_value`` fills the rest of the row after the end token.
When no string yields a token the last axis has size 0 (no marks either); an empty X gives
[0] for a [C] input and [N, 0] for an [N, C] input. These are onnxruntime's (the reference
implementation's) behaviours, checked by tests/contrib/test_contrib_text.py.

RE2 patterns run on Python's ``re`` (translated by :func:`pyonnx.ops.string.re2_to_python`,
compiled with ``re.ASCII`` since RE2's ``\\w \\d \\s \\b`` are ASCII-only). onnxruntime compiles
them with RE2's *longest match* option (leftmost-longest, POSIX style) while ``re`` returns the
leftmost-first match; :class:`_LongestMatcher` extends each ``re`` match to the longest one
starting at the same place. Patterns that ``re`` cannot run the same way are refused with an
error naming the node.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np

from pyonnx.errors import ExecutionError, UnsupportedOperatorError
from pyonnx.ops._common import check_alloc
from pyonnx.ops.registry import KernelContext, kernel
from pyonnx.ops.string import re2_to_python

MS = "com.microsoft"

_START_MARK = "\x02"  # ASCII "start of text", onnxruntime's start-of-row token
_END_MARK = "\x03"  # ASCII "end of text"

# A leading inline-flag group such as "(?i)": Python accepts global flags only at the very
# start, so the matcher keeps them in front when it wraps the pattern.
_LEADING_FLAGS = re.compile(r"\(\?[a-zA-Z]+\)")
# Any inline-flag group or flag-scoped group: "(?i)", "(?s:...)", "(?-i:...)".
_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z-]+)[:)]")
# RE2 patterns whose leftmost-first match is always the longest one: a literal (every match has
# its length), or one atom (a character, a class without nested brackets, a Perl class)
# repeated greedily, which runs as far as it can. Their matches need no extension.
_GREEDY_IS_LONGEST = re.compile(
    r"[^\\\[\](){}|?*+.^$]+"
    r"|(?:\[\^?\]?[^\[\]]*\]|\\[wdsWDS]|\\[^a-zA-Z0-9]|[^\\\[\](){}|?*+.^$])[+*]?")


def _where(ctx: KernelContext | None) -> str:
    """'Tokenizer node NAME' for messages (the node's name when the caller knows it)."""
    name = ctx.node_name if ctx is not None and ctx.node_name else ""
    return f"Tokenizer node {name!r}" if name else "Tokenizer"


class _LongestMatcher:
    """Leftmost-longest search for one RE2 pattern, built on Python's ``re``.

    ``re`` and RE2 agree on where the leftmost match starts (the first position from which the
    pattern can match at all); they may disagree on where it ends (``a|ab`` on "ab": ``re``
    takes "a", RE2 in longest-match mode "ab"). Whether some match from ``start`` ends at or
    after position ``t`` is monotone in ``t``, so a binary search over ``t`` with the pattern
    followed by the lookahead ``(?=(?s:.){0,k}\\Z)`` (at most k characters left) finds the
    longest end. The lookahead keeps the whole text visible, so ``\\b`` and ``$`` at the end of
    the match see the real next character.
    """

    def __init__(self, pattern: str, where: str) -> None:
        for flags in _FLAG_GROUP.findall(pattern):
            if "U" in flags:
                raise UnsupportedOperatorError(
                    f"{where}: regex {pattern!r} uses RE2's (?U) flag, which Python's re module "
                    f"(used by pyonnx for RE2 patterns) has no equivalent for; remove it (it does "
                    f"not change the tokens, onnxruntime matches longest)")
        # Python's re.ASCII restricts case folding to ASCII while RE2 folds all of Unicode:
        # a case-insensitive pattern is refused on non-ASCII text, where the two could differ.
        self.ignores_case = any("i" in f.split("-")[0] for f in _FLAG_GROUP.findall(pattern))
        self.pattern = pattern
        self._needs_extension = _GREEDY_IS_LONGEST.fullmatch(pattern) is None
        try:
            body = re2_to_python(pattern)
        except (ExecutionError, UnsupportedOperatorError) as e:
            raise type(e)(f"{where}: {e}") from None
        lead = _LEADING_FLAGS.match(body)
        self._flags = lead.group(0) if lead else ""
        self._body = body[lead.end():] if lead else body
        try:
            self._rx = re.compile(body, re.ASCII)
        except (re.error, ValueError) as e:  # ValueError: a (?u) flag, which RE2 rejects too
            raise ExecutionError(f"{where}: invalid regex {pattern!r} ({e}); onnxruntime "
                                 f"reads it as RE2 syntax") from None

    def _ends_at_or_after(self, text: str, start: int, end: int) -> bool:
        """Whether the pattern matches text[start:e] (in context) for some e >= end."""
        return _bounded(self._flags, self._body, len(text) - end).match(text, start) is not None

    def search(self, text: str, pos: int) -> tuple[int, int] | None:
        """(start, end) of the leftmost-longest match at or after ``pos``, or None."""
        m = self._rx.search(text, pos)
        if m is None:
            return None
        start, lo = m.span()
        if not self._needs_extension or lo == len(text) or \
                not self._ends_at_or_after(text, start, lo + 1):
            return start, lo  # re's match is already the longest (the common case)
        lo, hi = lo + 1, len(text)  # invariant: some match ends at or after lo
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._ends_at_or_after(text, start, mid):
                lo = mid
            else:
                hi = mid - 1
        return start, lo


@functools.lru_cache(maxsize=4096)
def _bounded(flags: str, body: str, k: int) -> re.Pattern[str]:
    """``body`` followed by 'at most k characters remain' (see :class:`_LongestMatcher`)."""
    return re.compile(f"{flags}(?:{body})(?=(?s:.){{0,{k}}}\\Z)", re.ASCII)


@functools.lru_cache(maxsize=256)
def _matcher(pattern: str, where: str) -> _LongestMatcher:
    """The compiled matcher of one pattern (kept across runs: compiling is the slow part)."""
    return _LongestMatcher(pattern, where)


def _split_on(text: str, sep: _LongestMatcher, mincharnum: int) -> list[str]:
    """The pieces of ``text`` between the matches of ``sep``, those of >= mincharnum chars."""
    pieces: list[str] = []
    pos = 0
    while True:
        # A match that is empty moves on by one character, which it drops (onnxruntime's way of
        # guaranteeing progress); past the end of the text there is neither match nor remainder.
        found = sep.search(text, pos) if pos <= len(text) else None
        if found is None:
            if pos <= len(text) and len(text) - pos >= mincharnum:
                pieces.append(text[pos:])
            return pieces
        start, end = found
        if start - pos >= mincharnum:
            pieces.append(text[pos:start])
        pos = end if end > start else start + 1


def _matches_of(text: str, rx: _LongestMatcher, mincharnum: int) -> list[str]:
    """The matches of ``rx`` in ``text`` that have at least ``mincharnum`` characters."""
    tokens: list[str] = []
    pos = 0
    while pos <= len(text):
        found = rx.search(text, pos)
        if found is None:
            break
        start, end = found
        if end - start >= mincharnum:
            tokens.append(text[start:end])
            pos = end
        else:  # too short: look again from the next character (overlapping what was matched)
            pos = start + 1
    return tokens


def _as_text(value: object, where: str) -> str:
    """One element of X as ``str`` (bytes must be UTF-8, as onnxruntime requires)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ExecutionError(f"{where}: input string {value!r} is not valid UTF-8 ({e})"
                                 ) from None
    return str(value)


@kernel("Tokenizer", versions=(1,), domain=MS)
def tokenizer(X: np.ndarray, *, mark: int, mincharnum: int, pad_value: str,
              separators: Sequence[str] | None = None, tokenexp: str | None = None,
              ctx: KernelContext | None = None) -> tuple[np.ndarray]:
    """Split each string of a [C] or [N, C] string tensor into tokens, padded to one width."""
    where = _where(ctx)
    if mincharnum <= 0:
        raise ExecutionError(f"{where}: mincharnum must be positive, got {mincharnum}")
    seps: list[_LongestMatcher] = []
    rx: _LongestMatcher | None = None
    if separators is not None:
        separators = [s.decode("utf-8") if isinstance(s, bytes) else s for s in separators]
        if not separators:
            raise ExecutionError(f"{where}: separators must not be an empty list")
        by_char = separators == [""]
        if not by_char:
            seps = [_matcher(s, where) for s in separators]
    elif tokenexp is not None:
        if isinstance(tokenexp, bytes):
            tokenexp = tokenexp.decode("utf-8")
        if not tokenexp:
            raise ExecutionError(f"{where}: tokenexp must not be empty")
        by_char = tokenexp == "."
        if not by_char:
            rx = _matcher(tokenexp, where)
    else:
        raise ExecutionError(f"{where}: needs either the separators or the tokenexp attribute")
    if by_char and mincharnum >= 2:
        raise ExecutionError(f"{where}: mincharnum {mincharnum} is too big for character "
                             f"tokenization (every token is one character)")

    X = np.asarray(X)
    if X.dtype != object and X.dtype.kind not in "US":
        raise ExecutionError(f"{where}: X must be a string tensor, got {X.dtype}")
    if X.ndim not in (1, 2):
        raise ExecutionError(f"{where}: X must be [C] or [N, C], got shape {X.shape}")
    if X.size == 0:
        return (np.empty(X.shape[:X.ndim - 1] + (0,), dtype=object),)

    matchers = seps if seps else [rx] if rx is not None else []
    ignores_case = any(m.ignores_case for m in matchers)
    rows: list[list[str]] = []
    for value in X.reshape(-1):
        text = _as_text(value, where)
        if ignores_case and not text.isascii():
            raise UnsupportedOperatorError(
                f"{where}: a case-insensitive pattern on non-ASCII text {text!r}: RE2 folds "
                f"case over all of Unicode, Python's re (with RE2's ASCII classes) only over "
                f"ASCII, so pyonnx cannot reproduce onnxruntime's tokens")
        if by_char:
            row = list(text)
        elif seps:
            row = [text]
            for sep in seps:
                row = [piece for part in row for piece in _split_on(part, sep, mincharnum)]
        else:
            assert rx is not None
            row = _matches_of(text, rx, mincharnum)
        rows.append(row)

    most = max(len(r) for r in rows)
    if most == 0:  # no tokens anywhere: an empty last axis, without marks
        return (np.empty(X.shape + (0,), dtype=object),)
    width = most + (2 if mark else 0)
    limit = ctx.max_tensor_bytes if ctx is not None else 1 << 40
    check_alloc(X.shape + (width,), object, limit, what=f"{where} output")
    out = np.full((len(rows), width), pad_value, dtype=object)
    for i, row in enumerate(rows):
        framed = [_START_MARK, *row, _END_MARK] if mark else row
        out[i, :len(framed)] = framed
    return (out.reshape(X.shape + (width,)),)
