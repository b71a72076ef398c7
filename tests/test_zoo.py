"""The model zoo: every recipe builds and trains briefly; every family converts to hls4ml and its C
simulation is compared with the QAT torch model (exactly where the family is exact, within the measured
deviation where it is not; docs/zoo-notes.md explains each)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fpgadl.ml.datasets import load_dataset
from fpgadl.ml.recipes import available_recipes, load_recipe
from fpgadl.ml.train import TRAINERS
from fpgadl.zoo import ARCHITECTURES, build_model

# Brief training: enough that biases differ (identical constant tensors get merged by qonnx's cleanup,
# and hls4ml cannot convert a Quant node shared by two layers).
QUICK = {
    "train.epochs": 2,
    "dataset.subset": 600,
}
QUICK_PARAMS = {
    "dqn-cartpole": {"train.params": {"steps_per_epoch": 300, "warmup": 100, "eval_episodes": 2}},
    # the perceptron rule needs its passes over the 4-row truth table to learn AND/OR/NAND (cheap)
    "perceptron-logic": {"train.epochs": 20},
    # Narrower layers of the same kinds keep the csim compiles short (the layer kinds are what is tested).
    "cae-digits": {"model.params.channels": [4, 4]},
    "stacked-ae-digits": {"model.params.hidden": [16, 16], "train.params.pretrain_epochs": 2},
    "dlt-nn-digits": {"model.params.hidden": [16]},
    "dlt-sae-digits": {"model.params.hidden": [16], "train.params.pretrain_epochs": 2},
    "dlt-dbn-digits": {"model.params.hidden": [16, 16], "train.params.pretrain_epochs": 2},
    "dlt-cnn-digits": {"model.params.channels": [3, 4]},
    "alexnet-digits": {"model.params.channels": [8, 16, 16], "model.params.hidden": [32, 32]},
    "vgg-digits": {"model.params.blocks": [[4, 4], [8, 8]], "model.params.hidden": [32]},
    "resnet-digits": {"model.params.channels": 8},
    "gan-digits": {"train.epochs": 1, "model.params.channels": [16, 8]},
}


# Stress inputs per zoo test run (the product's default is 10,000: benchmarks/zoo.py runs it on every fully
# trained model); csim's per-sample cost on them was most of the suite's time.
STRESS = 2_000


def quick(name: str) -> dict:
    return {**QUICK, **QUICK_PARAMS.get(name, {})}


def per_recipe(names) -> list:
    """One xdist group per recipe: every test of a recipe shares that worker's cached run (`_run`)."""
    return [pytest.param(n, marks=pytest.mark.xdist_group(n)) for n in names]


@pytest.mark.parametrize("name", per_recipe(available_recipes()))
def test_recipe_builds_and_trains(name, runs_dir):
    """Read from the product path's own run: the model it trained and that model's torch outputs."""
    report = _run(name, runs_dir)
    run_dir = Path(report["run_dir"])
    recipe = load_recipe(str(run_dir / "recipe.yaml"))
    assert recipe.model.arch in ARCHITECTURES
    trained = json.loads((run_dir / "train.json").read_text())
    assert trained["epochs_run"] >= 1 or recipe.family == "mp"  # McCulloch-Pitts units are designed, not trained
    assert trained["epochs_run"] <= quick(name)["train.epochs"]  # the brief training asked for, not the recipe's
    y, y_test = np.load(run_dir / "predictions/torch.npy"), np.load(run_dir / "data/y_test.npy")
    assert y.dtype == np.float32 and np.isfinite(y).all()
    if recipe.family == "gan" or recipe.model.arch == "conv-autoencoder":
        assert y.shape == y_test.shape
    else:
        assert y.shape == (len(y_test), trained["n_out"])


def test_family_trainers_registered():
    assert {"dbn", "autoencoder", "dqn", "gan", "mp", "perceptron", "adaline", "stacked-ae"} <= set(TRAINERS)


def test_mnist1d_is_generated_offline_and_deterministic():
    from fpgadl.ml.datasets import DATASETS

    small = {"num_samples": 300}  # the generator's cost is per sample; the layouts are what is checked
    a, b = DATASETS["mnist1d"](layout="flat", **small), DATASETS["mnist1d"](layout="flat", **small)
    assert a[0].shape == (300, 40) and a[2] == 10
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])  # two generations (load_dataset caches)
    flat = load_dataset("mnist1d", params={"layout": "flat", **small})
    seq = load_dataset("mnist1d", params={"layout": "sequence", "step_features": 4, **small})
    assert seq.input_shape == (10, 4)
    conv = load_dataset("mnist1d", params=small)
    assert conv.input_shape == (1, 40)
    assert np.array_equal(conv.x_train[:, 0, :], flat.x_train)


def test_dbn_pretraining_lowers_rbm_reconstruction_error():
    from fpgadl.zoo.dbn import pretrain_rbm

    x = torch.from_numpy(load_dataset("digits", params={"flatten": True}).x_train)
    gen = torch.Generator().manual_seed(0)
    _, _, err1 = pretrain_rbm(x, 32, 1, 0.1, 64, gen)
    _, _, err5 = pretrain_rbm(x, 32, 5, 0.1, 64, torch.Generator().manual_seed(0))
    assert err5 < err1 < 0.1


def test_cartpole_reward_separates_policies():
    from fpgadl.ml.cartpole import greedy_reward

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


@functools.cache
def _run(name: str, out_dir: str) -> dict:
    """The product path: `fpgadl run` on the recipe with brief training, fast and csim engines."""
    from fpgadl import api

    return api.run(name, out=Path(out_dir) / name, overrides=quick(name), stress=STRESS, warn=lambda m: None)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("zoo-runs"))


ENGINES = {"torch", "onnxruntime", "csim", "fast"}
EXACT = [
    "mlp-digits",
    "softmax-digits",
    "linreg-synthetic",
    "dae-digits",
    "dqn-cartpole",
    "lenet-digits",
    "conv1d-mnist1d",
    "lenet1d-mnist1d",  # MaxPool1d through fpgadl's clean-up rewrite (MaxPool1dAs2d)
    "gan-digits",
    "softmax-mnist1d",
    "mlp-mnist1d",
    "mp-logic",
    "perceptron-logic",
    "adaline-linreg",
    "l1-ae-digits",
    "cae-digits",
]
EXACT_SLOW = ["alexnet-digits", "vgg-digits"]


@pytest.mark.parametrize("name", per_recipe(EXACT + EXACT_SLOW))
def test_every_stage_exact(name, runs_dir):
    report = _run(name, runs_dir)
    assert set(report["metrics"]) == ENGINES
    assert report["stress"]["n"] == STRESS and report["stress"]["identical_values"] == 1.0  # fast == csim
    assert report["exact_expected"] is True
    for pair, c in report["comparisons"].items():
        assert c["identical_values"] == 1.0, pair
    assert [c["name"] for c in report["checks"] if not c["passed"] and "floor" not in c["name"]] == []


# name -> (max |csim - torch| allowed, min argmax agreement) after the brief training above;
# fully trained values are in docs/zoo-notes.md
BOUNDED = {
    "mlp-sigmoid-digits": (0.1, 0.9),
    "mlp-tanh-digits": (0.1, 0.95),
    # after 2 epochs (0.73 measured with numpy 2.4 / onnx 1.23, also on the previous session's code); fully
    # trained: 0.016 (docs/zoo.md)
    "gru-mnist1d": (0.8, 0.9),
    "rnn-mnist1d": (0.5, 0.9),  # fpgadl's own SimpleRNN template (tests/test_simple_rnn.py); 2 epochs: 0.25, 99%
    "dbn-digits": (0.05, 0.9),
    "sparse-ae-digits": (0.05, 0.5),
    "stacked-ae-digits": (0.05, 0.9),
}
# The precision audit holds BatchNorm's constants exactly (issue 9): what is left is torch's float32
# rounding of x * scale + bias, which may or may not show on a given run.
EXACT_EXCEPT_FLOAT32 = {"resnet-digits"}
BOUNDED_SLOW = {
    "resnet-digits": (0.05, 0.97),
    "lstm-mnist1d": (0.45, 0.95),  # 2 epochs: 0.40 measured with numpy 2.4 / onnx 1.23
    # DeepLearnToolbox parity: the same layer kinds as mlp-tanh-digits, dbn-digits and lenet-digits
    "dlt-nn-digits": (0.1, 0.95),
    "dlt-sae-digits": (0.05, 0.9),
    "dlt-dbn-digits": (0.05, 0.9),
    "dlt-cnn-digits": (0.05, 0.9),
}


@pytest.mark.parametrize("name", per_recipe([*BOUNDED, *BOUNDED_SLOW]))
def test_inexact_families_measured_and_fast_equals_csim(name, runs_dir):
    max_dev, min_agree = {**BOUNDED, **BOUNDED_SLOW}[name]
    report = _run(name, runs_dir)
    assert set(report["metrics"]) == ENGINES
    assert report["stress"]["n"] == STRESS and report["stress"]["identical_values"] == 1.0  # fast == csim
    assert report["comparisons"]["csim|fast"]["identical_values"] == 1.0
    torch_csim = report["comparisons"]["torch|csim"]
    assert report["exact_expected"] is False and report["inexact_layers"]
    if name not in EXACT_EXCEPT_FLOAT32:  # if this starts failing, the family became exact: move it
        assert torch_csim["identical_values"] < 1.0
    assert torch_csim["max_abs_diff"] <= max_dev and torch_csim["argmax_agreement"] >= min_agree


def test_every_recipe_is_covered_by_a_pipeline_test():
    covered = set(EXACT) | set(EXACT_SLOW) | set(BOUNDED) | set(BOUNDED_SLOW)
    assert covered == set(available_recipes())


def test_gan_sample_grid_writes_a_png(tmp_path):
    from fpgadl.zoo.gan import sample_grid

    path = tmp_path / "grid.png"
    sample_grid(load_dataset("digits-latent").y_test[:16], str(path), cols=8)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_zoo_command_lists_every_recipe_with_its_exact_stages():
    import json

    from tests.helpers import run_cli

    proc = run_cli("zoo", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["recipe"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(available_recipes())
    assert rows["mlp-digits"]["bit_exact"] == ["torch", "onnxruntime", "csim", "fast"]
    assert rows["mlp-digits"]["bits"] == {"input": 8, "weight": 8, "act": 8, "bias": 16}
    for name in ("mlp-sigmoid-digits", "resnet-digits", "gru-mnist1d", "lstm-mnist1d", "rnn-mnist1d", "dbn-digits"):
        assert rows[name]["bit_exact"] == ["csim", "fast"], name
    assert set(EXACT) | set(EXACT_SLOW) == {n for n, r in rows.items() if len(r["bit_exact"]) == 4}


@pytest.mark.xdist_group("gan-digits")
def test_gan_report_shows_the_emulated_sample_grid(runs_dir):
    report = _run("gan-digits", runs_dir)
    run_dir = Path(report["run_dir"])
    assert (run_dir / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![samples](samples.png)" in (run_dir / "report.md").read_text()


# --- the course's points, read from the reports of the runs above ------------------------------------


@pytest.mark.xdist_group("mp-logic")
def test_mp_neuron_report_checks_the_whole_truth_table_on_the_fpga(runs_dir):
    report = _run("mp-logic", runs_dir)
    extra = report["extra"]["data"]
    x = np.load(Path(report["run_dir"]) / "data/x_test.npy")
    assert sorted(map(tuple, x.astype(int))) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # all 2^n inputs
    a, b = x[:, 0].astype(int), x[:, 1].astype(int)
    expected = np.stack([a & b, a | b, 1 - a, 1 - (a & b), a ^ b], axis=1)
    for engine in ("torch", "onnxruntime", "csim", "fast"):
        out = np.load(Path(report["run_dir"]) / f"predictions/{engine}.npy")
        assert np.array_equal(out, expected.astype(np.float32)), engine
    assert extra["engine"] == "csim" and extra["accuracy"] == dict.fromkeys(["and", "or", "not", "nand", "xor"], 1.0)
    assert "| 1 | 1 | 1 / 1 | 1 / 1 | 0 / 0 | 0 / 0 | 0 / 0 |" in (Path(report["run_dir"]) / "report.md").read_text()


@pytest.mark.xdist_group("perceptron-logic")
def test_perceptron_learns_and_or_nand_but_not_xor(runs_dir):
    report = _run("perceptron-logic", runs_dir)
    acc = report["extra"]["data"]["accuracy"]  # measured on the csim outputs
    assert acc["and"] == acc["or"] == acc["nand"] == 1.0
    assert acc["xor"] <= 0.75
    assert report["extra"]["data"]["two_layer_backprop"]["xor"] == 1.0
    assert "XOR is not linearly separable" in (Path(report["run_dir"]) / "report.md").read_text()


def test_designed_threshold_units_reject_off_grid_weights():
    from fpgadl.core.errors import UsageError
    from fpgadl.ml.recipes import QuantConfig

    layers = [[{"w": [1, 0.5], "theta": 1}]]
    with pytest.raises(UsageError, match="integer weights"):
        build_model("threshold-net", {"layers": layers}, QuantConfig(input_bits=2, weight_bits=3), (2,), 1)


@pytest.mark.xdist_group("sparse-ae-digits")
def test_sparse_autoencoder_reports_mean_hidden_activation_against_its_target(runs_dir):
    report = _run("sparse-ae-digits", runs_dir)
    data = report["extra"]["data"]
    assert data["sparsity_target"] == 0.1 and len(data["hidden"]) == 1
    assert 0 < data["hidden"][0]["mean_activation"] < 1
    assert "mean activation" in (Path(report["run_dir"]) / "report.md").read_text()


def test_kl_sparsity_penalty_is_zero_at_the_target_and_grows_away_from_it():
    from fpgadl.zoo.autoencoder import kl_sparsity

    at = kl_sparsity(torch.full((8, 4), 0.1), 0.1)
    away = kl_sparsity(torch.full((8, 4), 0.5), 0.1)
    assert float(at) == pytest.approx(0.0, abs=1e-6) and float(away) > 0.5


@pytest.mark.xdist_group("stacked-ae-digits")
def test_stacked_autoencoder_report_compares_with_no_pretraining(runs_dir):
    report = _run("stacked-ae-digits", runs_dir)
    c = report["extra"]["data"]
    assert 0 < c["no_pretraining_test_accuracy"] <= 1 and 0 < c["pretrained_test_accuracy"] <= 1
    assert len(c["autoencoder_reconstruction_mse"]) == 2  # two autoencoders pre-trained greedily
    assert "no pre-training" in (Path(report["run_dir"]) / "report.md").read_text()


@pytest.mark.xdist_group("cae-digits")
def test_conv_autoencoder_report_shows_emulated_reconstructions(runs_dir):
    report = _run("cae-digits", runs_dir)
    run_dir = Path(report["run_dir"])
    assert (run_dir / "reconstructions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![reconstructions](reconstructions.png)" in (run_dir / "report.md").read_text()
    assert report["metrics"]["csim"]["value"] == report["metrics"]["torch"]["value"]  # exact family
