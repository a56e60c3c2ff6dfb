"""Tables of logged decisions (CSV or Parquet), one row per decision, as a ``Dataset``.

The data section names the columns (``mentor dataset info`` takes the same as options):

    observation_columns   the features, in order: the observation is a float32 vector of them,
                          in ``Box(-inf, inf, (k,), float32)``, or in the env's Box when the
                          env's observation space is given and has k entries
    action_column         the decision: integers make a ``Discrete(max + 1)`` action (with a
                          negative start when there are negative labels), decimals a
                          ``Box(-inf, inf, (1,), float32)``; when the env's action space is
                          given, the actions are read in it and must lie inside it
    reward_column         optional; 0 when absent
    episode_column        optional; consecutive rows with the same value are one episode, whose
                          last row is marked truncated (a table does not say why it ended).
                          Without it every row is an episode of one decision.

A table has no observation after an episode's last decision: the dataset's
``final_observations`` is None. CSV is read with the standard library (a header row, then one
row per decision), Parquet with pyarrow. Every problem is a ``DatasetError`` on one line: a
missing file, an empty table, unknown columns (the available ones listed), a value that is not a
number (its column, row and text).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from mentor.data.dataset import Dataset
from mentor.errors import DatasetError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")


class _Columns:
    """The table's columns by name, as read: strings (CSV) or Arrow arrays (Parquet)."""

    def __init__(self, names: list[str], rows: int, source: str, get: Any, integral: Any) -> None:
        self.names, self.rows, self.source = names, rows, source
        self._get, self._integral = get, integral

    def raw(self, name: str) -> list[Any]:
        return self._get(name)

    def is_integral(self, name: str) -> bool:
        return self._integral(name)

    def numbers(self, name: str) -> np.ndarray:
        """The column as float64; a DatasetError naming the first value that is not a number."""
        values = self.raw(name)
        try:
            out = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        except (ValueError, TypeError):
            out = None
        if out is not None and np.all(np.isfinite(out)):
            return out
        for row, value in enumerate(values, start=1):
            try:
                number = float(value)
            except (ValueError, TypeError):
                number = np.nan
            if not np.isfinite(number):
                raise DatasetError(
                    f"{self.source}: column '{name}', row {row}: {value!r} is not a finite number"
                )
        raise AssertionError("unreachable")  # pragma: no cover


def read_table(
    path: str | Path,
    observation_columns: list[str],
    action_column: str | None,
    reward_column: str | None = None,
    episode_column: str | None = None,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
) -> Dataset:
    """A ``Dataset`` from a .csv or .parquet table of decisions."""
    path = Path(path)
    source = f"table '{path}'"
    if not observation_columns or not action_column:
        raise DatasetError(
            f"{source}: name its columns: data.observation_columns (the features) and "
            "data.action_column (the decision); `mentor dataset info` takes --obs-columns and "
            "--action-column"
        )
    if not path.is_file():
        raise DatasetError(f"{source} does not exist")
    columns = (
        _read_parquet(path, source) if path.suffix.lower() != ".csv" else _read_csv(path, source)
    )
    wanted = [*observation_columns, action_column, reward_column, episode_column]
    missing = [c for c in dict.fromkeys(wanted) if c is not None and c not in columns.names]
    if missing:
        raise DatasetError(
            f"{source} has no column {', '.join(repr(c) for c in missing)}; its columns: "
            f"{', '.join(columns.names)}"
        )
    if columns.rows == 0:
        raise DatasetError(f"{source} is empty: it has a header but no rows")

    features = np.stack([columns.numbers(c) for c in observation_columns], axis=1)
    observations, obs_space = _observations(features, observation_space)
    actions, act_space = _actions(columns, action_column, action_space, source)
    rewards = (
        columns.numbers(reward_column) if reward_column else np.zeros(columns.rows, np.float64)
    )
    starts = _episode_starts(columns, episode_column, source)
    truncations = np.zeros(columns.rows, dtype=bool)
    truncations[np.append(starts[1:], columns.rows) - 1] = True
    return Dataset(
        observation_space=obs_space,
        action_space=act_space,
        observations=observations,
        actions=actions,
        rewards=rewards,
        terminations=np.zeros(columns.rows, dtype=bool),
        truncations=truncations,
        episode_starts=starts,
        final_observations=None,
        source=source,
    )


# --- reading the file ----------------------------------------------------------------------------


def _read_csv(path: Path, source: str) -> _Columns:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise DatasetError(f"{source} is empty: it has no header and no rows")
    header = [name.strip() for name in rows[0]]
    body = rows[1:]
    for number, row in enumerate(body, start=1):
        if len(row) != len(header):
            raise DatasetError(
                f"{source}: row {number} has {len(row)} fields, the header {len(header)}"
            )
    index = {name: i for i, name in enumerate(header)}

    def get(name: str) -> list[str]:
        return [row[index[name]].strip() for row in body]

    def integral(name: str) -> bool:
        return all(_INTEGER.match(value) for value in get(name))

    return _Columns(header, len(body), source, get, integral)


def _read_parquet(path: Path, source: str) -> _Columns:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(
            f"{source}: reading Parquet needs the package pyarrow: pip install 'mentor[data]'"
        ) from None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{source} is not a readable Parquet file ({exc})") from None

    def get(name: str) -> list[Any]:
        return table.column(name).to_pylist()

    def integral(name: str) -> bool:
        kind = table.schema.field(name).type
        return pa.types.is_integer(kind) or pa.types.is_boolean(kind)

    return _Columns(list(table.column_names), table.num_rows, source, get, integral)


# --- columns to the dataset's arrays -------------------------------------------------------------


def _observations(
    features: np.ndarray, space: spaces.Space | None
) -> tuple[np.ndarray, spaces.Space]:
    """The features in the env's Box when its size fits, else in an unbounded float32 Box."""
    k = features.shape[1]
    if isinstance(space, spaces.Box) and int(np.prod(space.shape)) == k:
        return features.reshape(len(features), *space.shape).astype(space.dtype), space
    return features.astype(np.float32), spaces.Box(-np.inf, np.inf, (k,), np.float32)


def _actions(
    columns: _Columns, name: str, space: spaces.Space | None, source: str
) -> tuple[np.ndarray, spaces.Space]:
    values = columns.numbers(name)
    integral = columns.is_integral(name)
    if isinstance(space, spaces.Discrete):
        low, high = int(space.start), int(space.start) + int(space.n) - 1
        bad = np.flatnonzero((values != np.round(values)) | (values < low) | (values > high))
        if len(bad):
            row = int(bad[0])
            raise DatasetError(
                f"{source}: column '{name}', row {row + 1}: {columns.raw(name)[row]!r} is not an "
                f"action of the env's space {space} (integers {low} to {high})"
            )
        return values.astype(np.int64), space
    if isinstance(space, spaces.Box) and int(np.prod(space.shape)) == 1:
        actions = values.reshape(len(values), *space.shape).astype(space.dtype)
        outside = np.flatnonzero(
            (actions.reshape(len(actions)) < space.low.reshape(-1))
            | (actions.reshape(len(actions)) > space.high.reshape(-1))
        )
        if len(outside):
            row = int(outside[0])
            raise DatasetError(
                f"{source}: column '{name}', row {row + 1}: {columns.raw(name)[row]!r} is outside "
                f"the env's action space {space}"
            )
        return actions, space
    if integral:
        actions = values.astype(np.int64)
        start = min(0, int(actions.min()))
        return actions, spaces.Discrete(int(actions.max()) - start + 1, start=start)
    return values.astype(np.float32).reshape(-1, 1), spaces.Box(-np.inf, np.inf, (1,), np.float32)


def _episode_starts(columns: _Columns, name: str | None, source: str) -> np.ndarray:
    if name is None:
        return np.arange(columns.rows, dtype=np.int64)
    values = [str(v) for v in columns.raw(name)]
    starts, seen = [0], {values[0]}
    for row in range(1, len(values)):
        if values[row] != values[row - 1]:
            if values[row] in seen:
                raise DatasetError(
                    f"{source}: column '{name}', row {row + 1}: episode {values[row]!r} "
                    "continues after other episodes; the rows of an episode must be consecutive"
                )
            seen.add(values[row])
            starts.append(row)
    return np.array(starts, dtype=np.int64)
