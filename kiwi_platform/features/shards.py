"""Feature shards: many samples per safetensors file, an index by key, written then renamed.

Why safetensors: a reader memory-maps one shard and pulls a single sample's tensors by name without
reading the rest (random access by key, as the sampler needs), and tensors round-trip bit-exactly.
A shard is named by its own sha256, so the same entries give the same file, a reader can verify a
shard before trusting it, and a half-written shard (a `.tmp-*` file) is never referenced.

Damage policy: a missing or corrupted shard (or index) is not fatal. Its entries read as misses,
the training loop encodes those samples on the fly, and one warning names the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from kiwi_platform.features.codec import PixelCodec, decode_tensors, encode_tensors, parse_plan, plan_json
from kiwi_platform.features.keys import CACHE_VERSION
from kiwi_platform.lib.files import atomic_path, sha256_file

log = logging.getLogger("kiwi_platform.features")
INDEX = "index.parquet"
# version: the CACHE_VERSION that wrote the row; codec: how its tensors are stored (`codec.plan_json`)
INDEX_COLUMNS = ("key", "shard", "mode", "queries", "height", "width", "tensors", "dtype", "version", "codec")
# How floating-point tensors are stored. bfloat16 halves the cache and is what a bf16 run (the real
# recipe: VAE and DiT in bf16) computes with anyway; readers always get float32 back.
STORE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
SHARD_BYTES = 256 << 20  # a shard is written once its pending tensors reach this (memory stays bounded)
LATENTS = ("source_latents", "target_latents", "ref_latents")
MLLM_PREFIX = "mllm."


def entry_tensors(
    features: dict[str, Any], dtype: str = "float32", codecs: dict[str, PixelCodec] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """`precompute_features` output -> (flat {name: tensor} of one entry, its storage plan).

    Processor pixels that are an affine image of uint8 (per `codecs`) are stored as uint8, integer
    tensors narrowed (`codec.encode_tensors`); every other float32 tensor is stored as `dtype`."""
    out = {k: features[k] for k in LATENTS if features.get(k) is not None}
    out.update({MLLM_PREFIX + k: v for k, v in features["mllm_inputs"].items()})
    out = {k: v.detach().cpu().contiguous() for k, v in out.items()}
    out, plan = encode_tensors(out, codecs or {})
    store = STORE_DTYPES[dtype]
    out = {k: v.to(store) if v.dtype == torch.float32 and k not in plan else v for k, v in out.items()}
    return {k: v.contiguous() for k, v in sorted(out.items())}, plan


def entry_features(tensors: dict[str, torch.Tensor], row: dict) -> dict[str, Any]:
    """The inverse of `entry_tensors`: what `model.compute_loss` accepts in a batch, in the dtypes the
    encoders gave (uint8 pixels decoded, narrowed integers widened, bfloat16 widened to float32)."""
    tensors = decode_tensors(tensors, parse_plan(row.get("codec")))
    if row.get("dtype") == "bfloat16":
        tensors = {k: v.float() if v.dtype == torch.bfloat16 else v for k, v in tensors.items()}
    out: dict[str, Any] = {k: tensors[k] for k in LATENTS if k in tensors}
    out["mllm_inputs"] = {k[len(MLLM_PREFIX) :]: v for k, v in tensors.items() if k.startswith(MLLM_PREFIX)}
    out.update(
        size=(int(row["height"]), int(row["width"])), mllm_mode=str(row["mode"]), mllm_queries=int(row["queries"])
    )
    return out


@dataclass
class ShardWriter:
    """Collects entries in key order and writes a shard every `per_shard` entries or `max_bytes` of
    tensors, whichever comes first (call `close` at the end). Floats are stored as `dtype`, processor
    pixels as uint8 where `codecs` (from the processor that made them) reproduce them exactly."""

    folder: Path
    per_shard: int
    dtype: str = "float32"
    max_bytes: int = SHARD_BYTES
    codecs: dict[str, PixelCodec] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    shards: list[str] = field(default_factory=list)
    _pending: list[tuple[str, dict[str, torch.Tensor], dict]] = field(default_factory=list)
    _pending_bytes: int = 0

    def add(self, key: str, features: dict[str, Any]) -> None:
        height, width = features["size"]
        meta = {
            "mode": features["mllm_mode"],
            "queries": int(features["mllm_queries"]),
            "height": height,
            "width": width,
            "dtype": self.dtype,
            "version": CACHE_VERSION,
        }
        tensors, plan = entry_tensors(features, self.dtype, self.codecs)
        meta["codec"] = plan_json(plan)
        self._pending.append((key, tensors, meta))
        self._pending_bytes += sum(t.numel() * t.element_size() for t in tensors.values())
        if len(self._pending) >= self.per_shard or self._pending_bytes >= self.max_bytes:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        tensors = {f"{key}/{name}": t for key, ts, _ in self._pending for name, t in ts.items()}
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".tmp-{uuid.uuid4().hex}.safetensors"
        try:
            save_file(tensors, str(tmp))
            name = f"shard-{sha256_file(tmp)[:24]}.safetensors"
            os.replace(tmp, self.folder / name)
        finally:
            tmp.unlink(missing_ok=True)
        self.shards.append(name)
        for key, ts, meta in self._pending:
            self.rows.append({"key": key, "shard": name, **meta, "tensors": ",".join(ts)})
        self._pending, self._pending_bytes = [], 0

    def close(self) -> list[dict]:
        self.flush()
        return self.rows


def write_index(folder: Path, rows: list[dict]) -> tuple[Path, str]:
    """Write the index (rows sorted by key) atomically; returns its path and sha256."""
    df = pd.DataFrame(rows, columns=list(INDEX_COLUMNS)).sort_values("key", kind="stable").reset_index(drop=True)
    df = df.astype({"queries": "int64", "height": "int64", "width": "int64"})
    path = folder / INDEX
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path, sha256_file(path)


def remove_temp(folder: Path) -> None:
    """Half-written shards of a killed build (never referenced by an index)."""
    for tmp in folder.glob(".tmp-*"):
        tmp.unlink(missing_ok=True)


class FeatureCache:
    """Read side: `get(key)` -> the entry's tensors + meta, or None (absent key or damaged shard).

    Each shard is verified once (its sha256 against its name) before its first read; the reads are
    thread-safe, so the prefetch thread and the validation pass may share one cache.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.problems: list[str] = []
        self._rows: dict[str, dict] = {}
        self._verified: set[str] = set()
        self._bad: set[str] = set()
        self._lock = threading.Lock()
        index = self.folder / INDEX
        if not index.is_file():
            return
        try:
            df = pd.read_parquet(index)
            if "dtype" not in df.columns:  # indexes written before the choice existed hold float32
                df["dtype"] = "float32"
            for column in ("version", "codec"):  # older layouts: every tensor stored as is (and keys differ)
                if column not in df.columns:
                    df[column] = ""
            self._rows = {r["key"]: r for r in df.to_dict("records")}
        except Exception as exc:  # a damaged index: no entries, training encodes on the fly
            self._warn(f"feature cache index {index} is unreadable ({type(exc).__name__}); encoding on the fly")

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def row(self, key: str) -> dict | None:
        return self._rows.get(key)

    def rows(self) -> list[dict]:
        return list(self._rows.values())

    def _warn(self, message: str) -> None:
        log.warning(message)
        self.problems.append(message)

    def shard_ok(self, shard: str) -> bool:
        with self._lock:
            if shard in self._verified:
                return True
            if shard in self._bad:
                return False
            path = self.folder / shard
            problem = None
            if not path.is_file():
                problem = "is missing"
            elif not shard.startswith("shard-") or sha256_file(path)[:24] != shard[6:30]:
                problem = "does not match its sha256 (damaged)"
            if problem:
                self._bad.add(shard)
                self._warn(f"feature shard {path} {problem}; its samples are encoded on the fly")
                return False
            self._verified.add(shard)
            return True

    def get(self, key: str | None) -> dict[str, Any] | None:
        row = self._rows.get(key) if key else None
        if row is None or not self.shard_ok(row["shard"]):
            return None
        path = self.folder / row["shard"]
        try:
            with safe_open(str(path), framework="pt") as f:
                tensors = {name: f.get_tensor(f"{key}/{name}") for name in str(row["tensors"]).split(",")}
        except Exception as exc:  # verified bytes that still do not parse: treat like damage
            with self._lock:
                self._bad.add(row["shard"])
            self._warn(f"feature shard {path} is unreadable ({type(exc).__name__}); encoding on the fly")
            return None
        return entry_features(tensors, row)


def digest_rows(rows: list[dict]) -> str:
    """A short content id of an index (sorted keys and shards)."""
    digest = hashlib.sha256()
    for r in sorted(rows, key=lambda r: r["key"]):
        digest.update(f"{r['key']}|{r['shard']}\n".encode())
    return digest.hexdigest()
