"""Synthetic instruction edit pairs with known ground truth (masks, edit type, true reference)."""

from kiwi_platform.synth.edits import EDIT_TYPES
from kiwi_platform.synth.readback import load_ground_truth, load_mask
from kiwi_platform.synth.writer import SynthSummary, generate

__all__ = ["EDIT_TYPES", "SynthSummary", "generate", "load_ground_truth", "load_mask"]
