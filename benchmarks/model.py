"""Model benchmark: tiny config on CPU; kiwi-5b DiT (and MLLM encoder) on a GPU when one is present.

    python benchmarks/model.py                 # tiny CPU numbers, kiwi-5b if CUDA is available
    python benchmarks/model.py --gpu-only --sizes 81x480x832 81x704x1280

Reference points (issue 4): ~290 TFLOP forward per 81x704x1280 sample; 40 % MFU on an H100 is
~2.2 s per training sample (forward + backward).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

# Run as a script, this file's folder would shadow the `model` package: put the repo root first.
_ROOT = str(Path(__file__).resolve().parents[1])
sys.path[:] = [_ROOT] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if "model" in sys.modules and not hasattr(sys.modules["model"], "__path__"):
    del sys.modules["model"]

import torch  # noqa: E402

H100_BF16_PEAK = 989e12


def _timeit(fn, warmup: int, iters: int, sync=lambda: None) -> float:
    for _ in range(warmup):
        fn()
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - start) / iters


def bench_tiny_cpu(frames: int = 5, size: int = 64, iters: int = 10) -> dict:
    """Forward+backward of one training sample (stage 2 trainable set) with the tiny config on CPU."""
    from model.build import build_pipeline
    from model.training import compute_loss
    from model.training_stages import apply_stage_freezing

    torch.set_num_threads(max(1, torch.get_num_threads()))
    pipe = build_pipeline("tiny")
    apply_stage_freezing(pipe, 2)
    g = torch.Generator().manual_seed(0)
    batch = {
        "source": torch.rand(3, frames, size, size) * 2 - 1,
        "target": torch.rand(3, frames, size, size) * 2 - 1,
        "prompt": "make it golden hour",
    }

    def step():
        loss = compute_loss(pipe, batch, generator=g)
        loss.backward()

    step_s = _timeit(step, warmup=2, iters=iters)
    pipe.set_progress_bar_config(disable=True)
    from PIL import Image

    frames_pil = [Image.new("RGB", (size, size), (i * 20, 80, 120)) for i in range(frames)]
    sample_s = _timeit(lambda: pipe("x", frames_pil, height=size, width=size, num_inference_steps=2, seed=0), 1, 3)
    return {
        "config": "tiny",
        "device": "cpu",
        "frames": frames,
        "size": f"{size}x{size}",
        "train_step_s": round(step_s, 4),
        "sample_2_steps_s": round(sample_s, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _mem_reset(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _mem_peak(dev: torch.device) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan")


def bench_kiwi5b_gpu(
    sizes: list[str], iters: int = 3, context_tokens: int = 512, config: str = "kiwi-5b", device: str = "cuda"
) -> list[dict]:
    """kiwi-5b DiT in bf16 with random weights: fwd+bwd with gradient checkpointing, and inference s/step."""
    from model.configs import get_config
    from model.embedders import ConditionEmbedder
    from model.transformer import KiwiTransformer
    from model.vae import latent_shape

    KIWI_5B = get_config(config)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with dev:
        dit = KiwiTransformer(**KIWI_5B.transformer).to(torch.bfloat16)
        src_emb = ConditionEmbedder(48, KIWI_5B.dit_dim, list(KIWI_5B.transformer["patch_size"])).to(torch.bfloat16)
    dit.enable_gradient_checkpointing()
    results = []
    for spec in sizes:
        frames, height, width = (int(v) for v in spec.split("x"))
        c, f, h, w = latent_shape(KIWI_5B.vae, frames, height, width)
        x = torch.randn(1, c, f, h, w, device=dev, dtype=torch.bfloat16)
        src = torch.randn_like(x)
        ctx = torch.randn(1, context_tokens, KIWI_5B.dit_dim, device=dev, dtype=torch.bfloat16)
        t = torch.tensor([500.0], device=dev)
        tokens = f * (h // 2) * (w // 2)

        def train_step():
            out = dit(x, t, ctx, source_embeds=src_emb(src), source_scale=t / 1000).sample
            out.float().square().mean().backward()
            dit.zero_grad(set_to_none=True)

        _mem_reset(dev)
        dit.train()
        step_s = _timeit(train_step, warmup=1, iters=iters, sync=sync)
        train_peak = _mem_peak(dev)

        @torch.no_grad()
        def infer_step():
            dit(x, t, ctx, source_embeds=src_emb(src), source_scale=t / 1000)

        _mem_reset(dev)
        dit.eval()
        infer_s = _timeit(infer_step, warmup=1, iters=iters, sync=sync)
        infer_peak = _mem_peak(dev)
        # forward FLOPs: 2 * params * tokens (linear layers) + attention 4 * L^2 * dim per layer
        n_params = sum(p.numel() for p in dit.parameters())
        fwd_flops = 2 * n_params * tokens + 4 * tokens**2 * KIWI_5B.dit_dim * KIWI_5B.transformer["num_layers"]
        results.append(
            {
                "config": f"{config} (DiT only, bf16, grad checkpointing)",
                "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                "clip": spec,
                "latent": [c, f, h, w],
                "tokens": tokens,
                "context_tokens": context_tokens,
                "fwd_tflop_est": round(fwd_flops / 1e12, 1),
                "train_fwd_bwd_s": round(step_s, 3),
                "train_peak_gib": round(train_peak, 2),
                "train_mfu_est": round(3 * fwd_flops / step_s / H100_BF16_PEAK, 3),
                "infer_s_per_step": round(infer_s, 3),
                "infer_peak_gib": round(infer_peak, 2),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    return results


def bench_encoder_gpu(frames: int = 16, height: int = 480, width: int = 832, iters: int = 3) -> dict:
    """kiwi-5b MLLM encoder (Qwen2.5-VL-3B size, random weights, tiny tokenizer ids) video-mode forward."""
    from PIL import Image

    from model.configs import KIWI_5B
    from model.mllm_encoder import MLLMEncoder
    from model.processor import build_tiny_processor

    proc = build_tiny_processor(max_pixels=16384 * 28 * 28)
    ids = proc.tokenizer.convert_tokens_to_ids
    qwen = dict(
        KIWI_5B.qwen,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    with torch.device("cuda"):
        enc = MLLMEncoder(qwen_config=qwen, dit_dim=KIWI_5B.dit_dim, **KIWI_5B.encoder).to(torch.bfloat16)
    video = [Image.new("RGB", (width, height), (i * 10, 90, 30)) for i in range(frames)]
    ref = Image.new("RGB", (512, 512), (200, 200, 200))
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        s = _timeit(lambda: enc("replace the towel", video, ref, processor=proc), 1, iters, torch.cuda.synchronize)
        out = enc("replace the towel", video, ref, processor=proc)
    r = {
        "component": "MLLM encoder kiwi-5b (reference mode, bf16)",
        "frames": frames,
        "size": f"{height}x{width}",
        "sequence_tokens": int(out.input_ids.shape[1]),
        "context_tokens": int(out.context.shape[1]),
        "forward_s": round(s, 3),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
    }
    print(json.dumps(r), flush=True)
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["81x480x832", "81x704x1280"])
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--gpu-only", action="store_true")
    parser.add_argument("--no-encoder", action="store_true")
    args = parser.parse_args()
    if not args.gpu_only:
        print(json.dumps(bench_tiny_cpu()), flush=True)
    if not torch.cuda.is_available():
        print("no GPU available: skipping the kiwi-5b benchmark (run on a CUDA machine for step time and memory)")
        return
    bench_kiwi5b_gpu(args.sizes, iters=args.iters)
    if not args.no_encoder:
        torch.cuda.empty_cache()
        try:
            bench_encoder_gpu()
        except Exception as exc:  # the DiT numbers above stand on their own
            print(f"encoder benchmark failed: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
