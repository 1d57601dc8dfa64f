"""The Qwen2.5-VL grounder loads a local checkpoint, prompts it, and turns its answer into a frame box."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.backends.qwen_grounder import QwenVLGrounder
from kiwi_platform.refvie.types import Grounder, SampleRejected


def test_random_model_answer_is_rejected_not_guessed(qwen_dir: Path, frame_pair) -> None:
    """A model whose answer holds no box (the random tiny checkpoint) quarantines the pair as qc_backend_error."""
    source, target = frame_pair
    grounder = QwenVLGrounder(qwen_dir, max_new_tokens=8)
    assert isinstance(grounder, Grounder)
    with pytest.raises(SampleRejected) as info:
        grounder.ground(source, target, "Add a red square")
    assert info.value.reason == "qc_backend_error"
    assert "could not parse a box" in info.value.message


def test_answer_box_is_mapped_from_resized_image_to_frame(qwen_dir: Path, frame_pair, monkeypatch) -> None:
    """With the generated tokens replaced by a JSON answer, the box is rescaled from the model's resized
    image (56x84 for a 64x96 frame) to frame pixels, repeated on every frame, and the prompt carries the instruction."""
    source, target = frame_pair
    grounder = QwenVLGrounder(qwen_dir, max_new_tokens=8)
    _, processor = grounder._load()
    seen: dict[str, str] = {}

    def fake_generate(model, inputs):
        seen["prompt"] = processor.batch_decode(inputs["input_ids"])[0]
        seen["images"] = str(int(inputs["image_grid_thw"].shape[0]))
        answer = processor.tokenizer(
            '[{"bbox_2d": [35, 14, 56, 35], "label": "square"}]<|im_end|>', return_tensors="pt"
        )["input_ids"]
        return torch.cat([inputs["input_ids"], answer], dim=1)

    monkeypatch.setattr(grounder, "generate", fake_generate)
    grounding = grounder.ground(source, target, "Add a red square.")
    # x: 35..56 of 84 -> 40..64 of 96; y: 14..35 of 56 -> 16..40 of 64 (the square in the target)
    assert grounding.box == (40, 16, 64, 40)
    assert grounding.frame_boxes == [(40, 16, 64, 40)] * target.shape[0]
    assert "Add a red square" in seen["prompt"] and seen["prompt"].count("<|vision_start|>") == 2
    assert seen["images"] == "2"  # source and target frame


def test_target_only_prompt_and_norm1000_coordinates(qwen_dir: Path, frame_pair, monkeypatch) -> None:
    """show_source=False sends one image; coords='norm1000' reads Qwen2-VL style 0..1000 box tokens."""
    source, target = frame_pair
    grounder = QwenVLGrounder(qwen_dir, show_source=False, coords="norm1000")
    _, processor = grounder._load()

    def fake_generate(model, inputs):
        assert int(inputs["image_grid_thw"].shape[0]) == 1
        answer = processor.tokenizer("<|box_start|>(500,250),(750,625)<|box_end|>", return_tensors="pt")["input_ids"]
        return torch.cat([inputs["input_ids"], answer], dim=1)

    monkeypatch.setattr(grounder, "generate", fake_generate)
    assert grounder.ground(source, target, "add a square").box == (48, 16, 72, 40)


def test_box_outside_the_frame_is_rejected(qwen_dir: Path, frame_pair, monkeypatch) -> None:
    """An answer whose box lies outside the image is a backend error, not a clamped sliver."""
    source, target = frame_pair
    grounder = QwenVLGrounder(qwen_dir)
    _, processor = grounder._load()
    answer = processor.tokenizer("[900, 900, 950, 990]", return_tensors="pt")["input_ids"]
    monkeypatch.setattr(grounder, "generate", lambda model, inputs: torch.cat([inputs["input_ids"], answer], dim=1))
    with pytest.raises(SampleRejected, match="empty inside the frame"):
        grounder.ground(source, target, "add a square")


def test_missing_folder_and_missing_files_are_one_line_errors(qwen_dir: Path, tmp_path: Path) -> None:
    """A wrong model_path or an incomplete folder is a one-line KiwiUserError naming what is missing."""
    with pytest.raises(KiwiUserError, match=r"model folder .*nope does not exist") as info:
        QwenVLGrounder(tmp_path / "nope")
    assert "\n" not in str(info.value)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((qwen_dir / "config.json").read_text())
    with pytest.raises(KiwiUserError, match="lacks model weights") as info:
        QwenVLGrounder(partial)
    assert "\n" not in str(info.value)


def test_unreadable_weights_are_a_one_line_error_on_first_use(qwen_dir: Path, tmp_path: Path, frame_pair) -> None:
    """A folder with every file present but corrupt weights fails on first use with one line, not a traceback."""
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in qwen_dir.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    grounder = QwenVLGrounder(broken)
    with pytest.raises(KiwiUserError, match="cannot load model from") as info:
        grounder.ground(*frame_pair, "add a square")
    assert "\n" not in str(info.value)


def test_model_is_loaded_once_per_process(qwen_dir: Path) -> None:
    """Two grounders on the same folder share one loaded model (memory stays small)."""
    a, b = QwenVLGrounder(qwen_dir), QwenVLGrounder(qwen_dir)
    assert a._load()[0] is b._load()[0]
