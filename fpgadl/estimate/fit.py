"""Fit a design to its board: choose each kernel's reuse factor and strategy from the estimator.

The search starts fully parallel (Latency strategy, reuse factor 1: the lowest latency hls4ml can
give) and, while some resource is above ``ceiling`` of the board, takes the one step that frees the most
of the most over-used resource per cycle of latency it adds. A step moves one Dense/Conv layer to its
next larger valid reuse factor (Resource strategy from reuse factor 2 on, as hls4ml advises for large
layers). Steps that would break ``target_ii`` are not taken; if no step is left, or the fitted design
misses ``target_latency_cycles``, ``FitError`` says which resource and which layer bind, and by how much.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

from fpgadl.core.boards import RESOURCE_NAMES, Board
from fpgadl.core.errors import CheckFailed
from fpgadl.estimate.core import Estimate, estimate_specs
from fpgadl.estimate.rules import KERNEL, LayerSpec, estimate_layer


class FitError(CheckFailed, ValueError):
    """No configuration meets the target within the board's resource ceiling; one line, names the binder."""


def _divisors(n: int) -> list[int]:
    small, large = [], []
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            small.append(d)
            if d != n // d:
                large.append(n // d)
    return small + large[::-1]


@lru_cache(maxsize=256)
def valid_reuse_factors(n_in: int, n_out: int) -> tuple[int, ...]:
    """Reuse factors hls4ml accepts for an n_in x n_out kernel.

    Same test as ``FPGABackend._validate_reuse_factor`` in hls4ml/backends/fpga/fpga_backend.py, run
    over the divisors of n_in*n_out only (its last condition requires one).
    """
    valid = []
    for rf in _divisors(n_in * n_out):
        multiplier_limit = math.ceil(n_in * n_out / min(n_in, rf))
        ok = (multiplier_limit % n_out == 0) or (rf >= n_in)
        ok = ok and ((rf % n_in == 0) or (rf < n_in))
        if ok:
            valid.append(rf)
    return tuple(valid)


def closest_reuse_factor(n_in: int, n_out: int, chosen: int) -> int:
    """The valid reuse factor nearest ``chosen`` (the smaller on a tie), as hls4ml picks it."""
    valid = valid_reuse_factors(n_in, n_out)
    return min(valid, key=lambda rf: (abs(rf - chosen), rf))


def _candidates(spec: LayerSpec) -> list[tuple[str, int]]:
    return [("latency", 1)] + [
        ("resource", rf) for rf in valid_reuse_factors(spec.n_in, spec.n_out) if rf > 1
    ]


def _sequential_positions(spec: LayerSpec) -> int:
    return math.ceil(
        max(1, spec.n_positions) / max(1, min(spec.parallel_positions, max(1, spec.n_positions)))
    )


def _config(specs: Sequence[LayerSpec]) -> dict[str, dict]:
    return {
        s.name: {
            "ReuseFactor": s.reuse_factor,
            "Strategy": "Resource" if s.strategy == "resource" else "Latency",
        }
        for s in specs
        if s.kind == KERNEL
    }


def _specs_of(model) -> list[LayerSpec]:
    if callable(model) and not hasattr(model, "get_layers"):
        model = model()
    if hasattr(model, "get_layers"):
        from fpgadl.estimate.hls import specs_from_hls_model

        return specs_from_hls_model(model)
    return list(model)


def fit_specs(
    specs: Sequence[LayerSpec],
    board: Board,
    *,
    ceiling: float = 0.8,
    target_latency_cycles: int | None = None,
    target_ii: int | None = None,
    clock_period_ns: float | None = None,
) -> tuple[list[LayerSpec], Estimate]:
    """The fitted layer specs and their estimate (see module docstring for the search)."""
    if not 0 < ceiling <= 1:
        raise FitError(f"ceiling must be in (0, 1], got {ceiling}")
    period = clock_period_ns or board.clock_period_ns
    family, widths = board.family, board.dsp_widths
    limits = {r: ceiling * v for r, v in board.resources.as_dict().items()}
    current = list(specs)
    kernels = [i for i, s in enumerate(current) if s.kind == KERNEL]
    cands = {i: _candidates(current[i]) for i in kernels}
    max_rf = {}
    for i in kernels:
        seq = _sequential_positions(current[i])
        max_rf[i] = max(1, target_ii // seq) if target_ii else math.inf
        if target_ii is not None and seq > target_ii:
            raise FitError(
                f"target II {target_ii} cannot be met: layer '{current[i].name}' computes {seq} positions "
                f"one after another, so its II is at least {seq} cycles"
            )
        current[i] = current[i].with_config(1, "latency")
    pos = {i: 0 for i in kernels}
    layer_est = {i: estimate_layer(s, widths, period, family) for i, s in enumerate(current)}

    while True:
        total = {r: sum(getattr(e, r) for e in layer_est.values()) for r in RESOURCE_NAMES}
        over = {
            r: total[r] / limits[r] if limits[r] else math.inf for r in RESOURCE_NAMES if total[r] > limits[r]
        }
        if not over:
            break
        res = max(over, key=over.get)
        best = None  # (score, i, j, estimate)
        for i in kernels:
            cur = layer_est[i]
            for j in range(pos[i] + 1, len(cands[i])):
                strategy, rf = cands[i][j]
                if rf > max_rf[i]:
                    break
                cand = estimate_layer(current[i].with_config(rf, strategy), widths, period, family)
                gain = getattr(cur, res) - getattr(cand, res)
                if gain > 0:
                    score = gain / max(1, cand.latency_cycles - cur.latency_cycles)
                    if best is None or score > best[0]:
                        best = (score, i, j, cand)
                    break
        if best is None:
            worst = max(layer_est.values(), key=lambda e: getattr(e, res))
            hint = f" without breaking target II {target_ii}" if target_ii else ""
            raise FitError(
                f"does not fit {board.name} within {ceiling:.0%}: {res} needs {total[res]} of {int(limits[res])} "
                f"allowed ({total[res] - int(limits[res])} over); layer '{worst.name}' uses "
                f"{getattr(worst, res)} at ReuseFactor {worst.reuse_factor}, Strategy {worst.strategy} "
                f"and no layer can use less{hint}"
            )
        _, i, j, cand = best
        strategy, rf = cands[i][j]
        current[i] = current[i].with_config(rf, strategy)
        pos[i], layer_est[i] = j, cand

    est = estimate_specs(current, board, period)
    if target_latency_cycles is not None and est.latency_cycles > target_latency_cycles:
        slowest = max(est.layers, key=lambda e: e.latency_cycles)
        use = est.utilization(board)
        binding = max(use, key=use.get)
        raise FitError(
            f"latency target {target_latency_cycles} cycles not met on {board.name}: the fitted design needs "
            f"{est.latency_cycles} ({est.latency_cycles - target_latency_cycles} over); layer '{slowest.name}' "
            f"takes {slowest.latency_cycles} at ReuseFactor {slowest.reuse_factor}, held there by {binding} "
            f"at {use[binding]:.0%} of the board (ceiling {ceiling:.0%})"
        )
    return current, est


def fit(
    hls_model_or_specs: object | Sequence[LayerSpec] | Callable[[], object],
    board: Board,
    *,
    ceiling: float = 0.8,
    target_latency_cycles: int | None = None,
    target_ii: int | None = None,
) -> dict[str, dict]:
    """``{layer: {"ReuseFactor": rf, "Strategy": "Latency"|"Resource"}}`` to merge into an hls4ml
    ``config['LayerName']``; accepts a converted ModelGraph, a callable returning one, or LayerSpecs."""
    fitted, _ = fit_specs(
        _specs_of(hls_model_or_specs),
        board,
        ceiling=ceiling,
        target_latency_cycles=target_latency_cycles,
        target_ii=target_ii,
    )
    return _config(fitted)
