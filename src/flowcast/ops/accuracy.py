"""The realized-accuracy stage: score a dataset's earlier published forecasts against the actuals
this run sees, store the scores, judge decay, and tell the operator.

Called by the retrain and forecast flows after loading the data (the scoring itself is the pure
`flowcast.evaluation.realized`). Each run:

1. picks the dataset's published as_ofs to (re)score (`as_ofs_to_score`: earlier than this
   run's as_of, not settled, never scored from later actuals than this run has);
2. scores them on the observed actuals (`td.observed()`: imputed gaps are not actuals) with the
   MASE scale and the seasonal-naive forecast from the history before each as_of;
3. writes the as_ofs whose scored points grew to the store's `realized` table (replaced per
   (dataset, as_of): re-running writes the same rows), each row's `lookahead` set when its model
   version's training data ended after what a run at its as_of observed (the flag its publish recorded,
   `recorded_lookahead`; for a publish of an older flowcast, the as_of of that version's training run after
   its as_of, `trained_as_of`, from the registry);
4. judges decay over the last `accuracy.window` scored as_ofs that are not lookahead against the
   backtest MASE stored with each published model version in the registry and against seasonal naive
   (on RMSSE against the backtest RMSSE where those versions were ranked on it: data classed intermittent);
5. stores the verdict in `<home>/accuracy/<dataset>.json`, emits `flowcast.accuracy.degraded`
   when the dataset turns degraded (and `...recovered` when it is healthy again), and leaves a
   `realized-accuracy-<dataset>` artifact with a plot of realized MASE by as_of beside what
   the backtest promised.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from flowcast import events
from flowcast.atomic import atomic_file
from flowcast.errors import PublishError
from flowcast.evaluation.realized import (
    Decay,
    as_ofs_to_score,
    assess_decay,
    corrected,
    flag_lookahead,
    newly_scored,
    observed_through_series,
    promised_by_as_of,
    score_realized,
    summary_by_as_of,
)
from flowcast.timekeys import utc_text
from flowcast.wording import plural

ARTIFACT_KEY = "realized-accuracy"
SINGLE_AS_OF_PAD = timedelta(days=7)  # the realized plot's x-axis each side of its one scored as_of
AS_OF_TICKS = 6  # up to this many scored as_ofs: the realized plot ticks each, named in full


def artifact_key(dataset: str) -> str:
    """`realized-accuracy-<dataset>` (Prefect keys: lowercase letters, digits and dashes)."""
    return f"{ARTIFACT_KEY}-{re.sub(r'[^a-z0-9]+', '-', dataset.lower()).strip('-') or 'dataset'}"


def status_path(home: Path, dataset: str) -> Path:
    return Path(home) / "accuracy" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', dataset)}.json"


def read_status(home: Path, dataset: str, warn: Callable[[str], None] | None = None) -> Decay | None:
    """The verdict the last run stored for `dataset` (None when none was stored). A file that cannot be read
    (cut short, overwritten) is None too, said through `warn` (default: a logged warning) naming it: it was
    passed over without a word (`flowcast accuracy` showed the verdict 'unknown', a run took the dataset for
    never judged, so a recovery from 'degraded' was never told)."""
    path = status_path(home, dataset)
    if not path.exists():
        return None
    try:
        return Decay.from_dict(json.loads(path.read_text())["decay"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        (warn or logging.getLogger(__name__).warning)(
            f"the accuracy verdict {path} cannot be read ({type(exc).__name__}: {str(exc)[:120]}): taken as no "
            f"verdict stored for {dataset} (a change from it is not told); the next run that scores {dataset} "
            "writes it again")
        return None


def recorded_as_of(settings: Any, dataset: str) -> datetime | None:
    """The as_of of the run that stored `dataset`'s realized-accuracy verdict last (`checked_as_of`); None when none
    is stored or it cannot be read."""
    from flowcast.shared import pull_file

    path = pull_file(settings, status_path(settings.home, dataset))
    try:
        return datetime.fromisoformat(json.loads(path.read_text())["checked_as_of"])
    except (OSError, ValueError, KeyError, TypeError):  # none, or unreadable: recorded again
        return None


def scored_by(settings: Any, dataset: str, as_of: datetime) -> bool:
    """Whether the realized accuracy of `dataset` was recorded by a run of `as_of` or a later one (the verdict
    it stores last, `recorded_as_of`): False when no run recorded it, or the newest that did ran at an earlier as_of
    (the run of `as_of` was killed between its publish and its scoring, or a run of an earlier as_of, a backfill's
    date, scored after it). A verdict that cannot be read is False."""
    from flowcast.timekeys import storage_naive

    checked = recorded_as_of(settings, dataset)
    return checked is not None and storage_naive(checked) >= storage_naive(as_of)


def write_status(home: Path, dataset: str, decay: Decay, *, as_of: datetime, run_id: str) -> Path:
    path = status_path(home, dataset)
    with atomic_file(path, "w") as fh:
        json.dump({"dataset": dataset, "checked_as_of": as_of.isoformat(), "run_id": run_id,
                   "decay": decay.to_dict()}, fh, indent=2)
    return path


@dataclass
class RealizedOutcome:
    dataset: str
    scored: list[datetime] = field(default_factory=list)  # as_ofs whose rows were (re)written
    rows_written: int = 0
    realized: pl.DataFrame | None = None  # every realized row of the dataset after this run
    decay: Decay | None = None
    previous: Decay | None = None
    event: str | None = None  # the event emitted, if any
    plot: Path | None = None
    skipped: list[str] = field(default_factory=list)  # the publishes that could not be read, why
    corrected: list[datetime] = field(default_factory=list)  # as_ofs rescored because their actuals changed
    # a backfill's artifact (`as_known_at`): the date it shows, the later as_ofs it leaves out, and its as_ofs whose
    # stored scores a later run made (as_of -> that run's scored_at, after the date)
    known_at: datetime | None = None
    later: list[datetime] = field(default_factory=list)
    scored_later: dict[datetime, datetime] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "scored_as_ofs": [a.isoformat() for a in self.scored],
                "rows_written": self.rows_written, "decay": self.decay.to_dict() if self.decay else None,
                "corrected_as_ofs": [a.isoformat() for a in self.corrected],
                "event": self.event}


def observed_actuals(td: Any, since: datetime, shifts: pl.DataFrame | None = None) -> pl.DataFrame:
    """unique_id, ds, y of the observed rows after the instant `since` (naive UTC), compared on the
    data's own axis (`timekeys.as_of_on_ds`: a daily source's local dates; by the instant where daily times
    were written with an offset, `shifts`: `evaluation.realized.observed_through_series`); imputed rows are not
    actuals."""
    frame = td.frame.select("unique_id", "ds", "y")
    observed = td.observed() if hasattr(td, "observed") else None
    if observed is not None:
        frame = frame.filter(observed)
    # an aggregated source's period holding `since` was not over then: it is an actual of that publish
    ids = frame.select(pl.col("unique_id").cast(pl.Utf8)).unique()
    bounds = ids.with_columns(observed_through_series(
        ids.with_columns(pl.lit(since, pl.Datetime("us")).alias("at")), freq=td.meta.freq,
        tz=getattr(td.meta, "tz", None), aggregate=getattr(td.meta, "aggregate", "none"),
        time_label=getattr(td.meta, "time_label", "start"), shifts=shifts).alias("__since"))
    return (frame.join(bounds, on="unique_id", how="left", maintain_order="left")
            .filter(pl.col("ds") > pl.col("__since")).drop("__since"))


def _holds(store: Any, dataset: str, as_of: datetime, digest: str) -> bool:
    """True when (dataset, as_of) is published with the content hash `digest`."""
    try:
        return store.receipt_of(dataset, as_of).get("content_hash") == digest
    except PublishError:
        return False


Receipts = dict[datetime, "dict[str, str] | None"]  # as_of -> its publish's receipt, None where it cannot be read


def receipt_once(store: Any, dataset: str, as_of: datetime, receipts: Receipts | None) -> dict[str, str] | None:
    """The receipt of `dataset`'s publish at `as_of` in `store`, None where it cannot be read (not published,
    damaged), read only where `receipts` (filled here; None: no sharing) has not got it yet: the steps of one
    scoring (`published_horizons`, `trained_as_of`, `recorded_lookahead`) share one map and read each as_of's
    receipt once (they read it three times: on PostgreSQL a connection and ~4 queries each)."""
    if receipts is not None and as_of in receipts:
        return receipts[as_of]
    try:
        receipt: dict[str, str] | None = store.receipt_of(dataset, as_of)
    except (PublishError, OSError, ValueError):
        receipt = None
    if receipts is not None:
        receipts[as_of] = receipt
    return receipt


def published_horizons(store: Any, dataset: str, as_ofs: list[datetime],
                       receipts: Receipts | None = None) -> dict[datetime, int]:
    """as_of -> the horizon its forecasts were published with (its receipt: every series has steps 1..horizon,
    so rows / n_series); an as_of whose receipt cannot be read or lacks the counts is left out. `receipts`: as
    `receipt_once`."""
    out: dict[datetime, int] = {}
    for a in as_ofs:
        if (receipt := receipt_once(store, dataset, a, receipts)) is None:
            continue
        try:
            rows, n = int(receipt.get("rows") or 0), int(receipt.get("n_series") or 0)
        except ValueError:
            continue
        if rows > 0 and n > 0:
            out[a] = max(1, rows // n)
    return out


def promised_mase(registry: Any, versions: list[str]) -> dict[str, float | None]:
    """model_version -> the backtest MASE stored with it (None when unknown or gone)."""
    return _promised_metric(registry, versions, "mase")


def promised_rmsse(registry: Any, versions: list[str]) -> dict[str, float | None]:
    """model_version -> the backtest RMSSE stored with it where its leaderboard was ranked on RMSSE (its recipe's
    `metric`: data classed intermittent); None for a version ranked on another metric, one recorded before RMSSE
    was, or one gone. `assess_decay` judges the rows of the versions that have one on RMSSE, the others' on MASE."""
    return _promised_metric(registry, versions, "rmsse", ranked_only=True)


def _promised_metric(registry: Any, versions: list[str], metric: str, *,
                     ranked_only: bool = False) -> dict[str, float | None]:
    """model_version -> the backtest `metric` stored with it (`ranked_only`: only where its leaderboard was ranked
    on it), None otherwise. The versions' metadata alone (fetch=False): at a registry URL a MASE promise copied
    every version's model files to the machine's cache to read one figure."""
    out: dict[str, float | None] = {}
    for v in versions:
        try:
            mv = registry.get(v, fetch=False)  # metadata only
        except Exception:  # noqa: BLE001 - a version removed by gc or by hand promises nothing
            out[v] = None
            continue
        value = (mv.metrics or {}).get(metric)
        ranked = not ranked_only or (mv.recipe or {}).get("metric") == metric
        out[v] = float(value) if ranked and isinstance(value, (int, float)) else None
    return out


def trained_as_of(registry: Any, versions: list[str], *, store: Any = None, dataset: str | None = None,
                  published: pl.DataFrame | None = None, receipts: Receipts | None = None,
                  ) -> dict[str, datetime | None]:
    """model_version -> the as_of its training data ended at (naive UTC; None when unknown): a version
    trained after a forecast's as_of saw the actuals that forecast is scored on (`flag_lookahead`). Read
    from the registry; a version it no longer has (`flowcast gc --version`, a registry rebuilt) from the
    receipt of a publish it made (`published`: as_of, model_version rows of `dataset` in `store`), which
    records it since session 24. None only where neither knows (a publish of an older flowcast). `receipts`: as
    `receipt_once`."""
    from flowcast.timekeys import storage_naive

    out: dict[str, datetime | None] = {}
    for v in versions:
        try:
            trained = registry.get(v, fetch=False).as_of  # metadata only
        except Exception:  # noqa: BLE001 - a version removed by gc or by hand: its publishes' receipts say
            out[v] = None
            continue
        out[v] = storage_naive(trained) if trained else None
    gone = {v for v, t in out.items() if t is None}
    if gone and store is not None and dataset is not None and published is not None and published.height:
        pairs = published.select("as_of", "model_version").unique().filter(pl.col("model_version").is_in(list(gone)))
        for a, v in pairs.sort("as_of", descending=True).iter_rows():
            if out.get(v) is not None:
                continue
            receipt = receipt_once(store, dataset, a, receipts)
            if receipt is not None and (recorded := receipt.get("trained_as_of")):
                out[v] = storage_naive(str(recorded))
    return out


def recorded_lookahead(store: Any, dataset: str, published: pl.DataFrame | None,
                       receipts: Receipts | None = None) -> dict[tuple[datetime, str], bool]:
    """(as_of, model_version) -> the `lookahead` the publish of that as_of recorded for its model version (whether
    the version's training data ended after what the run at that as_of observed: `flows.forecast.saw_after`, the
    rule of the forecast's warning), of the `published` pairs (as_of, model_version rows of `dataset` in `store`).
    A pair whose receipt records none (a publish of an older flowcast, a model that recorded no end of its data),
    names another version, or cannot be read is left out: `flag_lookahead` flags it from `trained_as_of`.
    `receipts`: as `receipt_once`."""
    from flowcast.store.base import receipt_lookahead

    out: dict[tuple[datetime, str], bool] = {}
    if published is None or not published.height:
        return out
    for a, versions in published.group_by("as_of").agg(pl.col("model_version").unique()).iter_rows():
        if (receipt := receipt_once(store, dataset, a, receipts)) is None:
            continue
        flag, version = receipt_lookahead(receipt), receipt.get("model_version")
        if flag is not None and version is not None and version in versions:
            out[(a, version)] = flag
    return out


def unmark_recorded_honest(store: Any, dataset: str, realized: pl.DataFrame,
                           receipts: Receipts | None = None) -> list[datetime]:
    """Clear the `lookahead` mark of the stored realized rows of `dataset` (`realized`, as read from `store`) whose
    publish's receipt records that their model version did not see past their as_of (`recorded_lookahead`: False);
    the as_ofs rewritten, oldest first. Rows scored before realized accuracy read the receipt's flag were marked from
    the training run's as_of alone (`trained_as_of`), and `flag_lookahead` keeps a stored value, so the mark stayed
    (fixC52), also where the same forecasts were published again since by a flowcast that records the flag (a
    re-publish keeps the rows of unchanged forecasts, and removes those of forecasts it replaces). Since then a row is
    written with its receipt's flag wherever the receipt records one, the rule of the forecast's warning: a mark its
    receipt contradicts can only be such an old mark. Rows whose receipt records no flag keep theirs (nothing tells
    an old mark from a true one there). `realized` only says which as_ofs to look at: each as_of's rows are read again
    and written whole under the locks a realized-accuracy writer takes (`rewrite_realized`), only while it holds the
    publish whose receipt was read (on PostgreSQL in one transaction, on the embedded store each as_of's file replaced
    atomically; one re-published meanwhile lost its rows with the forecasts replaced, and is not returned): the rows
    of a scoring that rewrote an as_of since `realized` was read (corrected actuals) were overwritten by the older
    ones (store53). A second call finds nothing to clear. `receipts`: as `receipt_once`."""
    if not realized.height or "lookahead" not in realized.columns:
        return []
    marked = realized.filter(pl.col("lookahead").fill_null(False)).select("as_of", "model_version").unique()
    honest = [pair for pair, flag in recorded_lookahead(store, dataset, marked, receipts).items() if not flag]
    if not honest:
        return []
    as_ofs = sorted({a for a, _ in honest})
    clear = pl.DataFrame({"as_of": [a for a, _ in honest], "model_version": [v for _, v in honest],
                          "__honest": [True] * len(honest)},
                         schema={"as_of": realized.schema["as_of"], "model_version": pl.Utf8, "__honest": pl.Boolean})

    def unmarked(rows: pl.DataFrame) -> pl.DataFrame:  # an as_of's rows as stored now, read under the writers' locks
        return (rows.join(clear, on=["as_of", "model_version"], how="left", maintain_order="left")
                .with_columns(pl.when(pl.col("__honest")).then(False).otherwise(pl.col("lookahead")).alias("lookahead"))
                .drop("__honest"))

    read = {a: receipt_once(store, dataset, a, receipts) or {} for a in as_ofs}
    scored = {a: r["content_hash"] for a, r in read.items() if r.get("content_hash")}
    return store.rewrite_realized(dataset, scored, unmarked)  # one connection (PostgreSQL), one views sync


def flag_unflagged(realized: pl.DataFrame, registry: Any, store: Any, dataset: str, versions: list[str],
                   receipts: Receipts | None = None) -> pl.DataFrame:
    """`realized` (rows of `dataset`, of the model `versions`) with the `lookahead` of rows stored before it was
    recorded (null) filled: from their publishes' recorded flag (`recorded_lookahead`), else from the registry as
    it is now, or the receipts' `trained_as_of` (`trained_as_of`); null where none knows. `receipts`: as
    `receipt_once` (one map here at least: both read the receipts of the same as_ofs)."""
    blank = unflagged(realized)
    receipts = receipts if receipts is not None else {}
    return flag_lookahead(realized, trained_as_of(registry, versions, store=store, dataset=dataset, published=blank,
                                                  receipts=receipts),
                          recorded_lookahead(store, dataset, blank, receipts))


def unflagged(realized: pl.DataFrame) -> pl.DataFrame | None:
    """as_of, model_version of realized rows whose `lookahead` is not known yet (null)."""
    if not realized.height or "lookahead" not in realized.columns:
        return realized.select("as_of", "model_version") if realized.height else None
    return realized.filter(pl.col("lookahead").is_null()).select("as_of", "model_version")


def score_and_record(settings: Any, *, dataset: str, as_of: datetime, td: Any, run_id: str,
                     store: Any = None, log: Any = None, shifts: pl.DataFrame | None = None) -> RealizedOutcome:
    """Steps 1-5 of the module doc for one dataset at one run's as_of (`shifts`: `periods.seen_shifts` of the
    run's data, where daily times were written with an offset: each period is an actual from the instant it names)."""
    from flowcast.shared import open_registry
    from flowcast.store import open_store
    from flowcast.timekeys import storage_naive

    as_of = storage_naive(as_of)  # the store's axis: naive UTC
    store = store if store is not None else open_store(settings)
    registry = open_registry(settings)
    say = (log.info if log is not None else (lambda _m: None))
    existing = store.read_realized(dataset)
    published = store.as_ofs(dataset)
    # an as_of scored before is settled two of ITS horizons after it (not this run's, if that changed since)
    scored_before = set(existing["as_of"].to_list()) if existing.height else set()
    receipts: Receipts = {}  # each as_of's receipt read once by the steps below
    horizons = published_horizons(store, dataset, [a for a in published if a < as_of and a in scored_before],
                                  receipts)
    todo = as_ofs_to_score(published, existing, scored_at=as_of, horizon=int(td.meta.horizon),
                           freq=td.meta.freq, horizons=horizons, tz=getattr(td.meta, "tz", None))
    outcome = RealizedOutcome(dataset)
    readable: list[tuple[datetime, pl.DataFrame]] = []
    for a in todo:  # a damaged publish of one as_of is left out (said), the others are scored
        try:
            readable.append((a, store.read(dataset=dataset, as_of=a)))
        except PublishError as exc:
            (log.warning if log is not None else logging.getLogger(__name__).warning)(
                f"Realized accuracy leaves out as_of {utc_text(a)} of {dataset}: {exc}")
            outcome.skipped.append(str(exc))
    todo = [a for a, _ in readable]
    if todo:
        forecasts = pl.concat([f for _, f in readable], how="diagonal_relaxed")
        used = sorted({v for v in forecasts["model_version"].to_list() if v}) \
            if "model_version" in forecasts.columns else []
        pairs = forecasts.select("as_of", "model_version") if "model_version" in forecasts.columns else None
        new = score_realized(forecasts, observed_actuals(td, min(todo), shifts), td.frame.select("unique_id", "ds", "y"),
                             dataset=dataset, season_length=int(td.meta.season_length), freq=td.meta.freq,
                             scored_at=as_of, tz=getattr(td.meta, "tz", None),
                             aggregate=getattr(td.meta, "aggregate", "none"),
                             time_label=getattr(td.meta, "time_label", "start"), shifts=shifts,
                             trained=trained_as_of(registry, used, store=store, dataset=dataset, published=pairs,
                                                   receipts=receipts),
                             recorded=recorded_lookahead(store, dataset, pairs, receipts))
        write = newly_scored(new, existing)
        fixed = outcome.corrected = corrected(new, existing)
        if fixed:
            say(f"Realized accuracy: actuals of {dataset} were corrected since as_of "
                f"{', '.join(utc_text(a) for a in fixed[:5])}{' ...' if len(fixed) > 5 else ''} was scored: "
                f"{len(fixed)} as_of rescored")
        if write.height:
            # only where each as_of still holds the forecasts read above: a run that re-published or
            # removed one meanwhile (a backfill with overwrite, gc) took its realized rows away with them
            from flowcast.store import content_hash
            scored = {a: content_hash(f) for a, f in readable}
            written = store.write_realized(dataset, write, scored=scored)
            if written < write.height:
                left = sorted(a for a in scored if not _holds(store, dataset, a, scored[a]))
                (log.warning if log is not None else logging.getLogger(__name__).warning)(
                    f"Realized accuracy of {dataset} leaves out as_of {', '.join(utc_text(a) for a in left)}: "
                    "re-published or removed while it was scored (the next run scores what is published)")
                write = write.filter(~pl.col("as_of").is_in(left))
            outcome.scored = sorted(write["as_of"].unique().to_list())
            outcome.rows_written = write.height
            say(scored_line(len(outcome.scored), dataset, int(write["n"].sum()), as_of))
    realized = store.read_realized(dataset)
    if unmarked := unmark_recorded_honest(store, dataset, realized, receipts):
        say(f"Realized accuracy of {dataset}: as_of {', '.join(utc_text(a) for a in unmarked[:5])}"
            f"{' ...' if len(unmarked) > 5 else ''} no longer marked lookahead: "
            f"{'its publish records' if len(unmarked) == 1 else 'their publishes record'} that the model did not "
            "see past it (marked from the model's training as_of before the publish's record was read)")
        realized = store.read_realized(dataset)
    versions = sorted({v for v in realized["model_version"].to_list() if v}) if realized.height else []
    realized = flag_unflagged(realized, registry, store, dataset, versions, receipts)
    outcome.realized = realized
    acc = settings.accuracy
    decay = assess_decay(realized, promised_mase(registry, versions), dataset=dataset, window=acc.window,
                         tolerance=acc.tolerance, min_points=acc.min_points,
                         promised_rmsse=promised_rmsse(registry, versions))
    outcome.decay = decay
    outcome.previous, outcome.event = announce(settings, dataset, decay, as_of=as_of, run_id=run_id,
                                               warn=log.warning if log is not None else None)
    if decay.degraded and log is not None:
        log.warning(f"Accuracy of {dataset} is degraded: " + "; ".join(decay.reasons))
    return outcome


# ------------------------------------------------------------------------------------ artifact
def announce(settings: Any, dataset: str, decay: Decay, *, as_of: datetime, run_id: str,
             warn: Callable[[str], None] | None = None) -> tuple[Decay | None, str | None]:
    """Step 5: emit `flowcast.accuracy.degraded` (or `...recovered`) when `decay` changes the verdict stored last,
    then store it; (the verdict stored before, the event sent or None). The event goes first, keyed by the
    verdict it changes (`events.emit(key=...)`): a run stopped between storing and sending used to leave the
    change stored and never told (the next run saw 'degraded' already), and two runs that both read the old
    verdict (two backfill workers) each sent 'degraded'. Now a run stopped before storing sends it again with
    the same id, and the second worker's is the first's to Prefect. A stored verdict that cannot be read is said
    through `warn` (read_status). A verdict stored by a run of a later as_of stays, and no event is sent: a backfill
    of an older date run after it (two as_ofs in the wrong order) replaced it with its own, `checked_as_of` going
    back, so the stored verdict was no longer the newest run's (faults43)."""
    from flowcast.shared import pull_file, share_file

    path = status_path(settings.home, dataset)
    pull_file(settings, path)  # the verdict any machine stored last
    previous = read_status(settings.home, dataset, warn)
    try:
        stored = json.loads(path.read_text()) if previous is not None else {}
    except (OSError, ValueError):
        stored = {}
    if previous is not None and _checked_after(stored, as_of):  # a backfill of an older date after a newer run
        return previous, None
    key = f"after {stored.get('run_id')} {stored.get('checked_as_of')}" if previous is not None else "first"
    was = bool(previous and previous.degraded)
    event: str | None = None
    if decay.degraded and not was:
        event = events.DEGRADED
        events.emit(events.DEGRADED, dataset=dataset, as_of=as_of, message="; ".join(decay.reasons), key=key,
                    realized_mase=decay.realized_mase, promised_mase=decay.promised_mase,
                    snaive_mase=decay.snaive_mase, points=decay.points, window=decay.as_ofs, **_judged_on(decay))
    elif was and decay.judged and not decay.degraded:
        event = events.RECOVERED
        events.emit(events.RECOVERED, dataset=dataset, as_of=as_of, message="; ".join(decay.reasons), key=key,
                    realized_mase=decay.realized_mase, promised_mase=decay.promised_mase, **_judged_on(decay))
    share_file(settings, write_status(settings.home, dataset, decay, as_of=as_of, run_id=run_id))
    return previous, event


def _checked_after(stored: dict[str, Any], as_of: datetime) -> bool:
    """Whether the stored verdict (`stored`, its JSON) was checked by a run of an as_of later than `as_of` (an
    unreadable `checked_as_of`: False, the verdict is replaced)."""
    from flowcast.timekeys import storage_naive

    try:
        return storage_naive(datetime.fromisoformat(str(stored["checked_as_of"]))) > storage_naive(as_of)
    except (KeyError, TypeError, ValueError):
        return False


def _judged_on(decay: Decay) -> dict[str, Any]:
    """The event payload's `metric` the verdict was judged on, and on RMSSE (alone, or beside MASE: "mase+rmsse")
    its realized and promised RMSSE and seasonal naive's."""
    if "rmsse" not in decay.metric:
        return {"metric": decay.metric}
    return {"metric": decay.metric, "realized_rmsse": decay.realized_rmsse, "promised_rmsse": decay.promised_rmsse,
            "snaive_rmsse": decay.snaive_rmsse}


def plot_realized(realized: pl.DataFrame, promised: dict[str, float | None], path: Path, *, title: str,
                  metric: str = "mase") -> Path | None:
    """Realized MASE by as_of, the backtest's promise and seasonal naive on the same points (PNG). metric "rmsse"
    (a verdict judged on it: data classed intermittent): realized RMSSE, the promised RMSSE (`promised`: the
    versions' backtest RMSSE) and seasonal naive's RMSSE on the same points (where recorded)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    summary = summary_by_as_of(realized)
    if summary.height == 0:
        return None
    from flowcast.reporting import PLOT_DPI, PLOT_FONT_PT, save_figure, time_axis

    prom = promised_by_as_of(realized, promised)
    # as large as the forecast plot and in its type sizes: at 7 x 3 inches and 80 dpi its legend was 8 px
    # high and its title 10 px (unreadable in the realized-accuracy artifact, shown at its own size)
    fig, ax = plt.subplots(figsize=(11.2, 3.8))
    name = "RMSSE" if metric == "rmsse" else "MASE"
    x, mase = summary["as_of"].to_list(), summary["rmsse" if metric == "rmsse" else "mase"].to_list()
    # True: forecast by a model trained on data after the as_of; None: no record of whether it was (judged as
    # honest, drawn apart: it was drawn as an honest point, the same filled dot on the same line)
    ahead = summary["lookahead"].to_list() if "lookahead" in summary.columns else [False] * len(x)
    judged = [float("nan") if a or m is None else float(m) for m, a in zip(mase, ahead, strict=True)]
    ax.plot(x, judged, marker="o", markevery=[i for i, a in enumerate(ahead) if a is False], color="C0",
            label=f"realized {name}")
    if None in ahead:
        ax.plot([t for t, a in zip(x, ahead, strict=True) if a is None],
                [m for m, a in zip(mase, ahead, strict=True) if a is None], ls="none", marker="D", mfc="none",
                color="C2", label="no record whether its model was\ntrained after as_of (judged as honest)")
    if any(ahead):  # forecast by a model trained on later data: scored, not judged
        ax.plot([t for t, a in zip(x, ahead, strict=True) if a],
                [m for m, a in zip(mase, ahead, strict=True) if a], ls="none", marker="o",
                mfc="none", color="C1", label="model trained after as_of (not judged)")
    naive = "rmsse_snaive" if metric == "rmsse" else "mase_snaive"
    if naive in summary.columns and summary[naive].null_count() < summary.height:
        ax.plot(x, summary[naive].to_list(), marker=".", ls=":", color="0.4", label="seasonal naive, same points")
    if prom.height and prom["promised"].null_count() < prom.height:
        # a mark at each as_of too: a step through one point draws nothing (one scored as_of: the legend named a
        # promise the plot did not show, ui43)
        ax.step(prom["as_of"].to_list(), prom["promised"].to_list(), where="mid", ls="--", color="C3",
                marker="_", markersize=18, markeredgewidth=2, label="backtest promised")
    ax.set_ylabel(name, fontsize=PLOT_FONT_PT - 1)
    ax.set_xlabel("as_of of the published forecast", fontsize=PLOT_FONT_PT - 1)
    ax.tick_params(labelsize=PLOT_FONT_PT - 1)
    ax.grid(True, color="0.9", lw=0.8)
    time_axis(ax)
    scored = sorted(set(x))
    if len(scored) <= AS_OF_TICKS:  # a tick at each scored as_of, named in full: between two monthly as_ofs the
        # date locator ticked days ('Jul 08 15 22 Aug'), dates at which nothing was scored (ui29)
        import matplotlib.dates as mdates
        from matplotlib.ticker import FixedLocator

        ax.xaxis.set_major_locator(FixedLocator(mdates.date2num(scored)))
        clock = any((t.hour, t.minute) != (0, 0) for t in scored)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d %H:%M" if clock else "%Y-%m-%d"))
    if len(scored) == 1:  # one scored as_of: a week each side of it (matplotlib's default spanned 2 years each side)
        ax.set_xlim(x[0] - SINGLE_AS_OF_PAD, x[0] + SINGLE_AS_OF_PAD)
    ax.legend(fontsize=PLOT_FONT_PT - 1, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title, fontsize=PLOT_FONT_PT + 1, loc="left")
    fig.tight_layout()
    return save_figure(fig, path, dpi=PLOT_DPI)


def scored_line(n: int, dataset: str, points: int, as_of: datetime) -> str:
    """The run log's line of what realized accuracy scored: 'scored 2 earlier as_ofs ...', '1 earlier as_of'
    (ui30: it read '2 earlier as_of'), up to its as_of as every instant reads (`timekeys.utc_text`; it read
    '2026-12-05 03:00' without a zone)."""
    return (f"Realized accuracy: scored {plural(n, 'earlier as_of')} of {dataset} ({plural(points, 'point')}) "
            f"against the actuals up to {utc_text(as_of)}")


def markdown(outcome: RealizedOutcome, promised: dict[str, float | None], png: Path | None,
             promised_rmsse: dict[str, float | None] | None = None) -> str:
    """The artifact's text. `promised`: the versions' backtest figure on the verdict's metric (RMSSE on "rmsse");
    on "mase+rmsse" the MASE one, and `promised_rmsse` the RMSSE one (a column each)."""
    from flowcast.reporting import markdown_table, plot_markdown

    d = outcome.decay
    verdict = "**degraded**" if d and d.degraded else ("healthy" if d and d.judged else "not judged yet")
    if d and d.judged:  # the metric it was judged on, as `flowcast accuracy` says it
        verdict += " on " + {"rmsse": "RMSSE", "mase+rmsse": "MASE and RMSSE"}.get(d.metric, "MASE")
    text = f"## Realized accuracy of {outcome.dataset}: {verdict}\n\n"
    if d:
        text += "".join(f"- {r}\n" for r in d.reasons) + "\n"
    if outcome.known_at is not None:
        text += _known_at_text(outcome)
    ahead = int(d.lookahead) if d else 0
    if ahead:  # counted in words: it said '2 as_of ... were' under '2 scored as_ofs', and '1 as_of ... were' (ui42)
        one = ahead == 1
        text += (f"{plural(ahead, 'as_of')} (lookahead `yes` in the table, hollow dots in the plot) "
                 f"{'was' if one else 'were'} forecast by a model trained on data after {'it' if one else 'them'} (a "
                 f"backfill before any model of that date): {'it' if one else 'they'} saw the actuals "
                 f"{'it is' if one else 'they are'} scored on, and {'is' if one else 'are'} not judged.\n\n")
    unknown = int(d.lookahead_unknown) if d else 0
    if unknown:
        one = unknown == 1
        text += (f"{plural(unknown, 'judged as_of')} (lookahead `unknown` in the table, hollow diamonds in the plot) "
                 f"{'has' if one else 'have'} no record of whether {'its' if one else 'their'} model was trained on data "
                 f"after {'it' if one else 'them'}: {'it is' if one else 'they are'} judged as honest, and may have "
                 f"seen the actuals {'it is' if one else 'they are'} scored on.\n\n")
    if outcome.scored:
        # its rows are the realized table's (one per as_of, model and horizon step), not the table's below (one per
        # as_of): "scored 2 earlier as_of (3 rows)" above a table of 2 rows read as a count that did not add up
        n, written = len(outcome.scored), outcome.rows_written
        text += (f"This run scored {plural(n, 'earlier as_of')}: {plural(written, 'row')} of the `realized` "
                 "table, one per as_of, model and horizon step"
                 + (" (the table below sums them per as_of)" if written != n else "")
                 + ".\n\n")
    realized = outcome.realized if outcome.realized is not None else pl.DataFrame()
    on_rmsse = d is not None and d.metric == "rmsse"  # `promised`: the versions' backtest RMSSE
    summary = summary_by_as_of(realized).join(promised_by_as_of(realized, promised).rename(
        {"promised": "promised_rmsse" if on_rmsse else "promised"}), on="as_of", how="left") \
        if realized.height else pl.DataFrame()
    if summary.height and d is not None and d.metric == "mase+rmsse" and promised_rmsse is not None:
        # each version judged on its own metric: the RMSSE promise of those ranked on it beside the MASE one
        summary = summary.join(promised_by_as_of(realized, promised_rmsse).rename({"promised": "promised_rmsse"}),
                               on="as_of", how="left")
    if summary.height:
        mixed = d is not None and d.metric == "mase+rmsse"
        shown = summary.tail(12)
        text += markdown_table(summary_rows(shown, on_rmsse, mixed=mixed)) + "\n"
        if fewer := coverage_points_note(shown.to_dicts(), [utc_text(a, zone=False) for a in shown["as_of"]]):
            text += fewer + "\n\n"
        text += (("snaive RMSSE: seasonal naive's forecasts from the same as_of, on the same points; promised RMSSE: "
                  "the publishing model's backtest RMSSE, the metric its models were ranked on (data classed "
                  "intermittent)") if on_rmsse else
                 ("judged on MASE for the versions ranked on MASE and on RMSSE for those ranked on RMSSE (data classed "
                  "intermittent); promised MASE / RMSSE: the publishing model's backtest MASE, and its RMSSE where it "
                  "was ranked on it") if mixed else
                 ("snaive MASE: seasonal naive's forecasts from the same as_of, on the same points (MASE 1 is as good "
                  "as it); promised MASE: the publishing model's backtest MASE")) + \
            "; MAE in the target's units; coverage: the share of actual values inside the 80% and 95% intervals.\n\n"
    if png is not None:
        text += plot_markdown(png, f"Realized {'RMSSE' if on_rmsse else 'MASE'} by as_of, {outcome.dataset}"
                              ).split("\n", 2)[-1]
    return text


def _known_at_text(outcome: RealizedOutcome) -> str:
    """A backfill's artifact: the as_ofs it shows (up to its date), the later ones it leaves out, and those of its own
    whose scores a later run made."""
    def names(xs: list[datetime]) -> str:
        return ", ".join(utc_text(a) for a in xs[:8]) + (f" and {len(xs) - 8} more" if len(xs) > 8 else "")

    text = ""
    when = utc_text(outcome.known_at)
    if outcome.later:
        text += (f"Shown as of this backfill's date {when}: the as_ofs before it, judged on them alone. "
                 f"{len(outcome.later)} as_of from {when} on, scored by later runs, "
                 f"{'is' if len(outcome.later) == 1 else 'are'} left out ({names(outcome.later)}); the dataset's "
                 "current verdict, on every as_of, is `flowcast accuracy`'s.\n\n")
    if outcome.scored_later:
        later = sorted(outcome.scored_later)
        text += (f"{names(later)}: scored by a later run (on actuals up to "
                 f"{utc_text(max(outcome.scored_later.values()))}), after {when}; "
                 "what was known at that date was replaced by those scores.\n\n")
    return text


# the summary's columns as the table shows them, the headers `flowcast accuracy` prints: it had 12 columns, the
# promise (the figure the verdict compares with) last and past the page's edge, beside `n_mase`, `mase_snaive`
_SUMMARY_HEADS = (("as_of", "as_of (UTC)"), ("n", "points"), ("mae", "MAE"), ("mase", "MASE"), ("smape", "sMAPE"),
                  ("coverage80", "cov80"), ("coverage95", "cov95"), ("mase_snaive", "snaive MASE"),
                  ("promised", "promised MASE"))
_SUMMARY_HEADS_RMSSE = (("as_of", "as_of (UTC)"), ("n", "points"), ("mae", "MAE"), ("mase", "MASE"),
                        ("rmsse", "RMSSE"), ("coverage80", "cov80"), ("coverage95", "cov95"),
                        ("rmsse_snaive", "snaive RMSSE"), ("promised_rmsse", "promised RMSSE"))
_SUMMARY_HEADS_MIXED = (("as_of", "as_of (UTC)"), ("n", "points"), ("mae", "MAE"), ("mase", "MASE"),
                        ("rmsse", "RMSSE"), ("coverage80", "cov80"), ("coverage95", "cov95"),
                        ("promised", "promised MASE"), ("promised_rmsse", "promised RMSSE"))


def coverage_points_note(rows: list[dict[str, Any]], where: list[str]) -> str | None:
    """The note under a table (`flowcast accuracy`'s, the realized-accuracy artifact's) whose cov80/cov95 of some
    `rows` were computed on fewer points than its `points` (`n_cov80`, `n_cov95` of `n`: a series published without
    an interval), each such row named by its `where`; None where every coverage covers all its points (the table
    showed `n` beside a coverage over fewer). A count not recorded (rows scored before it was) is `n`'s, which that
    coverage was weighted by; a count of 0 is no coverage (the level not published: the table shows none), not said
    (it read '8 (cov80) and 0 (cov95)', said of a series with no typical change to scale its widths by, revB47)."""
    said = []
    for r, name in zip(rows, where, strict=True):
        n = r["n"]
        counts = {lv: n if r.get(f"n_cov{lv}") is None else r[f"n_cov{lv}"] for lv in ("80", "95")}
        counts = {lv: k for lv, k in counts.items() if k}  # (0: that level has no coverage)
        if any(k != n for k in counts.values()):
            shown = (f"{counts['80']}" if len(counts) == 2 and len(set(counts.values())) == 1 else
                     " and ".join(f"{k} (cov{lv})" for lv, k in counts.items()))
            said.append(f"{shown} of the {plural(n, 'point')} of {name}")
    if not said:
        return None
    return ("cov80/cov95: on the points forecast with that interval, where fewer than all (a series with no typical "
            "change to scale its widths by is published without one): " + "; ".join(said))


def summary_rows(summary: pl.DataFrame, on_rmsse: bool = False, *, mixed: bool = False) -> list[dict[str, Any]]:
    """The realized table's rows, one per as_of, with `flowcast accuracy`'s columns and headers (judged on RMSSE: RMSSE,
    seasonal naive's and the promise where sMAPE, seasonal naive's MASE and its promise were; `mixed`, a window of
    MASE- and RMSSE-judged versions: both promises), figures to 4 significant digits; `lookahead` (yes, no, unknown)
    only where an as_of's is not `no`."""
    from flowcast.reporting import score_text

    heads = _SUMMARY_HEADS_RMSSE if on_rmsse else _SUMMARY_HEADS_MIXED if mixed else _SUMMARY_HEADS
    flags = summary["lookahead"].to_list() if "lookahead" in summary.columns else []
    rows = []
    for i, r in enumerate(summary.to_dicts()):
        row = {h: (utc_text(r["as_of"], zone=False) if c == "as_of" else score_text(r.get(c))) for c, h in heads}
        if any(f is not False for f in flags):
            row["lookahead"] = {True: "yes", False: "no"}.get(flags[i], "unknown")
        rows.append(row)
    return rows


def artifact(settings: Any, outcome: RealizedOutcome, *, as_of: datetime, backfill: bool = False) -> Any:
    """Draw the plot and push the markdown artifact (inside a run; a no-op outside one). A backfill's
    run writes it under `backfill-realized-accuracy-<dataset>`, described with its as_of."""
    from prefect.context import FlowRunContext

    from flowcast.shared import open_registry, share_file

    registry = open_registry(settings)
    given = outcome  # the run's outcome keeps its plot; a backfill's artifact shows its view of it
    if backfill:  # what was known at the backfilled date: the as_ofs up to it, judged on them alone
        acc = settings.accuracy

        def judge(rows: pl.DataFrame) -> Decay:
            used = sorted({v for v in rows["model_version"].to_list() if v}) if rows.height else []
            return assess_decay(rows, promised_mase(registry, used), dataset=outcome.dataset, window=acc.window,
                                tolerance=acc.tolerance, min_points=acc.min_points,
                                promised_rmsse=promised_rmsse(registry, used))

        outcome = as_known_at(outcome, as_of, judge)
    realized = outcome.realized if outcome.realized is not None else pl.DataFrame()
    versions = sorted({v for v in realized["model_version"].to_list() if v}) if realized.height else []
    # judged on RMSSE (models ranked on it: data classed intermittent): the plot and table show it and its promise
    metric = outcome.decay.metric if outcome.decay is not None else "mase"
    promised = (promised_rmsse if metric == "rmsse" else promised_mase)(registry, versions)
    # a window of MASE- and RMSSE-ranked versions (each judged on its own): the plot on MASE, which every version
    # recorded; the table has both promises
    both = promised_rmsse(registry, versions) if metric == "mase+rmsse" else None
    png = None
    if realized.height:
        png = plot_realized(realized, promised,
                            settings.reports_dir / f"realized_{outcome.dataset}_{as_of:%Y%m%dT%H%M%S}.png",
                            title=f"{outcome.dataset}: realized vs promised {'RMSSE' if metric == 'rmsse' else 'MASE'} "
                                  f"(as of {utc_text(as_of)})", metric=metric)
        if png is not None:
            share_file(settings, png)
    outcome.plot = given.plot = png
    if FlowRunContext.get() is None:
        return None
    from prefect.artifacts import create_markdown_artifact

    key = ("backfill-" if backfill else "") + artifact_key(outcome.dataset)
    return create_markdown_artifact(markdown(outcome, promised, png, both), key=key,
                                    description=description(outcome.dataset, as_of, backfill=backfill))


def description(dataset: str, as_of: datetime, *, backfill: bool = False) -> str:
    """`As of 2024-03-01: realized accuracy of the published forecasts for shops`: the artifact's line in its key's
    history; the dataset named without a possessive (it read "shops's published forecasts", ui32)."""
    when = f"{'Backfill as' if backfill else 'As'} of {utc_text(as_of)}"
    return f"{when}: realized accuracy of the published forecasts for {dataset}"


def as_known_at(outcome: RealizedOutcome, as_of: datetime, judge: Callable[[pl.DataFrame], Decay]) -> RealizedOutcome:
    """A backfill's view of `outcome` at its `as_of`: the realized rows of the as_ofs before it (its own and the later as_ofs that later
    runs scored are left out and named in `later`), judged again on those rows alone (`judge`: `assess_decay` with the
    run's settings and promises), and `scored_later` naming its as_ofs whose stored scores a later run made (rows are
    kept per as_of: a later run's scores replaced what was known at the date). Under "Backfill as of 2023-12-01" the
    artifact listed and judged 2024-03-01 and 2024-04-01. The stored verdict (`flowcast accuracy`) is not changed."""
    from dataclasses import replace

    from flowcast.timekeys import storage_naive

    cut = storage_naive(as_of)
    realized = outcome.realized if outcome.realized is not None else pl.DataFrame()
    if not realized.height:
        return replace(outcome, known_at=cut)
    # the date's own as_of had no actuals at that date either: only later runs scored it
    later = sorted(realized.filter(pl.col("as_of") >= cut)["as_of"].unique().to_list())
    kept = realized.filter(pl.col("as_of") < cut)
    scored_later = {a: s for a, s in kept.group_by("as_of").agg(pl.col("scored_at").max()).sort("as_of").iter_rows()
                    if s is not None and s > cut}
    return replace(outcome, realized=kept, decay=judge(kept) if later else outcome.decay, known_at=cut, later=later,
                   scored_later=scored_later)


def realized_json(outcome: RealizedOutcome | None) -> dict[str, Any]:
    """The run's JSON summary of its realized-accuracy step: which earlier as_ofs it scored (new
    actuals) or rescored (corrected ones), how many rows it wrote, the dataset's accuracy status
    (degraded or not, realized against promised MASE, or RMSSE: its `metric`) and the event emitted; `recorded` False when
    the step failed (a warning in the run's log says why; the next run retries)."""
    if outcome is None:
        return {"recorded": False}
    return {"recorded": True, **outcome.to_dict()}


def record_in_run(settings: Any, data: Any, *, as_of: datetime, run_id: str) -> RealizedOutcome | None:
    """The flows' one call: the `realized-accuracy` task (scores, stores, judges, emits, artifact).
    A failure here is logged, not raised: today's forecasts are published either way, and the
    next run scores what this one could not."""
    from prefect import get_run_logger

    from flowcast.flows import tasks
    from flowcast.flows.common import flow_fault

    flow_fault("flow:before_realized")  # (test-only: killed with the forecasts published, nothing scored)
    # (daily times written with an offset: each period an actual from the instant it names, `LoadedData.shifts`)
    state = tasks.realized_task(settings, dataset=data.source.name, as_of=as_of, td=data.td, run_id=run_id,
                                shifts=getattr(data, "shifts", None), return_state=True)
    if state.is_completed():
        return state.result()
    try:
        state.result(raise_on_failure=True)
    except Exception as exc:  # noqa: BLE001 - reported as one warning line, the run goes on
        get_run_logger().warning(f"Realized accuracy of {data.source.name} could not be recorded this run "
                                 f"({type(exc).__name__}: {exc}); the forecasts are published, the next run retries")
    return None
