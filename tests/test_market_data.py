"""Market data sources (mentor/envs/market.py): files, the shipped series, several instruments."""

from __future__ import annotations

import numpy as np
import pytest

from mentor.envs.market import MarketData, align, load_market
from mentor.errors import ConfigError

CSV = "date,open,high,low,close,volume\n{}"


def write(path, rows: list[str]) -> str:
    path.write_text(CSV.format("\n".join(rows) + "\n"))
    return str(path)


def test_a_parquet_file_reads_as_its_csv_does(tmp_path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    data = MarketData.synthetic(30, seed=1)
    table = pa.table({"Day": [str(d) for d in data.dates.astype("datetime64[D]")],
                      "o": data.open, "h": data.high, "l": data.low, "c": data.close,
                      "v": data.volume})  # fmt: skip
    pq.write_table(table, tmp_path / "bars.parquet")
    columns = {"date": "Day", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}
    (read,) = load_market({"path": str(tmp_path / "bars.parquet"), "columns": columns})
    np.testing.assert_array_equal(read.close, data.close)
    np.testing.assert_array_equal(read.dates, data.dates)
    bad = table.set_column(4, "c", pa.array([*data.close[:9], -1.0, *data.close[10:]]))
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(ConfigError, match=r"row 10 has c '-1\.0'"):
        load_market({"path": str(tmp_path / "bad.parquet"), "columns": columns})


def test_the_shipped_daily_series_is_read_from_the_installed_package() -> None:
    pytest.importorskip("gym_anytrading")
    (googl,) = load_market("googl")
    assert len(googl) == 2335 and googl.name == "googl"
    assert str(googl.dates[0])[:10] == "2009-05-22" and str(googl.dates[-1])[:10] == "2018-08-29"
    assert googl.close[0] == pytest.approx(196.946945)


def test_several_instruments_trade_on_the_dates_they_all_have(tmp_path) -> None:
    a = write(tmp_path / "a.csv", ["2020-01-01,1,1,1,1,5", "2020-01-02,2,2,2,2,5",
                                   "2020-01-03,3,3,3,3,5", "2020-01-06,4,4,4,4,5"])  # fmt: skip
    b = write(tmp_path / "b.csv", ["2020-01-02,9,9,9,9,5", "2020-01-03,8,8,8,8,5",
                                   "2020-01-06,7,7,7,7,5"])  # fmt: skip
    first, second = load_market([a, {"path": b, "name": "bee"}])
    assert list(first.close) == [2, 3, 4] and list(second.close) == [9, 8, 7]
    assert (first.name, second.name) == ("a", "bee")
    c = write(tmp_path / "c.csv", ["2021-01-01,1,1,1,1,5", "2021-01-02,1,1,1,1,5"])
    with pytest.raises(ConfigError, match="share 0 dates"):
        align(load_market(a) + load_market(c))


def test_what_names_no_data_is_refused_saying_what_would(tmp_path) -> None:
    with pytest.raises(ConfigError, match="names no market data; give a CSV or Parquet path"):
        load_market({"url": "x"})
    with pytest.raises(ConfigError, match="no file"):
        load_market(str(tmp_path / "missing.csv"))
    with pytest.raises(ConfigError, match="adj_close is not one of mentor's columns"):
        load_market({"path": write(tmp_path / "a.csv", ["2020-01-01,1,1,1,1,5"]),
                     "columns": {"adj_close": "Adj Close"}})  # fmt: skip
