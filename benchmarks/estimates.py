"""Estimator vs published hls4ml synthesis results; writes docs/estimates.md.

Each design is rebuilt with hls4ml's Python API (converted from a torch model, never compiled) at the
precision, reuse factor, strategy, part and clock of the publication, then estimated with
``fpgadl.estimate``. The trained weights of these designs are not published; the weights here are drawn
from the initializer the models were trained from (Glorot-uniform, Keras' Dense default), rounded to the
design's weight type and, where the source pruned, magnitude-pruned to its sparsity. DSP counts depend on
the weight values (constant products narrower than 9 bits go to LUTs), so this is the largest stated
assumption of the comparison.

Run: .venv/bin/python benchmarks/estimates.py  [--out docs/estimates.md]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgadl.core.boards import load_board
from fpgadl.estimate import estimate

REPO = Path(__file__).resolve().parent.parent

JET = (16, 64, 32, 32, 5)


@dataclass
class Design:
    key: str
    title: str
    source: str
    board: str
    clock_ns: float
    weight_t: str
    data_t: str  # activations after ReLU
    accum_t: str
    reuse: int = 1
    strategy: str = "Latency"
    prune: float = 0.0
    published: dict = field(default_factory=dict)  # lut, ff, dsp, bram18k, latency (cycles), ii
    note: str = ""


DESIGNS = [
    Design(
        "fahim16",
        "Jet tagger 16-64-32-32-5, 16-bit PTQ, RF 1 (VU9P, 200 MHz)",
        "Fahim et al., hls4ml: An Open-Source Codesign Workflow..., TinyML 2021 (arXiv:2103.05579), Table 1: "
        "hls4ml 0.5.0, Vivado HLS 2019.2, xcvu9p, 200 MHz",
        "vcu118",
        5.0,
        "fixed<16,6>",
        "fixed<16,6>",
        "fixed<16,6>",
        published={"lut": 89209, "ff": 11266, "dsp": 1852, "latency": 10},
        note="latency published as 50 ns = 10 cycles at 200 MHz; BRAM and II not published",
    ),
    Design(
        "fahim14",
        "Jet tagger, 14-bit PTQ, RF 1 (VU9P, 200 MHz)",
        "Fahim et al. 2021, Table 1 (as above)",
        "vcu118",
        5.0,
        "fixed<14,6>",
        "fixed<14,6>",
        "fixed<14,6>",
        published={"lut": 90019, "ff": 9262, "dsp": 1132, "latency": 10},
        note="latency 50 ns; the integer bits of the 14-bit type are not stated (6 assumed). With 8 "
        "fractional bits, Glorot-scale weights need < 9 bits, so the rule puts every product in LUTs; "
        "the published 1,132 DSPs imply larger trained weights than the initializer",
    ),
    Design(
        "fahim6",
        "Jet tagger, 6-bit QAT (QKeras), RF 1 (VU9P, 200 MHz)",
        "Fahim et al. 2021, Table 1 (as above)",
        "vcu118",
        5.0,
        "fixed<6,1>",
        "ufixed<6,0>",
        "fixed<16,6>",
        published={"lut": 63251, "ff": 4394, "dsp": 38, "latency": 9},
        note="latency 45 ns = 9 cycles; input layer kept at <16,6>; where the 38 DSPs sit is not published",
    ),
    Design(
        "tutorial1",
        "hls4ml tutorial part 1: jet tagger <16,6>, RF 1 (xcu250, 200 MHz)",
        "Executed hls4ml-tutorial part 1 (hls4ml 1.2.0, Vivado HLS 2019.2), csynth report in "
        "github.com/Liu-Zhiheng/hls4ml-pynqz2-vivado2019-2-results, results/RESULTS_VIVADO2019_2.md",
        "alveo-u250",
        5.0,
        "fixed<16,6>",
        "fixed<16,6>",
        "fixed<16,6>",
        published={"lut": 109753, "ff": 12562, "dsp": 2118, "bram18k": 4, "latency": 12, "ii": 1},
        note="HLS (csynth) estimate, not post-implementation; includes the softmax",
    ),
    Design(
        "tutorial7",
        "hls4ml tutorial part 7a: jet tagger 6-bit QAT, 75% pruned, RF 64 (pynq-z2, 5 ns HLS target)",
        "Same repository, vivado_reports/vivado_hls_myproject_axi_csynth.rpt, instance 'myproject' "
        "(the network without the AXI-stream wrapper); configuration from hls4ml-tutorial part7a_bitstream.ipynb",
        "pynq-z2",
        5.0,
        "fixed<6,1>",
        "ufixed<6,0>",
        "fixed<16,6>",
        reuse=64,
        prune=0.75,
        published={"lut": 34823, "ff": 21312, "dsp": 9, "bram18k": 4, "latency": 55, "ii": 15},
        note="the AXI-stream wrapper adds I/O loops (95 cycles in all); with 6-bit weights no product needs "
        "a DSP, so the estimator lets RF 64 share nothing (II 1), while HLS scheduled an II of 15: the "
        "Latency-strategy RF > 1 rule is the estimator's weakest",
    ),
]


def _weights(rng: np.random.Generator, n_in: int, n_out: int, prune: float) -> np.ndarray:
    limit = np.sqrt(6.0 / (n_in + n_out))
    w = rng.uniform(-limit, limit, size=(n_out, n_in))
    if prune:
        cut = np.quantile(np.abs(w), prune)
        w[np.abs(w) < cut] = 0.0
    return w


def build(design: Design, out_dir: str, seed: int = 0):
    """The design as an hls4ml ModelGraph (Vitis backend, io_parallel), converted but not compiled."""
    import hls4ml
    import torch

    rng = np.random.default_rng(seed)
    layers: list[torch.nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(JET)):
        lin = torch.nn.Linear(n_in, n_out)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(_weights(rng, n_in, n_out, design.prune)))
            lin.bias.zero_()
        layers.append(lin)
        layers.append(torch.nn.ReLU() if i < len(JET) - 2 else torch.nn.Softmax(dim=1))
    model = torch.nn.Sequential(*layers).eval()
    board = load_board(design.board)
    with contextlib.redirect_stdout(io.StringIO()):
        cfg = hls4ml.utils.config_from_pytorch_model(
            model, (JET[0],), granularity="name", backend="Vitis", default_precision="fixed<16,6>"
        )
        for name, layer_cfg in cfg["LayerName"].items():
            prec = layer_cfg.setdefault("Precision", {})
            if isinstance(prec, str):
                prec = layer_cfg["Precision"] = {"result": prec}
            if "weight" in prec or name.startswith("_") and int(name[1:]) % 2 == 0:
                prec.update(
                    weight=design.weight_t, bias=design.weight_t, accum=design.accum_t, result=design.accum_t
                )
                layer_cfg["ReuseFactor"] = design.reuse
                layer_cfg["Strategy"] = design.strategy
            elif name.startswith("_"):
                prec["result"] = design.data_t if int(name[1:]) < 2 * (len(JET) - 2) else "fixed<16,6>"
        hls_model = hls4ml.converters.convert_from_pytorch_model(
            model,
            hls_config=cfg,
            output_dir=out_dir,
            backend="Vitis",
            part=board.part,
            clock_period=design.clock_ns,
            io_type="io_parallel",
        )
    return hls_model, board


def _err(est: float, pub: float | None) -> str:
    if pub is None:
        return "n/p"
    if pub == 0:
        return "—" if est == 0 else f"+{est:g} (abs)"
    return f"{100.0 * (est - pub) / pub:+.0f}%"


def run(seeds: int = 3) -> tuple[str, dict]:
    rows, errors = [], {k: [] for k in ("lut", "ff", "dsp", "bram18k", "latency")}
    for design in DESIGNS:
        ests = []
        for seed in range(seeds):
            with tempfile.TemporaryDirectory() as tmp:
                hls_model, board = build(design, tmp, seed)
                ests.append(estimate(hls_model, board, design.clock_ns))
        est = {r: float(np.mean([e.total[r] for e in ests])) for r in ("lut", "ff", "dsp", "bram18k")}
        est["latency"] = float(np.mean([e.latency_cycles for e in ests]))
        est["ii"] = float(np.mean([e.ii_cycles for e in ests]))
        spread = {r: float(np.std([e.total[r] for e in ests])) for r in ("dsp", "lut")}
        pub = design.published
        cells = []
        for r in ("lut", "ff", "dsp", "bram18k", "latency", "ii"):
            p = pub.get(r)
            cells.append(f"{est[r]:.0f} / {p if p is not None else 'n/p'} ({_err(est[r], p)})")
            if p and r in errors:
                errors[r].append(abs(est[r] - p) / p)
        rows.append((design, cells, spread))
    return _markdown(rows, errors), errors


def _markdown(rows, errors) -> str:
    out = [
        "# Estimator accuracy against published hls4ml synthesis results",
        "",
        (
            "Generated by `benchmarks/estimates.py` (do not edit by hand). Each cell is "
            "**estimate / published (relative error)**; `n/p` = not published. Estimates are means over 3 "
            "weight draws (see *Assumptions*)."
        ),
        "",
        "| design | LUT | FF | DSP | BRAM18K | latency (cycles) | II |",
        "|---|---|---|---|---|---|---|",
    ]
    for design, cells, _ in rows:
        out.append(f"| {design.title} | " + " | ".join(cells) + " |")
    out += ["", "Mean absolute relative error over the designs that publish the number:", ""]
    for r, errs in errors.items():
        if errs:
            out.append(
                f"- {r}: {100 * np.mean(errs):.0f}% over {len(errs)} designs (worst {100 * max(errs):.0f}%)"
            )
    out += ["", "## Sources", ""]
    for design, _, spread in rows:
        out.append(
            f"- **{design.title}** — {design.source}. Note: {design.note}. "
            f"Estimate spread over weight draws: DSP ±{spread['dsp']:.0f}, LUT ±{spread['lut']:.0f}."
        )
    out += ["", _ASSUMPTIONS]
    return "\n".join(out) + "\n"


_ASSUMPTIONS = """## The rules being tested

- **DSP or LUT**: a product uses DSP slices when both operands have at least 9 signed bits (the
  threshold of hls4ml's own `dsp_aware_pruning/objectives/vivado_objectives.py`); a constant weight
  counts its own magnitude bits, not its declared type; products wider than a slice (25x18 DSP48E1,
  27x18 DSP48E2) take several. Zero weights and +-2^k weights cost no multiplier under the Latency
  strategy; nothing is pruned under the Resource strategy (weights in a ROM).
- **BRAM**: Resource-strategy weight ROMs (RF deep, ceil(n_in*n_out/RF)*bits wide), table activations
  (one dual-port table per two lookups: the softmax of the jet tagger gives 4, as published), io_stream
  FIFOs deeper than 64.
- **Fit** (`fpgadl.estimate.fit`): start fully parallel; while a resource is above the ceiling, take the
  single step (one layer to its next valid reuse factor, Resource strategy) that frees most of the most
  over-used resource per added cycle; refuse steps that break the II target; raise `FitError` naming the
  resource, the layer and the overshoot when no step is left.
- **Distributed arithmetic** (`--strategy da`, da4ml adder graphs): LUT = 0.362 x the adder bits of the
  unshared canonical-signed-digit shift-and-add form of the layer's constants (`da_adder_bits`), no DSP;
  the coefficient is fitted on Yosys counts of da4ml netlists, held-out error in docs/rtl.md (not on
  vendor syntheses: none is published for this strategy).
- **Recurrent layers** (LSTM, GRU, fpgadl's SimpleRNN): the input and recurrent kernels, one table per
  gate value and the state products, once per timestep; composed from the rules above, not calibrated.

## Assumptions and what could not be found

- **Weights.** None of these publications ships its trained weights. The estimator's DSP count depends
  on them: under the Latency strategy each weight is a constant, a product by 0 or by +-2^k costs nothing,
  and a product goes to DSP only when the constant needs 9 or more signed bits. The weights used here are
  Glorot-uniform draws at the published precision (magnitude-pruned to 75% for tutorial part 7a). The
  DSP column is therefore a check of the rule *given a plausible weight distribution*, not a
  reproduction.
- **Calibration.** The LUT and FF coefficients in `fpgadl/estimate/rules.py` (LUTs per adder bit, FF per
  pipeline stage bit) were chosen by looking at these same designs, so the LUT and FF errors above are
  in-sample. No held-out published design with enough detail (precision, reuse factor, part, clock and
  resources together) was found in the stored material.
- **Not found.** Duarte et al. 2018 (JINST 13 P07027) reuse-factor/precision scans are published as
  figures only; their numbers could not be read from the stored text, so they are not in the table.
  Aarrestad et al. 2021 (CNNs, io_stream) publish resources as figures and tables of pruned,
  QAT-trained SVHN models whose per-layer sparsity is not given; the io_stream and Conv rules are
  therefore unvalidated against a published design. The MNIST 784-16-10 reuse scan in Fahim et al.
  2021 (Fig. 6) gives only its end points in the text (II from 14 to 12,544 cycles).
- **What the numbers are.** Fahim et al. and the tutorial report are Vivado HLS estimates or
  post-synthesis numbers of the IP alone; place-and-route results differ (the part 7a design uses
  20,668 LUTs after implementation against 34,823 in the HLS report, in the same repository).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "estimates.md"))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    text, _errors = run(args.seeds)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
