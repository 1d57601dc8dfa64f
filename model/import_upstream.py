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

TRAINING_CHECKPOINT = "a DiffSynth Kiwi-Edit training checkpoint (dit.*, mllm.*, vae_condition.* keys)"

# DiffSynth WanModel -> diffusers WanTransformer3DModel (upstream convert_weights.py, same table).
_DIT_TOP = {
    "patch_embedding": "patch_embedding",
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.1": "condition_embedder.time_proj",
    "img_emb.proj.0": "condition_embedder.image_embedder.norm1",
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
    "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
    "head.head": "proj_out",
}
_DIT_BLOCK = {
    "self_attn.q": "attn1.to_q",
    "self_attn.k": "attn1.to_k",
    "self_attn.v": "attn1.to_v",
    "self_attn.o": "attn1.to_out.0",
    "self_attn.norm_q": "attn1.norm_q",
    "self_attn.norm_k": "attn1.norm_k",
    "cross_attn.q": "attn2.to_q",
    "cross_attn.k": "attn2.to_k",
    "cross_attn.v": "attn2.to_v",
    "cross_attn.o": "attn2.to_out.0",
    "cross_attn.norm_q": "attn2.norm_q",
    "cross_attn.norm_k": "attn2.norm_k",
    "cross_attn.k_img": "attn2.add_k_proj",
    "cross_attn.v_img": "attn2.add_v_proj",
    "cross_attn.norm_k_img": "attn2.norm_added_k",
    "ffn.0": "ffn.net.0.proj",
    "ffn.2": "ffn.net.2",
    "norm3": "norm2",  # DiffSynth norm1/norm2 have no weights; its norm3 (cross-attn) is diffusers' norm2
}
_DIT_PREFIXES = ("blocks.", "patch_embedding.", "text_embedding.", "time_embedding.", "time_projection.",
                 "img_emb.", "head.")  # fmt: skip
_LORA = re.compile(r"^(?P<target>.+)\.lora_(?P<ab>[AB])(?:\.default)?\.weight$")
_QUERIES = re.compile(r"^mllm\.(image|video|ref)_queries\.q$")
_CONNECTOR = re.compile(r"^mllm\.(ref_)?(?:connetor|connector)\.([02]\.(?:weight|bias))$")
_EMBEDDERS = {"vae_condition.": "source_embedder", "ref_vae_condition.": "ref_embedder"}


def dit_key_to_diffusers(key: str) -> str | None:
    """One DiffSynth DiT key (`blocks.3.self_attn.q.weight`) -> diffusers (`blocks.3.attn1.to_q.weight`)."""
    if key == "head.modulation":
        return "scale_shift_table"
    m = re.match(r"^blocks\.(\d+)\.(.+)\.(weight|bias)$", key)
    if m:
        i, module, param = m.groups()
        return f"blocks.{i}.{_DIT_BLOCK[module]}.{param}" if module in _DIT_BLOCK else None
    m = re.match(r"^blocks\.(\d+)\.modulation$", key)
    if m:
        return f"blocks.{m.group(1)}.scale_shift_table"
    m = re.match(r"^(.+)\.(weight|bias)$", key)
    if m and m.group(1) in _DIT_TOP:
        return f"{_DIT_TOP[m.group(1)]}.{m.group(2)}"
    return None


def qwen_key_to_encoder(key: str) -> str | None:
    """`mllm.model.<Qwen2_5_VLForConditionalGeneration key>` -> `MLLMEncoder` key (`qwen_model.*`), or None
    for weights our encoder has no place for (`lm_head`: Kiwi-Edit reads hidden states only)."""
    path = key[len("mllm.model.") :].replace("model.model", "model")  # upstream's own normalisation
    if path.startswith("model.language_model.") or path.startswith("model.visual."):
        return "qwen_model." + path[len("model.") :]
    if path.startswith("model.layers.") or path in ("model.embed_tokens.weight", "model.norm.weight"):
        return "qwen_model.language_model." + path[len("model.") :]  # transformers < 4.52 naming
    if path.startswith("visual."):
        return "qwen_model." + path
    return None


@dataclass
class TrainingCheckpoint:
    """A DiffSynth training state dict split by destination (keys already normalised)."""

    dit: dict[str, torch.Tensor] = field(default_factory=dict)  # DiffSynth DiT names
    dit_lora: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # target -> (B, A)
    qwen: dict[str, torch.Tensor] = field(default_factory=dict)  # `mllm.model.*` full weights
    qwen_lora: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # mllm target -> (B, A)
    encoder: dict[str, torch.Tensor] = field(default_factory=dict)  # MLLMEncoder keys (queries, connectors)
    embedders: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # component -> state
    ignored: list[str] = field(default_factory=list)


def normalize_training_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the `pipe.` and `dit.` prefixes DiffSynth leaves (as upstream's `normalize_checkpoint_keys`),
    and `diffusion_model.` (DiT LoRA files, which upstream's LoRA merge also strips)."""
    out = {}
    for key, value in state.items():
        for prefix in ("pipe.", "dit.", "diffusion_model."):
            key = key[len(prefix) :] if key.startswith(prefix) else key
        out[key] = value
    return out


def split_training_checkpoint(state: dict[str, torch.Tensor], source: str | os.PathLike) -> TrainingCheckpoint:
    """Sort a training state dict by destination; unknown keys raise CheckpointError naming `source`."""
    state = normalize_training_keys(state)
    ckpt, unknown, lora_halves = TrainingCheckpoint(), [], {}
    for key, value in state.items():
        m = _LORA.match(key)
        if m:
            lora_halves.setdefault(m.group("target"), {})[m.group("ab")] = value
            continue
        if (q := _QUERIES.match(key)) is not None:
            ckpt.encoder[f"{q.group(1)}_queries"] = value
        elif (c := _CONNECTOR.match(key)) is not None:
            ckpt.encoder[f"{c.group(1) or ''}connector.{c.group(2)}"] = value
        elif key.startswith("mllm.model.") and qwen_key_to_encoder(key):
            ckpt.qwen[key] = value
        elif key.startswith("mllm.model."):
            ckpt.ignored.append(key)  # e.g. lm_head: the encoder reads hidden states only
        elif key.startswith(tuple(_EMBEDDERS)):
            prefix = next(p for p in _EMBEDDERS if key.startswith(p))
            ckpt.embedders.setdefault(_EMBEDDERS[prefix], {})[key[len(prefix) :]] = value
        elif key.startswith(_DIT_PREFIXES):
            ckpt.dit[key] = value
        else:
            unknown.append(key)
    for target, halves in lora_halves.items():
        if set(halves) != {"A", "B"}:
            lacking = "lora_B" if "A" in halves else "lora_A"
            raise CheckpointError(f"{source} has a LoRA for {target} without its {lacking} half")
        pair = (halves["B"], halves["A"])
        if target.startswith("mllm.model."):
            ckpt.qwen_lora[target] = pair
        elif target.startswith(_DIT_PREFIXES):
            ckpt.dit_lora[target] = pair
        else:
            unknown.append(target + ".lora_A/B")
    if unknown:
        raise CheckpointError(
            f"{source} has {len(unknown)} keys outside the Kiwi-Edit training layout (e.g. {', '.join(unknown[:3])}); "
            f"expected {TRAINING_CHECKPOINT}"
        )
    if not (ckpt.dit or ckpt.dit_lora or ckpt.qwen or ckpt.qwen_lora or ckpt.encoder or ckpt.embedders):
        raise CheckpointError(f"{source} holds no Kiwi-Edit weights; expected {TRAINING_CHECKPOINT}")
    return ckpt


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
