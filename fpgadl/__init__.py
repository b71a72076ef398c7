"""fpgadl: FPGA deployment toolkit for quantized neural networks."""

__version__ = "0.1.0"
