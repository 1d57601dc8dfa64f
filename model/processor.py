"""An offline Qwen2.5-VL processor: tiny byte-level BPE + Qwen special tokens + the chat template.

The real processor cannot be downloaded here, so tests, the demo and tiny training use one built
locally with the same special tokens, template and image/video processors (only the vocabulary is
small). A real `processor/` folder from the released checkpoint loads through the same code.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast, Qwen2_5_VLProcessor, Qwen2VLImageProcessor
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

# Qwen2-VL / Qwen2.5-VL chat template (vision placeholders expand to pad tokens in the processor).
# Qwen2.5-VL special tokens, in the order (and thus ids) of the released tokenizer's added tokens.
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


QWEN_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# A small, fixed corpus so the BPE (and thus token ids) is identical on every machine.
_CORPUS = [
    "You will be given an image and instruction. Please describe the content of the image in detail "
    "based on instruction in your own words.",
    "Use the reference input from last frame.",
    "Replace the towel with a stack of grey balancing stones. Change the setting to golden hour.",
    "Render the forest scene in a whimsical, storybook illustration style with soft watercolor textures.",
    "Remove the person walking. Add a red car. Change the background to a beach at sunset.",
    "the a an of to in with and on for is it this that from by at as be are was were 0123456789",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz .,;:!?'\"()-_/ system user assistant",
]


def build_tokenizer(vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on a fixed corpus and add Qwen's special tokens after the learned ones."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tok.add_special_tokens(QWEN_SPECIAL_TOKENS)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=131072,
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )


def build_tiny_processor(vocab_size: int = 512, max_pixels: int = 112 * 112) -> Qwen2_5_VLProcessor:
    """Assemble tokenizer + Qwen2VL image/video processors + chat template into one processor."""
    image_processor = Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=max_pixels)
    video_processor = Qwen2VLVideoProcessor(min_pixels=28 * 28, max_pixels=max_pixels)
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=build_tokenizer(vocab_size),
        video_processor=video_processor,
        chat_template=QWEN_CHAT_TEMPLATE,
    )


def load_processor(path: str | Path) -> Qwen2_5_VLProcessor:
    """Load a saved `processor/` folder (ours or the released one)."""
    return Qwen2_5_VLProcessor.from_pretrained(str(path))
