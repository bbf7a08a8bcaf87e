"""The DuckDB type of each polars type behind the empty views' typed nulls (`duckdb_views.sql_type`)."""
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import duckdb
import polars as pl
import pytest

from flowcast.store.contract import empty_forecasts, empty_realized
from flowcast.store.duckdb_views import _nulls, sql_type


@pytest.mark.parametrize(("dtype", "value"), [
    (pl.Utf8, "a"), (pl.Categorical, "a"), (pl.Binary, b"a"), (pl.Boolean, True), (pl.Int8, 1), (pl.Int16, 1),
    (pl.Int32, 1), (pl.Int64, 1), (pl.UInt8, 1), (pl.UInt16, 1), (pl.UInt32, 1), (pl.UInt64, 1), (pl.Float32, 1.5),
    (pl.Float64, 1.5), (pl.Date, date(2020, 1, 1)), (pl.Time, time(1)), (pl.Duration("us"), timedelta(1)),
    (pl.Datetime("us"), datetime(2020, 1, 1)), (pl.Datetime("ns"), datetime(2020, 1, 1)),
    (pl.Datetime("ms"), datetime(2020, 1, 1)), (pl.Datetime("us", "UTC"), datetime(2020, 1, 1)),
    (pl.Decimal(10, 2), Decimal("1.50")),
])
def test_the_sql_type_is_the_one_duckdb_reads_from_the_parquet_file(tmp_path, dtype, value):
    """The store declared 7 types in a table, and a column of any other type failed the views with a bare KeyError;
    each polars type maps to the type DuckDB reads from the Parquet file polars writes."""
    path = tmp_path / "one.parquet"
    pl.DataFrame({"c": pl.Series([value], dtype=dtype)}).write_parquet(path)
    read = duckdb.sql(f"DESCRIBE SELECT * FROM '{path}'").fetchall()[0][1]
    made = duckdb.sql(f"DESCRIBE SELECT {_nulls({'c': dtype})}").fetchall()[0][1]
    assert made == read, (sql_type("c", dtype), read)


def test_every_store_column_has_an_sql_type():
    for schema in (empty_forecasts(["q0.1"]).schema, empty_realized().schema):
        assert all(sql_type(c, t) for c, t in schema.items())


@pytest.mark.parametrize("dtype", [pl.List(pl.Utf8), pl.Struct({"a": pl.Int64}), pl.Object])
def test_a_type_without_an_sql_type_names_the_column_and_the_type(dtype):
    with pytest.raises(TypeError, match=r"store column 'tags' has the polars type (List|Struct|Object)"):
        _nulls({"y_hat": pl.Float64, "tags": dtype})
