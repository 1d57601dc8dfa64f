"""What people look at after a stage: the loss curve and a before/after strip, logged to MLflow.

The strip runs the just-trained checkpoint on the first manifest sample (source | output | target),
so a broken checkpoint shows at a glance in the Dagster UI and in MLflow.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from kiwi_platform.resources.store import MediaStore


def log_stage_images(
    stage: int, result: dict, final_dir: Path, manifest: Path, store: MediaStore, cfg, output_dir: Path
) -> dict[str, Path]:
    """Loss curve and a before/after strip (source | output | target) of one validation sample."""
    import mlflow

    images: dict[str, Path] = {}
    curve = output_dir / "loss_curve.png"
    loss_curve(result, curve, f"stage {stage}")
    mlflow.log_artifact(str(curve), "plots")
    images["loss_curve"] = curve
    strip = output_dir / "before_after.png"
    if before_after(final_dir, manifest, store, cfg, strip):
        mlflow.log_artifact(str(strip), "samples")
        images["before_after"] = strip
    return images


def loss_curve(result: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    losses = result.get("losses") or []
    ax.plot(range(1, len(losses) + 1), losses, label="train loss", lw=1)
    val = result.get("val_losses") or []
    if val:
        ax.plot([s for s, _ in val], [v for _, v in val], "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path.write_bytes(buf.getvalue())


def before_after(final_dir: Path, manifest: Path, store: MediaStore, cfg, path: Path) -> bool:
    import pandas as pd

    from kiwi_platform.media.clips import read_clip
    from model import KiwiEditPipeline

    df = pd.read_parquet(manifest)
    if not len(df):
        return False
    rec = df.iloc[0]
    res = cfg.resolutions[-1]
    frames = 1 if rec["frames"] == 1 else cfg.frames
    src = read_clip(store.root_path / rec["src_clip"], list(range(frames)))
    tgt = read_clip(store.root_path / rec["tgt_clip"], [0])[0]
    pipe = KiwiEditPipeline.from_pretrained(final_dir)
    pipe.set_progress_bar_config(disable=True)
    video = [Image.fromarray(f).resize((res.width, res.height)) for f in src]
    ref = Image.open(store.root_path / rec["ref_image"]).convert("RGB") if rec["ref_image"] else None
    out = pipe(
        rec["prompt"],
        video=video,
        ref_image=ref,
        height=res.height,
        width=res.width,
        num_frames=frames,
        num_inference_steps=4,
        seed=0,
    )
    cells = [video[0], out.frames[0], Image.fromarray(tgt).resize((res.width, res.height))]
    strip = Image.new("RGB", (sum(c.width for c in cells) + 8, res.height), "white")
    x = 0
    for c in cells:
        strip.paste(c.convert("RGB") if hasattr(c, "convert") else Image.fromarray(np.asarray(c)), (x, 0))
        x += c.width + 4
    strip.save(path)
    return True
