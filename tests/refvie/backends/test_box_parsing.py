"""Reading boxes out of VLM answers, in the formats Qwen-family models actually produce."""

from __future__ import annotations

import pytest

from kiwi_platform.refvie.backends.box_parsing import parse_box, to_frame_box


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('```json\n[\n\t{"bbox_2d": [135, 114, 286, 338], "label": "red car"}\n]\n```', (135, 114, 286, 338)),
        ('{"bbox_2d": [10.5, 20, 30, 40]}', (10.5, 20, 30, 40)),
        ('The edited region is [{"bbox": [1, 2, 3, 4], "label": "x"}].', (1, 2, 3, 4)),
        (
            "<|object_ref_start|>the car<|object_ref_end|><|box_start|>(120,340),(560,880)<|box_end|><|im_end|>",
            (120, 340, 560, 880),
        ),
        ("The box is [12, 30, 80, 95].", (12, 30, 80, 95)),
        ("12 30 80 95", (12, 30, 80, 95)),
        ("I cannot find any change in this image.", None),
        ("\n\n\n<|im_end|>", None),
        ('[{"label": "car"}]', None),
    ],
)
def test_parse_box_formats(answer: str, expected: tuple | None) -> None:
    """JSON bbox_2d (fenced or not), Qwen box tokens and bare number lists all give the box; prose gives None."""
    assert parse_box(answer) == expected


def test_to_frame_box_scales_orders_and_clamps() -> None:
    """Model pixels map to frame pixels, swapped corners are ordered, and the box is clamped to the frame."""
    # the model saw a 56x84 image of a 64x96 frame: scale 96/84 in x, 64/56 in y
    assert to_frame_box((42, 14, 21, 28), 96 / 84, 64 / 56, 96, 64) == (24, 16, 48, 32)
    assert to_frame_box((-10, -5, 500, 500), 1.0, 1.0, 96, 64) == (0, 0, 96, 64)
    assert to_frame_box((200, 200, 300, 300), 1.0, 1.0, 96, 64) is None  # entirely outside
    assert to_frame_box((5, 5, 5, 20), 1.0, 1.0, 96, 64) is None  # zero width
