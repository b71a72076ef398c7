"""The HLS side: ONNX export and clean-up, hls4ml conversion, the project directory, engines."""
