"""GRU and LSTM kernels: ``gru_stack`` / ``lstm_stack`` of nnet_recurrent.h (io_parallel, static state).

Per time step the firmware runs two dense products into ``accum_t`` (input and recurrent
weights, each with its own bias), adds them gate by gate in ``accum_t``, applies the recurrent
activation (``activation_recr``, normally the sigmoid table) and the state activation
(``activation``, normally the tanh table) with the table sizes and types of their own generated
configs, and combines the gates in full precision before assigning the new state to the layer's
result type.  The state starts at zero for every sample (``reset_state`` on the first step).
hls4ml's Vitis templates have no SimpleRNN, so that class stays unsupported.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from fpgadl.emulator.activations import lut_activation, table_lookup
from fpgadl.emulator.fastfixed import cast, cast_float, convert, float_cast_ok, round_saturate_float
from fpgadl.emulator.fixed import FixedType
from fpgadl.emulator.kernels_dense import DenseArithmetic, check_strategy, matrix
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    attr_type,
    fixed_type,
    input_types,
    register,
    require,
    result_type,
    weight_mantissas,
)


def _structs(layer) -> dict[str, str]:
    """Body text of every struct in the layer's generated config, by struct name."""
    text = layer.get_attr("config_cpp") or ""
    return {m.group(1): m.group(2) for m in re.finditer(r"struct (\w+)\s*:[^{]*\{(.*?)\n\};", text, re.S)}


def _named_type(layer, name: str) -> FixedType:
    for value in layer.attributes.values():
        if getattr(value, "name", None) == name and hasattr(value, "precision"):
            return fixed_type(layer, value.precision)
    raise UnsupportedLayerError(layer, f"cannot resolve type {name}")


def _activation(layer, structs, body: str, which: str, x_t: FixedType, res_t: FixedType):
    """The recurrent template's `activation_recr` / `activation` as a mantissa function."""
    fn = re.search(rf"using {which} = nnet::activation::(\w+)<", body)
    cfg = re.search(
        rf"typedef (\w+) {'ACT_CONFIG_(?:GRU|LSTM)' if which == 'activation_recr' else 'ACT_CONFIG_T'};", body
    )
    require(layer, fn is not None and cfg is not None, f"cannot read {which} from the config")
    name, act_cfg = fn.group(1), structs.get(cfg.group(1), "")
    if name == "relu":

        def relu(m):
            return convert(np.maximum(m, 0), x_t, res_t)

        relu.max_abs = res_t.max_mantissa
        return relu
    require(layer, name in ("sigmoid", "tanh"), f"recurrent activation nnet::activation::{name}")
    size = re.search(r"table_size = (\d+);", act_cfg)
    table = re.search(r"typedef (\w+) table_t;", act_cfg)
    require(layer, size is not None and table is not None, f"no table in the {which} config")
    return lut_activation(name, x_t, res_t, int(size.group(1)), _named_type(layer, table.group(1)))


def _mult(layer, structs, cfg_name: str, x_t: FixedType, w_key: str, b_key: str) -> DenseArithmetic:
    body = structs.get(cfg_name, "")
    accum = re.search(r"typedef (\w+) accum_t;", body)
    require(layer, accum is not None, f"no accum_t in {cfg_name}")
    accum_t = _named_type(layer, accum.group(1))
    w, w_t = matrix(layer, w_key)
    b, b_t = weight_mantissas(layer, b_key)
    # nnet::dense<data_T, accum_t, mult_config>: the product lands in accum_t itself
    arith = DenseArithmetic(layer, x_t, w, w_t, b, b_t, accum_t, accum_t)
    check_strategy(layer, arith)
    return arith


def _common(layer, kind: str):
    structs = _structs(layer)
    main = next((body for body in structs.values() if f"ACT_CONFIG_{kind}" in body), None)
    require(layer, main is not None, "no recurrent config found")
    values = dict(re.findall(r"static const \w+ (\w+)\s*=\s*(\w+);", main))
    require(layer, values.get("use_static") == "true", "non-static recurrent state")
    mult1 = re.search(r"typedef (\w+) mult_config1;", main).group(1)
    mult2 = re.search(r"typedef (\w+) mult_config2;", main).group(1)
    accum_t = attr_type(layer, "accum_t")
    (x_t,) = input_types(layer)
    res_t = result_type(layer)
    return structs, main, values, mult1, mult2, accum_t, x_t, res_t


def _gate_sum(a: DenseArithmetic, b: DenseArithmetic, accum_t: FixedType):
    """``(accum_t)(x + y)`` of two products' outputs (both in accum_t): the identity when the bounds
    the two products' types give prove the sum stays in range, else the wrapping/saturating cast."""
    bounds = [arith.float_plan[2] if arith.float_plan else None for arith in (a, b)]
    if None not in bounds and sum(bounds) <= min(accum_t.max_mantissa, -accum_t.min_mantissa):
        return lambda x, y: x + y
    return lambda x, y: cast(x + y, accum_t.frac, accum_t)


def _fits(layer, bound: int) -> None:
    """Gate products and state updates are formed exactly in int64: prove they cannot overflow."""
    require(layer, bound < 2**62, f"a state update can reach {bound.bit_length()} bits, more than int64 holds")


_PREPARED_STEPS = 32  # time steps whose input-side products are computed in one GEMM


def _sequence_kernel(
    layer, values, res_t, step, n_state_arrays, float_state: bool = False, prepare=None, first_step=None
):
    """The layer over its time steps; with ``float_state`` the step keeps its state (and returns its
    output) as float64 mantissas and takes float inputs too.  ``prepare(data) -> (n, n_seq, ...)``, when
    given, computes what depends on the inputs alone for up to ``_PREPARED_STEPS`` time steps at once (one
    GEMM instead of one per step, memory still bounded for long sequences); the step then receives its
    time step's slice of it.  ``first_step``, when given, replaces ``step`` at time step 0 (the states are
    all zero there)."""
    n_seq, n_in = int(values["n_sequence"]), int(values["n_in"])
    n_state, n_seq_out = int(values["n_state"]), int(values["n_sequence_out"])
    out_shape = tuple(int(d) for d in layer.get_output_variable().shape)
    state_dtype = np.float64 if float_state else np.int64

    def kernel(x):
        n = x.shape[0]
        data = x.reshape(n, n_seq, n_in)
        states = [np.zeros((n, n_state), dtype=state_dtype) for _ in range(n_state_arrays)]
        outs = []
        for t in range(n_seq):
            if prepare is not None and t % _PREPARED_STEPS == 0:
                prepared = prepare(data[:, t : t + _PREPARED_STEPS])
            run = first_step if t == 0 and first_step is not None else step
            states = run(data[:, t] if prepare is None else prepared[:, t % _PREPARED_STEPS], states)
            outs.append(states[0])
        y = np.stack(outs, axis=1) if n_seq_out > 1 else states[0]
        return y.reshape((n, *out_shape))

    # per-sample int64 elements alive inside one step (gates of both products plus temporaries),
    # which the runner sizes its batches by
    kernel.work_width = 12 * n_state
    kernel.float_in = float_state
    return kernel


def _float_step_bounds(dense_x: DenseArithmetic, dense_h: DenseArithmetic, sigma, act) -> tuple[int, int] | None:
    """(|tx| bound, |th| bound) when both products run as float GEMMs with no cast after them and the
    activations are power-of-two table lookups: the GRU's float step applies; else None."""
    plans = [d.float_plan for d in (dense_x, dense_h)]
    if None in plans or any(p[1] for p in plans):
        return None
    if getattr(sigma, "float_lookup", None) is None or getattr(act, "float_lookup", None) is None:
        return None
    return plans[0][2], plans[1][2]


def _assign(bound: int, frac: int, t: FixedType, dtype=np.float64, prescaled: bool = False):
    """``(t) v`` on float mantissas |v| <= bound of `frac` fractional bits, or None if not exact in float64.

    When the rounded value provably stays in t's range, overflow never acts and a wrapping t is
    assigned as a saturating one (one clip instead of the wrap's five passes: same values).  With
    ``prescaled`` the function takes v * 2**(t.frac - frac) (the caller folded the power of two into
    its weights or tables) and only rounds and saturates."""
    rounded = ((bound >> max(0, frac - t.frac)) + 1) << max(0, t.frac - frac)
    in_range = rounded <= min(t.max_mantissa, -t.min_mantissa)
    if in_range and frac == t.frac:
        return lambda v: v  # same grid, no overflow: the assignment changes nothing
    if in_range and t.saturation == "WRAP" and not t.saturation_bits:
        t = replace(t, saturation="SAT")
    if not float_cast_ok(bound, frac, t, dtype):
        return None
    if prescaled:
        return lambda v: round_saturate_float(v, frac - t.frac, t)
    return lambda v: cast_float(v, frac, t)


def _gru_float_step(dense_x, dense_h, sigma, act, accum_t: FixedType, res_t: FixedType, n: int, pytorch_order):
    """(prepare, step): the GRU step on float64 mantissas, or None when the types do not prove every value
    exact there.

    Same statements as the int64 step; every product and sum is an integer below 2**53 (checked from
    the types' bounds), so float64 holds it exactly, and scaling by a power of two keeps it exact.  So
    the powers of two the step would multiply by are folded into constants: the z/r gate columns of
    both weight matrices by the sigmoid's index scale (when the gate sum needs no cast), the sigmoid
    table by 2**-fa (r * tmpres_state_h lands on accum_t's grid, z on the output's), the tanh table and
    the output sum by the result type's scale.  The input-side GEMM runs for all time steps at once."""
    bounds = _float_step_bounds(dense_x, dense_h, sigma, act)
    if bounds is None:
        return None
    tx_max, th_max = bounds
    fa, fh = accum_t.frac, res_t.frac
    f = max(2 * fa, fh + fa)
    h_max = max(-res_t.min_mantissa, res_t.max_mantissa)
    gate = _assign(tx_max + th_max, fa, accum_t)  # (accum_t)(tmpres + tmpres_state_zr)
    gate_cast = tx_max + th_max > min(accum_t.max_mantissa, -accum_t.min_mantissa)
    state_h_max = (sigma.max_abs * th_max >> fa) + 1
    state_h = _assign(sigma.max_abs * th_max, 2 * fa, accum_t, prescaled=True)  # tmpres_state_h
    pre_h = _assign(tx_max + state_h_max, fa, accum_t)
    total_max = act.max_abs * ((1 << fa) + sigma.max_abs) * 2 ** (f - 2 * fa) + h_max * sigma.max_abs * 2 ** (
        f - fh - fa
    )
    out = _assign(total_max, f, res_t, prescaled=True)
    ls, la = sigma.float_lookup, act.float_lookup
    if None in (gate, state_h, pre_h, out) or sigma.max_abs * th_max >= 2**53 or total_max >= 2**53:
        return None
    if min(ls.scale, 2.0**-fa, 2.0 ** (fh - fa)) < 2.0**-60:  # folded scales stay far from float32 underflow
        return None
    zr_scale = 1.0 if gate_cast else ls.scale  # a cast between the sum and the index keeps the scale apart
    prepare, wh_s, bh_h = _gru_folded_products(dense_x, dense_h, n, zr_scale)
    tab_rz, tab_h = ls.table * 2.0**-fa, la.table * 2.0 ** (fh - fa)

    def step(tx, states):
        (h,) = states
        th = np.matmul(h.astype(wh_s.dtype, copy=False), wh_s)  # tmpres_state_zr, without its bias
        q = th[:, : 2 * n] + tx[:, : 2 * n]
        if gate_cast:
            q = gate(q)
            q *= ls.scale
        rz = table_lookup(tab_rz, q, ls.offset)  # tmpres_zr * 2**-fa
        r, z = (rz[:, :n], rz[:, n:]) if pytorch_order else (rz[:, n:], rz[:, :n])
        p = th[:, 2 * n :] + bh_h
        p *= r
        p = state_h(p)  # tmpres_state_h
        p += tx[:, 2 * n :]
        p = pre_h(p)
        p *= la.scale
        hh = table_lookup(tab_h, p, la.offset)  # tmpres_h, scaled
        # (res_T)(tmpres_h * (1 - z) + h_state * z), every term scaled onto res_T's grid
        total = np.subtract(1.0, z)
        total *= hh
        total += h * z
        return [out(total)]

    return prepare, step


def _gru_folded_products(dense_x, dense_h, n: int, zr_scale: float):
    """(prepare, recurrent weights, recurrent bias of the candidate gate) of the float GRU step: the z/r
    columns of both weight matrices scaled by `zr_scale` (a power of two: exact), both biases of the gate
    sum moved to the input side.  The input weights carry the bias as one more row, read by a column of
    ones: the sequence's GEMM writes tmpres of every step in one float64 pass (no bias pass over an
    array beyond the cache)."""
    col = np.r_[np.full(2 * n, zr_scale), np.ones(n)]
    (wx, bx), (wh, bh) = dense_x.float_weights(), dense_h.float_weights()
    b_zr = (bx[: 2 * n].astype(np.float64) + bh[: 2 * n]) * zr_scale
    wx_b = np.vstack([wx.astype(np.float64) * col, np.r_[b_zr, bx[2 * n :]]])

    def prepare(data: np.ndarray) -> np.ndarray:
        nb, n_seq, n_in = data.shape
        x1 = np.empty((nb * n_seq, n_in + 1))
        x1[:, :n_in] = data.reshape(nb * n_seq, n_in)
        x1[:, n_in] = 1.0
        return np.matmul(x1, wx_b).reshape(nb, n_seq, 3 * n)  # tmpres, every step

    return prepare, wh * col.astype(wh.dtype), bh[2 * n :].astype(np.float64)


@register("GRU")
def gru(layer):
    structs, main, values, mult1, mult2, accum_t, x_t, res_t = _common(layer, "GRU")
    n = int(values["n_state"])
    pytorch_order = values.get("pytorch_order") == "true"
    dense_x = _mult(layer, structs, mult1, x_t, "weight", "bias")
    dense_h = _mult(layer, structs, mult2, res_t, "recurrent_weight", "recurrent_bias")
    sigma = _activation(layer, structs, main, "activation_recr", accum_t, accum_t)
    act = _activation(layer, structs, main, "activation", accum_t, accum_t)
    fa = accum_t.frac
    one = 1 << fa
    fh = res_t.frac
    f = max(2 * fa, fh + fa)
    acc_max, h_max = 1 << (accum_t.width - 1), max(-res_t.min_mantissa, res_t.max_mantissa)
    _fits(layer, sigma.max_abs * acc_max)  # r * tmpres_state_zr
    _fits(layer, act.max_abs * (one + sigma.max_abs) * 2 ** (f - 2 * fa) + h_max * sigma.max_abs * 2 ** (f - fh - fa))

    add = _gate_sum(dense_x, dense_h, accum_t)
    fast = _gru_float_step(dense_x, dense_h, sigma, act, accum_t, res_t, n, pytorch_order)
    if fast is not None:
        prepare, fast_step = fast
        return _sequence_kernel(layer, values, res_t, fast_step, 1, float_state=True, prepare=prepare)

    def step(x, states):
        (h,) = states
        tx = dense_x(x)  # tmpres
        th = dense_h(h)  # tmpres_state_zr
        zr = sigma(add(tx[:, : 2 * n], th[:, : 2 * n]))  # tmpres_zr
        r, z = (zr[:, :n], zr[:, n:]) if pytorch_order else (zr[:, n:], zr[:, :n])
        state_h = cast(r * th[:, 2 * n :], 2 * fa, accum_t)  # tmpres_state_h
        hh = act(cast(tx[:, 2 * n :] + state_h, fa, accum_t))  # tmpres_h
        # (res_T)(tmpres_h * (1 - z) + h_state * z), all in full precision
        total = ((hh * (one - z)) << (f - 2 * fa)) + ((h * z) << (f - fh - fa))
        return [cast(total, f, res_t)]

    return _sequence_kernel(layer, values, res_t, step, 1)


@register("LSTM")
def lstm(layer):
    structs, main, values, mult1, mult2, accum_t, x_t, res_t = _common(layer, "LSTM")
    n = int(values["n_state"])
    dense_x = _mult(layer, structs, mult1, x_t, "weight", "bias")
    dense_h = _mult(layer, structs, mult2, res_t, "recurrent_weight", "recurrent_bias")
    sigma = _activation(layer, structs, main, "activation_recr", accum_t, accum_t)
    act = _activation(layer, structs, main, "activation", accum_t, accum_t)
    act_state = _activation(layer, structs, main, "activation", res_t, accum_t)  # tanh(s_state)
    fa, fr = accum_t.frac, res_t.frac
    ifo_index = np.r_[0 : 2 * n, 3 * n : 4 * n]
    f = max(2 * fa, fr + fa)
    s_max = max(-res_t.min_mantissa, res_t.max_mantissa)
    _fits(layer, act.max_abs * sigma.max_abs * 2 ** (f - 2 * fa) + s_max * sigma.max_abs * 2 ** (f - fr - fa))
    _fits(layer, sigma.max_abs * act_state.max_abs)  # o * tanh(s_state)

    add = _gate_sum(dense_x, dense_h, accum_t)

    def update(ifo, c, s):
        """The new states from tmpres_ifo, tmpres_c and s_state (both time steps below share it)."""
        # s_state = tmpres_c * i + s_state * f, assigned to res_T
        s = cast(((c * ifo[:, :n]) << (f - 2 * fa)) + ((s * ifo[:, n : 2 * n]) << (f - fr - fa)), f, res_t)
        h = cast(ifo[:, 2 * n :] * act_state(s), 2 * fa, res_t)  # h_state = o * tanh(s_state)
        return [h, s]

    fast = _lstm_gates_step(layer, dense_x, dense_h, sigma, act, act_state, add, update, res_t, n)
    if fast is not None:
        first_step, fast_step = fast
        return _sequence_kernel(layer, values, res_t, fast_step, 2, first_step=first_step)

    def step(x, states):
        h, s = states
        tx, th = dense_x(x), dense_h(h)
        ifo = sigma(add(tx[:, ifo_index], th[:, ifo_index]))  # tmpres_ifo
        c = act(add(tx[:, 2 * n : 3 * n], th[:, 2 * n : 3 * n]))  # tmpres_c
        return update(ifo, c, s)

    return _sequence_kernel(layer, values, res_t, step, 2)


def _lstm_state_type(sigma, act_state, accum_t: FixedType, res_t: FixedType) -> FixedType:
    """A type holding every h_state the LSTM can produce: ``(res_T)(o * tanh(s))`` with both factors read from
    tables (|o| <= sigma.max_abs, |tanh(s)| <= act_state.max_abs on accum_t's grid), rounded onto res_T's grid
    and never beyond res_T's range; the state starts at zero."""
    down = 2 * accum_t.frac - res_t.frac
    prod = sigma.max_abs * act_state.max_abs
    bound = (prod >> down) + 1 if down >= 0 else prod << -down
    bound = min(bound, max(-res_t.min_mantissa, res_t.max_mantissa))
    width = bound.bit_length() + 1
    return FixedType(width, width - res_t.frac)


def _lstm_gates_step(layer, dense_x, dense_h, sigma, act, act_state, add, update, res_t: FixedType, n: int):
    """(first_step, step): the LSTM step with its four gates in one pass, or None when the tables do not
    bound the state below res_T's range. ``update(ifo, c, s)`` is the state update the gathered step uses too.

    The firmware's arithmetic is unchanged; only where it runs: the gate columns are reordered to i, f, o, c
    so the sigmoid gates are one contiguous block (no gathered copies), the recurrent product knows the
    state's bound from the tables (``_lstm_state_type``: narrower GEMMs, no wrap where its sums cannot leave
    accum_t, no probe for products that drop no bits), and at time step 0 the recurrent product of the zero
    state is its bias, computed once.  (Preparing the input side for many time steps at once, as the GRU
    does, measured slower here: int64 gate arrays of every step overflow the L2 cache.)"""
    perm = np.r_[0 : 2 * n, 3 * n : 4 * n, 2 * n : 3 * n]
    accum_t = dense_h.accum_t
    h_t = _lstm_state_type(sigma, act_state, accum_t, res_t)
    if h_t.width >= res_t.width:
        return None
    # a column-indexed copy comes out column-major: reorder into a row-major one (the narrow products
    # broadcast the weights' rows, ~3x slower over a strided matrix)
    wx, wh = (np.ascontiguousarray(d.w[:, perm]) for d in (dense_x, dense_h))
    dx = DenseArithmetic.from_accum_bias(dense_x, wx, dense_x.b_acc[perm])
    dh = DenseArithmetic.exact_sum(layer, h_t, wh, dense_h.p_frac, dense_h.b_acc[perm], accum_t, dense_h.res_t)
    th0 = dh(np.zeros((1, n), dtype=np.int64))  # tmpres_state of the zero state
    recurrent = dh.residue_kernel() or dh

    def step(x, states, th=None):
        h, s = states
        g = add(dx(x), recurrent(h) if th is None else th)  # every gate's (accum_t)(tmpres + tmpres_state)
        return update(sigma(g[:, : 3 * n]), act(g[:, 3 * n :]), s)  # tmpres_ifo, tmpres_c

    return lambda x, states: step(x, states, th0), step
