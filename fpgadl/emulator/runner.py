"""Graph runner of the fast engine: hls4ml ModelGraph + float inputs -> what csim's predict returns.

``emulate`` mirrors ``ModelGraph.predict`` on a compiled project, without a compiler: the float
input is converted to the Input layer's type as the bridge's ``nnet::convert_data`` does
(float32 arrays go through ``myproject_float``, float64 arrays through ``myproject_double``;
both widen to double and assign to ``input_t``), the layers run in graph order on int64
mantissas, and the outputs are converted back to float32 or float64 with the round-to-nearest-even
conversion of ``ap_fixed::to_float``/``to_double``.  Inputs stream through in batches so memory
stays bounded by ``batch_size``, not by the number of samples.  Between kernels that take float
mantissas (``float_in``: the GEMM layers, reshapes, max-pools) tensors stay exact-integer float32
/float64 arrays, and an input whose readers all take them is converted straight into float.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import ThreadpoolController

from fpgadl.emulator.fastfixed import FLOAT_BITS, float_input_ok, from_float, from_float_mantissas
from fpgadl.emulator.fixed import FixedType, to_float
from fpgadl.emulator.kernels import build_kernel
from fpgadl.emulator.kernels_dense import to_int64
from fpgadl.emulator.registry import Kernel, data_inputs, fixed_type

__all__ = ["Plan", "emulate", "forward", "plan", "to_host_float"]


@functools.cache
def _blas() -> ThreadpoolController:
    """One controller per process: building it scans every loaded library (~5 ms a call otherwise)."""
    return ThreadpoolController()


@dataclass
class _Step:
    name: str  # hls4ml layer name (trace key)
    inputs: list[str]  # tensor names consumed
    outputs: list[str]  # tensor names produced (a kernel with several returns a tuple)
    kernel: Kernel
    out_type: FixedType  # of the first output (what hls4ml traces)
    out_shape: tuple[int, ...]
    is_input: bool

    @property
    def output(self) -> str:
        return self.outputs[0]


@dataclass
class Plan:
    """The model prepared for streaming: kernels built once, weights already converted."""

    steps: list[_Step]
    inputs: list[tuple[str, FixedType, tuple[int, ...]]]  # (tensor, input_t, shape) per model input
    outputs: list[str]  # output tensor names, in hls_model.outputs order
    last_use: dict[str, int]  # tensor -> index of the last step reading it
    out_types: dict[str, FixedType]  # tensor -> type
    # step index -> kernel computing step i and the element-wise step i + 1 in one pass (no trace)
    fused: dict[int, Kernel] = field(default_factory=dict)
    batch_size: int = 4096  # samples per batch keeping the widest layer's mantissas near _BATCH_BYTES
    # per model input: its readers all take float mantissas, so it is converted straight into floats
    float_inputs: list[bool] = field(default_factory=list)


def plan(hls_model) -> Plan:
    """Build every layer's kernel; raises UnsupportedLayerError naming the first unsupported layer."""
    steps: list[_Step] = []
    for layer in hls_model.get_layers():
        var = layer.get_output_variable()
        steps.append(
            _Step(
                name=layer.name,
                inputs=[] if layer.class_name == "Input" else data_inputs(layer),
                outputs=list(layer.outputs),
                kernel=build_kernel(layer),
                out_type=fixed_type(layer, var.type.precision),
                out_shape=tuple(int(d) for d in var.shape),
                is_input=layer.class_name == "Input",
            )
        )
    in_steps = [s for s in steps if s.is_input]
    input_names = list(hls_model.inputs)
    by_output = {s.output: s for s in in_steps}
    out_types = {o: s.out_type for s in steps for o in s.outputs}
    inputs = []
    for name in input_names:
        step = by_output.get(name)
        if step is None:
            raise ValueError(f"model input '{name}' has no Input layer")
        inputs.append((name, step.out_type, step.out_shape))
    last_use: dict[str, int] = {}
    for i, s in enumerate(steps):
        for t in s.inputs:
            last_use[t] = i
    outputs = list(hls_model.outputs)
    fused = _fusions(steps, outputs)
    widest = max((max(int(np.prod(s.out_shape)), getattr(s.kernel, "work_width", 0)) for s in steps), default=1)
    return Plan(
        steps=steps,
        inputs=inputs,
        outputs=outputs,
        last_use=last_use,
        out_types=out_types,
        fused=fused,
        float_inputs=[_float_input(steps, fused, name, t) for name, t, _ in inputs],
        batch_size=int(np.clip(_BATCH_BYTES // (8 * max(1, widest)), _MIN_BATCH, _MAX_BATCH)),
    )


# Element-wise numpy passes run several times faster on arrays that stay in the L2 cache (and
# allocating tens of MB per temporary costs page faults on every pass), so a batch holds about
# this many bytes of the widest layer's int64 mantissas; BLAS still sees >= _MIN_BATCH rows.
_BATCH_BYTES = 1 << 20
_MIN_BATCH, _MAX_BATCH = 64, 4096


def _fusions(steps: list[_Step], outputs: list[str]) -> dict[int, Kernel]:
    """Producer + element-wise consumer pairs whose intermediate tensor nobody else reads."""
    readers: dict[str, int] = {}
    for s in steps:
        for t in s.inputs:
            readers[t] = readers.get(t, 0) + 1
    fused = {}
    for i, (a, b) in enumerate(zip(steps, steps[1:])):
        fuse = getattr(a.kernel, "fuse", None)
        if fuse is None or len(a.outputs) != 1 or b.inputs != [a.output] or len(b.outputs) != 1:
            continue
        if readers.get(a.output) != 1 or a.output in outputs:
            continue
        kernel = fuse(b.kernel)
        if kernel is not None:
            fused[i] = kernel
    return fused


def takes_float(kernel) -> bool:
    """A kernel marked ``float_in`` computes the same on exact-integer float mantissas as on int64."""
    return bool(getattr(kernel, "float_in", False))


def _float_input(steps: list[_Step], fused: dict[int, Kernel], name: str, t: FixedType) -> bool:
    """Model input `name` may enter as float mantissas: its type converts in float and every reader takes floats
    (the Input step itself passes them on; a fused pair reads through its fused kernel)."""
    if not float_input_ok(t):
        return False
    carried = {name}
    for i, s in enumerate(steps):
        if s.is_input and s.output in carried:
            continue
        kernel = fused.get(i, s.kernel)
        if carried & set(s.inputs) and not takes_float(kernel):
            return False
    return True


def _as_int(m: np.ndarray) -> np.ndarray:
    return m if m.dtype.kind in "iu" else to_int64(m)


def to_host_float(m: np.ndarray, t: FixedType, dtype) -> np.ndarray:
    """ap_fixed::to_float()/to_double(): the exact value rounded once, to nearest even."""
    if m.dtype.kind == "f" and t.width <= FLOAT_BITS[np.dtype(dtype)] and abs(t.frac) < 100:
        # float mantissas of a type that fits dtype's significand: scaling by a power of two is exact
        y = np.multiply(m, np.dtype(dtype).type(2.0**-t.frac), dtype=dtype)
        y += 0.0  # a float path's -0.0 (rint of a small negative) is +0.0, as to_float() returns
        return y
    m = _as_int(m)
    if t.width <= 53:
        return to_float(m, t).astype(dtype)  # exact in double, so a single rounding to float32
    # wider mantissas: long double holds 64 significant bits, so the value is exact there too
    exact = np.ldexp(m.astype(np.longdouble), -t.frac)
    return exact.astype(dtype)


def _split_inputs(p: Plan, x) -> tuple[list[np.ndarray], int, np.dtype]:
    xs = [x] if len(p.inputs) == 1 else list(x)
    if len(xs) != len(p.inputs):
        raise ValueError(f"model has {len(p.inputs)} inputs, got {len(xs)} arrays")
    dtype = None
    out, counts = [], []
    for arr, (name, _, shape) in zip(xs, p.inputs):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"input '{name}': expected numpy.ndarray, got {type(arr).__name__}")
        if arr.dtype not in (np.float32, np.float64):
            raise TypeError(
                f"input '{name}': dtype {arr.dtype} is not float32 or float64 (csim's predict accepts only these)"
            )
        dtype = dtype or arr.dtype
        size = int(np.prod(shape))
        n, rem = divmod(arr.size, size)
        if rem:
            raise ValueError(f"input '{name}': {arr.shape} is not a whole number of samples of shape {shape}")
        out.append(arr.reshape((n, *shape)))
        counts.append(n)
    if len(set(counts)) != 1:
        raise ValueError(f"inputs hold different numbers of samples: {counts}")
    return out, counts[0], np.dtype(dtype)


def forward(p: Plan, mantissas: list[np.ndarray], on_layer=None) -> list[np.ndarray]:
    """Run the layers on input-port mantissas (one (n, *shape) int64 array per model input, of that
    input's type); returns the output mantissas (int64), one array per model output, of `p.out_types`.

    This is the firmware seen from its ports: a host that packs fixed-point words (fpgadl.runtime)
    drives it directly. `on_layer(step, mantissas)` sees every layer's first output (for traces); without
    it, a layer and the element-wise layer after it run fused (the tensor between them is never formed)."""
    return [_as_int(m) for m in _forward(p, mantissas, on_layer)]


def _forward(p: Plan, mantissas: list[np.ndarray], on_layer=None) -> list[np.ndarray]:
    """``forward`` whose inputs and outputs may also be exact-integer float mantissas (no int64 round trip)."""
    tensors: dict[str, np.ndarray] = dict(zip((name for name, _, _ in p.inputs), mantissas))
    n = len(mantissas[0]) if mantissas else 0
    i = 0
    while i < len(p.steps):
        step, first = p.steps[i], i
        if step.is_input:
            y = step.kernel(tensors[step.output])
        elif i in p.fused and on_layer is None:
            y = p.fused[i](*_args(p.fused[i], tensors, step.inputs))
            i += 1
            step = p.steps[i]
            y = y.reshape((n, *step.out_shape))
        else:
            y = step.kernel(*_args(step.kernel, tensors, step.inputs))
        ys = y if isinstance(y, tuple) else (y,)
        if len(ys) != len(step.outputs):
            raise RuntimeError(f"kernel of {step.name} returned {len(ys)} arrays for {len(step.outputs)} outputs")
        tensors.update(zip(step.outputs, ys))
        if on_layer is not None:
            on_layer(step, ys[0])
        for t in p.steps[first].inputs:
            if p.last_use.get(t) == first and t not in p.outputs:
                del tensors[t]
        i += 1
    return [tensors[o] for o in p.outputs]


def _args(kernel, tensors: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    """A kernel's inputs; float mantissas (from a float-domain producer) become int64 unless it takes floats."""
    args = [tensors[t] for t in names]
    return args if takes_float(kernel) else [_as_int(a) for a in args]


def _input_mantissas(p: Plan, arr: np.ndarray, k: int) -> np.ndarray:
    """Model input k converted to its type: float mantissas where its readers take them, else int64."""
    _, t, _ = p.inputs[k]
    if p.float_inputs and p.float_inputs[k]:
        v = from_float_mantissas(arr, t)
        if v is not None:
            return v
    return from_float(arr, t)


def _run_batch(p: Plan, xs, lo: int, hi: int, dtype, results, traces) -> None:
    def record(step, m):
        traces[step.name][lo:hi] = to_host_float(m, step.out_type, dtype)

    ms = [_input_mantissas(p, arr[lo:hi], k) for k, arr in enumerate(xs)]
    outs = _forward(p, ms, record if traces else None)
    for res, o, m in zip(results, p.outputs, outs):
        res[lo:hi] = to_host_float(m, p.out_types[o], dtype).reshape(hi - lo, -1)


def emulate(
    hls_model, x, *, batch_size: int | None = None, trace: bool = False
) -> np.ndarray | list[np.ndarray] | tuple[np.ndarray | list[np.ndarray], dict[str, np.ndarray]]:
    """Bit-exact twin of ``hls_model.predict(x)`` (csim) without compiling.

    Args:
        hls_model: hls4ml ModelGraph after conversion (optimizer passes applied; not compiled), or
            a ``Plan`` from ``plan(hls_model)`` to skip rebuilding the kernels on repeated calls.
        x: float32 or float64 array, shape (N, *input_shape) in hls4ml's layout (channels-last),
            or a list of such arrays for a multi-input model.
        batch_size: samples per streamed batch (bounds memory); by default the plan's, chosen so
            the widest layer's mantissas of one batch take about 1 MiB.
        trace: also return every layer's output, keyed by hls4ml layer name, shape
            (N, *output_shape), as float arrays of x's dtype (like ``hls_model.trace``).

    Returns:
        Like csim's predict: the output flattened per sample, shape (N, n_out), dtype of x;
        a 1-D array when N == 1; a list per output for multi-output models.  With trace=True,
        a tuple (outputs, trace_dict).
    """
    p = hls_model if isinstance(hls_model, Plan) else plan(hls_model)
    batch_size = p.batch_size if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    xs, n, dtype = _split_inputs(p, x)
    out_shapes = {o: s.out_shape for s in p.steps for o in s.outputs}
    results = [np.empty((n, int(np.prod(out_shapes[o]))), dtype=dtype) for o in p.outputs]
    traces = {s.name: np.empty((n, *s.out_shape), dtype=dtype) for s in p.steps} if trace else {}
    # The per-batch GEMMs are small: BLAS worker threads cost more than they save (6-9x slower
    # on a busy 2-core machine), so the whole run stays single-threaded.
    with _blas().limit(limits=1, user_api="blas"):
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            _run_batch(p, xs, lo, hi, dtype, results, traces)
    if n == 1 and len(results) == 1:
        out = results[0][0]
    elif len(results) == 1:
        out = results[0]
    elif n == 1:
        out = [r[0] for r in results]
    else:
        out = results
    return (out, traces) if trace else out
