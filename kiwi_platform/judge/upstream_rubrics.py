"""The benchmark rubrics as upstream judges them: one per OpenVE `edited_type`, two for RefVIE.

Each wraps the verbatim upstream system prompt (`upstream_prompts`), the exact line labels
upstream's `check_format` looks for, and the cap rule every one of those prompts states ("the
second and third scores should not be higher than the first"), which we also enforce in code.

Dimension names are ours and shared within a benchmark, so tables have one column per score
position, as upstream's per-index averages do:

- OpenVE, in the order upstream's `check_format` returns them: `instruction_compliance`
  ("Instruction Compliance"), `visual_quality` ("Visual Quality & Stability"), `detail_fidelity`
  ("Consistency & Detail Fidelity");
- RefVIE, in the prompt's order: `reference_fidelity` (subject "Identity Consistency & Compliance",
  background "Reference Fidelity & Preservation"), `temporal_stability` ("Temporal Consistency &
  Texture Fidelity" / "Matting Quality & Temporal Stability"), `physical_harmony` ("Physical
  Integration & Tracking" / "Visual Harmony & Perspective").
"""

from __future__ import annotations

from kiwi_platform.judge import upstream_prompts as prompts
from kiwi_platform.judge.rubrics import Rubric

OPENVE_DIMENSIONS = ("instruction_compliance", "visual_quality", "detail_fidelity")
OPENVE_LABELS = ("Instruction Compliance", "Visual Quality & Stability", "Consistency & Detail Fidelity")
REFVIE_DIMENSIONS = ("reference_fidelity", "temporal_stability", "physical_harmony")
REFVIE_LABELS = {
    "subject": (
        "Identity Consistency & Compliance",
        "Temporal Consistency & Texture Fidelity",
        "Physical Integration & Tracking",
    ),
    "background": (
        "Reference Fidelity & Preservation",
        "Matting Quality & Temporal Stability",
        "Visual Harmony & Perspective",
    ),
}
_OPENVE_PROMPTS = {
    "global_style": prompts.OPENVE_GLOBAL_STYLE,
    "background_change": prompts.OPENVE_BACKGROUND_CHANGE,
    "local_change": prompts.OPENVE_LOCAL_CHANGE,
    "local_remove": prompts.OPENVE_LOCAL_REMOVE,
    "local_add": prompts.OPENVE_LOCAL_ADD,
}
_REFVIE_PROMPTS = {"subject": prompts.REFVIE_SUBJECT, "background": prompts.REFVIE_BACKGROUND}


def _rubric(name: str, dims: tuple[str, ...], labels: tuple[str, ...], template: str, placeholder: str) -> Rubric:
    return Rubric(
        name=name,
        system="",
        task="",
        dimension_help=tuple(zip(dims, labels)),
        cap_by=dims[0],
        capped=dims[1:],
        answer_format="lines",
        system_template=template,
        placeholder=placeholder,
    )


OPENVE_RUBRICS: dict[str, Rubric] = {
    category: _rubric(f"openve_{category}", OPENVE_DIMENSIONS, OPENVE_LABELS, text, "edit_prompt")
    for category, text in _OPENVE_PROMPTS.items()
}
REFVIE_RUBRICS: dict[str, Rubric] = {
    subtask: _rubric(f"refvie_{subtask}", REFVIE_DIMENSIONS, REFVIE_LABELS[subtask], text, "prompt")
    for subtask, text in _REFVIE_PROMPTS.items()
}
BENCHMARK_DIMENSIONS = {"openve": OPENVE_DIMENSIONS, "refvie": REFVIE_DIMENSIONS}


def benchmark_rubric(suite: str, category: str) -> Rubric | None:
    """The upstream rubric for a case of `suite` ("openve" | "refvie") and `category`; None when upstream has none."""
    table = {"openve": OPENVE_RUBRICS, "refvie": REFVIE_RUBRICS}.get(suite, {})
    return table.get(category)
