"""Where and how a local model runs: device, dtype, intra-op threads, fused kernels."""

from __future__ import annotations

import contextlib
import importlib.util
import re
from collections.abc import Iterator

import torch

from engine.errors import EngineError


def fast_kernels(device: str) -> dict[str, str]:
    """Which implementation runs the Gated DeltaNet rule and the causal conv: fused kernels or PyTorch code.

    The fused kernels (`pip install visagent[fast]`: flash-linear-attention, causal-conv1d) are CUDA-only;
    transformers picks them up by itself when they are importable.
    """
    cuda = device.startswith("cuda")
    fla = importlib.util.find_spec("fla") is not None
    conv = importlib.util.find_spec("causal_conv1d") is not None
    return {
        "gated_delta_rule": "flash-linear-attention" if fla and cuda else "torch",
        "causal_conv1d": "causal-conv1d" if conv and cuda else "torch",
    }


def fused_training_problem(device: str, *, fla: bool | None = None, capability: tuple[int, int] | None = None,
                           triton: str | None = None, tilelang: bool | None = None) -> str | None:
    """Why training cannot run with the fused Gated DeltaNet kernels here, or None.

    flash-linear-attention (0.6) refuses the backward pass on Hopper GPUs (H100, H200) with Triton >= 3.4 and
    < 3.7.1 unless tilelang is installed (wrong gradients, its issue #640) — first seen on a lent H200 with torch 2.11
    and Triton 3.6 (docs/gpu.md). Generation is unaffected. The keyword arguments stand in for what is installed
    and which GPU is visible (tests)."""
    if not device.startswith("cuda"):
        return None
    if fla is None:
        fla = importlib.util.find_spec("fla") is not None
    if not fla:
        return None
    if capability is None:
        capability = torch.cuda.get_device_capability(device)
    if triton is None:
        try:
            import triton as triton_module

            triton = triton_module.__version__
        except ImportError:
            return None
    if tilelang is None:
        tilelang = importlib.util.find_spec("tilelang") is not None
    version = tuple(int(p) for p in re.findall(r"\d+", triton)[:3])
    if capability[0] == 9 and (3, 4, 0) <= version < (3, 7, 1) and not tilelang:
        return (f"flash-linear-attention cannot train on this Hopper GPU with Triton {triton} (it refuses the Gated "
                "DeltaNet backward pass there: wrong gradients, its issue #640); upgrade triton to 3.7.1 or newer, "
                "`pip install tilelang`, or `pip uninstall flash-linear-attention fla-core` for training "
                "(generation keeps working with it)")
    return None


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """'auto' → bfloat16 on CUDA, float32 on CPU; else bf16/bfloat16, fp16/float16, fp32/float32."""
    names = {
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "half": torch.float16,
        "fp32": torch.float32,
        "float32": torch.float32,
        "float": torch.float32,
    }
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in names:
        raise EngineError(f"unknown dtype {dtype!r}; use auto, bf16, fp16 or fp32")
    return names[dtype]


def resolve_device(device: str) -> str:
    """'auto' → 'cuda' when a GPU is visible, else 'cpu'. Raises EngineError for CUDA without a GPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError(f"device {device!r} requested but no CUDA GPU is visible; use device cpu or auto "
                          "(--device, VISAGENT_DEVICE or device in visagent.toml)")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise EngineError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return device


def _denormals_kept() -> bool:
    """Does this thread keep denormal float32 values (False: they read as zero)?"""
    return (torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() != 0.0


@contextlib.contextmanager
def flush_denormals(device: str) -> Iterator[None]:
    """On CPU, while inside: treat denormal floats as zero in this thread (FTZ/DAZ), then restore what it was.

    Trained weights of the tiny checkpoint drive some activations and gradients into the denormal range, where x86
    arithmetic is many times slower: a training step on the shipped checkpoint took 4.8 s instead of 2.7 s
    (bench/train_batch.py --base tiny). Values below ~1e-38 become 0; nothing the model computes depends on them.
    torch's switch is per thread and process state, so it is scoped: the engine's generate and the trainer's run
    hold it; the caller's own arithmetic outside is left as it was (threads started inside inherit it).
    """
    if device != "cpu" or not _denormals_kept():
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """Run with `threads` torch intra-op threads (None: leave torch's setting), restoring it afterwards."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
