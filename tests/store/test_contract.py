"""The publishing contract and the content hash (every store applies them before writing)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from publisher import make_forecast
from store_helpers import AS_OF, DS, H, N, publish, variant_of

from flowcast.columns import FORECAST_COLUMNS, REALIZED_COLUMNS
from flowcast.errors import PublishError
from flowcast.store import EmbeddedStore, ForecastContractError, content_hash, value_columns


def test_content_hash_is_pinned_and_ignores_run_and_row_order():
    f = pl.DataFrame({
        "as_of": [datetime(2024, 1, 1)] * 2, "unique_id": ["a", "b"], "ds": [datetime(2024, 1, 2)] * 2,
        "step": pl.Series([1, 1], dtype=pl.Int32), "model": ["lstm"] * 2,
        "model_version": pl.Series([None, None], dtype=pl.Utf8), "y_hat": [1.5, -2.0], "run_id": ["r", "r"],
        "created_at": [datetime(2024, 1, 1)] * 2,
    })
    # pinned: a change of this value means every published key changes hash (say so in the changelog)
    assert content_hash(f) == "861372d6571fad8ff45bdbe7ebd3b2ef7058fa50f13f1c914b9605445794d708"
    assert content_hash(f.reverse().with_columns(pl.lit("other").alias("run_id"))) == content_hash(f)
    assert content_hash(f.with_columns(pl.lit(1.5000001).alias("y_hat"))) != content_hash(f)
    assert content_hash(f.with_columns(pl.lit("").alias("model_version"))) != content_hash(f)  # null != ""
    with_ds = f.with_columns(pl.lit("a").alias("dataset"))  # the dataset is content: same rows, other key
    assert content_hash(with_ds) != content_hash(f.with_columns(pl.lit("b").alias("dataset")))


def test_value_columns_sit_after_y_hat_in_probability_order():
    cols = ["y_hat_hi95", "y_hat_q50", "y_hat_lo80", "y_hat_q2.5", "y_hat_hi80", "y_hat_lo95", "y_hat_q90", "other"]
    assert value_columns(cols) == ["y_hat_lo95", "y_hat_q2.5", "y_hat_lo80", "y_hat_q50", "y_hat_hi80",
                                   "y_hat_q90", "y_hat_hi95"]


def test_intervals_and_a_per_row_model_are_published(tmp_path):
    """Interval columns (TEAM.md #4) are published like quantiles, and a per-row `model` column
    (fallbacks for short series) is kept instead of the champion's name."""
    store = EmbeddedStore(tmp_path / "wh")
    fc = make_forecast(1, 4, H, AS_OF).drop("y_hat_q10", "y_hat_q90").with_columns(
        (pl.col("y_hat") - 2).alias("y_hat_lo95"), (pl.col("y_hat") - 1).alias("y_hat_lo80"),
        (pl.col("y_hat") + 1).alias("y_hat_hi80"), (pl.col("y_hat") + 2).alias("y_hat_hi95"),
        pl.when(pl.col("unique_id") == "s00003").then(pl.lit("seasonal_naive")).otherwise(pl.lit("ensemble"))
        .alias("model"),
    )
    r = publish(store, fc)
    back = store.read()
    assert back.columns == FORECAST_COLUMNS[:8] + ["y_hat_lo95", "y_hat_lo80", "y_hat_hi80", "y_hat_hi95"] + \
        FORECAST_COLUMNS[8:]
    assert dict(back.group_by("model").len().iter_rows()) == {"ensemble": 3 * H, "seasonal_naive": H}
    assert r.models == ["ensemble", "seasonal_naive"] and r.model == "lstm"  # the champion stays in the receipt
    crossed = fc.with_columns(pl.when(pl.col("step") == 2).then(pl.col("y_hat") + 5).otherwise(pl.col("y_hat_lo80"))
                              .alias("y_hat_lo80"))
    with pytest.raises(ForecastContractError, match=r"lower bound y_hat_lo80 must not exceed the upper bound y_hat_hi80: 4 rows, e.g. \(s00000, step 2\)"):
        publish(store, crossed, variant=2)
    with pytest.raises(ForecastContractError, match="model: str_length"):
        publish(store, fc.with_columns(pl.lit("").alias("model")), variant=2)



def test_interval_columns_null_in_every_row_are_not_published_but_one_null_is_refused(tmp_path):
    """A model registered without interval calibration forecasts null intervals: they are left out
    (its forecasts still publish, as the forecast flow says); a single null among values is an error."""
    store = EmbeddedStore(tmp_path / "wh")
    fc = make_forecast(1, 4, H, AS_OF).drop("y_hat_q10", "y_hat_q90").with_columns(
        pl.lit(None, dtype=pl.Float64).alias("y_hat_lo80"), pl.lit(None, dtype=pl.Float64).alias("y_hat_hi80"))
    publish(store, fc)
    assert "y_hat_lo80" not in store.read().columns and store.read().height == 4 * H
    one_null = fc.with_columns((pl.col("y_hat") - 1).alias("y_hat_lo80"), (pl.col("y_hat") + 1).alias("y_hat_hi80"))
    one_null = one_null.with_columns(pl.when(pl.col("step") == 1).then(None).otherwise(pl.col("y_hat_lo80"))
                                     .alias("y_hat_lo80"))
    with pytest.raises(ForecastContractError, match="y_hat_lo80"):
        publish(store, one_null, variant=2)


@pytest.mark.parametrize(("steps", "refused"), [
    (list(range(1, H + 1)), None),  # neither bound at any step: a series without that interval (probe45)
    ([1], "a series has both bounds y_hat_lo80 and y_hat_hi80 at every step, or neither at any"),
])
def test_a_series_without_an_interval_beside_series_with_one_is_published_only_without_it_at_every_step(
        tmp_path, steps, refused):
    """A series with no typical change to scale the widths by, and none to borrow, has no interval beside a constant
    series' zero-width one (`recipes._whole_levels`): its bounds are null at every step, and it is published so;
    a series without them at some steps only is refused, as a single null bound is."""
    store = EmbeddedStore(tmp_path / "wh")
    fc = make_forecast(1, 3, H, AS_OF).drop("y_hat_q10", "y_hat_q90").with_columns(
        (pl.col("y_hat") - 1).alias("y_hat_lo80"), (pl.col("y_hat") + 1).alias("y_hat_hi80"))
    none = (pl.col("unique_id") == "s00001") & pl.col("step").is_in(steps)
    fc = fc.with_columns(pl.when(none).then(None).otherwise(pl.col(c)).alias(c) for c in ("y_hat_lo80", "y_hat_hi80"))
    if refused is not None:
        with pytest.raises(ForecastContractError, match=refused):
            publish(store, fc)
        return
    publish(store, fc)
    back = store.read()
    assert back.filter(pl.col("unique_id") == "s00001")["y_hat_lo80"].null_count() == H
    assert back.filter(pl.col("unique_id") != "s00001")["y_hat_lo80"].null_count() == 0

@pytest.mark.parametrize("name", ["", "a/b", "../x", "with space", ".hidden", "x" * 129, None])
def test_a_dataset_name_must_be_a_usable_key(tmp_path, name):
    store = EmbeddedStore(tmp_path / "wh")
    with pytest.raises(ForecastContractError, match="is not usable as a store key"):
        publish(store, make_forecast(1, 2, H, AS_OF), dataset=name)
    assert not (tmp_path / "wh" / "forecasts").exists()


def test_model_version_may_be_none_for_a_baseline(tmp_path):
    store = EmbeddedStore(tmp_path / "wh")
    fc = make_forecast(1, 3, H, AS_OF).drop("y_hat_q10", "y_hat_q90")
    r = store.publish(fc, dataset=DS, as_of=AS_OF, model="seasonal_naive", model_version=None, run_id="r",
                      created_at=AS_OF)
    back = store.read()
    assert back["model_version"].null_count() == back.height and r.model_version is None
    assert "y_hat_q10" not in back.columns  # value columns absent from every row are left out


def _bad(kind: str) -> tuple[pl.DataFrame, dict, str]:
    fc = make_forecast(2, N, H, AS_OF)
    nan_at = lambda col, v: fc.with_columns(
        pl.when((pl.col("unique_id") == "s00004") & (pl.col("step") == 3)).then(v).otherwise(pl.col(col)).alias(col))
    ids = fc["unique_id"].unique().to_list()
    return {
        "empty": (fc.head(0), {}, "refusing to publish an empty forecast"),
        "nan": (nan_at("y_hat", float("nan")), {}, r"y_hat: must be a finite number .* \(s00004, step 3\)=nan"),
        "inf": (nan_at("y_hat", float("inf")), {}, r"\(s00004, step 3\)=inf"),
        "null": (nan_at("y_hat", None), {}, r"\(s00004, step 3\)=None"),
        "nan_quantile": (nan_at("y_hat_q90", float("nan")), {}, r"y_hat_q90: must be a finite number"),
        "duplicate": (pl.concat([fc, fc.head(1)]), {}, r"duplicate \(unique_id, step\).*s00000, step 1"),
        "missing_step": (fc.filter(~((pl.col("unique_id") == "s00009") & (pl.col("step") == H))), {"horizon": H},
                         r"steps 1..6 exactly once; 1 series do not, e.g. \[\('s00009', 5, 5\)\]"),
        "step_beyond_horizon": (fc, {"horizon": H - 1}, r"step: less_than_or_equal_to\(5\)"),
        "missing_series": (fc.filter(pl.col("unique_id") != "s00011"), {"expected_ids": ids},
                           r"miss 1 of 50 series: \['s00011'\]"),
        "unexpected_series": (fc, {"expected_ids": ids[1:]}, r"unexpected series"),
        "ds_not_after_last_obs": (fc, {"last_ds": pl.DataFrame({"unique_id": ["s00002"],
                                                                "last_ds": [AS_OF + timedelta(days=2)]})},
                                  r"ds must lie after the series' last observation: 2 rows, e.g. \(s00002, step 1\)"),
        "missing_column": (fc.drop("step"), {}, r"lack columns \['step'\]"),
    }[kind]


@pytest.mark.parametrize("kind", ["empty", "nan", "inf", "null", "nan_quantile", "duplicate", "missing_step",
                                  "step_beyond_horizon", "missing_series", "unexpected_series",
                                  "ds_not_after_last_obs", "missing_column"])
def test_contract_failures_block_publishing_and_keep_good_forecasts(tmp_path, kind):
    store = EmbeddedStore(tmp_path / "wh")
    good = publish(store, make_forecast(1, N, H, AS_OF))
    before = store.read()
    fc, kw, pattern = _bad(kind)
    with pytest.raises(ForecastContractError, match=pattern) as exc:
        publish(store, fc, variant=2, **kw)
    assert isinstance(exc.value, PublishError) and exc.value.exit_code == 2  # bad input: not retried
    assert store.read().equals(before)
    assert store.receipt_of(DS, AS_OF)["content_hash"] == good.content_hash
    assert not any(store.tmp_dir.iterdir())


def test_contract_failures_are_the_same_on_every_backend(backend):
    good = publish(backend.store, make_forecast(1, 5, H, AS_OF))
    with pytest.raises(ForecastContractError, match=r"y_hat: must be a finite number .* \(s00004, step 3\)=nan"):
        publish(backend.store, _bad("nan")[0], variant=2)
    assert variant_of(backend.store.read()) == {1}
    assert backend.store.receipt_of(DS, AS_OF)["content_hash"] == good.content_hash


# ---------------------------------------------------------------------- realized accuracy
def realized_frame(as_ofs: list[datetime], models=("lstm", "seasonal_naive"), steps=3, scale=1.0) -> pl.DataFrame:
    rows = [{"as_of": a, "model": m, "model_version": "lstm-v1" if m == "lstm" else None, "step": s, "n": 10 + s,
             "mae": scale * s, "mase": 0.5 * scale * s, "smape": 0.1 * s, "coverage80": 0.8, "coverage95": None,
             "mae_snaive": 2.0 * s, "mase_snaive": None, "scored_at": datetime(2024, 6, 1)} for a in as_ofs for m in models for s in range(1, steps + 1)]
    return pl.DataFrame(rows)


@pytest.mark.parametrize("change, pattern", [
    (lambda f: f.head(0), "refusing to write an empty realized-accuracy frame"),
    (lambda f: f.drop("mase"), r"missing columns \['mase'\]"),
    (lambda f: f.with_columns(pl.lit(1).alias("bias")), r"unknown columns \['bias'\]"),
    (lambda f: pl.concat([f, f.head(1)]), r"1 rows repeat a \(as_of, model, step\)|2 rows repeat"),
    (lambda f: f.with_columns(pl.lit(float("nan")).alias("mae")), "mae out of range"),
    (lambda f: f.with_columns(pl.lit(1.5).alias("coverage80")), "coverage80 out of range"),
    (lambda f: f.with_columns(pl.lit(0).alias("n")), "n out of range"),
    (lambda f: f.with_columns(pl.lit(-1.0).alias("mase_snaive")), "mase_snaive out of range"),
    (lambda f: f.with_columns(pl.lit("other").alias("dataset")), r"name other datasets: \['other'\]"),
    (lambda f: f.with_columns(pl.lit(None, dtype=pl.Utf8).alias("model")), "model is null in 6 rows"),
])
def test_bad_realized_rows_are_refused_naming_them(tmp_path, change, pattern):
    store = EmbeddedStore(tmp_path / "wh")
    with pytest.raises(ForecastContractError, match=pattern):
        store.write_realized(DS, change(realized_frame([AS_OF])))
    assert store.read_realized().height == 0 and store.read_realized().columns == REALIZED_COLUMNS
