"""`kiwi edit`, `kiwi model init` and `kiwi model import`: thin CLI over the `model` library (heavy imports are lazy)."""

from __future__ import annotations

from pathlib import Path

import typer

from kiwi_platform.errors import KiwiUserError

model_app = typer.Typer(help="Create and inspect Kiwi-Edit checkpoints.", no_args_is_help=True)


def edit(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint folder (released layout)."),
    video: Path = typer.Option(..., "--video", help="Source video (mp4) or image."),
    prompt: str = typer.Option(..., "--prompt", help="Editing instruction."),
    out: Path = typer.Option(..., "--out", help="Output mp4 path."),
    ref: Path | None = typer.Option(None, "--ref", help="Reference image (optional)."),
    steps: int = typer.Option(50, "--steps", min=1, help="Euler sampling steps."),
    height: int | None = typer.Option(None, "--height", help="Output height (multiple of 32)."),
    width: int | None = typer.Option(None, "--width", help="Output width (multiple of 32)."),
    frames: int | None = typer.Option(None, "--frames", help="Output frames (4k+1, default: all up to 81)."),
    seed: int = typer.Option(0, "--seed", help="Noise seed."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
    offload: bool = typer.Option(False, "--offload", help="Keep idle components on the CPU (small GPUs)."),
    vae_tiling: bool = typer.Option(False, "--vae-tiling", help="Encode/decode the VAE in tiles."),
) -> None:
    """Edit a video (or image) with an instruction and an optional reference image."""
    import torch

    from model.pipeline import CheckpointError, KiwiEditPipeline
    from model.video_io import MediaReadError, read_image, read_video_frames

    if not prompt.strip():
        raise KiwiUserError("--prompt is empty: say what the edit should do")
    if frames is not None and (frames - 1) % 4:
        raise KiwiUserError(f"--frames {frames} is not 4k+1 (1, 5, 9, ..., 81): the VAE compresses time by 4")
    if not video.is_file():
        raise KiwiUserError(f"source video {video} does not exist")
    if ref is not None and not ref.is_file():
        raise KiwiUserError(f"reference image {ref} does not exist")
    from kiwi_platform.lib.checkpoint_manifest import require_intact_checkpoint

    require_intact_checkpoint(checkpoint)
    try:
        pipe = KiwiEditPipeline.from_pretrained(checkpoint)
    except CheckpointError as exc:
        raise KiwiUserError(str(exc)) from None
    try:
        if video.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp", ".bmp"}:
            source = [read_image(video)]
        else:
            source = read_video_frames(video, max_frames=frames or 81)
        ref_image = read_image(ref) if ref is not None else None
    except MediaReadError as exc:
        raise KiwiUserError(str(exc)) from None

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        if offload and dev != "cpu":
            pipe.enable_model_cpu_offload(device=dev)
        else:
            pipe.to(dev)
    except (RuntimeError, AssertionError, ValueError) as exc:
        raise KiwiUserError(f"device {dev!r} is not available here ({str(exc).splitlines()[0]})") from None
    if vae_tiling:
        pipe.enable_vae_tiling()
    try:
        result = pipe(
            prompt,
            source,
            ref_image=ref_image,
            height=height,
            width=width,
            num_frames=frames,
            num_inference_steps=steps,
            seed=seed,
        )
    except ValueError as exc:
        raise KiwiUserError(str(exc)) from None
    path = pipe.save_video(result.frames, out)
    w, h = result.frames[0].size
    typer.echo(f"wrote {path} ({len(result.frames)} frames, {w}x{h}, 15 fps)")


@model_app.command("init")
def init(
    out: Path = typer.Option(..., "--out", help="Folder to write the checkpoint to."),
    config: str | None = typer.Option(
        None, "--config", help="Model size: tiny or kiwi-5b (default tiny; kiwi-5b encoder settings with --from-base)."
    ),
    from_base: bool = typer.Option(False, "--from-base", help="Assemble from local Wan2.2 + Qwen2.5-VL folders."),
    wan: Path | None = typer.Option(None, "--wan", help="Wan2.2-TI2V-5B diffusers folder (with --from-base)."),
    qwen: Path | None = typer.Option(None, "--qwen", help="Qwen2.5-VL-3B-Instruct folder (with --from-base)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the new (random) weights."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty folder."),
) -> None:
    """Write a checkpoint in the released layout (random weights, or base models + new parts)."""
    from model.configs import CONFIGS

    if config is not None and config not in CONFIGS:
        raise KiwiUserError(f"unknown config {config!r} (choose from: {', '.join(CONFIGS)})")
    if out.exists() and not out.is_dir():
        raise KiwiUserError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise KiwiUserError(f"{out} already exists and is not empty (use --overwrite to replace it)")
    if from_base:
        if wan is None or qwen is None:
            raise KiwiUserError("--from-base needs both --wan PATH and --qwen PATH")
        from model.from_base import BaseModelError, init_from_base

        try:
            path = init_from_base(wan, qwen, out, encoder_config=config or "kiwi-5b", seed=seed, overwrite=overwrite)
        except BaseModelError as exc:
            raise KiwiUserError(str(exc)) from None
        typer.echo(f"wrote {path} (from base models {wan} + {qwen})")
        return
    config = config or "tiny"
    from model.build import init_checkpoint

    try:
        path = init_checkpoint(config, out, seed=seed, overwrite=overwrite)
    except ValueError as exc:
        raise KiwiUserError(str(exc)) from None
    typer.echo(f"wrote {path} (config {config}, random weights)")


@model_app.command("import")
def import_checkpoint(
    src: Path = typer.Argument(
        ..., help="Upstream DiffSynth training checkpoint (.safetensors/.pth) or a released checkpoint folder."
    ),
    out: Path = typer.Option(..., "--out", help="Folder to write the checkpoint to (our released layout)."),
    base: Path | None = typer.Option(
        None, "--base", help="Checkpoint folder with the pristine base weights (for a training checkpoint)."
    ),
    vae: Path | None = typer.Option(None, "--vae", help="Wan2.2 VAE to use instead (Wan2.2_VAE.pth or a vae/ folder)."),
    lora_alpha: float = typer.Option(1.0, "--lora-alpha", help="LoRA merge strength (upstream default 1.0)."),
    ref_pad_first: bool | None = typer.Option(
        None, "--ref-pad-first/--ref-pad-last", help="Reference tokens before/after the video (default: keep base)."
    ),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or bfloat16 (weights as written)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty folder."),
) -> None:
    """Turn an upstream Kiwi-Edit checkpoint into our released layout (written whole, or not at all)."""
    import torch

    from model.import_upstream import import_upstream
    from model.pipeline import CheckpointError

    dtypes = {"float32": None, "bfloat16": torch.bfloat16}  # None: the models' own float32, no cast warnings
    if dtype not in dtypes:
        raise KiwiUserError(f"--dtype {dtype!r} is not one of: {', '.join(dtypes)}")
    if out.exists() and not out.is_dir():
        raise KiwiUserError(f"{out} exists and is not a folder")
    try:
        report = import_upstream(
            src,
            out,
            base=base,
            vae=vae,
            lora_alpha=lora_alpha,
            ref_pad_first=ref_pad_first,
            overwrite=overwrite,
            torch_dtype=dtypes[dtype],
        )
    except FileExistsError as exc:
        raise KiwiUserError(str(exc).replace("pass overwrite", "use --overwrite")) from None
    except CheckpointError as exc:
        raise KiwiUserError(str(exc)) from None
    typer.echo(report.summary())


def register(app: typer.Typer) -> None:
    """Attach `edit` and the `model` sub-app (`model init`, `model import`) to the main `kiwi` CLI."""
    app.command("edit")(edit)
    app.add_typer(model_app, name="model")
