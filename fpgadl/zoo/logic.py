"""Threshold logic: McCulloch-Pitts neurons with designed weights, Rosenblatt's perceptron rule, and
Widrow-Hoff's Adaline (LMS / delta rule).

A threshold unit outputs 1 when w.x >= theta. On the FPGA it is an integer dot product and a 2-bit
quantizer: inputs, weights and the bias 1 - theta are integers (power-of-two scale 1, fixed, not learned),
so the accumulator z = w.x + 1 - theta is an integer, and ReLU followed by a signed 2-bit quantizer
(range -2..1) maps it to min(max(z, 0), 1), which is 1 exactly when w.x >= theta. Every stage computes
that with integers: torch == onnxruntime == csim == fast, bit for bit. (A 1-bit quantizer would say it
more directly, but Brevitas' QCDQ export rejects 1-bit quantizers, and QONNX renders an unsigned 1-bit
one as BipolarQuant, which hls4ml types as an XNOR precision the fast engine does not implement yet.)
"""

from __future__ import annotations

import brevitas.nn as qnn
import numpy as np
import torch
from brevitas.inject.enum import ScalingImplType
from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int16Bias

from fpgadl.core.errors import UsageError
from fpgadl.ml.datasets import DEFAULT_LOGIC_FUNCTIONS, Dataset
from fpgadl.ml.extras import ReportExtra, emulated_predictions, markdown_table, register_report_extra
from fpgadl.ml.recipes import QuantConfig, Recipe
from fpgadl.ml.train import (
    EarlyStopping,
    Progress,
    TrainResult,
    calibrate,
    minibatches,
    register_trainer,
    seed_everything,
    torch_predict,
)
from fpgadl.zoo import register
from fpgadl.zoo.layers import take


def integer_act(bits: int):
    """Signed `bits`-bit activations on the integer grid (scale fixed at 1)."""
    return Int8ActPerTensorFixedPoint.let(
        bit_width=bits, scaling_impl_type=ScalingImplType.CONST, scaling_init=float(2 ** (bits - 1))
    )


def integer_weight(bits: int):
    """Signed narrow-range `bits`-bit integer weights (-(2^(b-1) - 1) .. 2^(b-1) - 1, scale fixed at 1)."""
    return Int8WeightPerTensorFixedPoint.let(
        bit_width=bits, scaling_impl_type=ScalingImplType.CONST, scaling_init=float(2 ** (bits - 1) - 1)
    )


def weight_limit(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def threshold_layer(n_in: int, n_out: int, quant: QuantConfig, last: bool) -> list[torch.nn.Module]:
    """An integer dot product and the step: ReLU then a signed 2-bit integer quantizer."""
    linear = qnn.QuantLinear(
        n_in,
        n_out,
        bias=True,
        weight_quant=integer_weight(quant.weight_bits),
        bias_quant=Int16Bias,
        return_quant_tensor=True,
    )
    step = qnn.QuantReLU(act_quant=integer_act(2), return_quant_tensor=not last)
    return [linear, step]


def threshold_net(widths: list[int], quant: QuantConfig) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = [
        qnn.QuantIdentity(act_quant=integer_act(quant.input_bits), return_quant_tensor=True)
    ]
    for i in range(len(widths) - 1):
        layers += threshold_layer(widths[i], widths[i + 1], quant, last=i == len(widths) - 2)
    return torch.nn.Sequential(*layers)


def set_units(linear: torch.nn.Module, units: list[dict], bits: int) -> None:
    """Load designed units {w: [...], theta: t} into a layer: weights w, bias 1 - theta."""
    w = torch.tensor([u["w"] for u in units], dtype=torch.float32)
    theta = torch.tensor([u["theta"] for u in units], dtype=torch.float32)
    if w.shape != linear.weight.shape:
        raise UsageError(
            f"threshold unit weights have shape {tuple(w.shape)}; the layer needs {tuple(linear.weight.shape)}"
        )
    limit = weight_limit(bits)
    if (w.abs() > limit).any() or (w != w.round()).any() or (theta != theta.round()).any():
        raise UsageError(f"threshold units need integer weights within +-{limit} ({bits}-bit) and integer thresholds")
    with torch.no_grad():
        linear.weight.copy_(w)
        linear.bias.copy_(1 - theta)


@register("threshold-net")
def build_threshold_net(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """McCulloch-Pitts net with designed weights. params: layers (a list of layers, each a list of units
    {name, w: [integer weight per input], theta: integer threshold}); the last layer has one unit per output."""
    (layers,) = take(params, layers=[])
    widths = [input_shape[0], *(len(units) for units in layers)]
    if not layers or widths[-1] != n_out:
        raise UsageError(f"threshold-net: the last layer must have {n_out} units (one per target), got {widths[1:]}")
    model = threshold_net(widths, quant)
    linears = [m for m in model.modules() if isinstance(m, qnn.QuantLinear)]
    for linear, units in zip(linears, layers):
        set_units(linear, units, quant.weight_bits)
    return model


@register("perceptron")
def build_perceptron(params: dict, quant: QuantConfig, input_shape: tuple, n_out: int) -> torch.nn.Module:
    """Single-layer perceptron: one threshold unit per output, weights and biases start at 0."""
    take(params)
    model = threshold_net([input_shape[0], n_out], quant)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


@register_trainer("mp")
def train_designed(
    model: torch.nn.Module, data: Dataset, recipe: Recipe, progress: Progress | None = None
) -> TrainResult:
    """McCulloch-Pitts units are designed, not trained: record how the designed net scores the table."""
    model.eval()
    score = float(np.mean(torch_predict(model, data.x_val) == data.y_val))
    return TrainResult(0, 0, score, [{"epoch": 0, "designed_bit_accuracy": score}])


def _bit_accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(torch_predict(model, x) == y))


@register_trainer("perceptron")
def train_perceptron(
    model: torch.nn.Module, data: Dataset, recipe: Recipe, progress: Progress | None = None
) -> TrainResult:
    """Rosenblatt's rule, one sample at a time: w += lr (t - y) x, b += lr (t - y), with y the deployed
    (quantized) unit's output. No gradients: the step has none. Weights are clipped to the integer range
    the FPGA holds. Also trains a two-layer net by back-propagation on the same table, for the report."""
    cfg = recipe.train
    seed_everything(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    quant_in, linear = model[0], model[1]
    limit = weight_limit(recipe.quant.weight_bits)
    x = torch.from_numpy(data.x_train)
    t = torch.from_numpy(data.y_train)
    stopper = EarlyStopping(model, cfg, progress)
    for epoch in range(1, cfg.epochs + 1):
        model.eval()
        errors = 0
        with torch.no_grad():
            for i in torch.randperm(len(x), generator=gen).tolist():
                xi = quant_in(x[i : i + 1]).value
                err = t[i : i + 1] - model(x[i : i + 1])
                linear.weight.add_(cfg.lr * err.T @ xi)  # in place: assigning re-inits Brevitas' quantizer
                linear.bias.add_(cfg.lr * err[0])
                linear.weight.clamp_(-limit, limit)
                errors += int(err.abs().sum())
        val = _bit_accuracy(model, data.x_val, data.y_val)
        if stopper.step(epoch, {"errors": errors, "val": val}):
            break
    result = stopper.finish()
    result.history.insert(0, {"epoch": 0, "two_layer_backprop": two_layer_accuracy(data, recipe)})
    return result


def two_layer_accuracy(data: Dataset, recipe: Recipe, hidden: int = 4, steps: int = 2000) -> dict[str, float]:
    """Per-function accuracy of a float n-hidden-k sigmoid net trained by back-propagation on the table:
    the course's counterpoint to the single layer (it learns XOR)."""
    torch.manual_seed(recipe.train.seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(data.x_train.shape[1], hidden),
        torch.nn.Sigmoid(),
        torch.nn.Linear(hidden, data.y_train.shape[1]),
    )
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    x, t = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), t)
        loss.backward()
        opt.step()
    with torch.no_grad():
        correct = ((net(torch.from_numpy(data.x_test)) > 0).float() == torch.from_numpy(data.y_test)).float()
    return dict(zip(_functions(recipe), correct.mean(0).tolist()))


@register_trainer("adaline")
def train_adaline(
    model: torch.nn.Module, data: Dataset, recipe: Recipe, progress: Progress | None = None
) -> TrainResult:
    """Widrow-Hoff LMS (delta rule) on a linear unit, per mini-batch: w += lr mean((t - y) x), with y the
    deployed (quantized) unit's output; no back-propagation through a graph."""
    cfg = recipe.train
    seed_everything(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    calibrate(model, data.x_train, cfg.batch_size)  # the input port's scale comes from the data
    quant_in, linear = model[0], model[1]
    x, t = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train).reshape(len(data.x_train), -1)
    stopper = EarlyStopping(model, cfg, progress)
    for epoch in range(1, cfg.epochs + 1):
        model.eval()
        total = 0.0
        with torch.no_grad():
            for idx in minibatches(len(x), cfg.batch_size, gen):
                err = t[idx] - model(x[idx])
                linear.weight.add_(cfg.lr * err.T @ quant_in(x[idx]).value / len(idx))
                linear.bias.add_(cfg.lr * err.mean(0))
                total += float((err**2).sum())
        pred = torch_predict(model, data.x_val)
        val = -float(np.mean((pred - data.y_val.reshape(pred.shape)) ** 2))
        if stopper.step(epoch, {"mse": total / t.numel(), "val": val}):
            break
    return stopper.finish()


def _functions(recipe: Recipe) -> list[str]:
    return list(recipe.dataset.params.get("functions", DEFAULT_LOGIC_FUNCTIONS))


def truth_table_section(run_dir, recipe: Recipe) -> tuple[list[str], dict]:
    """Every input row, each function's target and the emulated FPGA's output, plus per-function accuracy."""
    x, y = np.load(run_dir / "data/x_test.npy"), np.load(run_dir / "data/y_test.npy")
    engine, out = emulated_predictions(run_dir)
    names = _functions(recipe)
    header = [f"x{i + 1}" for i in range(x.shape[1])] + [f"{n} (target / FPGA)" for n in names]
    rows = [
        [*(int(v) for v in xi), *(f"{int(t)} / {int(o)}" + ("" if t == o else " ✗") for t, o in zip(yi, oi))]
        for xi, yi, oi in zip(x, y, out)
    ]
    accuracy = {n: float(np.mean(out[:, j] == y[:, j])) for j, n in enumerate(names)}
    lines = [
        f"All {len(x)} inputs, outputs of the `{engine}` engine (emulated FPGA):",
        "",
        *markdown_table(header, rows),
    ]
    lines += [
        "",
        *markdown_table(["function", "accuracy on the truth table"], [[n, f"{a:.2f}"] for n, a in accuracy.items()]),
    ]
    return lines, {"engine": engine, "accuracy": accuracy, "outputs": out.astype(int).tolist()}


@register_report_extra("mp")
def mp_extra(run_dir, recipe: Recipe) -> ReportExtra:
    lines, data = truth_table_section(run_dir, recipe)
    return ReportExtra("Truth tables (McCulloch-Pitts units, designed weights)", lines, data)


@register_report_extra("perceptron")
def perceptron_extra(run_dir, recipe: Recipe) -> ReportExtra:
    import json

    lines, data = truth_table_section(run_dir, recipe)
    history = json.loads((run_dir / "train.json").read_text())["history"]
    two_layer = next((h["two_layer_backprop"] for h in history if "two_layer_backprop" in h), {})
    data["two_layer_backprop"] = two_layer
    rows = [[n, f"{data['accuracy'][n]:.2f}", f"{two_layer.get(n, float('nan')):.2f}"] for n in data["accuracy"]]
    lines += [
        "",
        "Single layer (this network, perceptron rule, on the FPGA) against a two-layer sigmoid net trained by "
        "back-propagation on the same table (float torch, in the train stage):",
        "",
        *markdown_table(["function", "single-layer perceptron (FPGA)", "two-layer net (back-prop)"], rows),
    ]
    if "xor" in data["accuracy"]:
        lines += [
            "",
            f"XOR is not linearly separable: the single layer reaches {data['accuracy']['xor']:.2f} on it "
            f"(at most 0.75 is possible), the two-layer net {two_layer.get('xor', float('nan')):.2f}.",
        ]
    return ReportExtra("Truth tables and the perceptron's limit (XOR)", lines, data)
