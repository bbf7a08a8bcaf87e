"""Prefect tasks: each wraps ONE stage function of flowcast and adds retries, caching or tags.

- I/O tasks (ingest, quarantine, publish) retry with exponential backoff; pure computation
  (preprocess, backtest, predict) does not, because running it again gives the same error.
  Validation collects the lazily scanned source, so it retries a SourceUnavailableError (an
  I/O failure) and nothing else. Reads of HTTP(S) sources also retry inside the read itself
  (`remote.read_url`), so a flaky server costs a pause, not a task retry.
- Preprocessing is cached by a key built from the source fingerprint, the as_of and the
  settings that shape the result (`preprocess_cache_key`), never by hashing frames. The cache
  records live under `settings.cache_dir/prefect`.
- Training tasks carry the tag `training`: a Prefect tag concurrency limit on it
  (`prefect concurrency-limit create training 1`) keeps two runs off one GPU. Training itself
  runs in its own process when `model.launcher = "process"` (the models' launcher), never as
  Lightning DDP inside the flow process.
- No task hashes its inputs for caching (`NO_CACHE`) except preprocessing; inputs are frames
  and models that are costly to hash and meaningless to cache on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy
from prefect.tasks import exponential_backoff

from flowcast.config import Settings, SourceConfig
from flowcast.figures import duration_text

if TYPE_CHECKING:  # the tasks' return types, for the type checker only (the modules load lazily)
    from flowcast.data.preprocess import PreprocessSummary
    from flowcast.data.sources import Ingested
    from flowcast.data.training_data import TrainingData
    from flowcast.data.validate import ValidationResult
    from flowcast.errors import AlreadyPublished, StorageError
    from flowcast.evaluation.backtest import BacktestResult
    from flowcast.models.baselines import BaselineName
    from flowcast.models.recipes import RecipeForecast
    from flowcast.models.train import ModelArtifact
    from flowcast.ops.accuracy import RealizedOutcome
    from flowcast.registry import ModelVersion
    from flowcast.store import PublishReceipt


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry I/O failures, not user errors: a missing column or a bad option fails the same way
    every time (ConfigError, DataValidationError: exit code 2), so it is not retried; nor is a lost
    lock (LockLostError: a publish refused because another writer took the registry's lock, which
    each retry rewrote the file for and was refused again); nor a PostgreSQL store's ALTER TABLE that waited
    store.pg_wait_s for the sessions holding its tables (StoreLockWaitError: a person must end them; 3 retries took
    over 3 minutes to fail with the same message); nor a write that found no room (`atomic.no_room`: a full disk,
    a quota, a file-size limit, whatever wraps it), which no retry's seconds free: a full disk's quarantine refusal
    waited through 3 retries (~14 s) to say the same."""
    from flowcast.atomic import no_room
    from flowcast.errors import FlowcastError, LockLostError, StoreLockWaitError

    try:
        state.result()
    except (LockLostError, StoreLockWaitError):
        return False
    except FlowcastError as exc:
        return exc.exit_code != 2 and not no_room(exc)
    except Exception as exc:  # noqa: BLE001 - anything else (OSError, network) may be transient
        return not no_room(exc)
    return False


def _named(fn: Callable[[dict[str, Any]], str]) -> Any:
    """A `task_run_name` callable from a function of the task's parameters; a name is a courtesy,
    so one that cannot be built falls back to the task's own name (never a failed task)."""

    def name(parameters: dict[str, Any]) -> str:
        try:
            return fn(parameters)
        except Exception:  # noqa: BLE001 - see above
            from prefect.runtime import task_run

            return str(task_run.task_name or "task")

    return name


def _model_label(key: str) -> str:
    """`gru-s0` -> `gru` (seed 0 is the only seed unless evaluation.seeds > 1); other keys as they are."""
    return key.removesuffix("-s0")


def _model_name(model: Any) -> str:
    """What a forecast task forecasts with: a version (`damped-v1`), a recipe's or artifact's name."""
    for attr in ("version", "name", "cell"):
        if isinstance(v := getattr(model, attr, None), str) and v:
            return v
    return type(model).__name__


def _publish_name(p: dict[str, Any]) -> str:
    kw = p.get("kwargs") or p
    from flowcast.timekeys import utc_text

    return f"publish {kw.get('dataset')} {utc_text(kw.get('as_of'))}"


IO_RETRIES: dict[str, Any] = {
    "retries": 3, "retry_delay_seconds": exponential_backoff(backoff_factor=2), "retry_jitter_factor": 0.5,
    "retry_condition_fn": _transient,
}
TRAINING_TAG = "training"


# ------------------------------------------------------------------------------------ I/O
@task(name="ingest", cache_policy=NO_CACHE, task_run_name="ingest {source.name}", **IO_RETRIES)
def ingest_task(source: SourceConfig, as_of: datetime | None) -> Ingested:
    """Read the source up to `as_of` (a lazy scan; errors reading files surface here)."""
    from flowcast.data.sources import ingest

    return ingest(source, as_of)


@task(name="fingerprint", cache_policy=NO_CACHE, **IO_RETRIES)
def fingerprint_task(source: SourceConfig) -> str:
    """Identity of the source's content (declaration + a digest of each file's bytes). The flows
    take it from `ingest_task`'s result instead, which digests the bytes it read."""
    from flowcast.data.remote import source_fingerprint

    return source_fingerprint(source)


@task(name="write-quarantine", cache_policy=NO_CACHE, task_run_name=_named(lambda p: f"quarantine {p['result'].report.source}"),
      **IO_RETRIES)
def quarantine_task(result: Any, directory: Path) -> Path | None:
    """Write the quarantined rows (with their reasons) to `directory/quarantine.parquet`."""
    from flowcast.data.validate import write_quarantine

    return write_quarantine(result, directory)


@task(name="publish", cache_policy=NO_CACHE, task_run_name=_named(_publish_name), **IO_RETRIES)
def publish_task(settings: Settings, forecasts: pl.DataFrame, **kwargs: Any) -> PublishReceipt | AlreadyPublished:
    """Publish the forecasts of one (dataset, as_of) atomically into the configured store
    (replacing what that key published; other datasets and as_ofs are untouched). With `if_absent` a key
    that another run published (checked under its lock) is no failure: the AlreadyPublished naming that run
    is returned, nothing was written."""
    from flowcast.errors import AlreadyPublished
    from flowcast.store import open_store

    try:
        return open_store(settings).publish(forecasts, **kwargs)
    except AlreadyPublished as held:
        return held


# ------------------------------------------------------------------------------------ data
def _unavailable(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only a source that could not be read for a transient reason (SourceUnavailableError):
    validation reads a lazily scanned source's bytes, and a bug or bad data fails the same way
    every time."""
    from flowcast.errors import SourceUnavailableError

    try:
        state.result()
    except SourceUnavailableError:
        return True
    except Exception:  # noqa: BLE001 - anything else is not retried
        return False
    return False


@task(name="validate", cache_policy=NO_CACHE, task_run_name="validate {source.name}",
      **{**IO_RETRIES, "retry_condition_fn": _unavailable})
def validate_task(ingested: Any, source: SourceConfig, settings: Settings) -> ValidationResult:
    from flowcast.data.validate import validate

    return validate(ingested, source, settings.validation)


# What validation and preprocessing make of the same input changed (a bump makes older cached records miss once):
# before 1, the key carried flags instead: short series kept (meta.min_length), covariates filled forward only;
# 1 = session 21: a series is cut after its last gap longer than max_gap instead of left out (PreprocessSummary.gap_cut),
# |y| beyond float32 is quarantined, duplicates are judged on every column, a period not over at as_of is left out
# 2 = session 22: a planned row (after as_of, kept for its future covariates) has no static: statics are those known
# at as_of
# 3 = session 23: TrainingData.static_since (when each series' static became known: a backtest cut before it
# does not see it); a cached record without it would keep the statics known only after the cut in its backtests;
# a ',' file's thousands separators ('1,234.56') and a ';' file's '1,5E+03' are read, where such rows
# were quarantined, and
# times with an offset written ' +0000' (a blank before it) or on a 12-hour clock ('2:30 PM') are read; a numeric
# static with 'NA', '3,5' (a ';' file) or '1,234.5' (a ',' file) stays a number
# 4 = session 24: a numeric static a series has none of stays null (the training mean when packed) with a
# `<col>=__missing__` indicator, where it was 0; a file's 'sep=;' line and '#' comments before its header are skipped, whole numbers with comma
# thousands ('1,234') are read where the file settles them, and two-digit years first ('24/03/01') are decided by
# the dates' spacing: rows an older version quarantined (or read day first) are read; dates written as midnight
# timestamps ('2024-01-01T00:00:00Z') keep their date under a declared tz; months by name ('Jan 2024') and
# quarters first ('Q1 2024') are read; a totals row's label is no quarantined series
# 5 = session 25: ISO 8601's '24:00' ('2024-01-01 24:00', hour-ending exports) is the next day's 00:00, where such
# rows were quarantined; ambiguous = 'infer' on a series written newest first takes its first row of a repeated hour
# for the later instant (the two values were swapped); files of a glob that each settle their own day/month order
# are read in it, where the contradiction quarantined their rows (and one settling none alone, in the order its
# dates' spacing fits, where it took the others' order); quarters '2024/Q1', '1Q2024', '1Q24', 'Q1-24' are read
# 6 = session 27: ids are Unicode-normalised (NFC): 'Café' typed with a composed and with a combining accent is one
# series, where it was two; a ';' file's numbers grouped with '.' ('1.037') are thousands where nothing else in the
# column reads as a decimal point; weekly series keep their own weekday (a second weekday's series was quarantined);
# grids of several months ('12mo', '3mo', '2q') keep each series' labelled month (fiscal years) instead of January
# and a sign set apart from its digits ('- 5', '− 5') is read, in statics too
# 7 = session 27: day/month dates whose numbers are all 12 or below ('01/04/2024'..'05/04/2024') are read in the
# order whose dates are spaced as the declared freq says, where only one is (every row was quarantined as ambiguous)
# and the report names ids equal but for leading zeros ('007' / '7', zero_padded_ids) and escapes ids in
# its markdown, so a cached report of the same input lacked both
# 8 = session 29: a series whose spread is small but no float rounding of its level (values near 1e-6) is scaled,
# where it was taken for constant (scaled to all 0); the summary names the hour a DST zone skips when only imputed
# points fill it (local times without an offset) and weekday-only series beside daily ones; the quarantine reason of
# a weekly series whose latest weeks moved to another weekday says from when; the data-quality report's line of
# partial-period rows is labelled as what it counts; the summary names the first horizon values without a planned
# covariate value and a static's changing values with their date
# 9 = review16: the summary's hint that the hour a DST zone skips is missing from every series (local times read
# as UTC) no longer fires when some series has that hour (one series' gap there named a --tz that misreads UTC);
# the weekday-only hint counts as having weekend rows only the series that have them
# 10 = newuser16: the report names ids equal but for letter case (case_ids) and a duplicate_conflict's reason names
# the values that differ, so a cached report of the same input lacked both
# 11 = polish16: a covariate column of yes/no (Yes/No, Y/N) words alone reads as 1/0 (its rows were quarantined),
# and a yes/no beside numbers is quarantined with a reason that says so
# 12 = polish16: the weekday-only hint no longer says 'while 0 other has weekend rows' where the only weekend rows
# have an empty target (the cached summary's freq_hint said it)
# 13 = review17: whether a covariate column is yes/no is decided from its rows observed by as_of alone (a backfill
# whose later rows mix 'yes' and '3' reads its yes/no history as 1/0 instead of quarantining it)
# 14 = newuser17: a year written '2020.0' (a pandas column of years with a missing value) reads as 2020 (its rows
# were quarantined as time_unparsable); an unparsable 'Mar-24' (Excel's mmm-yy) or 'FY2024Q1' has a hint in its reason
# and the report's zero_padded_ids names ids equal but for a trailing '.0' ('7' / '7.0')
# 15 = leak17: the day/month order of a time column is decided from its rows that may be dated by as_of (a row after
# as_of in the other order quarantined a backfill's history, or turned a monthly history into days), and so are a CSV
# file's decimal marks and thousands separators (a later '1.230' turned a backfill's 1.234 into 1234)
# 16 = leak18: whether a time column's times with an offset are dates written as timestamps (each at midnight of its
# offset) is decided from its rows that may be dated by as_of (a later 13:00 made a daily backfill's dates instants),
# and a row after as_of however it is read that the order of the rows by as_of cannot read is after as_of, not
# quarantined as time_unparsable
# 17 = ended19: validation.ended_series = "exclude" sets aside the series that ended more than a horizon before the
# latest observation (TrainingData.excluded; PreprocessSummary.ended, rows_ended), and it is in the cache key
# 18 = pit19: the rows that decide a CSV file's decimal marks and whether times with an offset are dates written as
# timestamps are told by their instant (a time of day after as_of on as_of's own date, or with an offset behind
# UTC, decided them), and a bracketed zone ('...+01:00[Europe/Paris]') counts as an offset in that check (its
# midnight dates were read a day early in a zone behind it); a day/month date no order reads ('01/32/2020') decides
# no order (every row of a day-first column with one was quarantined) and its reason says so
# and a row after as_of however it is read is after as_of, not time_unparsable, in a glob whose files each have
# their order and beside rows by as_of that settle none
# and ambiguous = 'infer' tells a series written newest first from its rows that may be dated by as_of (rows
# appended after it newest first swapped a backfill's two values of the repeated hour)
# and whether a two-digit year may come first is decided from the rows by as_of (a later '5/5/24' lost a backfill's
# year-first history), a year-first column reading no '5/5/24' as the year 5
# 19 = newuser20: the report names the declared covariates of one value on every valid row (constant_covariates)
# 20 = pit20: a day/month date with a time of day is told from the rows after as_of by its instant (a row later on
# as_of's own day decided the decimal marks and dates-as-timestamps of a backfill's history)
# 21 = ended20: an ended series set aside (ended_series = "exclude") that also had an interior gap longer than max_gap
# is not listed among the gap-cut series; its rows before the gap count in rows_ended, not rows_before_gap
# 22 = pit21: a daily or coarser time written with an offset is seen by as_of from the instant it names (it was by
# the date written against as_of's wall time: '2024-03-01T00:00-05:00' was seen at midnight UTC)
# 23 = newuser21: the report names undeclared columns of time zone names ('tz': 'Europe/Berlin', zone_columns), and
# the zone whose daylight saving the offsets of sub-daily times follow where no tz is declared (offsets_zone)
# 24 = pit22: the report tells planned rows from observations by that rule too (ds_min/ds_max and rows_null_y took a
# planned '2024-03-01T00:00-05:00' for an observation at midnight UTC, and left out an observed +05:00 one)
# 25 = pit22: an aggregated source's rows written with an offset are cut by the instant too, a period over from the
# instant its end names in its rows' offset (cut by the period against as_of's wall time: the day of 29 February at
# -05:00 was summed at midnight UTC, a sale after as_of in it)
# 26 = newuser22: sub-daily wall times read without a tz whose skipped daylight-saving hour is a gap longer than
# max_gap (15-minute data: 4 periods) are told so (tz_hint) and each cut series' reason names the --tz that reads it;
# a gap that is the repeated autumn hour quarantined as time_ambiguous names --ambiguous infer the same way
# 27 = review25: that hint counts the rows its own cuts left out, not those of a series cut at a later gap of its own
# 28 = ui25: the summary names the first 5 series too short for a network (network_short_ids), for the log and report
# 29 = tz25: an aggregated source's period written with an offset is over at the instant its end names in the offset
# its rows had at that end, read by the zone's rules at that instant (the latest of its rows' shifts held New York's
# 23-hour 10 March an hour past its end, and ended London's March of dates written as midnight UTC an hour early)
# 30 = review27: that offset is the one of the period's row with the latest instant (a day ending in the repeated hour,
# where a clock goes back at midnight, read an offset of neither of its rows' and was over half an hour early)
# 31 = tz29: the report names the zones of a file mixing them (offsets_zone: Berlin's series beside New York's, no
# one zone keeping every offset, said nothing) and a source per zone
# 32 = polish30: the report says a time column of year-numbers 1 to 4 alone ('2017-1' .. '2023-4', read as months)
# may be quarters, and how to write them (quarter_note)
# 33 = newuser32: the report names the undeclared text columns that are no covariate (an id of series or rows, text
# that changes within a series: not_covariates), which the ignored-columns note no longer offers as covariates;
# and a wide file's series named as a total ('Total Private') makes no row of it "a totals row?"; a summary row ('Average')
# is said as one
# 34 = msg40 / ui40: a note line's text in the id column ('Source: ...') is quarantined as a note line, no series;
# an undeclared per-series text column is said as "an id or a per-series category"; an out-of-range reason reads
# 'sales -5 is below y_min 0' (the quarantine and report a cached entry holds said otherwise)
# 35 = data43: exact duplicates are dropped and counted (rows_duplicate, duplicate_example), not quarantined, and the
# summary's 'fewer than 25 periods' line names the series (a cached report counted them as quarantined)
# 36 = revC43: rows of one key that differ in their time as written or an undeclared column are conflicts, not exact
# duplicates (a cached entry dropped one of them as a repeat)
# 37 = session 47: the repeated autumn hour's two readings of a tz source are two instants (aggregate none: two
# readings of the day; last: the later instant; overlapping files: one row per instant), sub-daily times seconds off
# the grid are quarantined saying so, a glob file of no settled order is not read day first, and a named blank
# column's note (kind 'blank') (a cached entry kept the old rows and notes)
# 38 = newuser48: a time of up to 3 digits (a week number) is quarantined saying no --time-format reads it, and a
# '#' title line of empty cells ('# Sales report,,') is a comment before the header (a cached entry said otherwise)
PREPROCESS_VERSION = 38


def preprocessing_identity(settings: Settings) -> dict[str, Any]:
    """What decides the TrainingData besides the source (its declaration and files: the data fingerprint), the as_of
    and the [model] and [evaluation] settings: the [preprocess] settings, which series preprocessing keeps
    (validation.ended_series), the horizon asked for and this code's PREPROCESS_VERSION. Recorded in a registered
    version's data fingerprint (`flows.pipeline`), so that a re-run compares what its version was trained on
    (`registry.same_registration`): the horizon as given (None: the source's), as every registered version recorded
    it. The preprocessing cache key holds the same with the horizon resolved (`preprocess_cache_key`)."""
    return {
        "preprocess": settings.preprocess.model_dump(mode="json"),
        "ended_series": settings.validation.ended_series,  # which series preprocessing keeps
        "horizon": settings.horizon,
        "version": PREPROCESS_VERSION,
    }


def preprocess_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """fingerprint + as_of + everything in the settings that changes the TrainingData + where the
    cache lives (its records name their result files by absolute path: a home that was moved or
    copied misses once and recomputes, instead of failing on a record that points elsewhere). The horizon is the one
    preprocessing resolves (`data.preprocess.resolve_horizon`): a horizon given equal to the source's is the same
    TrainingData, and was another key (computed again)."""
    from flowcast.data.preprocess import resolve_horizon

    s: Settings = parameters["settings"]
    src: SourceConfig = parameters["source"]
    as_of = parameters.get("as_of")
    shape = {
        "cache": str(s.cache_dir.resolve()),
        "fingerprint": parameters["fingerprint"],
        "as_of": as_of.isoformat() if isinstance(as_of, datetime) else str(as_of),
        "source": src.model_dump(mode="json"),
        **preprocessing_identity(s),
        "horizon": resolve_horizon(s, src),  # not as given (the registry's identity): None and the source's are one
        "lookback": s.model.lookback,  # the networks' minimum length (preprocessing reads no [evaluation] setting)
    }
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return f"flowcast-preprocess-{digest}"


@task(
    name="preprocess",
    task_run_name="preprocess {source.name}",
    persist_result=True,
    cache_policy=CacheKeyFnPolicy(cache_key_fn=preprocess_cache_key),
    cache_expiration=timedelta(days=7),
)
def preprocess_task(valid: Any, source: SourceConfig, settings: Settings, as_of: datetime | None,
                    fingerprint: str) -> tuple[TrainingData, PreprocessSummary]:
    """Regular grid, gaps, scalers: (TrainingData, PreprocessSummary); a stop is said in the run's log."""
    from prefect import get_run_logger

    from flowcast.data.preprocess import preprocess

    return preprocess(valid, source, settings, as_of, fingerprint, warn=get_run_logger().warning)


def drop_damaged_cache(settings: Settings, source: SourceConfig, as_of: datetime | None,
                       fingerprint: str) -> str | None:
    """When the preprocessing cache entry of these arguments cannot be read back (its value cut
    short by a full disk or a kill while Prefect rewrote it, or damaged on disk), remove its record
    and value and return why; None when there is no entry or it reads (the failure was another). A value that is there
    but cannot be read (EMFILE, EACCES, EIO, a folder in its place or a file in its folder's: not `_LOST`), or a record that is there but
    cannot be read (or a folder), raises StorageError naming it and the errno, the entry left: that is not a damaged
    entry, and computing it again would hide the fault; so does a folder where the digest of a damaged entry should be
    (`_no_folder_at`: it stopped the removal part way with IsADirectoryError). An error of the process reading it (`_NOT_DAMAGE`: out of memory unpickling a large value) is raised as
    it is, the entry left (it was removed as 'could not be read back')."""
    from prefect._internal.result_records import ResultRecord

    from flowcast.errors import StorageError

    key = preprocess_cache_key(None, {"settings": settings, "source": source, "as_of": as_of,
                                      "fingerprint": fingerprint})
    record = settings.cache_dir.resolve() / "prefect" / key
    value = settings.cache_dir.resolve() / "results" / key
    try:
        meta = _read_value(record, "record")
    except _LOST:  # no record: no entry
        return None
    try:
        stored = json.loads(meta).get("storage_key")
        value = Path(stored) if stored else value
        data = _read_value(value)
        ResultRecord.deserialize_from_result_and_metadata(result=data, metadata=meta)
        return None
    except (StorageError, *_NOT_DAMAGE):  # the value there and not readable now (EMFILE, EACCES, EIO), or the process
        # out of memory reading it: a fault, not a damaged entry
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the damage, the entry is unusable
        why = f"preprocessing cache entry {record} (value {value}) could not be read back ({type(exc).__name__}: {exc})"
    _no_folder_at(_digest_path(settings, key), "digest")
    for path in (record, value, _digest_path(settings, key)):
        path.unlink(missing_ok=True)
    return why


# a cached value's file not there: the value is lost, and is computed again. Any other error opening it (EMFILE,
# EACCES, EIO, ENOSPC) is a fault of the process or the disk that a recompute would hide, or meet again in a worse
# place: `_unreadable` raises it, naming the file and the errno. So is a folder in the file's place (IsADirectoryError,
# EISDIR): `unlink` cannot remove it, and it stopped the removal of a damaged entry part way (a folder at the record was
# taken for no entry, and Prefect's write of the record then failed; cachedir46); and a file in its folder's place
# (NotADirectoryError, ENOTDIR: `results` a file), which was a lost value: the record removed, Prefect's write of the
# value then failed (fixB46).
_LOST = (FileNotFoundError,)
# errors of the process reading a cache entry back, not of the entry: it may be whole, and is left (`drop_damaged_cache`)
_NOT_DAMAGE = (MemoryError, RecursionError)


def _unreadable(value: Path, exc: OSError, what: str = "value") -> StorageError:
    """The StorageError of a cached value `value` (or the entry's record or digest: `what`) that is there but could not be
    opened or read (`exc`, not one of `_LOST`): it names the file and the errno, and says the entry is left as it is;
    where something stands in the way (`_in_the_way`), what to remove."""
    from flowcast.errors import StorageError
    from flowcast.store.parquet import _io_error

    return StorageError(f"could not read the preprocessing cache {what} {value}: {_io_error(str(value), exc)}; the "
                        f"entry is left as it is and not computed again, which would hide this fault"
                        f"{_in_the_way(value, exc)}")


def _in_the_way(path: Path, exc: OSError) -> str:
    """What a user does of a folder standing where the cache file `path` belongs (EISDIR: '; remove the folder ...') or
    of a file standing where one of its folders belongs (ENOTDIR: '; remove the file .../cache/results ...'); '' for
    another error (it said the entry was left, not what would let the run go on)."""
    if isinstance(exc, IsADirectoryError):
        return f"; remove the folder {path} (a file of the cache belongs there) and run again"
    if isinstance(exc, NotADirectoryError) and (file := next((p for p in path.parents if p.is_file()), None)):
        return f"; remove the file {file} (a folder of the cache belongs there) and run again"
    return ""


def _unwritable(value: Path, exc: OSError, what: str = "value") -> StorageError:
    """The StorageError of a cache entry not there yet whose value `value` (its `what`) cannot be written (`exc`: a
    folder in its place, a file in one of its folders' place): it names the file and the errno, says that nothing was
    computed, and what to remove (`_in_the_way`)."""
    from flowcast.errors import StorageError
    from flowcast.store.parquet import _io_error

    return StorageError(f"cannot write the preprocessing cache {what} {value}: {_io_error(str(value), exc)}; nothing "
                        f"was computed{_in_the_way(value, exc)}")


def _no_folder_at(path: Path, what: str,
                  error: Callable[[Path, OSError, str], StorageError] = _unreadable) -> None:
    """Raise `error`'s StorageError (`_unreadable`'s unless told) naming `path` (the entry's `what`) when a folder
    stands in its place, or a file in the place of one of its folders (`digests` a file); checked before any file of a
    damaged entry is removed, so that the entry is left whole (`unlink` of the folder raised IsADirectoryError after
    the record was gone, and NotADirectoryError so), and before the task where there is no entry yet (`_unwritable`).
    A file there (or none) passes."""
    import errno
    import os

    if path.is_dir():
        raise error(path, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path)), what)
    try:
        path.lstat()
    except NotADirectoryError as exc:
        raise error(path, exc, what) from exc
    except OSError:  # not there (or not to be looked at: `unlink` says so, naming it)
        pass


def _read_value(value: Path, what: str = "value") -> bytes:
    """The bytes of the cached value `value` (or the entry's record: `what`); a file lost (`_LOST`) raises as
    `read_bytes` does, any other OSError raises `_unreadable`'s StorageError."""
    try:
        return value.read_bytes()
    except _LOST:
        raise
    except OSError as exc:
        raise _unreadable(value, exc, what) from exc


def _recorded_digest(digest: Path) -> str | None:
    """The digest recorded in the file `digest` (stripped; bytes that are not text come back replaced, for the check to
    call the file damaged); None when there is none (`_LOST`: not there). Any other error reading it (EMFILE, EACCES,
    EIO, a folder in its place) raises `_unreadable`'s StorageError: it was taken for no digest, and the value used
    unchecked."""
    try:
        return _read_value(digest, "digest").decode(errors="replace").strip()
    except _LOST:
        return None


def _digest_path(settings: Settings, key: str) -> Path:
    """`cache/digests/<key>`: the digest of the cached value `cache/results/<key>` as flowcast read it back after the
    preprocess task (`check_cache_digest`). Named by the key, so that gc removes it with its entry."""
    return settings.cache_dir.resolve() / "digests" / key


def check_cache_digest(settings: Settings, source: SourceConfig, as_of: datetime | None, fingerprint: str,
                       *, record: bool, computed: bool = False) -> str | None:
    """The digest of the preprocessing cache entry of these arguments (`cache/digests/<key>`): at most one hash of the
    value per read of the entry from the cache and one per value the task computes.

    `record=False` (before the preprocess task reads the entry): when the value's bytes no longer match the digest
    recorded with them, remove the entry (record, value, digest) and return why. The value is a pickle of polars
    frames, which carry no checksum: a byte flipped on disk in the middle of `y` read back as another number without a
    word, and every run of that data and as_of for 7 days trained, chose and published from data that was not the
    source's (faults31: a run of a published as_of replaced its forecasts, exit 0). A digest file that is not a digest
    (emptied, cut short) removes the entry too, saying so: it was reported as a value damaged on disk. None when it
    matches, or when there is no entry. With no digest to compare with (an entry an older flowcast wrote, or its digest
    removed) the value is not hashed: whether it reads back is checked (`drop_damaged_cache`), so that one cut short is
    removed here, saying so, and not first failed by Prefect's read (a Failed task in the UI for what was handled). A
    record whose value is missing is removed the same way, saying so (`_value_gone`), whether a digest was recorded or
    not; a value that is there but cannot be read (EMFILE, EACCES, EIO) raises StorageError naming it and the errno
    (`_unreadable`), and so does a record that is there but cannot be opened (it was taken for no entry: Prefect
    computed again, which hid the fault), and a digest that is there but cannot be read (it was taken for no digest:
    the value was used unchecked, without a word); a folder in the place of any of the three too (cachedir46). With no
    entry yet, a folder where its value belongs or a file where `results` does raises `_unwritable`'s StorageError
    (cache47: the task ran, and Prefect's write of its value failed after it, in words that named neither).
    `record=True` (after the task): with `computed` (the task ran and wrote the value: no entry, an expired one, one
    just removed as damaged) write the digest of the value as it is now; a value the task read back from the cache
    (`computed=False`) was checked before the read and is not hashed again, unless no digest was recorded with it (an
    entry an older flowcast wrote): its digest is written then. None, or a sentence when the digest could not be written
    (a full disk: a warning, not the run's failure), or when the value, record or digest could not be read (EMFILE,
    EACCES, EIO: `_unreadable`'s words in the same warning; the run has its data, and the next run's check before the
    task raises if the fault is still there). (cache32: every run hashed the value twice, before and after the
    task, whether it computed or read it.)"""
    from flowcast.atomic import atomic_write_text
    from flowcast.data.remote import _digest
    from flowcast.errors import StorageError

    key = preprocess_cache_key(None, {"settings": settings, "source": source, "as_of": as_of,
                                      "fingerprint": fingerprint})
    folder = settings.cache_dir.resolve()
    entry, value, digest = folder / "prefect" / key, folder / "results" / key, _digest_path(settings, key)
    try:
        with entry.open("rb"):  # only 'not there' is no entry: Prefect took a record it could not read for none, and
            pass  # computed again, which hid the fault
    except _LOST:
        if not record:  # no entry yet: its value must have a place (Prefect's write of it failed after the task ran)
            _no_folder_at(value, "value", _unwritable)
        return None
    except OSError as exc:
        if not record:
            raise _unreadable(entry, exc, "record") from exc
        return _digest_not_written(digest, entry, _unreadable(entry, exc, "record"))
    if not record and (gone := _value_gone(entry, value, digest)) is not None:
        return gone
    try:
        want = _recorded_digest(digest)
        if want is None and not record:  # nothing to compare with (recorded after the task): whether it reads back,
            # before Prefect reads it (its failure was a Failed task in the UI for what is handled here)
            return drop_damaged_cache(settings, source, as_of, fingerprint)
        if record and not computed and want is not None:  # read back from the cache: checked before the read
            return None
        have = _digest(_read_value(value))
    except StorageError as exc:  # the value or digest there and unreadable (`_unreadable`): raised before the task;
        # after it, a warning
        if not record:
            raise
        return _digest_not_written(digest, entry, exc)
    except OSError:  # the value gone since `_value_gone` looked: `drop_damaged_cache`'s
        return None
    if have == want:
        return None
    if record:
        try:
            atomic_write_text(digest, have)
        except (OSError, StorageError) as exc:  # a full or read-only cache folder: a warning, the run goes on (it
            # failed the run, nothing published, over a 32-byte checksum: faults40); the entry is used unchecked until
            # the next run of this data and as_of, which writes it
            return _digest_not_written(digest, entry, exc)
        return None
    for path in (entry, value, digest):
        path.unlink(missing_ok=True)
    want = want or ""  # (not None here: a read with no digest recorded returned above)
    if not re.fullmatch(r"[0-9a-f]{32}", want):  # the digest file itself damaged (emptied, cut): the value may be whole,
        # it cannot be told (faults32: it was said to be 'damaged on disk' though it read back to the very digest)
        return (f"digest {digest} of the preprocessing cache entry {entry} (value {value}) is damaged "
                f"({'empty' if not want else f'{want[:40]!r}, not a digest'}), so the value cannot be checked against it")
    return (f"preprocessing cache entry {entry} (value {value}) does not match the digest written with it ({digest}: "
            f"{want}, the value now {have}): damaged on disk, it would have given this run other data than the source's")


def _digest_not_written(digest: Path, entry: Path, exc: Exception) -> str:
    """The warning of `check_cache_digest(record=True)` when the digest `digest` of the cache entry `entry` could not
    be written, or the value not read to hash it (`exc`, which names the file and why): the run goes on."""
    return (f"digest {digest} of the preprocessing cache entry {entry} could not be written "
            f"({' '.join(str(exc).split())[:500]}): the run goes on; the entry is read unchecked until the next "
            "run of this data and as_of writes its digest")


def _value_gone(entry: Path, value: Path, digest: Path) -> str | None:
    """Before the preprocess task: when the record `entry` is left but its value file `value` is missing (someone
    cleaned `cache/results`; an `rm -rf cache` that reached `results/` first: `_LOST`), remove the record and the
    value's digest and return why; any other error opening it (EMFILE, EACCES, EIO, ENOSPC, a folder in its place,
    `results` a file) raises StorageError naming the file and the errno, the entry left (`_unreadable`: it was counted
    lost and computed again, which hid the fault), and so does a folder in the digest's place (`_no_folder_at`: its
    `unlink` raised IsADirectoryError, the record removed). None when the value opens (it is not read:
    the digest check hashes it once, the task reads it). Left, Prefect failed the task on the record ('Path ...
    does not exist': a Failed task under a Completed run) and kept that failure's exception as an entry of its own
    under `cache/` that nothing read, before `drop_damaged_cache` removed the entry (faults44)."""
    try:
        with value.open("rb"):
            return None
    except _LOST:
        pass
    except OSError as exc:  # EMFILE, EACCES, EIO, EISDIR, ENOTDIR: the value may be whole (or a folder stands in its
        # place, which `unlink` cannot remove, or a file in its folder's, where Prefect cannot write); recomputing would
        # hide the fault
        raise _unreadable(value, exc) from exc
    _no_folder_at(digest, "digest")
    for path in (entry, digest):
        path.unlink(missing_ok=True)
    return f"preprocessing cache entry {entry} (value {value}) has lost its value (the file is gone; its record was left)"


def drop_failed_attempt(settings: Settings, state: Any) -> str | None:
    """After a preprocess task run that failed: remove the entry Prefect persisted for it (its exception, kept under
    `cache/prefect/<uuid>` and `cache/results/<uuid>` as the task persists its results), which nothing reads (gc
    removed it by age only: faults44). An entry named for a cache key, or kept outside this cache folder, is left.
    A sentence naming a file that could not be removed and why, for a warning (None when nothing was left): it runs
    while the task's own error is raised, which an OSError of its own replaced (fix45)."""
    stored = getattr(getattr(state.data, "metadata", None), "storage_key", None)
    if not stored:
        return None
    folder = settings.cache_dir.resolve()
    value = Path(stored)
    if value.parent != folder / "results" or value.name.startswith("flowcast-preprocess-"):
        return None
    left = []
    for path in (folder / "prefect" / value.name, value):
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            left.append(f"{path} ({type(exc).__name__}: {exc})")
    return (f"The entry of the failed preprocessing attempt could not be removed: {'; '.join(left)}; nothing reads "
            "it, gc removes it by age" if left else None)


def cache_not_written(settings: Settings, source: SourceConfig, as_of: datetime | None, fingerprint: str) -> str | None:
    """After the preprocess task returned: a sentence when its cache entry is not on disk (Prefect could not
    commit it: a full disk, a read-only cache folder), naming it and the folder's room; None when it is. Prefect
    logs only 'An error was encountered while committing transaction <key>', which names neither the file nor why.
    Prefect writes the value before its record: a value whose write stopped part way (the disk filled) has no record,
    so nothing reads it back, and it is removed here (it kept the room a full disk's publish then lacked: a 3 MB
    value cut at 152 KB failed the publish of 86 KB that followed it, faults28). A value that reads back whole is
    left: a concurrent run of the same data and as_of may have written it and be about to write its record (removed,
    that run's committed record named a value gone, and the next run failed to read the entry back)."""
    import os

    from flowcast.atomic import room_in

    key = preprocess_cache_key(None, {"settings": settings, "source": source, "as_of": as_of,
                                      "fingerprint": fingerprint})
    folder = settings.cache_dir.resolve()
    record = folder / "prefect" / key
    if record.exists():
        return None
    value = folder / "results" / key
    removed = ""
    try:
        if _reads_whole(value):  # a run of the same data and as_of committing it (its record follows): left
            removed = ("; the value is whole and left: a run of the same data and as_of may be writing its record "
                       "now, and the next write of this entry replaces it")
        else:
            value.unlink()
            removed = "; the value it left, never committed, was removed"
    except FileNotFoundError:
        pass
    except OSError as exc:
        removed = f"; the value it left, never committed, could not be removed ({exc})"
    room = room_in(folder)
    if not os.access(folder / "results", os.W_OK):
        room += ", not writable"
    return (f"The preprocessing cache entry {record} (value {folder / 'results' / key}) could not be written ({room}; "
            f"Prefect's 'error ... while committing transaction {key!r}' above{removed}): the run goes on, and the next run of "
            "this data and as_of preprocesses again")


def _reads_whole(value: Path) -> bool:
    """Whether the cached value file `value` reads back whole with the serializer Prefect wrote it with (its default
    result serializer: the preprocess task names none). FileNotFoundError when there is none."""
    from prefect.results import get_default_result_serializer

    data = value.read_bytes()
    try:
        get_default_result_serializer().loads(data)
    except Exception:  # noqa: BLE001 - cut short or damaged, whatever the error the serializer met
        return False
    return True


def cached_preprocess(settings: Settings):
    """The preprocess task with its cache records and cached values under the run's cache folder,
    so that two FLOWCAST_HOME roots never share state."""
    store = settings.cache_dir.resolve() / "prefect"
    results = settings.cache_dir.resolve() / "results"
    store.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    return preprocess_task.with_options(
        cache_policy=preprocess_task.cache_policy.configure(key_storage=str(store)),
        result_storage=results,  # a Path: Prefect stores the values in this local folder
    )


# ------------------------------------------------------------------------------------ models
@task(name="train", tags=[TRAINING_TAG], cache_policy=NO_CACHE, task_run_name="train {label}")
def train_task(td: Any, settings: Settings, out_dir: Path, cell: str,
               on_progress: Callable[[Any], None] | None = None, label: str = "") -> ModelArtifact:
    """Train one model family (in its own process when model.launcher='process'); `label` names
    the task run (`train gru window 2`, `naming.task_label`) and its result line in the log."""
    from prefect import get_run_logger

    from flowcast.atomic import atomic_write_text
    from flowcast.models.train import (
        KEY_FILE,
        FileSeen,
        resumable,
        resume_from,
        set_aside,
        train_model,
        training_key,
    )
    from flowcast.shared import jobs_location

    log = get_run_logger()
    key = training_key(td, settings.model, cell)
    unreadable: list[tuple[Path, str, FileSeen | None]] = []
    prior = resumable(Path(settings.home) / "runs", key, exclude=out_dir, unreadable=unreadable)  # a killed run's
    for ckpt, why, seen in unreadable:  # (models.train doc); a cut one was passed over without a word
        try:  # said once: set aside, no later run loads it again nor says so again (ckpt33)
            aside = set_aside(ckpt, seen)  # the file that failed alone: a live training's newer one is left (ckpt40)
            kept = (f"; kept as {aside}, which no later run reads" if aside is not None else
                    "; left in place: it was replaced since it was read (a training is writing it)")
        except OSError as exc:
            kept = f"; it could not be set aside ({exc}): a later run of the same training says so again"
        log.warning(f"{label or cell}: " + (f"restarted from scratch: checkpoint {ckpt} unreadable ({why})"
                    if prior is None else f"checkpoint {ckpt} unreadable ({why}), passed over for {prior[0]}")
                    + ": an earlier run stopped while training it on the same data with the same settings" + kept)
    if prior is not None:
        resume_from(prior[0], out_dir)
        log.info(f"Resuming {label or cell} from step {prior[1]} of {settings.model.max_steps}: an earlier run "
                 f"stopped while training it on the same data with the same settings ({prior[0]})")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / KEY_FILE, json.dumps({"key": key, "cell": cell}))
    artifact = train_model(td, settings.model, out_dir, cell=cell, resume=prior is not None, on_progress=on_progress,
                           distributed=settings.distributed, jobs=jobs_location(settings),
                           storage_options=settings.shared_options)
    log.info(training_line(label or cell, artifact.metrics))
    if prior is not None:  # for the run's notes (its summary): the log lines above are the task's alone
        artifact.start_note = (f"{label or cell} resumed from step {prior[1]} of {settings.model.max_steps} of a "
                               f"killed run's training ({prior[0]}).")
    elif unreadable:
        artifact.start_note = (f"{label or cell} restarted from scratch: a killed run's checkpoint "
                               + ", ".join(f"{ckpt} was unreadable ({why})" for ckpt, why, _ in unreadable) + ".")
    return artifact


def training_line(label: str, metrics: dict[str, Any]) -> str:
    """One log line per trained network: steps, duration and score (validation loss)."""
    steps, seconds = metrics.get("steps"), metrics.get("train_seconds")
    val, train = metrics.get("val_loss"), metrics.get("train_loss")
    score = (f"validation loss {val:.4g}" if val is not None else "no validation window") + (
        f", training loss {train:.4g}" if train is not None else "")
    took = duration_text(seconds) if seconds is not None else "an unknown time"
    return f"Trained {label}: {steps if steps is not None else '?'} steps in {took}, {score}"


def _component_name(parameters: dict[str, Any]) -> str:
    """`forecast gru` / `forecast seasonal_naive`: which component a component task forecasts."""
    c = parameters["component"]
    what = c.get("model") or c.get("cell") or Path(str(c.get("path") or "network")).name.split("-")[0]
    return f"forecast {what}"


@task(name="backtest", cache_policy=NO_CACHE, task_run_name=_named(lambda p: f"backtest {_model_label(p['name'])}"))
def backtest_task(td: Any, fit: Callable[[Any], Callable[[Any], pl.DataFrame]], name: str, settings: Settings,
                  horizon: int) -> BacktestResult:
    """Rolling-origin backtest of one forecaster (a model family, a baseline or the incumbent)."""
    from flowcast.evaluation.backtest import backtest

    ev = settings.evaluation
    return backtest(td, fit, name=name, n_windows=ev.n_windows, step=ev.step, horizon=horizon, refit=ev.refit)


@task(name="predict", cache_policy=NO_CACHE)
def predict_task(artifact: Any, td: Any, horizon: int) -> pl.DataFrame:
    from flowcast.models.predict import predict

    return predict(artifact, td, horizon=horizon)


@task(name="baseline-forecast", cache_policy=NO_CACHE, task_run_name="forecast {name}")
def baseline_task(name: BaselineName, td: Any, horizon: int) -> pl.DataFrame:
    from flowcast.models.baselines import baseline_forecast

    return baseline_forecast(name, td, horizon)


@task(name="component-forecast", cache_policy=NO_CACHE, task_run_name=_named(_component_name))
def component_task(component: dict[str, Any], td: Any, horizon: int) -> pl.DataFrame:
    """One network's or statistical model's forecast of every series (a backtest window's cut)."""
    from flowcast.models.recipes import component_forecast

    return component_forecast(component, td, horizon)


@task(name="forecast", cache_policy=NO_CACHE, task_run_name=_named(lambda p: f"forecast {_model_name(p['model'])}"))
def forecast_task(model: Any, td: Any, horizon: int,
                  bounds: tuple[float | None, float | None] = (None, None)) -> RecipeForecast:
    """A model of any kind (registered version, recipe, artifact) forecasts every series, with its
    per-series fallback and calibrated intervals: a RecipeForecast (a series of fewer than SHORT_HISTORY
    observations by naive: publishing only, see `flowcast.models.recipes.SHORT_HISTORY`)."""
    from flowcast.models.recipes import SHORT_HISTORY, forecast_detailed

    return forecast_detailed(model, td, horizon, bounds=bounds, short_history=SHORT_HISTORY)


# ------------------------------------------------------------------------------------ registry
@task(name="register-model", cache_policy=NO_CACHE,
      task_run_name=_named(lambda p: f"register {p.get('kwargs', {}).get('name') or p.get('name')}"))
def register_task(settings: Settings, artifact_path: Path | None, **kwargs: Any) -> ModelVersion:
    """Register into the configured registry (home/models, or shared/models: flowcast.shared)."""
    from flowcast.shared import open_registry

    return open_registry(settings).register(artifact_path, **kwargs)


@task(name="promote-model", cache_policy=NO_CACHE, task_run_name="promote {version}")
def promote_task(settings: Settings, version: Any, reason: str, **kwargs: Any) -> ModelVersion:
    """Promote (dataset=, expected= for the compare and swap, at=): never retried, a moved
    production pointer is an answer, not a transient failure."""
    from flowcast.shared import open_registry

    return open_registry(settings).promote(version, reason=reason, **kwargs)


# ------------------------------------------------------------------------------------ monitoring
@task(name="realized-accuracy", cache_policy=NO_CACHE, task_run_name="realized accuracy {dataset}", **IO_RETRIES)
def realized_task(settings: Settings, *, dataset: str, as_of: datetime, td: Any, run_id: str,
                  shifts: pl.DataFrame | None = None) -> RealizedOutcome:
    """Score the dataset's earlier published forecasts on the actuals this run sees, store them,
    judge decay and leave the realized-accuracy artifact (flowcast.ops.accuracy)."""
    from prefect import get_run_logger

    from flowcast.flows.naming import in_backfill
    from flowcast.ops.accuracy import artifact, score_and_record

    outcome = score_and_record(settings, dataset=dataset, as_of=as_of, td=td, run_id=run_id, log=get_run_logger(),
                               shifts=shifts)
    artifact(settings, outcome, as_of=as_of, backfill=in_backfill())
    return outcome
