"""Per-layer cost rules: what one hls4ml layer costs in LUT, FF, DSP, BRAM18K and clock cycles.

The rules read a plain ``LayerSpec`` (no hls4ml objects), so they are testable by hand. They model what
hls4ml 1.3's Vivado/Vitis templates ask of the HLS tool:

* Multipliers. Latency strategy: weights are compile-time constants (``function_instantiate``), so a
  product by a zero weight disappears and a product by +-2^k is a shift (hls4ml passes ``n_zeros`` to
  lower ``multiplier_limit`` in ``backends/vivado/passes/core_templates.py``). The reuse factor's
  ALLOCATION limit caps real ``mul`` operations only, so it shares the DSP products; shift-and-add
  products of narrow constants stay unshared. Resource strategy (reuse_factor > 1): weights stream from
  a ROM, nothing is pruned, ``ceil(n_in*n_out / reuse_factor)`` multipliers (``nnet_dense_resource.h``).
* DSP or LUT. A product goes to DSP slices when both operands are at least ``DSP_MIN_WIDTH`` = 9 signed
  bits wide; narrower products are built from LUTs. The threshold is the one hls4ml's own DSP-aware
  pruning uses (``optimization/dsp_aware_pruning/objectives/vivado_objectives.py``: weight width < 9 ->
  0 DSP). For a constant weight the width is the constant's magnitude bits plus sign (HLS narrows
  constants), not the declared type. A product wider than one slice (25x18 on 7-series DSP48E1, 27x18 on
  UltraScale DSP48E2, UG479/UG579; signed, so an unsigned operand needs one bit more) takes
  ceil(a/A)*ceil(b/B) slices.
* Memory. Resource-strategy weights: a ROM ``reuse_factor`` deep and ``block_factor*weight_bits`` wide
  in BRAM18K (the same count hls4ml's objective uses, ceil(bits / (36*RF)) for RF <= 512). Table
  activations (softmax, sigmoid, tanh): one dual-port table per two parallel lookups. io_stream FIFOs:
  depth = pixels, width = channels*bits; deeper than ``SRL_MAX_DEPTH`` goes to BRAM.
* Latency. A kernel costs one cycle for its products plus its adder tree at ``ADD_NS_PER_LEVEL`` per
  level; reuse adds ``reuse_factor - 1`` cycles and sets the initiation interval.

The LUT/FF coefficients below were set against the designs in docs/estimates.md, which says how far the
estimates are from published synthesis reports.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

DSP_MIN_WIDTH = 9
SRL_MAX_DEPTH = 64
ADD_NS_PER_LEVEL = 0.55  # one adder-tree level of ~16-bit adds, including routing, UltraScale+ -2
SEVEN_SERIES_SLOWDOWN = 1.5  # the same add on a 7-series -1 part
CLOCK_UNCERTAINTY = 0.125  # hls4ml's default ClockUncertainty for Vivado/Vitis
LUT_PER_CSD_ADD_BIT = 1.0  # a shift-and-add constant multiplier: LUTs per adder bit
LUT_PER_ADD_BIT = 0.5  # adder trees: Vivado packs ternary adds (3 operands per LUT6+carry bit)
LUT_PER_GENERIC_MULT_BIT2 = 1.1  # a LUT multiplier of a x b bits: ~1.1*a*b LUTs (hls4ml issue #99)
FF_PER_STAGE_BIT = 2.0  # pipeline registers per output bit per cycle of a kernel
IO_CYCLES = 1  # the output register of the top function

KERNEL = "kernel"  # Dense / Conv: a matrix-vector product
ELEMENTWISE = "elementwise"  # ReLU, linear/quant casts, hard activations: compare and select
TABLE = "table"  # sigmoid, tanh, ... : one table lookup per element
SOFTMAX = "softmax"
SCALE = "scale"  # BatchNormalization / ApplyAlpha: one product and one add per element
POOL = "pool"
MERGE = "merge"
FREE = "free"  # Input, Reshape, Transpose: wiring only
RECURRENT = "recurrent"  # LSTM / GRU / SimpleRNN: two kernels, gate tables, state products per timestep
KINDS = (KERNEL, ELEMENTWISE, TABLE, SOFTMAX, SCALE, POOL, MERGE, FREE, RECURRENT)
# Gates per cell (hls4ml nnet_recurrent.h): LSTM i, f, c~, o; GRU z, r, h~; SimpleRNN (fpgadl's
# hls/templates/nnet_simple_rnn.h) the tanh of one sum. Products per unit and step of the cell state
# update: LSTM f*c, i*c~, o*tanh(c); GRU r*h (reset), z*h, (1-z)*h~; SimpleRNN none.
RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}
RECURRENT_PRODUCTS = {"LSTM": 3, "GRU": 3, "SimpleRNN": 0}
# hls4ml's distributed_arithmetic strategy (--strategy da): da4ml adder graphs, no multipliers.
DA = "da"
# LUTs per adder bit of the unshared shift-and-add form of a DA layer's constant matrix (`da_adder_bits`):
# fitted by benchmarks/rtl.py on Yosys synth_xilinx counts of da4ml netlists, held-out mean |error| 6.4%
# (docs/rtl.md). The coefficient absorbs the sharing da4ml's solver finds and the design's other logic.
DA_LUT_PER_ADDER_BIT = 0.362


@dataclass(frozen=True)
class LayerSpec:
    """What the estimator needs to know about one layer, independent of hls4ml."""

    name: str
    kind: str
    class_name: str = ""
    n_in: int = 0  # kernel inputs per output (Dense n_in; Conv n_chan*kh*kw); elements for others
    n_out: int = 0  # kernel outputs per position (Dense n_out; Conv n_filt)
    n_positions: int = 1  # positions a kernel is applied at (conv: out_h*out_w); pixels in io_stream
    parallel_positions: int = 1  # positions computed at once (hls4ml ParallelizationFactor)
    in_bits: int = 16
    in_signed: bool = True
    weight_bits: int = 16
    weight_signed: bool = True
    accum_bits: int = 32
    out_bits: int = 16
    out_channels: int = 0  # channels of the output stream (io_stream FIFO width); 0 = n_out
    weights: np.ndarray | None = field(default=None, compare=False, repr=False)  # integer codes
    reuse_factor: int = 1
    strategy: str = "latency"  # 'latency' | 'resource' | 'da' (distributed arithmetic)
    io_type: str = "io_parallel"
    table_size: int = 1024
    table_bits: int = 18
    kernel_rows: int = 1  # conv filter height (line buffers in io_stream)
    in_row_width: int = 0  # conv input width in pixels (line buffers in io_stream)
    in_channels: int = 0
    recurrent_weights: np.ndarray | None = field(default=None, compare=False, repr=False)  # integer codes

    def with_config(self, reuse_factor: int, strategy: str) -> LayerSpec:
        return replace(self, reuse_factor=reuse_factor, strategy=strategy)


@dataclass(frozen=True)
class LayerEstimate:
    name: str
    class_name: str
    kind: str
    reuse_factor: int
    strategy: str
    multipliers: int  # physical multipliers after sharing and constant pruning
    dsp_multipliers: int  # of which built from DSP slices
    lut: int
    ff: int
    dsp: int
    bram18k: int
    uram: int
    latency_cycles: int
    ii_cycles: int

    def resources(self) -> dict[str, int]:
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram18k": self.bram18k, "uram": self.uram}


def signed_width(bits: int, signed: bool) -> int:
    """Width of the operand at a signed DSP port: an unsigned value needs one more bit."""
    return bits if signed else bits + 1


def dsp_per_product(a_bits: int, b_bits: int, dsp_widths: tuple[int, int]) -> int:
    """DSP slices for one a x b product (signed widths), 0 if it is built from LUTs."""
    if min(a_bits, b_bits) < DSP_MIN_WIDTH:
        return 0
    wa, wb = dsp_widths
    return min(
        math.ceil(a_bits / wa) * math.ceil(b_bits / wb), math.ceil(b_bits / wa) * math.ceil(a_bits / wb)
    )


def constant_width(code: int) -> int:
    """Signed bits HLS keeps for a constant weight code: its magnitude's bits plus a sign bit."""
    mag = abs(int(code))
    return mag.bit_length() + 1 if mag else 0


def is_shift(code: int) -> bool:
    """A product by +-2^k is a wire shift: no multiplier."""
    mag = abs(int(code))
    return mag > 0 and mag & (mag - 1) == 0


def csd_digits(code: int) -> int:
    """Nonzero digits of the canonical signed-digit form: adders of a shift-and-add multiplier + 1."""
    n, digits = abs(int(code)), 0
    while n:
        if n & 1:
            n -= 2 - (n & 3)  # the digit is +1 (n = 1 mod 4) or -1 (n = 3 mod 4)
            digits += 1
        n >>= 1
    return digits


def da_adder_bits(spec: LayerSpec) -> int:
    """Adder bits of a shift-and-add constant matrix product without sharing: one add per nonzero
    canonical-signed-digit of every weight code, less one per output, each as wide as the input plus the
    widest code plus the sum's growth over n_in terms. The feature DA_LUT_PER_ADDER_BIT was fitted on."""
    if spec.weights is None:
        raise ValueError(f"layer '{spec.name}': distributed arithmetic needs the weight values")
    codes = np.asarray(spec.weights).reshape(-1).astype(np.int64)
    digits = sum(csd_digits(c) for c in codes)
    adds = max(0, digits - spec.n_out)
    width = spec.in_bits + int(np.abs(codes).max(initial=1)).bit_length() + math.ceil(math.log2(max(2, spec.n_in)))
    return adds * width


def bram18k_for(depth: int, width: int) -> int:
    """BRAM18K blocks for a depth x width memory, best aspect ratio (UG473/UG573: 16Kx1 .. 512x36)."""
    if depth <= 0 or width <= 0:
        return 0
    shapes = [(16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)]
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in shapes)


def _add_ns(board_family: str) -> float:
    return ADD_NS_PER_LEVEL * (SEVEN_SERIES_SLOWDOWN if "7" in board_family else 1.0)


def _cycles(ns: float, clock_period_ns: float) -> int:
    return max(0, math.ceil(ns / (clock_period_ns * (1.0 - CLOCK_UNCERTAINTY)) - 1e-9))


def _da_kernel(spec: LayerSpec, dsp_widths, clock_period_ns: float, family: str) -> LayerEstimate:
    """Distributed arithmetic: LUTs from the rule fitted on Yosys netlists, no DSP; registers and
    latency as the fully parallel (latency strategy, constant weights) kernel with its adder tree."""
    est = _kernel(replace(spec, strategy="latency", reuse_factor=1), dsp_widths, clock_period_ns, family)
    positions = max(1, spec.n_positions)
    parallel = max(1, min(spec.parallel_positions, positions)) if positions > 1 else 1
    lut = DA_LUT_PER_ADDER_BIT * da_adder_bits(spec) * parallel
    return replace(est, strategy=DA, lut=round(lut), dsp=0, dsp_multipliers=0)


def _kernel(spec: LayerSpec, dsp_widths, clock_period_ns: float, family: str) -> LayerEstimate:
    n_prod = spec.n_in * spec.n_out
    rf = max(1, spec.reuse_factor)
    x_bits = signed_width(spec.in_bits, spec.in_signed)
    declared_w = signed_width(spec.weight_bits, spec.weight_signed)
    # One product of the declared widths, built in LUTs or DSPs.
    generic_dsp = dsp_per_product(x_bits, declared_w, dsp_widths)
    generic_lut = 0 if generic_dsp else round(LUT_PER_GENERIC_MULT_BIT2 * spec.in_bits * spec.weight_bits)
    # HLS sizes each adder of the tree to its operands: on average a product plus half the tree depth.
    depth = math.ceil(math.log2(spec.n_in + 1))
    acc_bits = min(spec.accum_bits, spec.in_bits + spec.weight_bits + math.ceil(depth / 2))

    if spec.strategy == "latency" and spec.weights is not None:
        # Constant weights. HLS's ALLOCATION limit (multiplier_limit) caps real `mul` operations only:
        # shift-and-add products of narrow constants are not shared, so reuse applies to DSP products.
        codes = np.asarray(spec.weights).reshape(-1).astype(np.int64)
        mult_dsp = mult_lut = n_lut_mults = n_dsp_class = 0
        dsp_each = []
        nonzero = int(np.count_nonzero(codes))
        for code, count in zip(*np.unique(np.abs(codes[codes != 0]), return_counts=True)):
            if is_shift(code):
                continue
            width = constant_width(code)
            per = dsp_per_product(x_bits, width, dsp_widths)
            if per:
                n_dsp_class += int(count)
                dsp_each.append(per)
            else:
                n_lut_mults += int(count)
                mult_lut += count * (csd_digits(code) - 1) * (spec.in_bits + width) * LUT_PER_CSD_ADD_BIT
        n_dsp_mults = math.ceil(n_dsp_class / rf)
        mult_dsp = n_dsp_mults * (max(dsp_each) if dsp_each else 0)
        n_mults = n_lut_mults + n_dsp_mults
        eff_rf = min(rf, n_dsp_class) if n_dsp_class else 1
        adds = nonzero  # the adder tree stays unrolled: one add per nonzero product (bias included)
        terms_per_out = nonzero / max(1, spec.n_out)
    else:
        # No weight values, or Resource strategy: every product is a full declared-width one, shared
        # reuse_factor ways (a ROM feeds the weight operand, so nothing is pruned).
        n_mults = math.ceil(n_prod / rf)
        n_dsp_mults = n_mults if generic_dsp else 0
        mult_dsp, mult_lut = n_mults * generic_dsp, n_mults * generic_lut
        eff_rf = rf
        adds = n_mults
        terms_per_out = spec.n_in

    lut = mult_lut + adds * acc_bits * LUT_PER_ADD_BIT
    levels = math.ceil(math.log2(max(2.0, terms_per_out / eff_rf + 1)))
    mult_cycles = 1 if n_mults else 0
    base = mult_cycles + _cycles(levels * _add_ns(family), clock_period_ns)
    latency = base + (eff_rf - 1) + (2 if spec.strategy == "resource" and rf > 1 else 0)
    ii = eff_rf
    ff = FF_PER_STAGE_BIT * spec.n_out * acc_bits * max(1, base)
    bram = 0
    if spec.strategy == "resource" and rf > 1:
        block_factor = math.ceil(n_prod / rf)
        bram = bram18k_for(rf, block_factor * spec.weight_bits)
        ff += spec.n_out * acc_bits  # the accumulator registers
        lut += spec.n_in * spec.in_bits // 2  # input selection muxes
    elif spec.strategy == "latency" and rf > 1:
        lut += n_dsp_mults * (spec.in_bits + spec.weight_bits) * min(eff_rf, 8) // 2  # operand muxes

    # Conv: the kernel runs once per output position, ``parallel_positions`` at a time (hls4ml's
    # ParallelizationFactor), in io_parallel and io_stream alike; io_stream also keeps (kh-1) input
    # rows in line buffers.
    positions = max(1, spec.n_positions)
    parallel = max(1, min(spec.parallel_positions, positions))
    if positions > 1:
        ii = math.ceil(positions / parallel) * rf
        latency = ii + base
        lut, ff, mult_dsp = lut * parallel, ff * parallel, mult_dsp * parallel
        n_mults, n_dsp_mults = n_mults * parallel, n_dsp_mults * parallel
    if spec.io_type == "io_stream" and spec.kernel_rows > 1 and spec.in_row_width:
        depth = spec.in_row_width
        width = spec.in_channels * spec.in_bits * (spec.kernel_rows - 1)
        if depth > SRL_MAX_DEPTH:
            bram += bram18k_for(depth, width)
        else:
            lut += width * math.ceil(depth / 32)
    return LayerEstimate(
        spec.name,
        spec.class_name,
        spec.kind,
        rf,
        spec.strategy,
        int(n_mults),
        int(n_dsp_mults),
        round(lut),
        round(ff),
        int(mult_dsp),
        int(bram),
        0,
        int(latency),
        int(ii),
    )


def _elementwise(spec: LayerSpec, dsp_widths, clock_period_ns: float, family: str) -> LayerEstimate:
    n, bits = spec.n_in, max(spec.in_bits, spec.out_bits)
    kind = spec.kind
    lut = ff = dsp = bram = latency = 0
    if kind == ELEMENTWISE:
        lut = n * bits
    elif kind == TABLE:
        lut = n * (spec.in_bits + 4)  # index computation
        bram = math.ceil(n / 2) * bram18k_for(spec.table_size, spec.table_bits)
        latency, ff = 1, n * spec.table_bits
    elif kind == SOFTMAX:
        # exp table read n times (dual port), a sum tree, one inverse-table read, n products.
        bram = math.ceil(n / 2) * bram18k_for(spec.table_size, spec.table_bits)
        bram += bram18k_for(spec.table_size, spec.table_bits)
        per = dsp_per_product(spec.table_bits, spec.table_bits, dsp_widths)
        dsp = n * per
        lut = n * (spec.in_bits + 4) + (n - 1) * spec.table_bits + (0 if per else n * spec.table_bits**2)
        latency = 2 + _cycles(math.ceil(math.log2(max(2, n))) * _add_ns(family), clock_period_ns)
        ff = FF_PER_STAGE_BIT * n * spec.table_bits * latency
    elif kind == SCALE:
        per = dsp_per_product(signed_width(spec.in_bits, spec.in_signed), spec.weight_bits, dsp_widths)
        dsp = n * per
        lut = n * spec.out_bits + (
            0 if per else round(LUT_PER_GENERIC_MULT_BIT2 * spec.in_bits * spec.weight_bits) * n
        )
        latency, ff = 1, n * spec.out_bits
    elif kind == POOL:
        window = max(1, spec.n_in // max(1, spec.n_out))
        lut = spec.n_out * (window - 1) * bits
        latency = _cycles(math.ceil(math.log2(max(2, window))) * _add_ns(family), clock_period_ns)
    elif kind == MERGE:
        lut = n * bits
    ii = 1
    if spec.io_type == "io_stream" and spec.n_positions > 1 and kind != FREE:
        ii = spec.n_positions
        latency += spec.n_positions
    return LayerEstimate(
        spec.name,
        spec.class_name,
        kind,
        1,
        spec.strategy,
        0,
        0,
        int(lut),
        int(ff),
        int(dsp),
        int(bram),
        0,
        int(latency),
        ii,
    )


def _recurrent(spec: LayerSpec, dsp_widths, clock_period_ns: float, family: str) -> LayerEstimate:
    """LSTM/GRU/SimpleRNN (io_parallel): the input kernel (n_in -> gates*units) and the recurrent kernel (units ->
    gates*units) are instantiated once and reused every timestep (n_positions = timesteps); each step
    also reads one table per gate value (sigmoid/tanh) and forms the state products.  The timesteps run
    one after the other (the state feeds the next step), so latency and interval scale with them.  A
    first-principles composition of the kernel and table rules, not yet calibrated on syntheses."""
    gates = RECURRENT_GATES[spec.class_name]
    units = spec.n_out
    one_step = replace(spec, kind=KERNEL, n_out=gates * units, n_positions=1, parallel_positions=1)
    k_in = _kernel(one_step, dsp_widths, clock_period_ns, family)
    k_rec = _kernel(
        replace(one_step, n_in=units, in_bits=spec.out_bits, in_signed=True, weights=spec.recurrent_weights),
        dsp_widths,
        clock_period_ns,
        family,
    )
    n_tables = gates * units + (units if spec.class_name == "LSTM" else 0)  # LSTM: tanh(c) too
    tables = _elementwise(replace(spec, kind=TABLE, n_in=n_tables), dsp_widths, clock_period_ns, family)
    per = dsp_per_product(spec.table_bits, spec.out_bits, dsp_widths)
    n_prod = RECURRENT_PRODUCTS[spec.class_name] * units
    prod_lut = 0 if per else round(LUT_PER_GENERIC_MULT_BIT2 * spec.table_bits * spec.out_bits) * n_prod
    step = max(k_in.latency_cycles, k_rec.latency_cycles) + tables.latency_cycles + 1
    steps = max(1, spec.n_positions)
    return LayerEstimate(
        spec.name,
        spec.class_name,
        RECURRENT,
        max(1, spec.reuse_factor),
        spec.strategy,
        k_in.multipliers + k_rec.multipliers + n_prod,
        k_in.dsp_multipliers + k_rec.dsp_multipliers + (n_prod if per else 0),
        k_in.lut + k_rec.lut + tables.lut + prod_lut + units * spec.out_bits,  # + state update adds
        k_in.ff + k_rec.ff + tables.ff + 2 * units * spec.out_bits,  # + h and c state registers
        k_in.dsp + k_rec.dsp + n_prod * per,
        k_in.bram18k + k_rec.bram18k + tables.bram18k,
        0,
        steps * step,
        steps * step,
    )


def _fifo(spec: LayerSpec) -> tuple[int, int]:
    """(LUT, BRAM18K) of the io_stream FIFO a layer writes its output into."""
    if spec.io_type != "io_stream" or spec.kind == FREE:
        return 0, 0
    channels = spec.out_channels or spec.n_out or spec.n_in
    depth, width = max(1, spec.n_positions), channels * spec.out_bits
    if depth > SRL_MAX_DEPTH:
        return 0, bram18k_for(depth, width)
    return width * math.ceil(depth / 32), 0


def estimate_layer(
    spec: LayerSpec, dsp_widths=(27, 18), clock_period_ns: float = 5.0, family: str = ""
) -> LayerEstimate:
    if spec.kind not in KINDS:
        raise ValueError(f"layer '{spec.name}': unknown kind '{spec.kind}', expected one of {', '.join(KINDS)}")
    if spec.kind == KERNEL:
        rule = _da_kernel if spec.strategy == DA else _kernel
        est = rule(spec, dsp_widths, clock_period_ns, family)
    elif spec.kind == RECURRENT:
        est = _recurrent(spec, dsp_widths, clock_period_ns, family)
    else:
        est = _elementwise(spec, dsp_widths, clock_period_ns, family)
    fifo_lut, fifo_bram = _fifo(spec)
    if fifo_lut or fifo_bram:
        est = replace(est, lut=est.lut + fifo_lut, bram18k=est.bram18k + fifo_bram)
    return est


def as_dict(est: LayerEstimate) -> dict:
    return asdict(est)
