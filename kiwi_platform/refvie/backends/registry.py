"""Backend names in config -> backend instances, importing each implementation only when chosen.

Why names and lazy imports: the pipeline config says `grounder: qwen` (plus options such as
`model_path`), and switching a backend must not need code changes. Importing lazily keeps the
default, weight-free path free of transformers/diffusers start-up cost. Options are passed to the
backend's constructor; ones set to None count as "not set" and are dropped, so one config schema
can carry `model_path: null` for backends that take no model. Unknown names or options are one-line
`KiwiUserError`s that list what is valid.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from kiwi_platform.errors import KiwiUserError

# kind -> name -> "module:Class"; the first name of each kind is its default.
BACKENDS: dict[str, dict[str, str]] = {
    "grounder": {
        "diff": "kiwi_platform.refvie.backends.diff:DiffGrounder",
        "qwen": "kiwi_platform.refvie.backends.qwen_grounder:QwenVLGrounder",
    },
    "segmenter": {
        "diff": "kiwi_platform.refvie.backends.diff:DiffSegmenter",
        "sam": "kiwi_platform.refvie.backends.sam_segmenter:SamSegmenter",
    },
    "inpainter": {
        "opencv": "kiwi_platform.refvie.references:OpenCVInpainter",
        "diffusers": "kiwi_platform.refvie.backends.diffusers_inpainter:DiffusersInpainter",
    },
    "embedder": {
        "phash": "kiwi_platform.refvie.quality:PerceptualHashEmbedder",
        "clip": "kiwi_platform.refvie.backends.clip_embedder:ClipImageEmbedder",
    },
    "judge": {
        "embedding": "kiwi_platform.refvie.quality:EmbeddingJudge",
        "vlm": "kiwi_platform.refvie.backends.vlm_judge:VlmReferenceJudge",
    },
}
DEFAULTS = {kind: next(iter(names)) for kind, names in BACKENDS.items()}


def backend_class(kind: str, name: str) -> type:
    """The class registered as `name` for `kind`, imported now."""
    names = BACKENDS[kind]
    if name not in names:
        raise KiwiUserError(f"unknown {kind} backend {name!r}; valid: {', '.join(names)}", code="bad_backend")
    module_name, _, attr = names[name].partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise KiwiUserError(f"{kind} backend {name!r} is not available: {exc}", code="backend_unavailable") from None


def build(kind: str, name: str | None = None, **options: Any) -> Any:
    """An instance of the `kind` backend called `name` (default when None), built with `options`."""
    name = name or DEFAULTS[kind]
    cls = backend_class(kind, name)
    options = {k: v for k, v in options.items() if v is not None}
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise KiwiUserError(
                f"{kind} backend {name!r} does not accept option(s) "
                f"{', '.join(unknown)}; accepted: {', '.join(accepted) or 'none'}",
                code="bad_backend_option",
            )
        missing = [
            n
            for n, p in params.items()
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in options
        ]
        if missing:
            raise KiwiUserError(
                f"{kind} backend {name!r} needs option(s) {', '.join(missing)}", code="bad_backend_option"
            )
    return cls(**options)


def build_grounder(name: str = DEFAULTS["grounder"], **options: Any) -> Any:
    """A `Grounder`: 'diff' (default, no weights) or 'qwen' (model_path=Qwen2.5-VL folder)."""
    return build("grounder", name, **options)


def build_segmenter(name: str = DEFAULTS["segmenter"], **options: Any) -> Any:
    """A `Segmenter`: 'diff' (default, no weights) or 'sam' (model_path=SAM folder)."""
    return build("segmenter", name, **options)


def build_inpainter(name: str = DEFAULTS["inpainter"], **options: Any) -> Any:
    """An `Inpainter`: 'opencv' (default) or 'diffusers' (model_path=inpainting pipeline folder)."""
    return build("inpainter", name, **options)


def build_embedder(name: str = DEFAULTS["embedder"], **options: Any) -> Any:
    """An `ImageEmbedder`: 'phash' (default) or 'clip' (model_path=CLIP folder)."""
    return build("embedder", name, **options)


def build_judge(name: str = DEFAULTS["judge"], **options: Any) -> Any:
    """A `ReferenceJudge`: 'embedding' (default) or 'vlm' (OpenAI-compatible endpoint via kiwi_platform.judge)."""
    return build("judge", name, **options)
