"""DataFrame rows in, DataFrame out, without a Python dict per row of the batch.

Why: the whole batch as dicts (`df.to_dict("records")`) is about 5 KB of Python objects per row,
three times the frame's own size, and a stage used to hold that, its row function's outputs and
the result table at once; at 10,000 pairs that alone is ~100 MB that grows with the batch. A stage
instead reads its input through `TableRows` (a window of dicts at a time, in the order the engine
asks for them), keeps only the columns it adds per row, and builds its table with `extend_frame`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd


class TableRows(Sequence):
    """A DataFrame's rows as record dicts, made `window` rows at a time as they are read.

    The engine reads rows in order, so only one window of dicts is alive. `make(index, record)`
    turns a record into the row the stage's function takes. Any index works (it rebuilds that
    index's window); a slice is a list.
    """

    def __init__(self, df: Any, make: Callable[[int, dict], Any] | None = None, window: int = 256) -> None:
        self._df, self._make, self._window = df, make, max(1, window)
        self._start, self._rows = -1, []

    def __len__(self) -> int:
        return len(self._df)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = index - index % self._window
        if start != self._start:
            self._rows, self._start = [], start  # the previous window goes before the next is made
            records = self._df.iloc[start : start + self._window].to_dict("records")
            make = self._make
            self._rows = [make(start + i, r) for i, r in enumerate(records)] if make else records
        return self._rows[index - start]


def extend_frame(base: pd.DataFrame, added: dict[str, list], keep: Sequence[int] | None = None) -> pd.DataFrame:
    """`base`'s rows `keep` (default: all), in that order, with the `added` columns (one value per kept
    row) after its own.

    The same frame, and parquet bytes, as building it from one dict per row (`{**record, **added}`):
    the kept columns keep their dtypes, each added column's dtype is inferred from its values, and
    no rows gives every column as object, as a frame of no dicts has.
    """
    columns = list(base.columns) + list(added)
    rows = len(base) if keep is None else len(keep)
    if not rows:
        return pd.DataFrame([], columns=columns)
    table = (base if keep is None else base.iloc[list(keep)]).reset_index(drop=True).copy()
    for column, values in added.items():
        table[column] = pd.Series(values, dtype=object).infer_objects()
    return table[columns]
