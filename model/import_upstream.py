"""Import upstream Kiwi-Edit weights into our released layout (`kiwi model import SRC --out DIR`).

Two sources are accepted:

- a DiffSynth **training checkpoint** (one `.safetensors`/`.pth` written by upstream `train.py` with
  `--remove_prefix_in_ckpt pipe.`): `dit.*` (full DiT, DiffSynth names) and/or DiT LoRA keys,
  `mllm.{image,video,ref}_queries.q`, `mllm.connetor.*` / `mllm.ref_connector.*`, the Qwen LoRA
  `mllm.model.model.language_model.*.lora_{A,B}.default.weight`, `vae_condition.*`, `ref_vae_condition.*`.
  It holds only what was trained, so it is applied on top of a **base** checkpoint folder in our
  layout that carries the pristine Wan2.2 / Qwen2.5-VL weights (`kiwi model init --from-base`).
  This follows upstream's `utils/convert_diffusers/convert_weights.py` (223572d): DiT keys renamed
  to diffusers, LoRA merged into the base weights as `W + alpha * B @ A` (alpha 1.0 by default),
  `connetor` read as `connector`, the embedders copied;
- a **checkpoint folder** (upstream's converted release, or ours): loaded and re-saved in our layout.

The output folder is written to a temporary sibling and renamed into place (`model.build.save_checkpoint`),
so it is either complete or absent. Every input problem is one CheckpointError line naming the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from model.pipeline import COMPONENTS, CheckpointError, KiwiEditPipeline
from model.upstream_checkpoint import (
    TRAINING_CHECKPOINT,
    TrainingCheckpoint,
    dit_key_to_diffusers,
    qwen_key_to_encoder,
    split_training_checkpoint,
)


def _merge_lora(pairs, own: dict, to_key, what: str, base: str, source, alpha: float) -> dict[str, torch.Tensor]:
    """Base weights plus each LoRA pair's update (`W + alpha * B @ A`), keyed by our parameter names."""
    merged: dict[str, torch.Tensor] = {}
    for target, (b, a) in sorted(pairs.items()):
        key = to_key(target + ".weight")
        if key is None or key not in own:
            raise CheckpointError(f"{source} has a {what} LoRA for {target}, which the {base} does not have")
        delta = _lora_delta(b, a, alpha)
        if tuple(delta.shape) != tuple(own[key].shape):
            raise CheckpointError(
                f"{source}: {what} LoRA {target} gives {tuple(delta.shape)}, {key} is {tuple(own[key].shape)}"
            )
        merged[key] = own[key].float() + delta
    return merged


def _lora_delta(b: torch.Tensor, a: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha * B @ A (1x1 conv LoRA squeezed like upstream's merge)."""
    if b.dim() == 4:
        return (alpha * (b.float().flatten(1) @ a.float().flatten(1)))[..., None, None]
    return alpha * (b.float() @ a.float())


def _assign(module: torch.nn.Module, updates: dict[str, torch.Tensor], what: str, source: Any) -> None:
    """Copy tensors into `module`'s parameters by name, checking names and shapes first."""
    own = dict(module.state_dict())
    for key, value in updates.items():
        if key not in own:
            raise CheckpointError(f"{source}: {what} has no parameter {key} in the base model")
        if tuple(own[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{source}: {what} {key} has shape {tuple(value.shape)} but the base model's is {tuple(own[key].shape)} "
                "(the checkpoint was trained on a different model size)"
            )
    with torch.no_grad():
        for key, value in updates.items():
            own[key].copy_(value.to(own[key].dtype))


@dataclass
class ImportReport:
    out: Path
    source_kind: str  # "training checkpoint" | "checkpoint folder"
    dit_tensors: int = 0
    dit_lora_merged: int = 0
    qwen_tensors: int = 0
    qwen_lora_merged: int = 0
    encoder_tensors: int = 0
    embedder_tensors: int = 0
    ignored: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.source_kind != "training checkpoint":
            return f"wrote {self.out} (re-saved from a {self.source_kind})"
        return (
            f"wrote {self.out} (DiT: {self.dit_tensors} tensors + {self.dit_lora_merged} LoRA merged; MLLM: "
            f"{self.encoder_tensors} query/connector tensors, {self.qwen_lora_merged} LoRA merged"
            + (f", {self.qwen_tensors} Qwen tensors" if self.qwen_tensors else "")
            + f"; embedders: {self.embedder_tensors} tensors"
            + (f"; ignored {len(self.ignored)} ({', '.join(self.ignored[:2])})" if self.ignored else "")
            + ")"
        )


def apply_training_checkpoint(
    pipe: KiwiEditPipeline, ckpt: TrainingCheckpoint, source: Any, lora_alpha: float = 1.0
) -> ImportReport:
    """Apply a split training checkpoint to `pipe` in place (upstream convert_weights.py semantics)."""
    report = ImportReport(out=Path(), source_kind="training checkpoint", ignored=list(ckpt.ignored))
    transformer, encoder = pipe.transformer, pipe.mllm_encoder
    own_dit = transformer.state_dict()

    if ckpt.dit:
        converted, unmapped = {}, []
        for key, value in ckpt.dit.items():
            new = dit_key_to_diffusers(key)
            if new is None:
                unmapped.append(key)
            else:
                converted[new] = value
        if unmapped:
            raise CheckpointError(f"{source} has DiT keys with no diffusers name (e.g. {', '.join(unmapped[:3])})")
        missing = sorted(set(own_dit) - set(converted))
        if missing:
            raise CheckpointError(
                f"{source} holds {len(converted)} of the DiT's {len(own_dit)} tensors (missing e.g. "
                f"{', '.join(missing[:3])}); expected the full DiT or only LoRA keys"
            )
        _assign(transformer, converted, "DiT", source)
        report.dit_tensors = len(converted)

    merged_dit = _merge_lora(ckpt.dit_lora, own_dit, dit_key_to_diffusers, "DiT", "base DiT", source, lora_alpha)
    _assign(transformer, merged_dit, "DiT", source)
    report.dit_lora_merged = len(merged_dit)

    own_enc = encoder.state_dict()

    def base_key(key: str) -> str:
        wrapped = re.sub(r"\.(weight|bias)$", r".base_layer.\1", key)
        return wrapped if key not in own_enc and wrapped in own_enc else key

    if ckpt.qwen:
        full = {base_key(qwen_key_to_encoder(k)): v for k, v in ckpt.qwen.items()}
        _assign(encoder, full, "Qwen", source)
        report.qwen_tensors = len(full)

    def encoder_key(key: str) -> str | None:
        mapped = qwen_key_to_encoder(key)
        return base_key(mapped) if mapped else None

    merged_qwen = _merge_lora(ckpt.qwen_lora, own_enc, encoder_key, "Qwen", "base encoder", source, lora_alpha)
    zero_b: dict[str, torch.Tensor] = {}
    for key in merged_qwen:
        # the merged update replaces whatever our own LoRA on that projection held
        ours_b = key.replace(".base_layer.weight", ".lora_B.default.weight")
        if ours_b != key and ours_b in own_enc:
            zero_b[ours_b] = torch.zeros_like(own_enc[ours_b])
    _assign(encoder, {**merged_qwen, **zero_b}, "Qwen", source)
    report.qwen_lora_merged = len(merged_qwen)

    _assign(encoder, ckpt.encoder, "MLLM encoder", source)
    report.encoder_tensors = len(ckpt.encoder)

    for component, state in ckpt.embedders.items():
        _assign(getattr(pipe, component), state, component, source)
        report.embedder_tensors += len(state)
    return report


def check_processor_folder(folder: str | os.PathLike) -> None:
    """A `processor/` folder must carry its tokenizer; say which files when it does not."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"processor folder {folder} does not exist (expected a Qwen2.5-VL processor)")
    names = {p.name for p in folder.iterdir()}
    if "tokenizer.json" not in names and not {"vocab.json", "merges.txt"} <= names:
        raise CheckpointError(
            f"{folder} has no tokenizer: expected tokenizer.json (or vocab.json + merges.txt) "
            "next to tokenizer_config.json, as the Qwen2.5-VL processor saves them"
        )
    if "tokenizer_config.json" not in names:
        raise CheckpointError(f"{folder} has no tokenizer_config.json (expected a saved Qwen2.5-VL processor)")


def load_checkpoint_folder(folder: Path, torch_dtype: torch.dtype | None) -> KiwiEditPipeline:
    """`KiwiEditPipeline.from_pretrained` with the processor checked first and load errors kept to one line."""
    check_processor_folder(folder / "processor")
    try:
        return KiwiEditPipeline.from_pretrained(folder, torch_dtype=torch_dtype)
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {folder} does not load: {reason}") from None


def _is_checkpoint_folder(folder: Path) -> bool:
    return all((folder / c).is_dir() for c in COMPONENTS)


def import_upstream(
    src: str | os.PathLike,
    out: str | os.PathLike,
    base: str | os.PathLike | None = None,
    vae: str | os.PathLike | None = None,
    lora_alpha: float = 1.0,
    ref_pad_first: bool | None = None,
    overwrite: bool = False,
    torch_dtype: torch.dtype | None = None,
) -> ImportReport:
    """`kiwi model import SRC --out DIR [--base DIR] [--vae PATH]`: upstream weights -> our released layout.

    `vae` replaces the base's VAE with a Wan2.2 VAE file (original keys, e.g. `Wan2.2_VAE.pth`) or folder.
    Raises CheckpointError (bad input, one line) or FileExistsError (`out` not empty, no `overwrite`).
    """
    from model.build import save_checkpoint
    from model.vae_wan22 import load_vae_folder, read_state_dict, vae_from_state_dict

    src, out = Path(src), Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already exists and is not empty (pass overwrite to replace it)")
    for given in (src, Path(base) if base else None):
        if given is not None and given.exists() and out.resolve() == given.resolve():
            raise CheckpointError(f"--out {out} is the input {given}; write the import to a new folder")
    if not src.exists():
        raise CheckpointError(f"{src} does not exist (expected {TRAINING_CHECKPOINT} or a checkpoint folder)")

    new_vae = None  # read first: a bad VAE file fails before the (large) base is loaded
    if vae is not None:
        vae_path = Path(vae)
        if vae_path.is_dir():
            new_vae = load_vae_folder(vae_path, torch_dtype)
        else:
            want = "the Wan2.2 VAE (z_dim 48) in the original key layout"
            new_vae = vae_from_state_dict(read_state_dict(vae_path, want), vae_path)
            new_vae = new_vae.to(torch_dtype) if torch_dtype is not None else new_vae

    if src.is_dir():
        if not _is_checkpoint_folder(src):
            missing = [c + "/" for c in COMPONENTS if not (src / c).is_dir()]
            files = sorted(p.name for p in src.glob("*") if p.suffix in {".safetensors", ".pth", ".bin"})
            hint = f"; to import a training checkpoint pass the file itself (e.g. {src / files[0]})" if files else ""
            raise CheckpointError(
                f"{src} is neither a checkpoint folder (missing {', '.join(missing)}) nor a training checkpoint file; "
                f"expected {', '.join(c + '/' for c in COMPONENTS)} or {TRAINING_CHECKPOINT}{hint}"
            )
        if base is not None:
            raise CheckpointError(f"{src} is a checkpoint folder: --base applies only to a training checkpoint file")
        pipe = load_checkpoint_folder(src, torch_dtype)
        report = ImportReport(out=out, source_kind="checkpoint folder")
    else:
        state = read_state_dict(src, TRAINING_CHECKPOINT)
        ckpt = split_training_checkpoint(state, src)
        if base is None:
            raise CheckpointError(
                f"{src} is a training checkpoint: it holds only the trained weights; pass --base with a checkpoint "
                "folder holding the pristine Wan2.2 + Qwen2.5-VL weights (`kiwi model init --from-base`)"
            )
        base = Path(base)
        if not base.is_dir():
            raise CheckpointError(f"base {base} does not exist (expected a checkpoint folder)")
        if not _is_checkpoint_folder(base):
            missing = [c + "/" for c in COMPONENTS if not (base / c).is_dir()]
            raise CheckpointError(f"base {base} is not a checkpoint folder (missing {', '.join(missing)})")
        pipe = load_checkpoint_folder(base, torch_dtype)
        report = apply_training_checkpoint(pipe, ckpt, src, lora_alpha)

    if new_vae is not None:
        pipe.register_modules(vae=new_vae)
    if ref_pad_first is not None:
        pipe.ref_embedder.register_to_config(ref_pad_first=bool(ref_pad_first))
    report.out = save_checkpoint(pipe, out, overwrite=overwrite)
    return report
