"""Run a KiwiEditPipeline on every case of a suite and write the outputs, reusing earlier ones.

An output is reused when its sidecar (`<case_id>.json`) records the same checkpoint id, case hash
and settings key and the media file is present, so re-evaluating a checkpoint (or resuming an
interrupted run) generates only what is missing. The pipeline is loaded only if something must be
generated. Outputs are mp4 (videos) / png (one-frame cases), or lossless .npy with
`output_format="npy"`; all are written atomically.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.evaluation.media import MediaError, read_frames
from kiwi_platform.evaluation.settings import EvalSettings
from kiwi_platform.evaluation.suites import Case, Suite
from kiwi_platform.lib.files import atomic_path, write_text_atomic

Progress = Callable[[str, int, int], None]


@dataclass
class GeneratedCase:
    case_id: str
    path: Path
    frames: int
    seconds: float
    reused: bool


def _frames_for(available: int, wanted: int) -> int:
    """Largest 4k+1 <= min(available, wanted): the VAE's temporal compression needs 4k+1 frames."""
    n = min(available, wanted)
    return max(1, (n - 1) // 4 * 4 + 1)


def _output_path(folder: Path, case: Case, frames: int, settings: EvalSettings) -> Path:
    if settings.output_format == "npy":
        return folder / f"{case.case_id}.npy"
    return folder / f"{case.case_id}.{'png' if frames == 1 else 'mp4'}"


def _reusable(sidecar: Path, expected: dict[str, Any]) -> Path | None:
    if not sidecar.is_file():
        return None
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if any(meta.get(k) != v for k, v in expected.items()):
        return None
    path = sidecar.parent / meta.get("file", "")
    return path if path.is_file() else None


def _write(frames: np.ndarray, path: Path, fps: int) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        if path.suffix == ".npy":
            with tmp.open("wb") as fh:
                np.save(fh, frames)
        elif path.suffix == ".png":
            Image.fromarray(frames[0]).save(tmp)
        else:
            from model.video_io import write_video

            write_video(list(frames), tmp, fps=fps)


class _LazyPipeline:
    """Loads the pipeline on first use (never, when every output is reused)."""

    def __init__(self, checkpoint_dir: Path | None, pipeline: Any, settings: EvalSettings) -> None:
        self.checkpoint_dir, self._pipe, self.settings = checkpoint_dir, pipeline, settings

    def get(self) -> Any:
        if self._pipe is None:
            import torch

            from kiwi_platform.lib.checkpoint_manifest import require_intact_checkpoint
            from model import KiwiEditPipeline

            require_intact_checkpoint(self.checkpoint_dir)
            dtype = getattr(torch, self.settings.dtype)
            pipe = KiwiEditPipeline.from_pretrained(self.checkpoint_dir, torch_dtype=dtype)
            pipe.set_progress_bar_config(disable=True)
            self._pipe = pipe.to(self.settings.device)
        return self._pipe


def generate_case(pipe: Any, suite: Suite, case: Case, settings: EvalSettings) -> np.ndarray:
    """Edit one case's source with the pipeline; returns (T, H, W, 3) uint8 frames."""
    from PIL import Image

    source = read_frames(suite.path(case.src_video), settings.frames)
    frames = _frames_for(len(source), settings.frames)
    ref = None
    if case.ref_image:
        ref = Image.fromarray(read_frames(suite.path(case.ref_image))[0])
    result = pipe(
        case.prompt,
        [Image.fromarray(f) for f in source[:frames]],
        ref_image=ref,
        height=settings.height,
        width=settings.width,
        num_frames=frames,
        num_inference_steps=settings.steps,
        seed=settings.case_seed(case.case_id),
    )
    return np.stack([np.asarray(f.convert("RGB")) for f in result.frames])


def generate_suite(
    suite: Suite,
    out_dir: str | Path,
    settings: EvalSettings,
    *,
    checkpoint_id: str,
    checkpoint_dir: str | Path | None = None,
    pipeline: Any = None,
    progress: Progress | None = None,
) -> list[GeneratedCase]:
    """Outputs for every case into `out_dir` (one file + one JSON sidecar per case), in suite order.

    Give `checkpoint_dir` (loaded lazily) or an already loaded `pipeline`; `checkpoint_id` must
    identify its weights (see `identity.checkpoint_fingerprint`).
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    lazy = _LazyPipeline(Path(checkpoint_dir) if checkpoint_dir else None, pipeline, settings)
    results: list[GeneratedCase] = []
    for index, case in enumerate(suite.cases):
        expected = {
            "checkpoint_id": checkpoint_id,
            "case_id": case.case_id,
            "case_hash": suite.case_hash(case),
            "settings_key": settings.settings_key,
        }
        sidecar = folder / f"{case.case_id}.json"
        found = _reusable(sidecar, expected)
        if found is not None:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            results.append(GeneratedCase(case.case_id, found, meta["frames"], 0.0, True))
        else:
            started = time.perf_counter()
            try:
                frames = generate_case(lazy.get(), suite, case, settings)
            except MediaError as exc:
                raise KiwiUserError(f"case {case.case_id}: {exc}", code="bad_media") from None
            path = _output_path(folder, case, len(frames), settings)
            _write(frames, path, settings.fps)
            seconds = time.perf_counter() - started
            meta = {
                **expected,
                "file": path.name,
                "frames": len(frames),
                "height": int(frames.shape[1]),
                "width": int(frames.shape[2]),
                "seconds": round(seconds, 3),
                "settings": settings.model_dump(),
            }
            write_text_atomic(sidecar, json.dumps(meta, indent=2, sort_keys=True) + "\n")
            results.append(GeneratedCase(case.case_id, path, len(frames), seconds, False))
        if progress:
            progress("generate", index + 1, len(suite.cases))
    return results
