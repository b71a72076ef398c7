"""All layer kernels of the fast engine; importing this module fills the registry.

The kernels live in topic modules (``kernels_dense``, ``activations``, ``softmax``, ``kernels_misc``); this
module imports them and re-exports the registry's entry points.
"""

from fpgadl.emulator import activations, kernels_dense, kernels_misc, softmax  # noqa: F401  (registration)
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    build_kernel,
    register,
    run_layer,
    supported_classes,
)

__all__ = ["UnsupportedLayerError", "build_kernel", "register", "run_layer", "supported_classes"]
