"""The model zoo: every recipe builds and trains briefly; every family converts to hls4ml and its C
simulation is compared with the QAT torch model (exactly where the family is exact, within the measured
deviation where it is not; docs/zoo-notes.md explains each)."""

from __future__ import annotations

import functools
import math

import brevitas.nn as qnn
import numpy as np
import pytest
import torch

from fpgadl.data import load_dataset
from fpgadl.recipes import available_recipes, load_recipe
from fpgadl.train import TRAINERS, torch_predict, train
from fpgadl.zoo import ARCHITECTURES, build_model

# Brief training: enough that biases differ (identical constant tensors get merged by qonnx's cleanup,
# and hls4ml cannot convert a Quant node shared by two layers).
QUICK = {
    "train.epochs": 2,
    "dataset.subset": 600,
}
QUICK_PARAMS = {
    "dqn-cartpole": {"train.params": {"steps_per_epoch": 300, "warmup": 100, "eval_episodes": 2}},
    "gan-digits": {"train.epochs": 1},
}


@functools.cache
def trained(name: str):
    recipe = load_recipe(name, **{**QUICK, **QUICK_PARAMS.get(name, {})})
    data = load_dataset(
        recipe.dataset.name,
        val_fraction=recipe.dataset.val_fraction,
        test_fraction=recipe.dataset.test_fraction,
        subset=recipe.dataset.subset,
        seed=recipe.train.seed,
        params=recipe.dataset.params,
    )
    torch.manual_seed(recipe.train.seed)
    model = build_model(recipe.model.arch, recipe.model.params, recipe.quant, data.input_shape, data.n_out)
    result = train(model, data, recipe)
    return recipe, data, model, result


@pytest.mark.parametrize("name", available_recipes())
def test_recipe_builds_and_trains(name):
    recipe, data, model, result = trained(name)
    assert recipe.model.arch in ARCHITECTURES
    assert result.epochs_run >= 1
    y = torch_predict(model, data.x_test)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    if recipe.family == "gan":
        assert y.shape == (len(data.x_test), *data.y_test.shape[1:])
    else:
        assert y.shape == (len(data.x_test), data.n_out)


def test_family_trainers_registered():
    assert {"dbn", "autoencoder", "dqn", "gan"} <= set(TRAINERS)


def test_mnist1d_is_generated_offline_and_deterministic():
    a = load_dataset("mnist1d", params={"layout": "flat"})
    b = load_dataset("mnist1d", params={"layout": "flat"})
    assert a.x_train.shape[1:] == (40,) and a.n_classes == 10
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    seq = load_dataset("mnist1d", params={"layout": "sequence", "step_features": 4})
    assert seq.input_shape == (10, 4)
    conv = load_dataset("mnist1d")
    assert conv.input_shape == (1, 40)
    assert np.array_equal(conv.x_train[:, 0, :], a.x_train)


def test_dbn_pretraining_lowers_rbm_reconstruction_error():
    from fpgadl.zoo.dbn import pretrain_rbm

    x = torch.from_numpy(load_dataset("digits", params={"flatten": True}).x_train)
    gen = torch.Generator().manual_seed(0)
    _, _, err1 = pretrain_rbm(x, 32, 1, 0.1, 64, gen)
    _, _, err5 = pretrain_rbm(x, 32, 5, 0.1, 64, torch.Generator().manual_seed(0))
    assert err5 < err1 < 0.1


def test_cartpole_reward_separates_policies():
    from fpgadl.zoo.cartpole import greedy_reward

    push_right = greedy_reward(lambda s: np.tile([0.0, 1.0], (len(s), 1)), episodes=10)
    balance = greedy_reward(lambda s: np.stack([-s[:, 2] - s[:, 3], s[:, 2] + s[:, 3]], 1), episodes=10)
    assert push_right < 15 and balance > 150


def test_gan_fidelity_scores_real_digits_above_noise():
    from fpgadl.zoo.gan import fidelity

    data = load_dataset("digits-latent")
    rng = np.random.default_rng(0)
    real = fidelity(data.y_test)
    noise = fidelity(rng.uniform(0, 1, data.y_test.shape).astype(np.float32))
    assert real > 0.8 and noise < 0.5


# --- conversion: export -> hls4ml -> csim, compared with torch --------------------------------------


def _input_type(model: torch.nn.Module, x: np.ndarray) -> str:
    first = next(m for m in model.modules() if isinstance(m, qnn.QuantIdentity))
    with torch.no_grad():
        qt = first(torch.from_numpy(x[:1]))
    k = round(math.log2(float(qt.scale)))
    assert 2.0**k == float(qt.scale)
    bits = int(qt.bit_width)
    return f"fixed<{bits},{bits + k},RND_CONV,SAT>"


def qonnx_csim(model: torch.nn.Module, x: np.ndarray, out_dir) -> np.ndarray:
    import hls4ml
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    from fpgadl.rewrites import RemoveInverseTransposes, ResizeToChannelsLast

    model.eval()
    path = str(out_dir / "model.qonnx.onnx")
    export_qonnx(model, torch.from_numpy(x[:1]), export_path=path)
    m = cleanup_model(ModelWrapper(path))
    m = m.transform(ConvertToChannelsLastAndClean())
    m = cleanup_model(m.transform(GemmToMatMul()))
    m = cleanup_model(m.transform(ResizeToChannelsLast()).transform(RemoveInverseTransposes()))
    config = hls4ml.utils.config.config_from_onnx_model(
        m, granularity="name", backend="Vitis", default_precision="fixed<16,6>"
    )
    config["LayerName"][m.graph.input[0].name]["Precision"]["result"] = _input_type(model, x)
    for name, layer in config["LayerName"].items():
        if name.startswith("BatchNormalization"):
            layer["Precision"].update(scale="fixed<32,12>", bias="fixed<32,12>")
    hm = hls4ml.converters.convert_from_onnx_model(
        m, output_dir=str(out_dir / "hls"), io_type="io_parallel", backend="Vitis", hls_config=config
    )
    hm.compile()
    x_in = x.transpose(0, 2, 3, 1) if x.ndim == 4 else (x.transpose(0, 2, 1) if x.ndim == 3 else x)
    y = np.asarray(hm.predict(np.ascontiguousarray(x_in)), dtype=np.float32)
    return y.reshape(len(x), -1)


def _compare(name, tmp_path, n=200):
    recipe, data, model, _ = trained(name)
    x = data.x_test[:n]
    y_torch = torch_predict(model, x)
    if recipe.family == "rnn":
        from fpgadl.zoo.recurrent import convert_twin

        hm = convert_twin(model, str(tmp_path / "hls"))
        hm.compile()
        with torch.no_grad():
            x_q = model.inp(torch.from_numpy(x)).value.numpy()  # the LSTM port takes on-grid inputs
        y_csim = np.asarray(hm.predict(np.ascontiguousarray(x_q)), dtype=np.float32).reshape(len(x), -1)
    else:
        y_csim = qonnx_csim(model, x, tmp_path)
    return y_torch, y_csim


EXACT = [
    "mlp-digits",
    "softmax-digits",
    "linreg-synthetic",
    "dae-digits",
    "dqn-cartpole",
    "lenet-digits",
    "conv1d-mnist1d",
    "gan-digits",
]
EXACT_SLOW = ["alexnet-digits", "vgg-digits"]


@pytest.mark.parametrize("name", EXACT + [pytest.param(n, marks=pytest.mark.slow) for n in EXACT_SLOW])
def test_csim_equals_torch_exactly(name, tmp_path):
    y_torch, y_csim = _compare(name, tmp_path)
    assert np.array_equal(y_csim, y_torch.reshape(len(y_torch), -1))


# name -> (max |csim - torch| allowed, min argmax agreement); measured values in docs/zoo-notes.md
BOUNDED = {
    "mlp-sigmoid-digits": (0.05, 0.9),
    "mlp-tanh-digits": (0.1, 0.95),
    "gru-mnist1d": (0.05, 0.9),
}
BOUNDED_SLOW = {
    "resnet-digits": (0.05, 0.97),
    "lstm-mnist1d": (0.1, 0.95),
}


@pytest.mark.parametrize("name", list(BOUNDED) + [pytest.param(n, marks=pytest.mark.slow) for n in BOUNDED_SLOW])
def test_csim_deviation_is_bounded(name, tmp_path):
    max_dev, min_agree = {**BOUNDED, **BOUNDED_SLOW}[name]
    y_torch, y_csim = _compare(name, tmp_path)
    dev = float(np.abs(y_csim - y_torch).max())
    agree = float((y_csim.argmax(1) == y_torch.argmax(1)).mean())
    print(f"{name}: max |csim - torch| = {dev:.6f}, argmax agreement = {agree:.3f}")
    assert not np.array_equal(y_csim, y_torch)  # if this starts failing, the family became exact: move it
    assert dev <= max_dev and agree >= min_agree


def test_gan_sample_grid_writes_a_png(tmp_path):
    from fpgadl.zoo.gan import sample_grid

    path = tmp_path / "grid.png"
    sample_grid(load_dataset("digits-latent").y_test[:16], str(path), cols=8)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
