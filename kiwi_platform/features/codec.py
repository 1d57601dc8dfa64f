"""Compact storage of a cache entry's tensors: processor pixels as uint8, token tensors narrowed.

Why: the Qwen2.5-VL processor's pixel values are ~90 % of the cache, yet they are an affine image of
uint8 pixels. The processor (transformers 5.x, `TorchvisionBackend.rescale_and_normalize`) resizes
uint8 frames, then computes `(u - mean_c / r) / (std_c / r)` in float32 per channel (its fused
rescale + normalize, r = rescale_factor = 1/255) and flattens each patch as
(channel, temporal, 14, 14), channel slowest (`patchify` in `image_processing_qwen2_vl.py` and
`video_processing_qwen2_vl.py`). So `u` is stored (1 byte a value instead of 2 or 4) with the
per-channel constants, and a reader repeats the processor's float32 arithmetic: it gets the
processor's tensor back bit for bit. An image is one frame repeated over the temporal patch, so
when every temporal slice of a patch is equal only one is stored.

Every encoding is checked when it is written (decoded and compared with the processor's tensor); a
tensor it does not reproduce within `TOLERANCE` (another processor, pixels that were never uint8) is
stored as before. Integer tensors (token ids, masks, grids) are stored in the narrowest integer type
that holds their values and widened back to their dtype on read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

#: Pixel tensors of an entry -> the sub-processor whose constants made them.
PIXELS = {"mllm.pixel_values": "image_processor", "mllm.pixel_values_videos": "video_processor"}
#: A uint8 encoding is kept when it decodes to within TOLERANCE * max(1, max|x|) of the processor's
#: tensor: a few float32 ulps (|x| <= ~2.2 with CLIP's constants, ulp 2.4e-7), four orders of magnitude
#: below one step of u (1 / (255 * std) ~ 0.014), so u is the only candidate and what the reader gets
#: differs from the processor's output by float32 rounding order at most. With transformers 5.x it is
#: bit-exact (the decode repeats its arithmetic); tests/features hold it to that.
TOLERANCE = 1e-6
NARROW_INTS = (torch.uint8, torch.int16, torch.int32)
_DTYPES = {
    str(d).removeprefix("torch."): d for d in (torch.float32, torch.int64, torch.int32, torch.int16, torch.uint8)
}


@dataclass(frozen=True)
class PixelCodec:
    """`x = (u - offset_c) / scale_c` per channel c, float32, as the processor computes it."""

    offset: tuple[float, ...]
    scale: tuple[float, ...]
    temporal: int = 1  # the processor's temporal_patch_size: the dimension under channel in a patch

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, dict] | None:
        """(uint8 tensor, how to decode it), or None when `x` is not this affine image of uint8 pixels."""
        channels = len(self.offset)
        if x.dtype != torch.float32 or x.ndim != 2 or not x.numel() or x.shape[1] % (channels * self.temporal):
            return None
        rows = x.shape[0]
        view = x.reshape(rows, channels, -1)
        u = torch.round(view.double() * _column(self.scale).double() + _column(self.offset).double())
        if float(u.min()) < 0 or float(u.max()) > 255:
            return None
        u8 = u.to(torch.uint8)
        info = {"as": "uint8", "dtype": "float32", "offset": list(self.offset), "scale": list(self.scale), "repeat": 1}
        bound = TOLERANCE * max(1.0, float(x.abs().max()))
        if bound * 100 > 1 / max(self.scale) or float((decode_pixels(u8, info) - x).abs().max()) > bound:
            return None
        slices = u8.reshape(rows, channels, self.temporal, -1)
        if self.temporal > 1 and torch.equal(slices, slices[:, :, :1].expand_as(slices)):
            u8, info["repeat"] = slices[:, :, 0], self.temporal  # an image: one frame repeated
        return u8.reshape(rows, -1).contiguous(), info


def _column(values: tuple[float, ...] | list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)[:, None]


def decode_pixels(u8: torch.Tensor, info: dict) -> torch.Tensor:
    """The float32 tensor a `PixelCodec.encode` result stands for (the processor's arithmetic)."""
    channels, repeat = len(info["offset"]), int(info["repeat"])
    view = u8.reshape(u8.shape[0], channels, 1, -1).expand(-1, -1, repeat, -1).reshape(u8.shape[0], channels, -1)
    x = (view.to(torch.float32) - _column(info["offset"])) / _column(info["scale"])
    return x.reshape(u8.shape[0], -1)


def _codec_of(sub: Any) -> PixelCodec | None:
    """A sub-processor's constants, computed as transformers does (float32 tensor times a Python float)."""
    if sub is None:
        return None
    normalize, rescale = bool(getattr(sub, "do_normalize", False)), bool(getattr(sub, "do_rescale", False))
    mean = getattr(sub, "image_mean", None) if normalize else [0.0]
    std = getattr(sub, "image_std", None) if normalize else [1.0]
    if mean is None or std is None:
        return None
    mean, std = [float(v) for v in torch.tensor(mean).flatten()], [float(v) for v in torch.tensor(std).flatten()]
    factor = 1.0 / float(sub.rescale_factor) if rescale else 1.0
    if len(mean) != len(std) or min(std) <= 0:
        return None
    offset = torch.tensor(mean) * factor  # exactly `_fuse_mean_std_and_rescale_factor`
    scale = torch.tensor(std) * factor
    return PixelCodec(
        tuple(float(v) for v in offset), tuple(float(v) for v in scale), int(getattr(sub, "temporal_patch_size", 1))
    )


def pixel_codecs(processor: Any) -> dict[str, PixelCodec]:
    """{pixel tensor name: codec} from the processor the entries were made with (its image and video
    sub-processors' mean, std and rescale factor; all covered by the MLLM-inputs hash in the key)."""
    out = {}
    for name, attr in PIXELS.items():
        codec = _codec_of(getattr(processor, attr, None))
        if codec is not None:
            out[name] = codec
    return out


def narrow_int(t: torch.Tensor) -> tuple[torch.Tensor, dict] | None:
    """The tensor in the narrowest integer type that holds its values exactly, or None (already narrow)."""
    if t.dtype not in (torch.int64, torch.int32, torch.int16) or not t.numel():
        return None
    low, high = int(t.min()), int(t.max())
    for narrow in NARROW_INTS:
        info = torch.iinfo(narrow)
        if narrow.itemsize < t.dtype.itemsize and info.min <= low and high <= info.max:
            return t.to(narrow), {
                "as": str(narrow).removeprefix("torch."),
                "dtype": str(t.dtype).removeprefix("torch."),
            }
    return None


def encode_tensors(
    tensors: dict[str, torch.Tensor], codecs: dict[str, PixelCodec]
) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """(tensors to store, {name: how it was stored}) for the tensors that take less room encoded; the
    others are returned unchanged and are not in the plan."""
    out, plan = dict(tensors), {}
    for name, value in tensors.items():
        if name in codecs:
            encoded = codecs[name].encode(value)
        elif not value.is_floating_point():
            encoded = narrow_int(value)
        else:
            encoded = None
        if encoded is not None:
            out[name], plan[name] = encoded
    return out, plan


def decode_tensors(tensors: dict[str, torch.Tensor], plan: dict[str, dict]) -> dict[str, torch.Tensor]:
    """The inverse of `encode_tensors`: every planned tensor back in its original dtype and values."""
    out = dict(tensors)
    for name, info in plan.items():
        if name not in out:
            continue
        if "offset" in info:
            out[name] = decode_pixels(out[name], info)
        else:
            out[name] = out[name].to(_DTYPES[info["dtype"]])
    return out


def plan_json(plan: dict[str, dict]) -> str:
    """The plan as the index stores it: canonical JSON (same plan, same bytes)."""
    return json.dumps(plan, sort_keys=True, separators=(",", ":"))


def parse_plan(text: Any) -> dict[str, dict]:
    """An index row's plan; empty for rows that stored every tensor as is."""
    return json.loads(text) if isinstance(text, str) and text else {}
