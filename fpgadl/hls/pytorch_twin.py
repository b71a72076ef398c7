"""The PyTorch front end: recurrent nets reach hls4ml as a float twin, not as QONNX.

hls4ml converts recurrent layers only from PyTorch (`convert_from_pytorch_model`), and only plain
`torch.nn.GRU` / `torch.nn.LSTM` with `batch_first=True`, one layer, unidirectional; it returns the last
hidden state only. A model that takes this front end implements `TwinSource`: it hands over a plain-torch
twin with its quantized values written in, and the ap_fixed types that hold each tensor exactly. The
project keeps the twin's weights (`twin.pt`) and what rebuilds the module, so `fpgadl emulate` needs the
project directory alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from fpgadl.core.errors import UsageError
from fpgadl.core.options import HlsOptions
from fpgadl.hls.project import PROJECT_NAME, TWIN_WEIGHTS, ProjectMeta, quiet

RECURRENT = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}


class TwinSource(Protocol):
    """What a model gives the PyTorch front end."""

    input_shape: tuple

    def float_twin(self) -> RecurrentTwin: ...

    def hls_precisions(self) -> dict[str, dict[str, str]]: ...

    def twin_spec(self) -> dict: ...  # kind, input_shape, hidden, n_out

    def input_prequant(self) -> dict | None: ...  # quantizer the host applies before a port that cannot round


class RecurrentTwin(torch.nn.Module):
    def __init__(self, rnn: torch.nn.Module, fc: torch.nn.Linear):
        super().__init__()
        self.rnn, self.fc = rnn, fc

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


def empty_twin(spec: dict) -> RecurrentTwin:
    rnn = RECURRENT[spec["kind"]](spec["input_shape"][1], spec["hidden"], batch_first=True)
    return RecurrentTwin(rnn, torch.nn.Linear(spec["hidden"], spec["n_out"]))


def rebuild_twin(spec: dict, state_dict: dict) -> RecurrentTwin:
    twin = empty_twin(spec)
    twin.load_state_dict(state_dict)
    return twin.eval()


def twin_hls_config(model: TwinSource, backend: str = "Vitis", table_size: int = 4096) -> dict:
    """hls4ml config for the twin: exact weight types, the input port, and `table_size`-entry gate tables.

    The gate tables get `table_size` entries over [-8, 8) (hls4ml's default 1024 doubles the deviation
    from torch; 4096 measured: GRU 0.033 -> 0.016, LSTM 0.128 -> 0.060 max |logit error|).
    """
    import hls4ml

    config = hls4ml.utils.config.config_from_pytorch_model(
        model.float_twin(),
        tuple(model.input_shape),
        granularity="name",
        backend=backend,
        default_precision="fixed<32,12>",
        channels_last_conversion="off",
        transpose_outputs=False,
    )
    precisions = model.hls_precisions()
    names = config["LayerName"]
    input_name = next(iter(names))
    names[input_name]["Precision"]["result"] = precisions["input"]["result"]
    names["rnn"]["Precision"].update(precisions["rnn"])
    names["rnn"]["TableSize"] = table_size  # entries of the sigmoid/tanh gate tables over [-8, 8)
    names["fc"]["Precision"].update(precisions["fc"])
    return config


def convert_pytorch_twin(twin: RecurrentTwin, config: dict, output_dir: str, **kwargs):
    """hls4ml project of a float twin through the PyTorch front end (not compiled).

    Channels-last conversion is off (the input is already (timesteps, features), which is what hls4ml's
    recurrent layers read). hls4ml 1.3.0 transposes Dense weights from torch's (out, in) to its (in, out)
    only inside that conversion pass, so with it off they are transposed here.
    """
    import hls4ml

    hls_model = hls4ml.converters.convert_from_pytorch_model(twin, output_dir=output_dir, hls_config=config, **kwargs)
    for layer in hls_model.get_layers():
        if layer.class_name == "Dense":
            w = layer.get_weights("weight")
            w.data = np.ascontiguousarray(w.data.T)
    return hls_model


def pytorch_model_from(hls_dir: Path, spec: dict, output_dir: Path):
    """Rebuild a project's hls4ml model from its twin weights and fpgadl.json (`spec`)."""
    from fpgadl.hls.simple_rnn import register_simple_rnn

    register_simple_rnn()  # hls4ml has no Vivado/Vitis SimpleRNN: fpgadl's template writes it
    twin = rebuild_twin(spec["twin"], torch.load(Path(hls_dir) / TWIN_WEIGHTS, weights_only=True))
    config = json.loads(json.dumps(spec["hls_config"]))
    config["PytorchModel"] = twin
    config["InputShape"] = tuple(config["InputShape"])
    with quiet():
        return convert_pytorch_twin(twin, config, str(output_dir), project_name=PROJECT_NAME, **spec["convert_kwargs"])


def convert_twin(model: TwinSource, hls_dir: Path, opts: HlsOptions, warn=print) -> ProjectMeta:
    """A recurrent model through hls4ml's PyTorch front end, from its float twin.

    The gates are lookup tables, so the project is never exact against torch (fast == csim still is)."""
    from fpgadl.hls.convert import target_fields, write_project

    with quiet():
        config = twin_hls_config(model, backend=opts.backend)
    config.pop("PytorchModel", None)  # the module itself; rebuilt from `twin` + TWIN_WEIGHTS on load
    config["InputShape"] = list(config.get("InputShape", []))
    config["Model"]["Strategy"] = opts.strategy.capitalize()
    config["Model"]["ReuseFactor"] = opts.reuse_factor
    spec = model.twin_spec()
    if spec["kind"] == "rnn" and (opts.strategy != "latency" or opts.io_type != "io_parallel"):
        raise UsageError(
            f"SimpleRNN: strategy {opts.strategy}, io {opts.io_type}; fpgadl's template has latency, io_parallel only"
        )
    warn(
        "note: recurrent layers go through hls4ml's PyTorch front end; their sigmoid/tanh gates are lookup "
        "tables and deviate from torch; layers: rnn"
    )
    input_layer = next(iter(config["LayerName"]))
    meta = ProjectMeta(
        clean_model="",
        hls_config=config,
        **target_fields(opts),
        input_name="input",
        input_layer=input_layer,
        input_type=config["LayerName"][input_layer]["Precision"]["result"],
        input_shape_onnx=spec["input_shape"],
        input_transpose=None,
        output_shape_onnx=[spec["n_out"]],
        output_shape_hls=[spec["n_out"]],
        output_transpose=None,
        exact=False,
        inexact_layers=["rnn"],
        quant_nodes=[],
        frontend="pytorch",
        twin=spec,
        input_prequant=model.input_prequant(),
    )

    def build(tmp: Path):
        torch.save(model.float_twin().state_dict(), tmp / TWIN_WEIGHTS)
        return pytorch_model_from(tmp, asdict(meta), tmp)

    write_project(hls_dir, meta, build)
    return meta
