"""Benchmark kinds and categories, and how synthetic edit types and free-text prompts map onto them.

Categories follow the upstream benchmarks: OpenVE-Bench (instruction only) reports global style,
background change, local change, local remove and local add; RefVIE-Bench (instruction + reference
image) reports subject and background references. ImgEdit (single-turn image editing) keeps the
`edit_type` each case carries in `singleturn.json` (add, remove, replace, style, ...): upstream only
uses it to group outputs, so any lower-case identifier is a valid ImgEdit category.
"""

from __future__ import annotations

import re

OPENVE = "openve"
REFVIE = "refvie"
IMGEDIT = "imgedit"
SUITE_KINDS = (OPENVE, REFVIE, IMGEDIT)

OPENVE_CATEGORIES = ("global_style", "background_change", "local_change", "local_remove", "local_add")
REFVIE_CATEGORIES = ("subject", "background")
CATEGORIES = {OPENVE: OPENVE_CATEGORIES, REFVIE: REFVIE_CATEGORIES}
#: OpenVE-Bench edited_types upstream neither generates nor judges (test_benchmark.py, eval_openve_gemini.py)
OPENVE_SKIPPED = ("creative_edit", "camera_edit", "subtitle_edit")
_IMGEDIT_CATEGORY = re.compile(r"[a-z][a-z0-9_]*")

#: synthetic edit type -> OpenVE category (recolor and replace are both "local change" upstream)
SYNTH_TO_OPENVE = {
    "global_style": "global_style",
    "background_change": "background_change",
    "recolor": "local_change",
    "local_replace": "local_change",
    "local_remove": "local_remove",
    "local_add": "local_add",
}
#: synthetic edit type -> RefVIE category; only edits whose true reference is what gets inserted
SYNTH_TO_REFVIE = {"local_add": "subject", "local_replace": "subject", "background_change": "background"}

_RULES: tuple[tuple[str, str], ...] = (
    (
        r"\b(style|styl|render|painting|illustration|cartoon|anime|sketch|watercolou?r|sepia|noir|vintage)\w*",
        "global_style",
    ),
    (r"\b(background|setting|scenery|backdrop|golden hour|sky)\b", "background_change"),
    (r"\b(remove|delete|erase|get rid of|take out)\b", "local_remove"),
    (r"\b(add|insert|place|put)\b", "local_add"),
)


def guess_category(prompt: str, suite: str = OPENVE) -> str:
    """Best-effort category from the prompt text, for user suites without a `category` column.

    OpenVE: style words -> global_style, background words -> background_change, remove -> local_remove,
    add -> local_add, anything else (replace, recolor, change X) -> local_change.
    RefVIE: background words -> background, else subject.
    """
    text = prompt.lower()
    for pattern, category in _RULES:
        if re.search(pattern, text):
            if suite == REFVIE:
                return "background" if category == "background_change" else "subject"
            return category
    return "subject" if suite == REFVIE else "local_change"


def check_category(suite: str, category: str) -> str | None:
    """None if valid, else a one-line reason."""
    if suite == IMGEDIT:
        if _IMGEDIT_CATEGORY.fullmatch(category or ""):
            return None
        return f"imgedit edit_type {category!r} is not a lower-case name (e.g. add, remove, style)"
    if suite not in CATEGORIES:
        return f"unknown suite {suite!r} (expected one of {', '.join(SUITE_KINDS)})"
    if category not in CATEGORIES[suite]:
        return f"unknown {suite} category {category!r} (expected one of {', '.join(CATEGORIES[suite])})"
    return None
