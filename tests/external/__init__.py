"""External-model corpus: Brevitas models fpgadl's authors did not write (bnn_pynq, hls4ml's and FINN's
Brevitas tests, tutorial-style compositions), built in code with random weights and randomised BatchNorm
statistics, and a runner that takes each through export_qonnx -> `fpgadl hls` -> `fpgadl emulate` against
torch. Used by tests/external/test_corpus.py and benchmarks/byom.py (which writes docs/byom.md).
"""
