"""Open RTL: the converted project's hls4ml graph traced into da4ml's fixed-point program, emitted as
pipelined Verilog, co-simulated bit for bit against the fast engine with Verilator, and synthesized with
Yosys for real LUT/FF/CARRY/DSP counts.  `flow.rtl` is what `fpgadl rtl` runs."""
