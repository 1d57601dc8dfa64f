"""Config names map to backends; wrong names or options are one-line errors listing what is valid."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.backends import registry
from kiwi_platform.refvie.backends.clip_embedder import ClipImageEmbedder
from kiwi_platform.refvie.backends.diffusers_inpainter import DiffusersInpainter
from kiwi_platform.refvie.backends.qwen_grounder import QwenVLGrounder
from kiwi_platform.refvie.backends.sam_segmenter import SamSegmenter
from kiwi_platform.refvie.backends.vlm_judge import VlmReferenceJudge
from kiwi_platform.refvie.types import Grounder, ImageEmbedder, Inpainter, ReferenceJudge, Segmenter


def test_real_backends_are_built_by_name_with_options(
    qwen_dir: Path, sam_dir: Path, clip_dir: Path, sd_dir: Path
) -> None:
    """'qwen', 'sam', 'diffusers', 'clip', 'vlm' build the real backends, options passed through."""
    grounder = registry.build_grounder("qwen", model_path=qwen_dir, max_new_tokens=7)
    assert isinstance(grounder, QwenVLGrounder) and isinstance(grounder, Grounder) and grounder.max_new_tokens == 7
    segmenter = registry.build_segmenter("sam", model_path=str(sam_dir), frame_stride=3)
    assert isinstance(segmenter, SamSegmenter) and isinstance(segmenter, Segmenter) and segmenter.frame_stride == 3
    inpainter = registry.build_inpainter("diffusers", model_path=sd_dir, steps=3, prompt="empty room")
    assert isinstance(inpainter, DiffusersInpainter) and isinstance(inpainter, Inpainter)
    assert (inpainter.steps, inpainter.prompt) == (3, "empty room")
    embedder = registry.build_embedder("clip", model_path=clip_dir)
    assert isinstance(embedder, ClipImageEmbedder) and isinstance(embedder, ImageEmbedder)
    judge = registry.build_judge("vlm", base_url="http://127.0.0.1:9/v1", model="judge")
    assert isinstance(judge, VlmReferenceJudge) and isinstance(judge, ReferenceJudge)


@pytest.mark.parametrize("kind", sorted(registry.BACKENDS))
def test_default_backend_needs_no_options(kind: str) -> None:
    """With no name, each kind builds its weight-free default (skipped while that module is not written yet)."""
    module_name, _, attr = registry.BACKENDS[kind][registry.DEFAULTS[kind]].partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        pytest.skip(f"default {kind} backend {module_name}:{attr} not available yet")
    built = getattr(registry, f"build_{kind}")()
    assert type(built) is cls
    # a model_path left empty in config (None) is ignored rather than rejected
    assert type(getattr(registry, f"build_{kind}")(model_path=None)) is cls


def test_unknown_name_lists_valid_ones() -> None:
    """A typo in a backend name says which names exist, in one line."""
    with pytest.raises(KiwiUserError) as info:
        registry.build_segmenter("sam2")
    assert str(info.value) == "unknown segmenter backend 'sam2'; valid: diff, sam"
    with pytest.raises(KiwiUserError, match="valid: phash, clip"):
        registry.build_embedder("dino")


def test_bad_or_missing_options_are_one_line_errors(sam_dir: Path) -> None:
    """An option the backend does not take, or a required one left out, is named in the error."""
    with pytest.raises(
        KiwiUserError, match=r"does not accept option\(s\) stride; accepted: model_path, device"
    ) as info:
        registry.build_segmenter("sam", model_path=sam_dir, stride=2)
    assert "\n" not in str(info.value)
    with pytest.raises(KiwiUserError, match=r"grounder backend 'qwen' needs option\(s\) model_path"):
        registry.build_grounder("qwen")
    with pytest.raises(KiwiUserError, match="does not exist"):
        registry.build_inpainter("diffusers", model_path="/no/such/folder")


def test_unimportable_backend_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registered backend whose module cannot be imported fails with a clear message, not an ImportError."""
    monkeypatch.setitem(registry.BACKENDS["grounder"], "ghost", "kiwi_platform.refvie.no_such_module:Ghost")
    with pytest.raises(KiwiUserError, match="grounder backend 'ghost' is not available"):
        registry.build_grounder("ghost")
