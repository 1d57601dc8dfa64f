"""Learning signal: the tiny model, trained on `kiwi synth` data, must lower its validation loss by >= 30 %.

    python benchmarks/learning_signal.py                  # ~1-3 min on 2 CPU cores
    python benchmarks/learning_signal.py --steps 600 --pairs 48

Stage 3 (everything docs/contract.md §3 trains is trainable; mix image:video:reference 1:1:1, so one optimizer
step = 3 samples) on 9-frame 64x96 clips. LR is 3e-3 with 10 warmup steps: the tiny model
(~76K trainable parameters) needs a far higher LR than the released 5e-6 to move in a few
hundred steps. Validation = fixed noise and timesteps on held-out pairs (split by pair id).

Then, on the validation pairs, the untrained and the trained pipeline sample an edit (20 Euler
steps, same seed) and the result is compared with the true target *in latent space*: the tiny
VAE has random weights, so decoded pixels say nothing; latents are what the DiT learns. We report
MSE to the target latent overall, inside the edited region (edit / reference fidelity) and
outside it (preservation), next to the trivial "copy the source" baseline.
Writes benchmarks/results/learning_signal.json and .png.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder would shadow the `model` package (benchmarks/model.py): repo root first.
_ROOT = str(Path(__file__).resolve().parents[1])
sys.path[:] = [_ROOT] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if "model" in sys.modules and not hasattr(sys.modules["model"], "__path__"):
    del sys.modules["model"]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kiwi_platform.training import TrainConfig, train  # noqa: E402
from kiwi_platform.training.fixtures import make_training_manifest  # noqa: E402

RESULTS = Path(_ROOT) / "benchmarks" / "results"


def run_signal(
    work: Path, *, pairs: int, steps: int, lr: float, frames: int, eval_every: int, seed: int = 0, log: bool = True
) -> dict:
    """Build data, train, return the curve and the relative drop of the validation loss."""
    t0 = time.perf_counter()
    data = make_training_manifest(work / "data", pairs, seed=seed, frames=frames, height=64, width=96)
    data_seconds = time.perf_counter() - t0
    cfg = TrainConfig(
        stage=3,
        model="tiny",
        lr=lr,
        warmup_steps=10,
        max_steps=steps,
        checkpoint_every=steps,
        eval_every=eval_every,
        eval_samples=8,
        val_fraction=0.2,
        frames=frames,
        seed=seed,
        resolutions=[{"height": 64, "width": 96}],
    )

    class Progress:
        def on_eval(self, step: int, metrics: dict) -> None:
            if log:
                print(f"  step {step:4d}  val_loss {metrics['val_loss']:.4f}", flush=True)

    result = train(cfg, data.manifest, data.data_root, work / "run", callbacks=Progress(), resume=False)
    first, last = result.val_losses[0][1], result.val_losses[-1][1]
    return {
        "config": cfg.model_dump(mode="json"),
        "pairs": pairs,
        "rows": data.rows,
        "steps": result.steps,
        "samples_seen": result.samples_seen,
        "train_seconds": result.seconds,
        "data_seconds": data_seconds,
        "trainable_params": result.trainable_params,
        "val_curve": result.val_losses,
        "train_losses": result.losses,
        "val_loss_start": first,
        "val_loss_end": last,
        "relative_drop": (first - last) / first,
        "final_dir": str(result.final_dir),
        "manifest": str(data.manifest),
        "data_root": str(data.data_root),
        "synth_dir": str(data.synth_dir),
    }


def _latent_mask(mask_dir: Path, frames: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Edited-region masks (H, W per frame) pooled onto the latent grid (t, h, w): 1 = edited."""
    import cv2

    masks = np.stack([cv2.imread(str(mask_dir / f"{t:04d}.png"), cv2.IMREAD_GRAYSCALE) > 127 for t in range(frames)])
    m = torch.from_numpy(masks).float()[None, None]  # 1 1 T H W
    return torch.nn.functional.adaptive_max_pool3d(m, shape[-3:])[0, 0] > 0


@torch.no_grad()
def sample_eval(summary: dict, frames: int, steps: int = 20, limit: int = 8) -> dict:
    """Latent-space error of sampled edits vs the true target: untrained vs trained vs copy-source."""
    import pandas as pd

    from kiwi_platform.synth import load_ground_truth
    from kiwi_platform.training.data import SampleLoader, load_manifest, split_by_pair
    from model import KiwiEditPipeline, build_pipeline
    from model.video_io import tensor_to_frames

    df = load_manifest(summary["manifest"])
    _, val = split_by_pair(df, 0.2)
    loader = SampleLoader(df, summary["data_root"])
    truth = {f"synth-0-{r['pair']}": r for r in load_ground_truth(Path(summary["synth_dir"]))}
    models = {
        "untrained": build_pipeline("tiny", seed=0),
        "trained": KiwiEditPipeline.from_pretrained(summary["final_dir"]),
    }
    for p in models.values():
        p.set_progress_bar_config(disable=True)
    rows: list[dict] = []
    for index in val.index[:limit]:
        row = df.loc[index]
        batch = loader.load(index, 64, 96, frames)
        src, tgt = batch["source"], batch["target"]
        target_latent = models["trained"].encode_pixels(tgt[None])
        source_latent = models["trained"].encode_pixels(src[None])
        rec = truth[row["pair_id"]]
        edited = _latent_mask(Path(summary["synth_dir"]) / rec["mask_dir"], src.shape[1], target_latent.shape)
        edited = edited[None, None].expand_as(target_latent)
        out = {"pair": row["pair_id"], "task": row["task"], "edit_type": rec["edit_type"]}
        candidates = {"copy_source": source_latent}
        for name, pipe in models.items():
            candidates[name] = pipe(
                row["prompt"],
                tensor_to_frames(src),
                batch["ref_image"],
                height=64,
                width=96,
                num_frames=src.shape[1],
                num_inference_steps=steps,
                seed=123,
                output_type="latent",
            ).latents
        for name, lat in candidates.items():
            err = (lat.float() - target_latent.float()) ** 2
            out[f"{name}_mse"] = float(err.mean())
            out[f"{name}_mse_edited"] = float(err[edited].mean()) if edited.any() else float("nan")
            out[f"{name}_mse_kept"] = float(err[~edited].mean()) if (~edited).any() else float("nan")
        rows.append(out)
    table = pd.DataFrame(rows)
    means = table.drop(columns=["pair", "task", "edit_type"]).mean(skipna=True).to_dict()
    ref_means = table[table["task"].str.endswith("_ref")].drop(columns=["pair", "task", "edit_type"]).mean().to_dict()
    return {"per_sample": rows, "mean": means, "mean_reference_rows": ref_means, "sampling_steps": steps}


def _plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps, losses = zip(*summary["val_curve"])
    train = summary["train_losses"]
    window = max(1, len(train) // 30)
    smooth = np.convolve(train, np.ones(window) / window, mode="valid")
    ax.plot(np.arange(len(smooth)) + window, smooth, alpha=0.5, label=f"train loss ({window}-step mean)")
    ax.plot(steps, losses, "o-", label="validation loss (fixed noise)")
    ax.set_xlabel("optimizer step (3 samples each)")
    ax.set_ylabel("flow-matching loss")
    ax.set_title(f"tiny Kiwi-Edit, stage 3 on kiwi synth: {summary['relative_drop']:.0%} lower val loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--threshold", type=float, default=0.30)
    ap.add_argument("--no-sample-eval", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory(prefix="kiwi-signal-") as tmp:
        print(f"training tiny stage 3: {args.pairs} synth pairs, {args.steps} steps, lr {args.lr}", flush=True)
        summary = run_signal(
            Path(tmp), pairs=args.pairs, steps=args.steps, lr=args.lr, frames=args.frames, eval_every=args.eval_every
        )
        if not args.no_sample_eval:
            summary["sample_eval"] = sample_eval(summary, args.frames)
    for key in ("final_dir", "manifest", "data_root", "synth_dir"):
        summary.pop(key)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning_signal.json").write_text(json.dumps(summary, indent=1))
    _plot(summary, args.out / "learning_signal.png")
    print(
        f"val loss {summary['val_loss_start']:.4f} -> {summary['val_loss_end']:.4f} "
        f"({summary['relative_drop']:.1%} lower) in {summary['steps']} steps, {summary['train_seconds']:.0f} s "
        f"training ({summary['samples_seen'] / summary['train_seconds']:.1f} samples/s)"
    )
    if "sample_eval" in summary:
        m = summary["sample_eval"]["mean"]
        print(
            "sampled-edit latent MSE vs true target (lower is better): "
            + ", ".join(
                f"{k}: all {m[f'{k}_mse']:.3f} / edited {m[f'{k}_mse_edited']:.3f} / kept {m[f'{k}_mse_kept']:.3f}"
                for k in ("untrained", "trained", "copy_source")
            )
        )
    print(f"results: {args.out / 'learning_signal.json'}, {args.out / 'learning_signal.png'}")
    ok = summary["relative_drop"] >= args.threshold
    print("PASS" if ok else f"FAIL: drop below {args.threshold:.0%}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
