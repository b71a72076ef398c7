"""All layer kernels of the fast engine; importing this module fills the registry.

Every module of this package that is not part of the engine's core (`CORE`) is a kernel module: it
registers its kernels with `registry.register` when imported, and it is imported here by discovery, so
adding a layer kind is adding one module (docs/design.md, "Add an emulator kernel").
"""

import importlib
import pkgutil

import fpgadl.emulator as _package
from fpgadl.emulator.registry import (
    UnsupportedLayerError,
    build_kernel,
    register,
    run_layer,
    supported_classes,
)

CORE = {"fixed", "fastfixed", "registry", "runner", "kernels"}
KERNEL_MODULES = sorted(m.name for m in pkgutil.iter_modules(_package.__path__) if m.name not in CORE)
for _name in KERNEL_MODULES:
    importlib.import_module(f"fpgadl.emulator.{_name}")

__all__ = ["KERNEL_MODULES", "UnsupportedLayerError", "build_kernel", "register", "run_layer", "supported_classes"]
