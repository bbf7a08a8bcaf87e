"""Quiet schedules: a forecast run that would publish what the last publish already holds.

A daily forecast schedule on monthly data would publish a new as_of every day with the same
forecasts. With `publish.skip_unchanged` the forecast flow first compares with the dataset's
latest publish before its as_of: when every series' next period to forecast is the one that
publish started from (no new observation arrived, no series came or went), the horizon is the
same and the production model is the one that published it, the run says so, emits
`flowcast.forecast.unchanged` and publishes nothing. A re-run of an as_of that is published
is not compared with any publish (it replaces it, as before), and a retrain always publishes. Data
with planned values of future-known covariates always publishes: a plan (a price, a weather
forecast) can change without any new observation, and the forecast with it.

Same next periods do not mean the same data: a source may revise its history (a correction of
last month's sales, a restated figure) without adding a period. Each publish therefore records a
fingerprint of the observations it forecast from (`data_fingerprint`: a hash of the ids, ds, y and
covariates of the run's data, computed in polars, in `<home>/published/<dataset>/<as_of>.json` beside
the publish's content hash), and a run skips only when its own fingerprint is the one recorded.
A publish without a record (made before flowcast kept one, or whose record was lost or belongs to
another publish of that as_of) is never taken as unchanged. The log says why a run was or was not
skipped.

With a PostgreSQL store (`store.url`), which several machines share without a shared home, each record is
kept in the store as well (its `publish_records` table, written only while the key holds that publish), and
read from there first: the record file was the publishing machine's alone, so another machine's run
published again what was already published, and read a `--data` dataset's dates in UTC and its times as
interval starts (`published_tz`, `published_time_label`). With a shared home (`shared`) those two read its
copies of the records too (they read this home's files alone, though the fingerprint was read from the shared
copy). The files stay the record of a single machine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from flowcast.data.calendar import shift
from flowcast.errors import PublishError
from flowcast.mdtext import id_text
from flowcast.timekeys import utc_text

log = logging.getLogger(__name__)


def _record(path: Path | str, assumed: str, read: Callable[[], str] | None = None) -> dict[str, Any] | None:
    """One publish record, or None with a warning naming it and what is assumed instead (`assumed`): a
    damaged record (cut short, overwritten) was passed over without a word. `read`: how to read `path` (a URL
    in the shared home) where it is no local file."""
    try:
        rec = json.loads(read() if read is not None else Path(path).read_text())
    except (ValueError, OSError) as exc:
        why = f"{type(exc).__name__}: {exc}"
    else:
        if isinstance(rec, dict):
            return rec
        why = f"a JSON {type(rec).__name__}, not an object"
    log.warning("the publish record %s cannot be read (%s); %s. Re-publishing that as_of writes it again, or remove it",
                path, " ".join(why.split())[:200], assumed)
    return None


def previous_as_of(published: list[datetime], as_of: datetime) -> datetime | None:
    """The latest published as_of strictly before `as_of` (None: nothing earlier)."""
    earlier = [a for a in published if a < as_of]
    return max(earlier) if earlier else None


# ------------------------------------------------------------------------------------ fingerprints
def data_fingerprint(td: Any) -> str:
    """A hash of the data a run forecasts from: every row's id, ds, y and covariates (the frame
    sorted by series and ds), its static features and planned future covariates. Any revised value
    changes it; the as_of does not. Row hashes come from polars (`hash_rows`, a fixed seed): stable
    within one polars version (the record names it)."""
    h = hashlib.sha256()
    frames = [("frame", td.frame), ("static", getattr(td, "static", None)),
              ("future", getattr(td, "future_exog", None))]
    for name, frame in frames:
        if frame is None:
            continue
        keys = [c for c in ("unique_id", "ds") if c in frame.columns]
        cols = keys + sorted(c for c in frame.columns if c not in keys)
        f = frame.select(cols).sort(keys) if keys else frame.select(cols)
        h.update(f"{name}:{f.height}:{[(c, str(t)) for c, t in f.schema.items()]}".encode())
        if f.height:
            h.update(f.hash_rows(seed=0).to_numpy().tobytes())
    return h.hexdigest()[:16]


def fingerprint_path(home: Path, dataset: str, as_of: datetime) -> Path:
    """`<home>/published/<dataset>/<as_of>.json`: the fingerprint of the data a publish forecast from."""
    return (Path(home) / "published" / re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset)
            / f"{as_of:%Y%m%dT%H%M%S}.json")


def record_fingerprint(settings: Any, *, dataset: str, as_of: datetime, content_hash: str, fingerprint: str,
                       run_id: str, tz: str | None = None, time_label: str = "start",
                       freq: str | None = None, saying: str | None = None,
                       unless: Callable[[dict[str, Any] | None], bool] | None = None) -> Path | None:
    """Record, after a publish, the fingerprint of the data it forecast from (and share it), with the
    source's tz (where `flowcast forecasts --as-of DATE` of a source no configuration declares reads
    a date alone), what its times label (`time_label`) and its freq (`flowcast forecasts` dates an end-labelled
    dataset's forecasts by their end as well, `ds_end`). Written under the key's lock, only while the key holds
    that publish, made by the run `run_id` (`ForecastStore.while_published`): None, nothing written, once it does not
    (another run's publish of the same forecasts since included). A publish leaves the
    lock before it records, and a gc that deleted the key in between (its record with it) left the record of
    forecasts no longer there for good; a publish of the key since, whose record this one overwrote, the same.
    `saying`: the run that is still to draw the publish's plot and leave its receipt and event (`said` takes it off
    once they are). `unless(current)`: nothing written (None) where it is true of the record of that publish the key
    holds now (None: none, or another publish's), read under the same lock; where it is false, a record of that
    publish is kept, only `saying` changed."""
    from flowcast.interrupts import fault_point
    from flowcast.timekeys import storage_naive

    fault_point("publish:before_record")  # test-only: the publish is visible, its record not yet written
    as_of = storage_naive(as_of)
    record = {"dataset": dataset, "as_of": as_of.isoformat(), "content_hash": content_hash,
              "data_fingerprint": fingerprint, "polars": pl.__version__, "run_id": run_id, "tz": tz,
              "time_label": time_label, "freq": freq}
    if saying is not None:
        record["saying"] = saying

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if unless is None:
            return record
        if unless(current):
            return None
        return record if current is None else {**current, "saying": saying}  # (the data of that publish kept)

    written = update_record(settings, dataset=dataset, as_of=as_of, content_hash=content_hash, run_id=run_id,
                            change=change)
    return fingerprint_path(settings.home, dataset, as_of) if written else None


def said(settings: Any, *, dataset: str, as_of: datetime, content_hash: str, run_id: str, by: str) -> bool:
    """Take `saying` off the record of the publish of `content_hash` by run `run_id` (its plot, receipt and event
    are left, by the run `by`), under the key's lock; True where it was written. A record saying another run is on
    it (a re-run took the publish over meanwhile) is left to that run."""
    from flowcast.timekeys import storage_naive

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is None or current.get("saying") != by:
            return None
        return {k: v for k, v in current.items() if k != "saying"}

    return bool(update_record(settings, dataset=dataset, as_of=storage_naive(as_of), content_hash=content_hash,
                              run_id=run_id, change=change))


def update_record(settings: Any, *, dataset: str, as_of: datetime, content_hash: str, run_id: str,
                  change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> bool | None:
    """Write the record `change(current)` of the publish of `content_hash` by run `run_id` of (`dataset`, `as_of`)
    (naive UTC), under the key's lock, while the key holds that publish; `current`: the record of that publish as
    every machine reads it (the store's, else the shared home's copy, else this home's file), read under the same
    lock (None: none, or another publish's). None where the key holds another publish or none (nothing written),
    False where `change` returned None (nothing written), True where the record was written (and shared)."""
    from flowcast.atomic import atomic_file
    from flowcast.shared import pull_file, share_file
    from flowcast.store import open_store

    path = fingerprint_path(settings.home, dataset, as_of)
    decided: list[dict[str, Any] | None] = []

    def decide(current: dict[str, Any] | None) -> dict[str, Any] | None:
        ours = current if current is not None and current.get("content_hash") == content_hash else None
        decided.append(change(ours))
        return decided[-1]

    def write() -> None:
        if not decided:  # the record files alone: the current one read here, under the key's lock
            decide(_record_file(pull_file(settings, path)))
        if (record := decided[-1]) is not None:
            with atomic_file(path, "w") as fh:
                json.dump(record, fh, indent=2)
            share_file(settings, path)

    if (store := record_store(settings)) is not None:  # every machine sharing the store reads it (module doc)
        kept = store.while_published(dataset, as_of, content_hash, write, record=decide, run_id=run_id)
    else:
        kept = open_store(settings, migrate=False).while_published(dataset, as_of, content_hash, write, run_id=run_id)
    return None if not kept else decided[-1] is not None


def _record_file(path: Path) -> dict[str, Any] | None:
    """The record in the file `path`; None where there is none, or it cannot be read (rewritten then)."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def record_store(settings: Any) -> Any:
    """The store that keeps the publish records beside the forecasts (PostgreSQL, which several machines share
    without a shared home: module doc), else None (the record files are read)."""
    from flowcast.store.factory import is_postgres

    if not is_postgres(settings.store.url):
        return None
    from flowcast.store import open_store

    return open_store(settings)


Records = dict[str, Callable[[str], "dict[str, Any] | None"]]  # as_of key (%Y%m%dT%H%M%S) -> its record, read
# when asked (given what is assumed when it cannot be read)


def store_records(settings: Any, dataset: str) -> Records | None:
    """The publish records of `dataset` that every machine reads, by as_of key: the store's (`record_store`) and
    the shared home's copies (`shared`: another machine's records are there, not under this home); None: neither,
    this home's files are all there is (one machine)."""
    from flowcast.shared import shared_files

    files, store = shared_files(settings), record_store(settings)
    if files is None and store is None:
        return None
    found: Records = {}
    if files is not None:
        folder = fingerprint_path(Path(), dataset, datetime(2000, 1, 1)).parent.as_posix()
        for name in files.list(folder):
            if name.endswith(".json"):
                found[name.removesuffix(".json")] = functools.partial(_shared_record, files, f"{folder}/{name}")
    for rec in store.records(dataset) if store is not None else []:  # kept while the key holds that publish: first
        found[f"{datetime.fromisoformat(rec['as_of']):%Y%m%dT%H%M%S}"] = functools.partial(_kept, rec)
    return found


def _shared_record(files: Any, rel: str, assumed: str) -> dict[str, Any] | None:
    return _record(files.url(rel), assumed, functools.partial(files.read_text, rel))


def _kept(rec: dict[str, Any], assumed: str) -> dict[str, Any]:
    return rec


def _newest_records(home: Path, dataset: str, assumed: str,
                    stored: Records | None) -> Iterator[tuple[dict[str, Any], str]]:
    """(record, its as_of) of `dataset`'s publishes, newest first: every machine's (`stored`) and this home's files
    (one `stored` has none of: a publish recorded before the store kept them, or one machine's); where both have an
    as_of, `stored`'s, unless it cannot be read."""
    folder = fingerprint_path(home, dataset, datetime(2000, 1, 1)).parent
    files = {p.stem: p for p in folder.glob("*.json")} if folder.is_dir() else {}
    held = stored or {}
    for key in sorted({*files, *held}, reverse=True):
        rec = held[key](assumed) if key in held else None
        if rec is None and key in files:
            rec = _record(files[key], assumed)
        if rec is not None:
            yield rec, str(rec.get("as_of") or key)


def published_tz(home: Path, dataset: str, stored: Records | None = None) -> str | None:
    """The source tz the newest publish of `dataset` recorded (None: UTC, or none recorded). `stored`: the records
    every machine reads (`store_records`), read with this home's files."""
    for rec, _ in _newest_records(home, dataset, f"assumed the time zone of {dataset}'s next older record (UTC when "
                                  "none says)", stored):
        if "tz" in rec:
            return rec["tz"]
    return None


def published_time_label(home: Path, dataset: str, stored: Records | None = None
                         ) -> tuple[str, str | None, str] | None:
    """(time_label, freq, as_of) the newest publish of `dataset` recorded; a publish recorded before time labels
    existed was of start labels (freq unknown); None: nothing published here. `stored`: as `published_tz`."""
    for rec, as_of in _newest_records(home, dataset, f"assumed the time label of {dataset}'s next older record (start "
                                      "labels when none is left)", stored):
        return str(rec.get("time_label") or "start"), rec.get("freq"), as_of
    return None


def check_time_label(settings: Any, source: Any) -> None:
    """Refuse to publish a source's forecasts beside its earlier publishes of the other time label: realized
    accuracy would score the old forecasts (dated by the old reading of the times) against actuals one step
    apart, and the forecasts of one dataset would mean two things by `ds`."""
    from flowcast.errors import ConfigError, StoreUnreachableError

    try:
        stored = store_records(settings, source.name)
    except StoreUnreachableError as exc:  # a run that cannot publish stops here, not after an hour of training
        # a refusal's advice (check the URL's password, user, database) ends `exc`; else the server may be down
        todo = (", and run again" if exc.advice else
                ". Start that server (or point store.url, FLOWCAST_STORE__URL, at one that runs) and run again")
        raise StoreUnreachableError(
            f"the run stopped as it started, before reading or training anything: its forecast store, PostgreSQL at "
            f"{exc.server}, could not be connected to (a run reads the dataset's publish records there as it starts, and "
            f"publishes there). {exc}{todo}: a scheduled run's missed as_of is published with `flowcast backfill`",
            exc.server, exc.advice) from exc
    found = published_time_label(settings.home, source.name, stored)
    if found is None or found[0] == source.time_label:
        return
    label, _, as_of = found
    raise ConfigError(
        f"dataset {source.name!r} was published with time_label = {label!r} (the newest publish, as_of {utc_text(as_of)}, "
        f"read its times as interval {label}s) and its source now says time_label = {source.time_label!r}: its "
        "forecasts and their realized accuracy would mix the two readings, one step apart. Publish under another "
        f"dataset name (--dataset {source.name}_{source.time_label}, or a new [sources.NAME]), or keep "
        f"time_label = {label!r}")


def dataset_time_label(settings: Any, dataset: str) -> tuple[str, str | None]:
    """(time_label, freq) of `dataset`: the source the configuration declares by that name, else what its
    publishes recorded (a `--data` file's); ('start', None) when neither says."""
    from flowcast.data.datasets import resolve_source
    from flowcast.errors import FlowcastError

    try:
        src = resolve_source(settings.model_copy(update={"dataset": dataset, "source": None}))
        return src.time_label, src.freq
    except FlowcastError:
        found = published_time_label(settings.home, dataset, store_records(settings, dataset))
        return (found[0], found[1]) if found else ("start", None)


def dataset_tz(settings: Any, dataset: str) -> str | None:
    """The tz whose calendar a date alone names for `dataset` (the key its run of that date got): the
    source the configuration declares by that name, else the one its publishes recorded (a `--data`
    file's); None: UTC."""
    from flowcast.data.datasets import resolve_source
    from flowcast.errors import FlowcastError

    try:
        return resolve_source(settings.model_copy(update={"dataset": dataset, "source": None})).tz
    except FlowcastError:  # not declared here: what its runs recorded
        return published_tz(settings.home, dataset, store_records(settings, dataset))


def recorded_fingerprint(settings: Any, *, dataset: str, as_of: datetime, content_hash: str | None
                         ) -> tuple[str | None, str]:
    """(the fingerprint recorded for the publish of `as_of`, '') or (None, why there is none usable)."""
    rec, said = publish_record(settings, dataset=dataset, as_of=as_of, content_hash=content_hash)
    return (None, said) if rec is None else _usable(rec, said)


def publish_record(settings: Any, *, dataset: str, as_of: datetime, content_hash: str | None
                   ) -> tuple[dict[str, Any] | None, str]:
    """(the record of the publish of `as_of` (of `content_hash` where given), where it is read: 'its fingerprint
    record in ...'), read where every machine's is (the store's, else the home's file: the shared home's copy where
    there is one), or (None, why there is none)."""
    from flowcast.shared import pull_file

    if (store := record_store(settings)) is not None:  # every machine's record (module doc)
        for rec in store.records(dataset, as_of):
            if content_hash is None or rec.get("content_hash") == content_hash:
                return rec, f"its fingerprint record in {store.location}"
    path = pull_file(settings, fingerprint_path(settings.home, dataset, as_of))
    if not path.exists():
        return None, ("it kept no fingerprint of the observations it forecast from (published before flowcast "
                      "recorded one)")
    try:
        rec = json.loads(path.read_text())
        if not isinstance(rec, dict):
            raise TypeError(f"a JSON {type(rec).__name__}, not an object")
    except (ValueError, TypeError, OSError) as exc:
        return None, f"its fingerprint record {path} cannot be read ({exc})"
    if content_hash is not None and rec.get("content_hash") != content_hash:
        return None, f"its fingerprint record {path} belongs to another publish of that as_of"
    return rec, f"its fingerprint record {path}"


def _usable(rec: dict[str, Any], where: str) -> tuple[str | None, str]:
    """(the fingerprint of a publish record, '') or (None, why it cannot be compared); `where` names the record."""
    try:
        fp = str(rec["data_fingerprint"])
    except KeyError as exc:
        return None, f"{where} cannot be read ({exc})"
    if rec.get("polars") != pl.__version__:
        return None, (f"its fingerprint was computed by polars {rec.get('polars')} (this is {pl.__version__}), "
                      "so values cannot be compared")
    return fp, ""


# ------------------------------------------------------------------------------------ decision
@dataclass(frozen=True)
class Quiet:
    """Whether a forecast run would publish nothing new, and the sentence that says why (or why not)."""

    unchanged: bool
    sentence: str


def compare_with_last(
    previous: pl.DataFrame,
    last_ds: pl.DataFrame,
    *,
    freq: str,
    horizon: int,
    model_version: str | None,
    previous_as_of: datetime,
    dataset: str,
    fingerprint: str,
    recorded: str | None,
    recorded_note: str = "",
    planned_rows: int = 0,
) -> Quiet:
    """Compare this run with the publish of `previous_as_of`.

    previous: the rows published then (unique_id, ds, step, model_version); last_ds: unique_id, last_ds
    of the data this run sees; fingerprint: `data_fingerprint` of those data; recorded: the one
    recorded with that publish (None: `recorded_note` says why there is none); planned_rows: its
    planned rows of future-known covariates (any: the plans may have changed, so it publishes)."""
    # not "shops's" (ui32); its as_of as the log's other instants, not ISO text ("2023-10-01T00:00:00", ui42)
    last = f"the last publish of {dataset} (as_of {utc_text(previous_as_of)})"

    def publishes(why: str) -> Quiet:
        return Quiet(False, f"Publishing: {why}")

    if previous.height == 0:
        return publishes(f"{last} holds no rows")
    if planned_rows:
        return publishes(f"the data carry {planned_rows} planned rows of future-known covariates, which may have "
                         f"changed since {last}")
    first = previous.filter(pl.col("step") == 1).select("unique_id", pl.col("ds").cast(pl.Datetime("us")))
    nxt = last_ds.select(
        pl.col("unique_id").cast(pl.Utf8),
        shift(pl.col("last_ds").cast(pl.Datetime("us")), 1, freq).alias("ds"),
    )
    if first.height != previous["unique_id"].n_unique():
        return publishes(f"{last} has series without a first step")
    joined = nxt.join(first, on="unique_id", how="full", coalesce=True, suffix="_prev")
    came = joined.filter(pl.col("ds_prev").is_null())["unique_id"].to_list()
    went = joined.filter(pl.col("ds").is_null())["unique_id"].to_list()
    if came or went:
        return publishes(f"{len(came)} series came and {len(went)} went since {last} (e.g. {id_text((came or went)[0])})")
    # a series whose next period is later got new observations; one whose next period is earlier had its
    # newest observation(s) withdrawn since (a corrected upload): each is said as what it is
    ahead = joined.filter(pl.col("ds") > pl.col("ds_prev"))["unique_id"].to_list()
    back = joined.filter(pl.col("ds") < pl.col("ds_prev"))["unique_id"].to_list()
    if ahead or back:
        said = []
        if ahead:
            said.append(f"{len(ahead)} of {nxt.height} series have new observations since {last} "
                        f"(e.g. {', '.join(map(id_text, ahead[:5]))})")
        if back:
            said.append(f"{len(back)} of {nxt.height} series had their newest observation withdrawn since {last} "
                        f"(their last period is now earlier: {', '.join(map(id_text, back[:5]))})")
        return publishes("; ".join(said))
    published_h = int(previous["step"].max())  # type: ignore[arg-type]
    if published_h != horizon:
        return publishes(f"the horizon is {horizon}, {last} forecast {published_h}")
    versions = set(previous["model_version"].to_list()) if "model_version" in previous.columns else {None}
    if versions != {model_version}:
        return publishes(f"the production model is {model_version or 'none'}, {last} was made by "
                         f"{', '.join(sorted(str(v) for v in versions))}")
    if recorded is None:
        return publishes(f"no new observation since {last}, but {recorded_note}: a revised history would go "
                         "unnoticed")
    if recorded != fingerprint:
        return publishes(f"no new period since {last}, but the history it forecast from was revised: values of y "
                         f"or covariates up to as_of differ (data fingerprint {fingerprint}, was {recorded})")
    return Quiet(True, (
        f"no new observation of {dataset} since its last publish (as_of {utc_text(previous_as_of)}): the "
        f"{nxt.height} series' next periods, their observed values (data fingerprint {fingerprint}), the horizon "
        f"({horizon}) and the production model ({model_version or 'none'}) are the same, so nothing new is "
        "published"))


def skip_if_unchanged(settings: Any, data: Any, as_of: datetime, model_version: str | None) -> str | None:
    """For the forecast flow: the reason when this run would publish nothing new (and then emit
    `flowcast.forecast.unchanged`), else None; either way the log says why. Reads the dataset's
    latest earlier publish and the fingerprint recorded with it."""
    from prefect import get_run_logger

    from flowcast import events
    from flowcast.store import open_store
    from flowcast.timekeys import storage_naive

    log = get_run_logger()
    store = open_store(settings)
    dataset = data.source.name
    published = store.as_ofs(dataset)
    if storage_naive(as_of) in published:  # a re-run (a backfill with overwrite, a corrected source): it replaces
        # what this as_of holds, which the publish before it says nothing about; unless it holds these very forecasts,
        # which the publish finds under the key's lock (it said 'and this run replaces it', then that it published
        # nothing again, ui31)
        log.info(f"Publishing: {dataset} as_of {utc_text(as_of)} is published already: this run "
                 "replaces it unless it holds these very forecasts (the same model version and rows), checked as it "
                 "publishes")
        return None
    prev = previous_as_of(published, storage_naive(as_of))
    if prev is None:
        log.info(f"Publishing: no earlier publish of {dataset} to compare with")
        return None
    try:
        previous = store.read(dataset=dataset, as_of=prev)
        held = store.receipt_of(dataset, prev).get("content_hash")
    except PublishError as exc:  # a damaged earlier partition must not stop this as_of from publishing
        log.warning(f"Not compared with the last publish of {dataset} (as_of {utc_text(prev)}): "
                    f"{exc}. This as_of publishes.")
        return None
    recorded, note = recorded_fingerprint(settings, dataset=dataset, as_of=prev, content_hash=held)
    td = data.td
    quiet = compare_with_last(previous, td.lengths().select("unique_id", "last_ds"), freq=td.meta.freq,
                              horizon=data.horizon, model_version=model_version, previous_as_of=prev,
                              dataset=dataset, fingerprint=data_fingerprint(td), recorded=recorded,
                              recorded_note=note,
                              planned_rows=0 if td.future_exog is None else td.future_exog.height)
    if not quiet.unchanged:
        log.info(quiet.sentence)
        return None
    events.emit(events.UNCHANGED, dataset=dataset, as_of=as_of, message=quiet.sentence,  # `past`: a later as_of published
                previous_as_of=prev, model_version=model_version, past=any(a > storage_naive(as_of) for a in published))
    return quiet.sentence
