"""What people look at after a stage: the loss curve and a before/after strip, logged to MLflow.

The strip runs the just-trained checkpoint on the first manifest sample (source | output | target),
so a broken checkpoint shows at a glance in the Dagster UI and in MLflow. Each cell is captioned,
and the tiny model's output says it comes from a random-init demo model, so nobody reads its noise
as a failed edit. The curve shows the raw per-step loss (noisy: each step draws its own timestep),
its moving average, and the validation loss on fixed noise, which is the trend to read.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from kiwi_platform.lib import shards
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


STRIP_MIN_WIDTH = 768  # the issue asks >= 512; 768 leaves room for the captions
CAPTION_H = 18
SAMPLING_STEPS = 4


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what exists so far)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def loss_curve(result: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    losses = result.get("losses") or []
    steps = range(1, len(losses) + 1)
    window = max(1, len(losses) // 5)
    ax.plot(steps, losses, lw=0.8, alpha=0.25, color="tab:blue", label="train loss (per step)")
    if window > 1:  # full windows only: a half-filled mean at the start would draw a false ramp
        ax.plot(
            steps[window - 1 :],
            smooth(losses, window)[window - 1 :],
            lw=2,
            color="tab:blue",
            label=f"train loss ({window}-step mean)",
        )
    if losses:  # rare high-timestep spikes would squash the rest of the curve
        ax.set_ylim(0, float(np.percentile(losses, 95)) * 1.15)
    val = result.get("val_losses") or []
    if val:
        ax2 = ax.twinx()  # validation sits on its own scale: fixed noise, other rows
        ax2.plot([s for s, _ in val], [v for _, v in val], "o-", color="tab:orange", label="validation (fixed noise)")
        ax2.set_ylabel("validation loss", color="tab:orange")
        ax2.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("flow-matching loss")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path.write_bytes(buf.getvalue())


def output_caption(model: str) -> str:
    """What the middle cell shows; the tiny model's output is labelled as such."""
    if model == "tiny":
        return "output: tiny random-init demo model"
    return f"output ({SAMPLING_STEPS} sampling steps)"


def caption_strip(cells: list[Image.Image], captions: list[str], min_width: int = STRIP_MIN_WIDTH) -> Image.Image:
    """Cells side by side under their captions, scaled up (whole factors) to at least `min_width` px."""
    from PIL import ImageDraw

    gap = 4
    natural = sum(c.width for c in cells) + gap * (len(cells) - 1)
    scale = max(1, -(-min_width // natural))
    cells = [c.convert("RGB").resize((c.width * scale, c.height * scale), Image.Resampling.NEAREST) for c in cells]
    height = max(c.height for c in cells)
    strip = Image.new("RGB", (sum(c.width for c in cells) + gap * (len(cells) - 1), height + CAPTION_H), "white")
    draw = ImageDraw.Draw(strip)
    x = 0
    for cell, caption in zip(cells, captions, strict=True):
        draw.text((x + 2, 3), caption, fill=(30, 30, 30))
        strip.paste(cell, (x, CAPTION_H))
        x += cell.width + gap
    return strip


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
    ref = None
    if rec["ref_image"]:
        with shards.open_member(store.root_path / rec["ref_image"]) as fh, Image.open(fh) as img:
            ref = img.convert("RGB")
    out = pipe(
        rec["prompt"],
        video=video,
        ref_image=ref,
        height=res.height,
        width=res.width,
        num_frames=frames,
        num_inference_steps=SAMPLING_STEPS,
        seed=0,
    )
    output = out.frames[0] if hasattr(out.frames[0], "convert") else Image.fromarray(np.asarray(out.frames[0]))
    cells = [video[0], output, Image.fromarray(tgt).resize((res.width, res.height))]
    strip = caption_strip(cells, ["source", output_caption(cfg.model), "target"])
    strip.save(path)
    return True
