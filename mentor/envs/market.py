"""Market data for the trading env (issue 18): bars of one instrument, where they come from, and
several instruments on common dates.

**Sources** (``load_market``'s ``spec``, as an experiment's ``env.kwargs.data`` writes it):

- ``None`` or ``{synthetic: BARS}``: a seeded synthetic series (``MarketData.synthetic``);
- ``googl``: Alphabet's daily bars from 2009-05-22 to 2018-08-29 (2,335 bars), the CSV that the
  ``gym-anytrading`` package (MIT licence) installs; mentor reads the file from the installed
  distribution without importing the package (extra ``mentor[trading]``; no network at run time);
- a path to a CSV or Parquet file with a header (date, open, high, low, close, volume), or
  ``{path: ..., columns: {close: Adj Close, ...}, name: ...}`` when the file names its columns
  otherwise;
- a list of those: several instruments, kept on the dates they all have (``align``).

Every loader refuses a missing column, a date not after the one before, and a missing or
non-positive price, naming the row and column (``ConfigError``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mentor.errors import ConfigError

COLUMNS = ("date", "open", "high", "low", "close", "volume")
SHIPPED = {"googl": ("gym-anytrading", "gym_anytrading/datasets/data/STOCKS_GOOGL.csv")}


@dataclass
class MarketData:
    """Bars of one instrument, oldest first: dates and OHLCV arrays of one length."""

    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    name: str = ""

    def __len__(self) -> int:
        return len(self.close)

    @classmethod
    def from_columns(
        cls, source: str, values: dict[str, list[Any]], names: dict[str, str], first_row: int
    ) -> MarketData:
        """Checked bars from raw columns (``values`` by the file's names); ``first_row`` is the
        number a user sees for the first bar (2 in a CSV with a header line)."""
        dates = np.array([str(v) for v in values[names["date"]]], dtype="datetime64[ns]")
        arrays = {}
        for name in COLUMNS[1:]:
            raw = values[names[name]]
            column = np.array([_number(v) for v in raw], dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(column) | (column <= 0 if name != "volume"
                                                          else column < 0))  # fmt: skip
            if len(bad):
                raise ConfigError(f"{source}: row {bad[0] + first_row} has {names[name]} "
                                  f"'{raw[bad[0]]}': prices must be numbers above 0, volumes "
                                  "numbers of at least 0")  # fmt: skip
            arrays[name] = column
        backwards = np.flatnonzero(np.diff(dates) <= np.timedelta64(0, "ns"))
        if len(backwards):
            i = backwards[0] + 1
            raise ConfigError(f"{source}: row {i + first_row} has date {dates[i]}, not after the "
                              f"row before's {dates[i - 1]}: dates must increase")  # fmt: skip
        return cls(dates, **arrays, name=Path(source).stem)

    @classmethod
    def from_csv(cls, path: str | Path, columns: dict[str, str] | None = None) -> MarketData:
        """A CSV with a header; ``columns`` maps mentor's names (date, open, ...) to the file's."""
        import csv

        names = _names(columns)
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            _require(str(path), names, reader.fieldnames or [])
            rows = list(reader)
        values = {theirs: [row[theirs] for row in rows] for theirs in names.values()}
        return cls.from_columns(str(path), values, names, first_row=2)

    @classmethod
    def from_parquet(cls, path: str | Path, columns: dict[str, str] | None = None) -> MarketData:
        """A Parquet table (needs pyarrow: ``mentor[data]``); rows are numbered from 1."""
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover - pyarrow is in the data extra
            raise ConfigError(f"{path}: reading Parquet needs pyarrow: pip install "
                              "'mentor[data]'") from exc  # fmt: skip
        names = _names(columns)
        table = pq.read_table(path)
        _require(str(path), names, table.column_names)
        values = {theirs: table.column(theirs).to_pylist() for theirs in names.values()}
        return cls.from_columns(str(path), values, names, first_row=1)

    @classmethod
    def shipped(cls, name: str) -> MarketData:
        """A real series read from an installed package's files (module docstring)."""
        from importlib.metadata import PackageNotFoundError, distribution

        package, file = SHIPPED[name]
        try:
            path = Path(str(distribution(package).locate_file(file)))
        except PackageNotFoundError:
            path = None
        if path is None or not path.is_file():
            raise ConfigError(f"data '{name}' is read from the package {package}, which is not "
                              "installed: pip install 'mentor[trading]'")  # fmt: skip
        data = cls.from_csv(path, {"date": "Date", "open": "Open", "high": "High", "low": "Low",
                                   "close": "Close", "volume": "Volume"})  # fmt: skip
        return replace(data, name=name)

    @classmethod
    def synthetic(cls, bars: int, seed: int, drift: float = 0.0002) -> MarketData:
        """A seeded series for tests and a first run: log returns with two volatility regimes
        (calm 1% a bar, turbulent 3%, switching with probability 2% a bar), volatility
        clustering (GARCH(1,1)-like), and intraday open/high/low around the closes."""
        rng = np.random.default_rng(seed)
        regime, variance = 0, 0.01**2
        log_returns = np.empty(bars)
        for t in range(bars):
            if rng.random() < 0.02:
                regime = 1 - regime
            base = (0.01, 0.03)[regime] ** 2
            shock = log_returns[t - 1] ** 2 if t else base
            variance = 0.05 * base + 0.1 * shock + 0.85 * variance
            log_returns[t] = drift + math.sqrt(variance) * rng.standard_normal()
        close = 100.0 * np.exp(np.cumsum(log_returns))
        previous = np.concatenate([[100.0], close[:-1]])
        gap = np.exp(0.2 * log_returns * rng.standard_normal(bars))
        open_ = previous * gap
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.005, bars)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.005, bars)))
        volume = np.exp(rng.normal(12, 0.3, bars) + 20 * np.abs(log_returns))
        dates = np.datetime64("2000-01-03") + np.arange(bars).astype("timedelta64[D]")
        return cls(dates, open_, high, low, close, volume, name=f"synthetic-{seed}")

    def rows(self, keep: np.ndarray) -> MarketData:
        """The bars ``keep`` selects (a boolean mask or indices)."""
        return MarketData(self.dates[keep], self.open[keep], self.high[keep], self.low[keep],
                          self.close[keep], self.volume[keep], self.name)  # fmt: skip


def _names(columns: dict[str, str] | None) -> dict[str, str]:
    unknown = sorted(set(columns or {}) - set(COLUMNS))
    if unknown:
        raise ConfigError(f"columns: {', '.join(unknown)} is not one of mentor's columns "
                          f"({', '.join(COLUMNS)}); map those to the file's names")  # fmt: skip
    return {name: (columns or {}).get(name, name) for name in COLUMNS}


def _require(source: str, names: dict[str, str], header: list[str]) -> None:
    missing = [f"{mine} (as '{theirs}')" if mine != theirs else mine
               for mine, theirs in names.items() if theirs not in header]  # fmt: skip
    if missing:
        raise ConfigError(f"{source}: no column {', '.join(missing)}; the file has "
                          f"{', '.join(header) or 'no header'}")  # fmt: skip


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def align(datas: list[MarketData]) -> list[MarketData]:
    """The instruments on the dates all of them have, in order; ``ConfigError`` when fewer
    than 2 dates are common."""
    common = datas[0].dates
    for data in datas[1:]:
        common = np.intersect1d(common, data.dates)
    if len(common) < 2:
        names = ", ".join(d.name or str(i) for i, d in enumerate(datas))
        raise ConfigError(f"data: the instruments {names} share {len(common)} dates; several "
                          "instruments trade on the dates they all have")  # fmt: skip
    return [d.rows(np.isin(d.dates, common)) for d in datas]


def load_market(spec: Any = None, seed: int = 0) -> list[MarketData]:
    """The instruments ``spec`` names (module docstring), aligned on common dates."""
    if isinstance(spec, list | tuple) and spec:
        return align([_one(s, seed) for s in spec])
    return [_one(spec, seed)]


def _one(spec: Any, seed: int) -> MarketData:
    if spec is None:
        return MarketData.synthetic(1000, seed)
    if isinstance(spec, MarketData):
        return spec
    if isinstance(spec, str) and spec in SHIPPED:
        return MarketData.shipped(spec)
    if isinstance(spec, dict) and set(spec) == {"synthetic"}:
        return MarketData.synthetic(int(spec["synthetic"]), seed)
    if isinstance(spec, str):
        spec = {"path": spec}
    if isinstance(spec, dict) and "path" in spec and set(spec) <= {"path", "columns", "name"}:
        path = Path(spec["path"])
        if not path.is_file():
            raise ConfigError(f"data: no file {path}")
        read = (
            MarketData.from_parquet if path.suffix in (".parquet", ".pq") else MarketData.from_csv
        )
        data = read(path, spec.get("columns"))
        return replace(data, name=spec.get("name") or data.name)
    raise ConfigError(
        f"data: {spec!r} names no market data; give a CSV or Parquet path, {{path: ..., columns: "
        f"{{...}}, name: ...}}, {{synthetic: BARS}}, one of {', '.join(SHIPPED)}, or a list of "
        "those for several instruments"
    )
