"""Tiny random-weight checkpoints in each library's released folder layout, for the backend tests.

Each builder writes with `save_pretrained`, exactly like a real downloaded folder, so the backends'
loading code (`from_pretrained(..., local_files_only=True)`) runs unchanged. Sizes are chosen so
loading plus one forward pass takes well under a second on CPU; weights are seeded, so outputs are
deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

SAM_IMAGE_SIZE = 64
SQUARE = (40, 16, 64, 40)  # x0, y0, x1, y1 of the square added in the synthetic target (conftest.frame_pair)


def build_tiny_qwen(folder: Path) -> Path:
    """Qwen2.5-VL (2 text + 2 vision layers) + the offline Qwen processor from `model.processor`."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from model.build import qwen_config_for_tokenizer
    from model.configs import TINY
    from model.processor import build_tiny_processor

    processor = build_tiny_processor()
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(**qwen_config_for_tokenizer(TINY.qwen, processor.tokenizer))
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_sam(folder: Path) -> Path:
    """SamModel at 64 px input (8 px patches, 16-d features) + a SamProcessor resizing to 64 px."""
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    dim, size, low_res = 16, SAM_IMAGE_SIZE, SAM_IMAGE_SIZE // 2
    config = SamConfig(
        vision_config=dict(
            hidden_size=16,
            output_channels=dim,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=size,
            patch_size=8,
            window_size=4,
            global_attn_indexes=[1],
            num_pos_feats=dim // 2,
            mlp_dim=32,
        ),
        prompt_encoder_config=dict(hidden_size=dim, image_size=size, patch_size=8, mask_input_channels=4),
        mask_decoder_config=dict(
            hidden_size=dim, mlp_dim=32, num_hidden_layers=2, num_attention_heads=2, iou_head_hidden_dim=16
        ),
    )
    torch.manual_seed(0)
    SamModel(config).save_pretrained(folder)
    image_processor = SamImageProcessor(
        size={"longest_edge": size},
        pad_size={"height": size, "width": size},
        mask_size={"longest_edge": low_res},
        mask_pad_size={"height": low_res, "width": low_res},
    )
    SamProcessor(image_processor=image_processor).save_pretrained(folder)
    return folder


def build_tiny_clip(folder: Path, vision_only: bool = False) -> Path:
    """CLIP with a 32 px, 2-layer vision tower and 16-d projection (full model, or vision-only)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    torch.manual_seed(0)
    if vision_only:
        model = CLIPVisionModelWithProjection(vision)
    else:
        text = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            vocab_size=64,
            max_position_embeddings=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision.to_dict(), projection_dim=16))
    model.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def build_clip_tokenizer(folder: Path, max_length: int = 32):
    """A CLIP BPE tokenizer from hand-written vocab.json / merges.txt (byte alphabet + a few merges)."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = sorted(ByteLevel.alphabet())
    merges = ["c l", "e a", "cl ea", "clea n</w>", "b a", "ba c", "k g"]  # "clean", "back...": real BPE merges
    merged = ["cl", "ea", "clea", "clean</w>", "ba", "bac", "kg"]
    tokens = chars + [c + "</w>" for c in chars] + merged + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(dict.fromkeys(tokens))}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": max_length}))
    return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)


def build_tiny_sd_inpaint(folder: Path) -> Path:
    """StableDiffusionInpaintPipeline: 9-channel UNet (8/16 ch), 2-level VAE, 1-layer CLIP text encoder, DDIM."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = build_clip_tokenizer(folder.parent / f"{folder.name}-tokenizer-src")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=32,
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        norm_num_groups=4,
        attention_head_dim=4,
    )
    vae = AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        norm_num_groups=4,
        sample_size=64,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            vocab_size=len(tokenizer),
            max_position_embeddings=32,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder
