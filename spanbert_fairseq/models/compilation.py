"""`--compile`: torch.compile of the model's modules in place, or eager with one warning."""

import functools
import logging
import os
import sys
import sysconfig

import torch

logger = logging.getLogger(__name__)


def compile_in_place(modules):
    """`nn.Module.compile()` each module; returns whether they were compiled.

    In place, so parameters and state-dict keys stay as they are (`torch.compile(module)` wraps it
    and prefixes every key with `_orig_mod.`). Where this platform cannot compile, the modules stay
    eager and one warning per process says why.
    """
    reason = why_torch_cannot_compile()
    if reason:
        _warn_once(f"--compile: {reason}; the model runs eagerly")
        return False
    # CPU dropout masks come from the opaque `spanbert::keep_mask` op (dropout.py), so inductor's
    # own random numbers only serve CUDA.
    for module in modules:
        # dynamic: one kernel per shape pattern from the start. Shapes vary every batch (the rows the
        # heads read), and compiling the first shape statically would make kernels depend on which
        # batch a run began with: a resumed run would differ from an uninterrupted one in the last bits.
        module.compile(dynamic=True)
    logger.info(f"--compile: {', '.join(type(m).__name__ for m in modules)} compiled in place "
                "(torch.compile; the first steps run the compiler)")
    return True


@functools.cache
def why_torch_cannot_compile():
    """None when torch.compile's default backend (inductor) can run here, else the reason.

    Checked up front, as a missing piece otherwise surfaces as a compiler error in the first step.
    A CUDA machine is checked for CUDA (Triton), whether or not the run then uses it.
    """
    if not torch._dynamo.is_dynamo_supported():
        return f"torch.compile does not support Python {sys.version_info.major}.{sys.version_info.minor} here"
    if torch.cuda.is_available():
        from torch.utils._triton import has_triton

        if not has_triton():
            return "inductor needs Triton on CUDA and it is not installed"
    from torch._inductor.cpp_builder import get_cpp_compiler

    try:
        get_cpp_compiler()
    except Exception:  # inductor raises its own InvalidCxxCompiler, or OSError when probing
        return "inductor needs a C++ compiler (g++ or clang++) and none was found"
    if not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        return "inductor needs Python's C headers (Python.h) and they are not installed"
    return None


@functools.cache
def _warn_once(message):
    logger.warning(message)
