"""Quiet schedules: when nothing new arrived since the last publish, nothing new is published."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from flowcast.ops.quiet import compare_with_last, data_fingerprint, previous_as_of

PREV = datetime(2019, 9, 1)
FP = "0123456789abcdef"


def _published(ids=("a", "b"), first=datetime(2019, 10, 1), horizon=3, version="gru-v1") -> pl.DataFrame:
    rows = [(u, datetime(first.year, first.month + s, 1), s + 1, version) for u in ids for s in range(horizon)]
    return pl.DataFrame(rows, schema={"unique_id": pl.Utf8, "ds": pl.Datetime("us"), "step": pl.Int32,
                                      "model_version": pl.Utf8}, orient="row")


def _last(**last) -> pl.DataFrame:
    return pl.DataFrame({"unique_id": list(last), "last_ds": list(last.values())},
                        schema={"unique_id": pl.Utf8, "last_ds": pl.Datetime("us")})


def _reason(previous, last, horizon=3, version="gru-v1", planned_rows=0, fingerprint=FP, recorded=FP):
    """The sentence when unchanged (None when the run publishes)."""
    quiet = compare_with_last(previous, last, freq="1mo", horizon=horizon, model_version=version,
                              previous_as_of=PREV, dataset="tiny", planned_rows=planned_rows,
                              fingerprint=fingerprint, recorded=recorded, recorded_note="no record, for the test")
    return quiet.sentence if quiet.unchanged else None


def test_same_next_periods_horizon_and_model_is_unchanged():
    reason = _reason(_published(), _last(a=datetime(2019, 9, 1), b=datetime(2019, 9, 1)))
    assert reason is not None and "no new observation of tiny since its last publish (as_of 2019-09-01" in reason
    assert "gru-v1" in reason and "2 series" in reason


def test_anything_new_publishes():
    same = {"a": datetime(2019, 9, 1), "b": datetime(2019, 9, 1)}
    assert _reason(_published(), _last(**{**same, "b": datetime(2019, 10, 1)})) is None  # a new observation
    assert _reason(_published(), _last(**same, c=datetime(2019, 9, 1))) is None  # a new series
    assert _reason(_published(), _last(a=same["a"])) is None  # a series gone
    assert _reason(_published(), _last(**same), version="gru-v2") is None  # another production model
    assert _reason(_published(), _last(**same), horizon=6) is None  # another horizon
    assert _reason(_published().clear(), _last(**same)) is None  # nothing was published
    assert _reason(_published(), _last(**same), planned_rows=6) is None  # planned covariates may have changed


def test_the_previous_publish_is_the_latest_strictly_before():
    published = [datetime(2019, 7, 1), datetime(2019, 9, 1), datetime(2019, 9, 5)]
    assert previous_as_of(published, datetime(2019, 9, 5)) == datetime(2019, 9, 1)  # not itself: a re-run replaces
    assert previous_as_of(published, datetime(2019, 9, 30)) == datetime(2019, 9, 5)
    assert previous_as_of(published, datetime(2019, 7, 1)) is None


def test_a_revised_history_with_the_same_periods_publishes_and_says_why():
    """Regression: the check compared only each series' next period, the horizon and the model: a source that
    revised values before as_of (same rows, same last ds) was 'unchanged' and its corrected forecasts were never
    published. The data's fingerprint must be the one recorded with the last publish."""
    same = _last(a=datetime(2019, 9, 1), b=datetime(2019, 9, 1))
    assert _reason(_published(), same, fingerprint="ffff000011112222") is None
    quiet = compare_with_last(_published(), same, freq="1mo", horizon=3, model_version="gru-v1", previous_as_of=PREV,
                              dataset="tiny", fingerprint="ffff000011112222", recorded=FP)
    assert not quiet.unchanged and "history it forecast from was revised" in quiet.sentence, quiet.sentence
    assert "ffff000011112222" in quiet.sentence and FP in quiet.sentence
    # a publish without a record is never taken as unchanged, and the log says why
    quiet = compare_with_last(_published(), same, freq="1mo", horizon=3, model_version="gru-v1", previous_as_of=PREV,
                              dataset="tiny", fingerprint=FP, recorded=None,
                              recorded_note="it kept no fingerprint of the observations it forecast from")
    assert not quiet.unchanged and "it kept no fingerprint" in quiet.sentence
    # and every other reason to publish is said too
    quiet = compare_with_last(_published(), _last(a=datetime(2019, 9, 1), b=datetime(2019, 10, 1)), freq="1mo",
                              horizon=3, model_version="gru-v1", previous_as_of=PREV, dataset="tiny", fingerprint=FP,
                              recorded=FP)
    assert quiet.sentence.startswith("Publishing: 1 of 2 series have new observations"), quiet.sentence


@pytest.mark.parametrize(("b_last", "says", "not_says"), [
    (datetime(2019, 10, 1), "1 of 2 series have new observations since", "withdrawn"),
    (datetime(2019, 8, 1), "1 of 2 series had their newest observation withdrawn since", "new observations"),
])
def test_a_withdrawn_newest_observation_is_not_called_new(b_last, says, not_says):
    """Regression: a corrected upload that withdrew b's newest observation (its last ds went back a month)
    was logged as '1 of 2 series have new observations'."""
    quiet = compare_with_last(_published(), _last(a=datetime(2019, 9, 1), b=b_last), freq="1mo", horizon=3,
                              model_version="gru-v1", previous_as_of=PREV, dataset="tiny", fingerprint=FP,
                              recorded=FP)
    assert not quiet.unchanged
    assert says in quiet.sentence and not_says not in quiet.sentence and "b" in quiet.sentence, quiet.sentence


def test_both_new_and_withdrawn_are_counted_apart():
    quiet = compare_with_last(_published(ids=("a", "b", "c")),
                              _last(a=datetime(2019, 9, 1), b=datetime(2019, 10, 1), c=datetime(2019, 7, 1)),
                              freq="1mo", horizon=3, model_version="gru-v1", previous_as_of=PREV, dataset="tiny",
                              fingerprint=FP, recorded=FP)
    assert "1 of 3 series have new observations" in quiet.sentence, quiet.sentence
    assert "1 of 3 series had their newest observation withdrawn" in quiet.sentence, quiet.sentence


def test_the_data_fingerprint_covers_every_value_and_not_the_row_order():
    from flowcast.data.training_data import TrainingData, TrainingMeta

    frame = pl.DataFrame({"unique_id": ["a", "a", "b", "b"],
                          "ds": [datetime(2019, 7, 1), datetime(2019, 8, 1)] * 2,
                          "y": [1.0, 2.0, 3.0, 4.0], "price": [9.0, 9.0, 5.0, 5.0]})

    def fp(f: pl.DataFrame) -> str:
        td = TrainingData(frame=f, scalers=pl.DataFrame({"unique_id": ["a", "b"]}), meta=TrainingMeta(freq="1mo", horizon=3, lookback=2, val_size=0, season_length=12))
        return data_fingerprint(td)

    base = fp(frame)
    assert fp(frame.reverse()) == base
    assert fp(frame.with_columns(pl.when(pl.int_range(4) == 0).then(1.5).otherwise(pl.col("y")).alias("y"))) != base
    assert fp(frame.with_columns(pl.when(pl.int_range(4) == 3).then(6.0).otherwise(pl.col("price")).alias("price"))) != base
    assert fp(frame.with_columns(pl.Series("ds", [datetime(2019, 6, 1), datetime(2019, 8, 1)] * 2))) != base


def test_a_source_whose_time_label_changed_is_refused_beside_its_earlier_publishes(tmp_path):
    """Regression: a dataset published from start labels and then read as hour-ending (or back) got forecasts one
    step apart under one name, and realized accuracy scored the old ones against actuals read the new way. A
    publish recorded before time labels existed (no time_label in its record) was of start labels."""
    import json

    from flowcast.config import Settings, SourceConfig
    from flowcast.errors import ConfigError
    from flowcast.ops.quiet import check_time_label, fingerprint_path

    settings = Settings(home=tmp_path)
    src = {"name": "meters", "path": "m.csv", "time_col": "t", "target_col": "y", "freq": "1h"}
    start, end = SourceConfig(**src), SourceConfig(**src, time_label="end")
    check_time_label(settings, end)  # nothing published yet
    old = fingerprint_path(tmp_path, "meters", datetime(2024, 1, 1))
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"dataset": "meters", "as_of": "2024-01-01T00:00:00", "tz": None}))
    check_time_label(settings, start)
    with pytest.raises(ConfigError, match=r"'meters' was published with time_label = 'start'.*as_of 2024-01-01,"
                                          r".*now says time_label = 'end'"):
        check_time_label(settings, end)
    newer = fingerprint_path(tmp_path, "meters", datetime(2024, 1, 2))  # the newest publish is the one that counts
    newer.write_text(json.dumps({"dataset": "meters", "as_of": "2024-01-02T00:00:00", "tz": None, "time_label": "end",
                                 "freq": "1h"}))
    check_time_label(settings, end)
    with pytest.raises(ConfigError, match="--dataset meters_start"):
        check_time_label(settings, start)


@pytest.mark.parametrize("damage", [b'{"dataset": "sales", "tz": "Eur', b"\x00\x00\x00", b"[1, 2]"])
def test_a_damaged_publish_record_is_named_with_what_is_assumed(tmp_path, caplog, damage):
    """Regression: a damaged `published/<dataset>/<as_of>.json` (cut short, overwritten) was passed over without
    a word: `flowcast forecasts --as-of DATE` read the date in another zone, the time label check used an older one."""
    from flowcast.ops.quiet import fingerprint_path, published_time_label, published_tz

    older = fingerprint_path(tmp_path, "sales", datetime(2024, 1, 1))
    older.parent.mkdir(parents=True)
    older.write_text('{"dataset": "sales", "as_of": "2024-01-01T00:00:00", "tz": "Europe/Paris", "time_label": "end"}')
    newest = fingerprint_path(tmp_path, "sales", datetime(2024, 2, 1))
    newest.write_bytes(damage)
    with caplog.at_level("WARNING", logger="flowcast.ops.quiet"):
        assert published_tz(tmp_path, "sales") == "Europe/Paris"
        assert published_time_label(tmp_path, "sales") == ("end", None, "2024-01-01T00:00:00")
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and all(f"the publish record {newest} cannot be read" in m for m in said), said
    assert "assumed the time zone of sales's next older record (UTC when none says)" in said[0]
    assert "assumed the time label of sales's next older record" in said[1]


@pytest.mark.parametrize("dataset", ["shops", "tiny"])
def test_the_last_publish_is_named_without_a_possessive(dataset):
    """ui31: "since shops's last publish" in the log and the run's state message."""
    quiet = compare_with_last(_published(), _last(a=datetime(2019, 9, 1), b=datetime(2019, 10, 1)), freq="1mo",
                              horizon=3, model_version="gru-v1", previous_as_of=PREV, dataset=dataset,
                              fingerprint=FP, recorded=FP)
    assert f"since the last publish of {dataset} (as_of 2019-09-01" in quiet.sentence, quiet.sentence
    assert "'s" not in quiet.sentence


@pytest.mark.parametrize("b_last", [datetime(2019, 9, 1), datetime(2019, 10, 1)])  # unchanged, and publishes
def test_the_last_publish_s_as_of_reads_as_the_log_s_other_instants(b_last):
    """ui42: 'since the last publish of tiny (as_of 2023-10-01T00:00:00)' and 'no new observation of tiny since its
    last publish (as_of 2019-09-01T00:00:00)', an ISO text beside the log's '2023-11-01 00:00 UTC'."""
    quiet = compare_with_last(_published(), _last(a=datetime(2019, 9, 1), b=b_last), freq="1mo", horizon=3,
                              model_version="gru-v1", previous_as_of=PREV, dataset="tiny", fingerprint=FP,
                              recorded=FP)
    assert "(as_of 2019-09-01)" in quiet.sentence and "T00:00" not in quiet.sentence, quiet.sentence


def test_an_id_holding_a_comma_is_named_as_one_series():
    """Regression (newuser43): 'Publishing: 4 of 5 series have new observations ... (e.g. new shop, north, east,
    south, west side)': the series 'north, east' read as two, 5 names for 4 series."""
    quiet = compare_with_last(_published(ids=("north, east", "south")),
                              _last(**{"north, east": datetime(2019, 10, 1), "south": datetime(2019, 10, 1)}),
                              freq="1mo", horizon=3, model_version="gru-v1", previous_as_of=PREV, dataset="tiny",
                              fingerprint=FP, recorded=FP)
    assert "2 of 2 series have new observations" in quiet.sentence, quiet.sentence
    assert "(e.g. 'north, east', south)" in quiet.sentence, quiet.sentence
    came = compare_with_last(_published(ids=("south",)), _last(**{"north, east": datetime(2019, 9, 1),
                                                                  "south": datetime(2019, 9, 1)}),
                             freq="1mo", horizon=3, model_version="gru-v1", previous_as_of=PREV, dataset="tiny",
                             fingerprint=FP, recorded=FP)
    assert "(e.g. 'north, east')" in came.sentence, came.sentence
