"""Helpers of the attention kernels: grouped (GQA) batched matmuls and a guarded softmax.

Everything works on whole (batch, heads) stacks with one ``np.matmul`` call: query heads that
share a key/value head are folded into the row dimension of one matrix product, so grouped
query attention costs no copy of K or V and no Python loop over heads.
"""

from __future__ import annotations

import numpy as np


__all__ = ["split_heads", "merge_heads", "grouped_qk", "grouped_pv", "softmax_lastaxis_"]


def split_heads(x: np.ndarray, num_heads: int) -> np.ndarray:
    """(B, S, H*D) -> (B, H, S, D), a view."""
    b, s, hd = x.shape
    return x.reshape(b, s, num_heads, hd // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(B, H, S, D) -> (B, S, H*D)."""
    b, h, s, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, s, h * d)


def grouped_qk(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """q (B, Hq, Sq, D) @ k(B, Hkv, Skv, D)^T -> (B, Hq, Sq, Skv); head h uses kv head h // G."""
    b, hq, sq, d = q.shape
    hkv, skv = k.shape[1], k.shape[2]
    g = hq // hkv
    qg = q.reshape(b, hkv, g * sq, d)
    return np.matmul(qg, k.swapaxes(-1, -2)).reshape(b, hq, sq, skv)


def grouped_pv(p: np.ndarray, v: np.ndarray) -> np.ndarray:
    """p (B, Hq, Sq, Skv) @ v (B, Hkv, Skv, Dv) -> (B, Hq, Sq, Dv) with grouped heads."""
    b, hq, sq, skv = p.shape
    hkv, dv = v.shape[1], v.shape[3]
    g = hq // hkv
    return np.matmul(p.reshape(b, hkv, g * sq, skv), v).reshape(b, hq, sq, dv)


def softmax_lastaxis_(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in place; a row whose entries are all -inf becomes zeros.

    The zero row (not NaN) for a fully masked query is what the Attention spec requires and
    what runtimes do; subtracting the row max keeps exp() in range.
    """
    m = scores.max(axis=-1, keepdims=True)
    dead = np.isneginf(m)
    any_dead = bool(dead.any())
    if any_dead:
        m[dead] = 0
    scores -= m
    np.exp(scores, out=scores)
    s = scores.sum(axis=-1, keepdims=True)
    if any_dead:
        s[s == 0] = 1
    if scores.dtype in (np.float32, np.float64):
        np.reciprocal(s, out=s)
        scores *= s
    else:  # half types: one rounding per element, as a division in that type gives
        scores /= s
    return scores
