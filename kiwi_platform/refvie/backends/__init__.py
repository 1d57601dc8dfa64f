"""Real-model RefVIE backends (Qwen-VL grounding, SAM masks, diffusers inpainting, CLIP embeddings, VLM judge).

Why a separate package: these need model weights and heavy imports (transformers, diffusers), while
the default CPU backends need neither. Nothing heavy is imported here; `registry.build_*` picks a
backend by its config name and imports its module only then. Every model is read from a local
folder in its library's own format (`save_pretrained` layout, `local_files_only=True`), loaded on
first use and shared by all instances in the process (see `_loading.model_cache`).
"""

from kiwi_platform.refvie.backends.registry import (
    BACKENDS,
    build_embedder,
    build_grounder,
    build_inpainter,
    build_judge,
    build_segmenter,
)

__all__ = ["BACKENDS", "build_embedder", "build_grounder", "build_inpainter", "build_judge", "build_segmenter"]
