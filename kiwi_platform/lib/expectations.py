"""Declarative data-quality checks for pandas tables, run with Great Expectations 1.x.

Asset checks describe what a table must satisfy with a few ``Expect`` values
(``not_null("pair_id")``, ``greater_than("fps", 0)`` ...) and call
``validate_dataframe`` on every materialization. The GX machinery (ephemeral
context, pandas data source, suite, validation definition) stays in this module,
so asset code never touches the GX API and GX's version churn is handled in one
place.

Great Expectations takes about two seconds to import, so it is imported lazily
inside ``validate_dataframe``: importing this module (for instance while Dagster
loads ``Definitions``) stays cheap.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MAX_EXAMPLES = 5

# Our short kinds -> GX 1.x expectation class names. Any other kind is taken as a
# GX class name itself (e.g. "ExpectColumnValuesToMatchRegex"), an escape hatch
# for checks the helpers below do not cover.
_GX_CLASS_BY_KIND: dict[str, str] = {
    "columns_present": "ExpectTableColumnsToMatchSet",
    "not_null": "ExpectColumnValuesToNotBeNull",
    "unique": "ExpectColumnValuesToBeUnique",
    "between": "ExpectColumnValuesToBeBetween",
    "greater_than": "ExpectColumnValuesToBeBetween",
    "non_blank": "ExpectColumnValuesToNotMatchRegex",
    "values_in_set": "ExpectColumnValuesToBeInSet",
}

_BLANK_REGEX = r"^\s*$"


@dataclass(frozen=True)
class Expect:
    """One expectation: a kind, the column it looks at, and the GX keyword arguments.

    ``kwargs`` are passed to the GX expectation class as they are (``column`` is
    added from ``column``), so a spec reads the same as the GX docs.
    """

    kind: str
    column: str | None = None
    kwargs: dict = field(default_factory=dict)
    description: str = ""


def columns_present(columns: Iterable[str]) -> Expect:
    """The table has at least these columns (extra columns are allowed)."""
    cols = list(columns)
    return Expect(
        kind="columns_present",
        kwargs={"column_set": cols, "exact_match": False},
        description=f"columns present: {', '.join(cols)}",
    )


def not_null(column: str) -> Expect:
    """No null / NaN / None value in ``column``."""
    return Expect("not_null", column, {}, f"{column} is never null")


def unique(column: str) -> Expect:
    """No value occurs twice in ``column`` (GX counts every row of a duplicated value)."""
    return Expect("unique", column, {}, f"{column} is unique")


def between(column: str, min_value: float | None, max_value: float | None) -> Expect:
    """Every non-null value lies in ``[min_value, max_value]``; ``None`` leaves that side open."""
    low = "-inf" if min_value is None else min_value
    high = "inf" if max_value is None else max_value
    return Expect(
        "between",
        column,
        {"min_value": min_value, "max_value": max_value},
        f"{column} in [{low}, {high}]",
    )


def greater_than(column: str, value: float) -> Expect:
    """Every non-null value is strictly greater than ``value`` (e.g. fps > 0)."""
    return Expect(
        "greater_than",
        column,
        {"min_value": value, "strict_min": True},
        f"{column} > {value}",
    )


def non_blank(column: str) -> Expect:
    """No empty or whitespace-only string in ``column`` (nulls are left to ``not_null``)."""
    return Expect("non_blank", column, {"regex": _BLANK_REGEX}, f"{column} is never blank")


def values_in_set(column: str, values: Iterable[Any]) -> Expect:
    """Every non-null value of ``column`` is one of ``values``."""
    vals = list(values)
    shown = ", ".join(map(str, vals))
    return Expect("values_in_set", column, {"value_set": vals}, f"{column} in {{{shown}}}")


@dataclass
class ExpectationOutcome:
    """What one expectation found, in plain Python values (safe for Dagster metadata).

    ``unexpected_count`` is None when GX could not evaluate the expectation; ``error``
    then says why (most often: the column is missing).
    """

    description: str
    kind: str
    column: str | None
    success: bool
    unexpected_count: int | None
    unexpected_examples: list[Any] = field(default_factory=list)
    error: str | None = None


@dataclass
class ValidationOutcome:
    """All outcomes of one ``validate_dataframe`` call, in the order the specs were given."""

    success: bool
    results: list[ExpectationOutcome]
    suite_name: str = ""
    row_count: int = 0

    def failed(self) -> list[ExpectationOutcome]:
        """The outcomes that did not pass."""
        return [r for r in self.results if not r.success]

    def to_markdown(self) -> str:
        """A small table for ``dg.MetadataValue.md``: one row per expectation."""
        lines = [
            "| ok | expectation | column | unexpected | examples |",
            "|---|---|---|---|---|",
        ]
        for r in self.results:
            count = "—" if r.unexpected_count is None else str(r.unexpected_count)
            detail = r.error or ", ".join(repr(v) for v in r.unexpected_examples)
            lines.append(
                f"| {'✅' if r.success else '❌'} | {_cell(r.description)} | "
                f"{_cell(r.column or '')} | {count} | {_cell(detail)} |"
            )
        return "\n".join(lines)


def validate_dataframe(df: pd.DataFrame, expectations: Sequence[Expect], suite_name: str) -> ValidationOutcome:
    """Run ``expectations`` on ``df`` with an ephemeral GX context and summarise the result.

    A missing column fails the expectations that need it (with ``error`` set), it does
    not raise. An unknown ``kind`` raises ``ValueError`` before anything runs.
    """
    gx = _import_gx()
    gx_expectations = [_to_gx(gx, spec, i) for i, spec in enumerate(expectations)]
    # The context must exist before the suite: GX resolves "the current project" globally.
    context = gx.get_context(mode="ephemeral")
    _quiet_context(context)
    suite = gx.ExpectationSuite(name=suite_name)
    for gx_expectation in gx_expectations:
        suite.add_expectation(gx_expectation)
    batch_definition = (
        context.data_sources.add_pandas("kiwi_pandas")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("whole_dataframe")
    )
    suite = context.suites.add(suite)
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
    )
    result = validation.run(
        batch_parameters={"dataframe": df},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES},
    )

    by_index: dict[int, ExpectationOutcome] = {}
    for er in result.results:
        index = int(er.expectation_config.meta["kiwi_index"])
        by_index[index] = _outcome(expectations[index], er, df.columns)
    outcomes = [by_index[i] for i in range(len(expectations))]
    return ValidationOutcome(
        success=all(o.success for o in outcomes),
        results=outcomes,
        suite_name=suite_name,
        row_count=len(df),
    )


def _import_gx() -> Any:
    """Import GX with analytics off and its chatty INFO logs muted (unless already configured).

    Kept in a function so importing this module stays light.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    gx_logger = logging.getLogger("great_expectations")
    mute = gx_logger.level == logging.NOTSET
    if mute:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations as gx

    if mute:  # this GX module pins its own logger to INFO; let it inherit WARNING
        logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.NOTSET)
    return gx


def _quiet_context(context: Any) -> None:
    """Turn off the 'Calculating Metrics' tqdm bars GX prints on every run."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)


def _to_gx(gx: Any, spec: Expect, index: int) -> Any:
    """Build the GX expectation for ``spec``; ``meta`` carries our index back from GX."""
    class_name = _GX_CLASS_BY_KIND.get(spec.kind, spec.kind)
    cls = getattr(gx.expectations, class_name, None)
    if cls is None:
        known = ", ".join(sorted(_GX_CLASS_BY_KIND))
        raise ValueError(f"unknown expectation kind {spec.kind!r} (use one of {known} or a GX class name)")
    kwargs = dict(spec.kwargs)
    if spec.column is not None:
        kwargs["column"] = spec.column
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return cls(**kwargs, meta={"kiwi_index": index}, description=spec.description or None)


def _outcome(spec: Expect, er: Any, columns: Iterable[Any]) -> ExpectationOutcome:
    """Translate one GX ExpectationValidationResult into an ExpectationOutcome."""
    res: dict = er.result or {}
    error = _exception_message(er.exception_info)
    description = spec.description or spec.kind
    count: int | None
    examples: list[Any]
    if "details" in res and "mismatched" in (res.get("details") or {}):
        missing = list((res["details"]["mismatched"] or {}).get("missing") or [])
        count, examples = len(missing), missing
    elif "unexpected_count" in res:
        count = int(res["unexpected_count"])
        examples = list(res.get("partial_unexpected_list") or [])
    elif error is None and er.success is not None:
        count, examples = (0 if er.success else 1), []
    else:
        count, examples = None, []
    if error is not None and spec.column is not None and spec.column not in set(columns):
        error = f"column {spec.column!r} is missing"
    return ExpectationOutcome(
        description=description,
        kind=spec.kind,
        column=spec.column,
        success=bool(er.success) and error is None,
        unexpected_count=count,
        unexpected_examples=[_plain(v) for v in examples[:MAX_EXAMPLES]],
        error=error,
    )


def _exception_message(info: Any) -> str | None:
    """First raised exception message in GX's exception_info (flat or keyed by metric)."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    for value in info.values():
        message = _exception_message(value)
        if message:
            return message
    return None


def _plain(value: Any) -> Any:
    """numpy scalars -> Python, NaN -> None, so examples serialise cleanly."""
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _cell(text: str) -> str:
    """Make ``text`` safe inside one markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")
