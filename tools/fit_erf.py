"""Regenerate the erf coefficients of src/pyonnx/ops/_elementwise.py (dev tool; needs mpmath).

erf(x) = x * P(x^2) on |x| < 1 (P fitted on t = x^2 in [0, 1]);
erfc(x) = exp(-x^2) * G(1/x - m) on [1, c] with m the midpoint of [1/c, 1].
Chebyshev fits at 50 digits (mpmath.chebyfit), coefficients rounded to double.
"""
import mpmath as mp

mp.mp.dps = 50


def fit(c: float, deg_p: int, deg_g: int):
    f1 = lambda t: mp.erf(mp.sqrt(t)) / mp.sqrt(t) if t > 0 else 2 / mp.sqrt(mp.pi)
    p = [float(k) for k in mp.chebyfit(f1, [0, 1], deg_p + 1)[::-1]]
    m = (1 + 1 / c) / 2
    f2 = lambda v: mp.erfc(1 / (v + m)) * mp.exp(1 / (v + m) ** 2)
    g = [float(k) for k in mp.chebyfit(f2, [1 / c - m, 1 - m], deg_g + 1)[::-1]]
    return p, g, m


if __name__ == "__main__":
    for name, c, dp, dg in (("64", 6.0, 11, 22), ("32", 4.0, 5, 7)):
        p, g, m = fit(c, dp, dg)
        print(f"_ERF_P{name} = {tuple(p)}\n_ERF_G{name} = {tuple(g)}\n_ERF_M{name} = {m}")
