"""What every model backend needs: check the folder, pick device/dtype, load once per process.

Why check files before loading: `from_pretrained` on a wrong folder fails deep inside the library with
a long traceback (or, without `local_files_only`, tries the network). A missing folder or component
is a config mistake the user fixes, so it becomes one `KiwiUserError` line naming what is missing.
Why a process-wide cache: Dagster runs many pairs (and several backend instances) in one process;
weights are read once per (kind, folder, device, dtype) and shared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.types import SampleRejected

T = TypeVar("T")

# Alternatives accepted for each component of a transformers folder (sharded or single-file weights).
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
PREPROCESSOR = ("preprocessor_config.json", "processor_config.json")
TOKENIZER = ("tokenizer.json", "vocab.json", "tokenizer.model")

_cache: dict[tuple[str, ...], Any] = {}
_lock = threading.Lock()


def check_model_folder(
    path: str | Path | None, backend: str, required: dict[str, tuple[str, ...]], expected: str
) -> Path:
    """The folder as a Path if it holds one of each `required` file group, else a one-line KiwiUserError."""
    if path is None or str(path).strip() == "":
        raise KiwiUserError(
            f"{backend}: model_path is not set (expected a local {expected} folder)", code="backend_config"
        )
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise KiwiUserError(
            f"{backend}: model folder {folder} does not exist (expected a local {expected} folder)",
            code="backend_model_missing",
        )
    for what, names in required.items():
        if not any((folder / name).exists() for name in names):
            raise KiwiUserError(
                f"{backend}: model folder {folder} lacks {what} ({' or '.join(names)})", code="backend_model_missing"
            )
    return folder


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; anything else is passed to torch as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise KiwiUserError(f"device {device!r} requested but CUDA is not available", code="backend_config")
    return device


def resolve_dtype(dtype: str | None, device: str) -> Any:
    """None -> float32 on CPU, bfloat16 on GPU; names like 'float16' map to torch dtypes."""
    import torch

    if dtype is None:
        return torch.float32 if device == "cpu" else torch.bfloat16
    value = getattr(torch, str(dtype).replace("torch.", ""), None)
    if not isinstance(value, torch.dtype):
        raise KiwiUserError(f"unknown dtype {dtype!r} (use float32, bfloat16 or float16)", code="backend_config")
    return value


def model_cache(key: tuple[str, ...], loader: Callable[[], T], backend: str, folder: Path) -> T:
    """Load once per process per key; a library error while loading becomes a one-line KiwiUserError."""
    with _lock:
        if key in _cache:
            return _cache[key]
        try:
            value = loader()
        except KiwiUserError:
            raise
        except Exception as exc:  # noqa: BLE001 - any library failure here means the folder is unusable
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise KiwiUserError(
                f"{backend}: cannot load model from {folder}: {first}", code="backend_model_unreadable"
            ) from None
        _cache[key] = value
        return value


def clear_model_cache() -> None:
    """Drop every loaded model (frees memory; the next use reloads from disk)."""
    with _lock:
        _cache.clear()


def backend_error(backend: str, exc: Exception) -> SampleRejected:
    """An inference failure on one sample, as a quarantine reason rather than a crash."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return SampleRejected("qc_backend_error", f"{backend} failed: {type(exc).__name__}: {first}"[:300])
