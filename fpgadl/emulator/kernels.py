"""All layer kernels of the fast engine; importing this module fills the registry.

The kernels live in topic modules (``kernels_dense``, ``kernels_recurrent``, ``activations``,
``softmax``, ``kernels_pool``, ``kernels_norm``, ``kernels_misc``); this module imports them and
re-exports the registry's entry points.
"""

from fpgadl.emulator import (  # noqa: F401  (registration)
    activations,
    kernels_binary,
    kernels_dense,
    kernels_misc,
    kernels_norm,
    kernels_pool,
    kernels_recurrent,
    softmax,
)
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    build_kernel,
    register,
    run_layer,
    supported_classes,
)

__all__ = ["UnsupportedLayerError", "build_kernel", "register", "run_layer", "supported_classes"]
