"""Recurrent operators (LSTM, GRU, RNN) as loops over time steps, with ONNX's gate order,
directions, layouts, sequence lengths, clipping and peepholes."""

from __future__ import annotations

import torch

from pyonnx.backends.torch.ops import torch_op

_ACT = {"Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Relu": torch.relu}


def _activations_check(node):
    a = node.attributes.get("activations")
    if a is not None:
        names = [v.decode() if isinstance(v, bytes) else v for v in a.value]
        bad = [n for n in names if n not in _ACT]
        if bad:
            return f"activations {bad} are not implemented (only {sorted(_ACT)})"
    return None


def _acts(activations, default, num_dir):
    names = list(activations) if activations else default * num_dir
    names = [v.decode() if isinstance(v, bytes) else v for v in names]
    k = len(default)
    return [[_ACT[n] for n in names[d * k:(d + 1) * k]] for d in range(num_dir)]


def _reverse_within(x, lens):
    """x [seq, batch, ...] with each batch row's first lens[b] steps reversed."""
    if lens is None:
        return torch.flip(x, [0])
    seq = x.shape[0]
    t = torch.arange(seq, device=x.device).unsqueeze(1)
    n = lens.to(t.dtype).unsqueeze(0)
    idx = torch.where(t < n, n - 1 - t, t)
    return torch.gather(x, 0, idx.reshape(seq, -1, *([1] * (x.dim() - 2))).expand_as(x))


def _run(cell, x, states, lens, reverse):
    """Run ``cell(x_t, states) -> states`` over x [seq, batch, in]; the first state is H. Steps
    past a row's sequence length keep its state and output zeros."""
    seq = x.shape[0]
    if reverse:
        x = _reverse_within(x, lens)
    outs = []
    for t in range(seq):
        new = cell(x[t], states)
        if lens is not None:
            live = (t < lens).unsqueeze(1)
            new = tuple(torch.where(live, n, s) for n, s in zip(new, states))
            outs.append(torch.where(live, new[0], torch.zeros_like(new[0])))
        else:
            outs.append(new[0])
        states = new
    y = torch.stack(outs) if outs else x.new_zeros((0, x.shape[1], states[0].shape[-1]))
    if reverse:
        y = _reverse_within(y, lens)
    return y, states


def _recurrent(x, layout, direction, lens, run_dir, initial):
    """Common frame: layouts, directions, output stacking. ``run_dir(d, x, init_states)``
    runs direction d; ``initial`` lists the initial state tensors [num_dir, batch, H] or None."""
    if layout:
        x = x.transpose(0, 1)
        initial = [s.transpose(0, 1) if s is not None else None for s in initial]
    num_dir = 2 if direction == "bidirectional" else 1
    if lens is not None and bool((lens == x.shape[0]).all()):
        lens = None
    ys, finals = [], []
    for d in range(num_dir):
        reverse = direction == "reverse" or d == 1
        y, states = run_dir(d, x, [s[d] if s is not None else None for s in initial], lens,
                            reverse)
        ys.append(y)
        finals.append(states)
    y = torch.stack(ys, 1)  # [seq, num_dir, batch, H]
    outs = [y] + [torch.stack([f[i] for f in finals]) for i in range(len(finals[0]))]
    if layout:
        outs = [outs[0].permute(2, 0, 1, 3)] + [o.transpose(0, 1) for o in outs[1:]]
    return tuple(outs)


def _clip(v, clip):
    return torch.clamp(v, -clip, clip) if clip is not None else v


@torch_op("LSTM", 7, check=_activations_check)
def lstm(x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None, p=None,
         activation_alpha=None, activation_beta=None, activations=None, clip=None,
         direction="forward", hidden_size=None, input_forget=0, layout=0):
    h = r.shape[-1]
    num_dir = w.shape[0]
    acts = _acts(activations, ["Sigmoid", "Tanh", "Tanh"], num_dir)

    def run_dir(d, xs, init, lens, reverse):
        batch = xs.shape[1]
        h0 = init[0] if init[0] is not None else xs.new_zeros(batch, h)
        c0 = init[1] if init[1] is not None else xs.new_zeros(batch, h)
        bias = b[d, :4 * h] + b[d, 4 * h:] if b is not None else None
        pi, po, pf = (p[d, :h], p[d, h:2 * h], p[d, 2 * h:]) if p is not None else (0, 0, 0)
        f, g, hh = acts[d]
        xw = torch.matmul(xs, w[d].T)  # all time steps at once
        if bias is not None:
            xw = xw + bias
        rt = r[d].T
        steps = iter(range(xs.shape[0]))

        def cell(xt, states):
            t = next(steps)
            hp, cp = states
            z = xw[t] + torch.matmul(hp, rt)
            i, o, fg, c = z.chunk(4, -1)
            i = f(_clip(i + pi * cp, clip))
            fg = f(_clip(fg + pf * cp, clip))
            if input_forget:
                fg = 1 - i
            c = g(_clip(c, clip))
            cn = fg * cp + i * c
            o = f(_clip(o + po * cn, clip))
            return o * hh(cn), cn

        if reverse:
            xw = _reverse_within(xw, lens)
            y, st = _run(cell, xw, (h0, c0), lens, False)
            return _reverse_within(y, lens), st
        return _run(cell, xw, (h0, c0), lens, False)

    return _recurrent(x, layout, direction, sequence_lens, run_dir, [initial_h, initial_c])


@torch_op("GRU", 7, check=_activations_check)
def gru(x, w, r, b=None, sequence_lens=None, initial_h=None, activation_alpha=None,
        activation_beta=None, activations=None, clip=None, direction="forward", hidden_size=None,
        layout=0, linear_before_reset=0):
    h = r.shape[-1]
    num_dir = w.shape[0]
    acts = _acts(activations, ["Sigmoid", "Tanh"], num_dir)

    def run_dir(d, xs, init, lens, reverse):
        batch = xs.shape[1]
        h0 = init[0] if init[0] is not None else xs.new_zeros(batch, h)
        wb = b[d, :3 * h] if b is not None else torch.zeros(3 * h, dtype=xs.dtype, device=xs.device)
        rb = b[d, 3 * h:] if b is not None else torch.zeros(3 * h, dtype=xs.dtype, device=xs.device)
        f, g = acts[d]
        xw = torch.matmul(xs, w[d].T) + wb
        rz, rr, rh = r[d].chunk(3, 0)
        rbz, rbr, rbh = rb.chunk(3)
        if reverse:
            xw = _reverse_within(xw, lens)
        steps = iter(range(xs.shape[0]))

        def cell(_, states):
            t = next(steps)
            (hp,) = states
            xz, xr, xh = xw[t].chunk(3, -1)
            z = f(_clip(xz + hp @ rz.T + rbz, clip))
            rg = f(_clip(xr + hp @ rr.T + rbr, clip))
            if linear_before_reset:
                hc = g(_clip(xh + rg * (hp @ rh.T + rbh), clip))
            else:
                hc = g(_clip(xh + (rg * hp) @ rh.T + rbh, clip))
            return ((1 - z) * hc + z * hp,)

        y, st = _run(cell, xw, (h0,), lens, False)
        return (_reverse_within(y, lens) if reverse else y), st

    return _recurrent(x, layout, direction, sequence_lens, run_dir, [initial_h])


@torch_op("RNN", 7, check=_activations_check)
def rnn(x, w, r, b=None, sequence_lens=None, initial_h=None, activation_alpha=None,
        activation_beta=None, activations=None, clip=None, direction="forward", hidden_size=None,
        layout=0):
    h = r.shape[-1]
    num_dir = w.shape[0]
    acts = _acts(activations, ["Tanh"], num_dir)

    def run_dir(d, xs, init, lens, reverse):
        batch = xs.shape[1]
        h0 = init[0] if init[0] is not None else xs.new_zeros(batch, h)
        xw = torch.matmul(xs, w[d].T)
        if b is not None:
            xw = xw + b[d, :h] + b[d, h:]
        if reverse:
            xw = _reverse_within(xw, lens)
        (f,) = acts[d]
        steps = iter(range(xs.shape[0]))

        def cell(_, states):
            t = next(steps)
            return (f(_clip(xw[t] + states[0] @ r[d].T, clip)),)

        y, st = _run(cell, xw, (h0,), lens, False)
        return (_reverse_within(y, lens) if reverse else y), st

    return _recurrent(x, layout, direction, sequence_lens, run_dir, [initial_h])
