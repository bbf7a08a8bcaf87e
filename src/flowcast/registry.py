"""The versioned model registry: models of every kind, one production pointer per dataset.

Layout under `root` (settings.models_dir):

    versions/<name>-v<seq>/artifact/...   an immutable copy of the model (files read-only), with
                                          recipe.json: how the version forecasts (flowcast.models.recipes)
    versions/<name>-v<seq>/version.json   name, dataset, kind, recipe, config, data fingerprint,
                                          metrics, as_of, created_at
    production.json                       {"format": 2, "datasets": {dataset: {"stack": [versions
                                          promoted, newest last], "events": [...], "champion": {...}}}}
    history.jsonl                         the `keep` events moved out of production.json (all but each
                                          dataset's newest KEEP_EVENTS_KEPT), oldest first, one a line:
                                          {"dataset", "after", "event"}; `history` shows them in place
    production.v1.json                    the pointer as an older flowcast wrote it (one stack for the
                                          whole home), kept verbatim when it was migrated
    .lock                                 fcntl lock serialising writers of this registry
    .removing.json                        {"removals": [notes]}: the versions whose removal (take-back, withdrawal,
                                          gc) is under way, one note each: once its event is committed (or, for a
                                          take-back, noted: the note holds its event) it is not listed, and the
                                          next writer finishes it; a withdrawal's note holds its event too, which
                                          the next writer records on the pointer entry it was decided on (`basis`)
    pins/<version>@<run>.json             a running run forecasts with that version: gc and a withdrawal keep it
                                          until the run ends, or, for a killed run, until the pin's `until` (a pin
                                          that cannot be read: PIN_TTL_HOURS after the file was written)

Kinds: `network` (one trained RNN/LSTM/GRU), `statistical` (naive, seasonal naive, theta, damped,
... : nothing trained, the recipe names the method), `ensemble` (networks combined by weight) and
`hybrid` (networks blended with statistical forecasts). The recipe is a JSON description that
`flowcast.models.recipes.forecast_with` turns into forecasts; the registry only stores it.

Shared registry. `root` may be an object-store URL (s3://bucket/flowcast/models, gs://...,
with fsspec `storage_options`) so that workers on several machines share one registry: the same
layout lives there, written through flowcast.store.fs.FileStore. A version is uploaded whole
(its files, then a `_COMPLETE` marker: a version without it is not listed and the next writer
removes it), the pointer is one object written with one PUT (whole or not at all), and writers
take a lock object created with an exclusive write (FileStore.lock) besides the local fcntl
lock, so compare-and-swap holds across machines. Versions are immutable: `get` copies a
version's files once into a local cache (`cache_dir`/<hash of the URL>/versions), and
`ModelVersion.path` is that local copy.

A version is registered by copying into a dot-prefixed temporary directory, fsyncing and
renaming it into place, so a half-written version is never listed. Registering alone never moves a
production pointer. `promote` and `rollback` rewrite production.json atomically (temp file,
fsync, rename, fsync of the directory): a crash before the rename leaves the previous champion
in production, a crash after it leaves the new one, never a torn pointer. `promote(...,
expected=V)` is a compare-and-swap: it raises ProductionMovedError, changing nothing, when the
dataset's production is no longer V (another run or a person promoted meanwhile).

A retrain that keeps the production model registers nothing: `publishing(..., kept=Kept(...))` records its
decision as a `keep` event of the dataset (version, as_of, run, reason) in the hold of the lock its publish is
checked under, so that a second run of its schedule slot can tell the slot was done (`Kept`). `keep` and
`champion` events move no pointer (`RECORDS`). A weekly schedule that keeps production writes 52 a year, and
production.json (rewritten whole, with its backup copy, at every pointer swap) grew with them for good: each
pointer write now moves a dataset's `keep` events beyond its newest KEEP_EVENTS_KEPT to history.jsonl first
(rewritten whole and atomically, lines only ever added; each line records how many of the dataset's other events
preceded it, so `history` puts it back in its place, oldest first). A writer killed between the two leaves an
event in both: `history` shows it once and the next pointer write drops it from production.json.

A run registers and promotes its winner in one transaction (`register(..., then=Promotion(...))`),
under one hold of the lock: the compare and swap is checked before anything is written (a run
that lost the race registers nothing), a note `.pending.json` names the version before it is
renamed into place, and the pointer swap commits it. A writer killed between the version's rename
and the pointer swap left an unpromoted version that only `gc` removed; now that version is not
listed, and the next writer of the registry rolls the transaction back: it removes the version
(whose name `register` never returned) and logs a warning naming it.

A run killed after its registration and before its publish leaves its version registered (recorded, pinned) and
unpublished; the re-run of that dataset and as_of takes it over when it is provably the same model
(`same_registration`, then `reuse`: a `reuse` event) or takes it back (`delete(run=..., for_run=...)`) before it
registers its own (`flows.pipeline._resume_killed`): it used to register a second version of the same model.

Migration: a production.json written by an older flowcast (one stack for the whole home) is
rewritten on first open, under the lock: each stacked version and each event goes to the dataset
the version was trained on (its fingerprint's `source`), so nothing is lost and two datasets
that shared one champion get their own; the old file is kept as production.v1.json. Nothing here
reads the clock: times are passed in.
"""

from __future__ import annotations

import builtins  # the registry has a method named `list`
import contextlib
import errno
import fcntl
import filecmp
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flowcast.atomic import fsync_dir as _fsync_dir  # (the name the fault tests patch)
from flowcast.atomic import no_room, plain_mode, room_in, storage_error, temp_beside
from flowcast.errors import ProductionMovedError, RegistryError, StorageError, removal
from flowcast.interrupts import fault_point
from flowcast.store.fs import MARKER, OBJECT_PROTOCOLS, FileStore, Lease, split_url
from flowcast.timekeys import utc_text
from flowcast.wording import plural

KINDS = ("network", "statistical", "ensemble", "hybrid")
POINTER_FORMAT = 2
LEGACY_POINTER = "production.v1.json"
BACKUP_POINTER = "production.backup.json"  # a copy of production.json, written after it: what `repair` restores
DEFAULT_DATASET = "default"  # versions registered without any dataset (older tests and scripts)
RECIPE_FILE = "recipe.json"

_VERSION_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*)-v(?P<seq>\d+)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
log = logging.getLogger(__name__)


class _Any:
    """`expected` not given: promote without comparing (a person's manual promotion)."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()
PENDING = ".pending.json"  # the version a register-and-promote transaction placed, until its pointer swap
# the version a removal decided on (a take-back, a withdrawal, a gc), written before the removal's record is committed
# and cleared once its files are gone: a writer killed in between leaves it, and the next writer finishes the removal
REMOVING = ".removing.json"
FOLLOW_UPS = ("promote", "champion")
PINS = "pins"  # pins/<version>@<run>.json: a running run forecasts with that version (`pin`): gc keeps it
PIN_TTL_HOURS = 24  # a pin a killed run left lapses this long after the run started
# events that move no pointer: a retrain's champion without promotion, a retrain that kept production (`Kept`),
# a champion taken back because its run's forecasts were refused (`withdraw_champion`), a version registered for a
# publish without promotion taken back because that publish was refused (`delete(run=...)`: a `take_back` event)
# a version a killed run registered and never published, taken over by a re-run of its dataset and as_of that computed
# the very same model (`reuse`: it publishes that version instead of registering a second one)
RECORDS = ("champion", "keep", "withdraw_champion", "take_back", "reuse")
# events that move no production pointer: the RECORDS, and a `retract` (a version taken out from under the top of a
# stack: a run's unpublished promotion, one gc removed; production stays). What a pointer's latest change is read
# past: `models rollback --expected` (a retried rollback) and `withdraw_unpublished_winner` (a killed run's promotion)
NO_POINTER_MOVE = (*RECORDS, "retract")
ROLLBACK_SKIPPED = "gone past by a rollback"  # the reason of a `retract` a rollback wrote for a version that is gone
HISTORY = "history.jsonl"  # the `keep` events moved out of production.json, oldest first (`_archive_keeps`)
KEEP_EVENTS_KEPT = 12  # a dataset's newest `keep` events that production.json keeps (a quarter of weekly retrains)


@dataclass(frozen=True)
class Promotion:
    """What `register(..., then=...)` does with the new version in the same transaction: `promote`
    it (compare and swap on `expected`: a version, None for 'no production model', or ANY) or
    record it as the dataset's `champion` (a retrain that does not promote)."""

    action: str = "promote"
    expected: Any = ANY
    reason: str = ""
    at: datetime | None = None
    as_of: datetime | None = None  # the run key of the champion, or of the run that promotes (its event says it)


@dataclass(frozen=True)
class Pin:
    """`register(..., pin=...)`: run `run` forecasts with the new version (see `ModelRegistry.pin`), pinned in the
    registration's transaction, so that no `gc` can remove the version between its registration and its pin."""

    run: str
    at: datetime
    until: datetime


@dataclass(frozen=True)
class Kept:
    """`publishing(..., kept=...)`: run `run`, a retrain of run key `as_of`, kept the production model (no
    candidate beat it) and publishes its forecasts. Recorded as a `keep` event of the dataset (version, as_of, run,
    reason) in the publish's hold of the lock, once production is checked and before the forecasts land: such a
    retrain registers nothing, and this is what tells a second run of its schedule slot that the slot was done
    (`flows.common.retrained_already`: done once the store holds that run's publish of the as_of)."""

    as_of: datetime
    run: str
    reason: str = ""


def _fault(point: str) -> None:
    """Test-only fault injection: FLOWCAST_FAULT=registry:<point> SIGKILLs this process there (or stops it,
    FLOWCAST_FAULT_SIGNAL=SIGSTOP: `interrupts.fault_point`)."""
    fault_point(f"registry:{point}")


def _sync_replaced(path: Path) -> None:
    """The folder's fsync after `path` was renamed into place: a failure then is not 'the previous file is
    intact' (the new one already is in place, and readers see it), but a write that may not survive a power cut."""
    try:
        _fsync_dir(path.parent)
    except OSError as exc:
        raise StorageError(f"wrote {path}, but could not sync its folder ({' '.join(str(exc).split())}): the new "
                           "file is in place and read, but may not survive a power cut") from exc


def _write_json_atomic(path: Path, obj: Any, fault: str | None = "before_pointer_rename") -> None:
    _write_bytes_atomic(path, json.dumps(obj, indent=2, default=str).encode(), fault)


def _write_bytes_atomic(path: Path, data: bytes, fault: str | None = None) -> None:
    tmp = None
    try:
        fd, tmp = temp_beside(path)  # inside: a temp file that cannot be created (no space, no inode) is named too
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if fault:
            _fault(fault)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, OSError):  # a full or read-only disk: the file named (a bare 'OSError: [Errno 28] No space
            raise storage_error(path, exc) from exc  # left on device' ended a pin, a promote, a withdraw)
        raise
    _sync_replaced(path)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


# a version no longer on disk (`_gone_hint`), by the last event that names it
_GONE_WORDS = {
    "withdraw": "withdrawn from production of {ds}",
    "withdraw_champion": "withdrawn as the champion of {ds}",
    "retract": "taken out of the production stack of {ds}",
    "take_back": "taken back by the run that registered it for a publish of {ds} that was refused",
}


# what the reason of a take-back's (or a withdrawal's) event adds when the next writer recorded it
# (`_recover_removal`): a run's, and a removal by hand's (its event names no run), whose command stopped; the event
# says which in its field `late` ('run', 'command': `late_kind`), which an older flowcast's records lack
LATE_TAKE_BACK = "recorded by the next writer of the registry: the run stopped (killed) before it could"
LATE_BY_HAND = "recorded by the next writer of the registry: the command stopped (killed) before it could"
_LATE_WORDS = {"run": LATE_TAKE_BACK, "command": LATE_BY_HAND}


def late_kind(event: dict[str, Any]) -> str | None:
    """'run' when the next writer of the registry recorded `event` on the behalf of a run killed before it could
    (`_recover_one`), 'command' on a command's (a removal by hand), None when its own command recorded it. Read from
    the event's `late` field, or, in a record of an older flowcast that has none, from the wording its reason ends
    with (`LATE_TAKE_BACK`: it was told by that alone)."""
    if event.get("late") in _LATE_WORDS:
        return str(event["late"])
    reason = str(event.get("reason") or "").rstrip(". ")
    return next((kind for kind, words in _LATE_WORDS.items() if reason.endswith(words)), None)


def stated_reason(event: dict[str, Any]) -> str:
    """The reason `event` was recorded with, without the words the next writer adds when it recorded it late."""
    reason = str(event.get("reason") or "").rstrip(". ")
    for words in _LATE_WORDS.values():
        if reason.endswith(words):
            return reason.removesuffix(words).rstrip("; ")
    return reason


# the removals whose note holds the event that commits them (`_write_removing(event=...)`), which the next writer
# records and finishes when the command was killed before its pointer write (`_recover_one`)
NOTED = ("take_back", "withdraw", "withdraw_champion")
# what the next writer says of one killed there: (what its run was doing, the same of 'it', the record it did not
# write), formatted with the version `v`, the registry `at` and the dataset `ds`
_NOTED_WORDS = {
    "take_back": ("taking back model version {v} of {at}", "taking it back", "the take-back"),
    "withdraw": ("withdrawing model version {v} of {at} from production of {ds}",
                 "withdrawing it from production of {ds}", "the withdrawal"),
    "withdraw_champion": ("withdrawing model version {v} of {at} as the champion of {ds}",
                          "withdrawing it as the champion of {ds}", "the withdrawal of the champion record"),
}


# why a withdrawal leaves its version in place (`_write_removing(kept=...)`) where a run's pin keeps it
_PINNED_KEEPS = "it is pinned by a run that forecasts with it (`flowcast gc` removes it once that run ends)"


def _noted_event(note: dict[str, Any]) -> dict[str, Any] | None:
    """The event a removal note holds (`_write_removing(event=...)`: a `take_back`, `withdraw` or
    `withdraw_champion`), None when it holds none: a removal the next writer records and finishes when its run was
    killed before its pointer write."""
    event = note.get("event")
    if note.get("action") in NOTED and isinstance(event, dict) and event.get("action") == note.get("action") \
            and event.get("version") == note.get("version"):
        return event
    return None


def _noted_words(note: dict[str, Any], at: str) -> tuple[str, ...]:
    """`_NOTED_WORDS` of `note`'s removal, filled in."""
    return tuple(w.format(v=note.get("version"), at=at, ds=note.get("dataset"))
                 for w in _NOTED_WORDS[str(note.get("action"))])


def _who(event: dict[str, Any]) -> str:
    """The run a noted event names ('the command' where none: a withdrawal by hand)."""
    return f"the run {event['run']}" if event.get("run") else "the command"


def _entry_digest(ent: Any) -> str:
    """A dataset's pointer entry (stack, events, champion) as one short digest: what a withdrawal's note records of
    the pointer it decided on (`basis`), so that the next writer finishes it only on that very pointer."""
    return hashlib.sha256(_event_key(ent).encode()).hexdigest()[:16]


def _event_key(e: Any) -> str:
    """One event's identity (a `keep` event names its version, run, as_of and time)."""
    return json.dumps(e, sort_keys=True, default=str)


def _merge_history(events: builtins.list[Any], moved: builtins.list[tuple[int, dict[str, Any]]],
                   ) -> builtins.list[dict[str, Any]]:
    """A dataset's whole history, oldest first: its events in production.json with the `keep` events moved to
    history.jsonl (`moved`: (how many of its events other than `keep` preceded each, the event)) put back in
    place. One in both (a writer killed between the two writes) is shown once. A pointer `models repair` re-derived
    (its `repair` event: production.json and its copy damaged) lost the events that the positions of history.jsonl
    count: each moved event is then put in by its time (`at`) among the pointer's events, each kept in its order
    (`models history` listed the keep events of before the repair after it, among the new ones)."""
    if not moved:
        return builtins.list(events)
    seen = {_event_key(e) for _, e in moved}
    out: builtins.list[dict[str, Any]] = []
    if any(isinstance(e, dict) and e.get("action") == "repair" for e in events):  # positions cannot be trusted
        rest = [e for _, e in moved]
        for e in events:
            if isinstance(e, dict) and e.get("action") == "keep" and _event_key(e) in seen:
                continue
            when = _event_time(e)
            while rest and when is not None and (_event_time(rest[0]) or when) <= when:
                out.append(rest.pop(0))
            out.append(e)
        return out + rest
    pending = sorted(moved, key=lambda m: m[0])  # stable: in the order they were moved, oldest first
    i, others = 0, 0
    for e in events:
        if isinstance(e, dict) and e.get("action") == "keep" and _event_key(e) in seen:
            continue
        while i < len(pending) and pending[i][0] <= others:
            out.append(pending[i][1])
            i += 1
        out.append(e)
        if not (isinstance(e, dict) and e.get("action") == "keep"):
            others += 1
    out += [e for _, e in pending[i:]]
    return out


def _event_time(e: Any) -> datetime | None:
    """An event's recorded time (`at`) as naive UTC, None when it has none (or one that does not read)."""
    at = e.get("at") if isinstance(e, dict) else None
    if not at:
        return None
    try:
        from flowcast.timekeys import storage_naive

        return storage_naive(datetime.fromisoformat(str(at)))
    except (TypeError, ValueError):
        return None


def _older_champion(ent: dict[str, Any], as_of: datetime | None) -> bool:
    """Whether a champion of run key `as_of` is older than the one `ent` records: the dataset's
    champion is the newest data's (a backfill of past dates, whose dates may finish in any order on
    several workers, never puts a model of older data in place of a newer one for the forecast flow)."""
    ch = ent.get("champion")
    have = ch.get("as_of") if isinstance(ch, dict) else None
    if as_of is None or not have:
        return False
    from flowcast.timekeys import storage_naive

    return storage_naive(as_of) < storage_naive(str(have))


def _champion(ent: dict[str, Any], version: str, *, reason: str, at: datetime | None, as_of: datetime | None) -> None:
    """Record `version` as a champion of run key `as_of` in dataset entry `ent`: always an event (the
    history `model_for_as_of` reads for a past as_of, and what commits a register-and-record transaction),
    and the dataset's champion unless the recorded one is of newer data (`_older_champion`)."""
    older = _older_champion(ent, as_of)
    if older:
        reason = (f"{reason}; of older data than the recorded champion {ent['champion'].get('version')} (as_of "
                  f"{ent['champion'].get('as_of')}), which stays the dataset's champion").lstrip("; ")
    else:
        ent["champion"] = {"version": version, "as_of": _iso(as_of), "at": _iso(at), "reason": reason}
    # its as_of too, as a promotion's and a keep's events have it: `models history` listed a backfill's champion
    # ('retail champion theta-v2 (retrain without promotion)') without the date it was the champion of
    ent["events"].append({"action": "champion", "version": version, "previous": None, "reason": reason,
                          "at": _iso(at), **({"as_of": _iso(as_of)} if as_of is not None else {})})


def _retract(ent: dict[str, Any], version: str, *, at: datetime | None, reason: str) -> bool:
    """Take the last promotion of `version` out of dataset entry `ent`'s stack when a later one lies on
    top of it (a run's own promotion whose forecasts were never published), with a `retract` event."""
    stack = ent.get("stack") or []
    if version not in stack[:-1]:
        return False
    i = len(stack) - 2 - stack[-2::-1].index(version)  # its own promotion: the last one under the top
    del stack[i]
    if 0 < i < len(stack) and stack[i - 1] == stack[i]:  # neighbours now equal ([a, V, a, W]): one promotion, as
        del stack[i - 1]  # `promote` never stacks a version on itself (a rollback 'from a to a' moved nothing)
    ent["events"].append({"action": "retract", "version": version, "previous": None, "at": _iso(at),
                          "reason": reason})
    return True


def _unstack(ent: dict[str, Any], version: str, *, at: datetime | None, reason: str) -> None:
    """Take every promotion of `version` under the top out of dataset entry `ent`'s stack (`delete`: its files go),
    neighbours that became equal merged as `promote` never stacks a version on itself, with a `retract` event
    naming what a rollback puts back now (`previous`; None: nothing)."""
    stack: builtins.list[Any] = []
    for v in ent["stack"][:-1]:
        if v != version and (not stack or stack[-1] != v):
            stack.append(v)
    if stack and stack[-1] == ent["stack"][-1]:
        stack.pop()
    ent["stack"][:] = [*stack, ent["stack"][-1]]
    ent["events"].append({"action": "retract", "version": version, "previous": stack[-1] if stack else None,
                          "at": _iso(at), "reason": reason})


def _recipe_of(name: str, kind: str, recipe: dict[str, Any] | None) -> dict[str, Any]:
    """The recipe `register` stores for model `name` of `kind` (None: one network): RegistryError when its kind
    differs or it is not plain JSON."""
    out = dict(recipe) if recipe is not None else network_recipe(name)
    if out.get("kind", kind) != kind:
        raise RegistryError(f"recipe kind {out.get('kind')!r} differs from kind {kind!r}")
    out["kind"] = kind
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"the recipe of {name!r} is not plain JSON: {exc}") from exc
    return out


def _as_stored(obj: Any) -> Any:
    """`obj` as version.json gives it back (written with json.dumps(default=str))."""
    return json.loads(json.dumps(obj, default=str))


def _files_of(root: Path | None) -> builtins.list[str]:
    """The relative paths of every file under `root` but the recipe (`register` writes that one itself), sorted."""
    if root is None:
        return []
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*")
                  if p.is_file() and p.relative_to(root).as_posix() != RECIPE_FILE)


# What two trainings of the same network (the same data, configuration and seed: the same weights, on the CPU) write
# differently, field by field of the file it is in: left out when `same_registration` compares a trained network's
# files that are not byte for byte the same ("*": any key of that level). Nothing else is: a weight, a loss, a
# hyperparameter that differs makes another model.
VOLATILE_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "meta.json": (
        ("train_seconds",),            # the wall-clock time the training took: never the same twice
        ("metrics", "train_seconds"),  # the same time, among its metrics
        ("config", "init_from"),       # model.warm_start_steps: the backtest weights' path, in the run's own folder
    ),                                 # (runs/<as_of>-<run id>/<cell>-backtest/model.ckpt)
    # a Lightning checkpoint, compared loaded (`torch.load`): its archive's `.data/serialization_id`, a hash of the
    # archive's records, differs whenever one of its fields does
    "model.ckpt": (
        ("callbacks", "*", "dirpath"),             # ModelCheckpoint's folder: in the run's own folder (its run id)
        ("callbacks", "*", "best_model_path"),     # files in that folder
        ("callbacks", "*", "last_model_path"),
        ("callbacks", "*", "kth_best_model_path"),
        ("callbacks", "*", "best_k_models"),       # keyed by those files' paths (its scores: best_model_score, kth_value)
    ),
}


def _without(tree: Any, fields: tuple[tuple[str, ...], ...]) -> Any:
    """`tree` (a file's parsed content) without the `fields` it has (paths of keys, "*" any key): a copy."""
    def drop(node: Any, path: tuple[str, ...]) -> Any:
        if not isinstance(node, dict):
            return node
        head, rest = path[0], path[1:]
        if not rest:
            return {k: v for k, v in node.items() if k != head}
        return {k: drop(v, rest) if head in ("*", k) else v for k, v in node.items()}

    for path in fields:
        tree = drop(tree, path)
    return tree


def _same_tree(a: Any, b: Any) -> bool:
    """Whether two loaded checkpoints' trees are equal: tensors of the same dtype, shape and values, the rest `==`."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and bool(torch.equal(a, b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b, strict=True))
    return bool(type(a) is type(b) and a == b)


def _same_but_volatile(a: Path, b: Path) -> bool:
    """Whether two files that are not byte for byte the same hold the same content but their `VOLATILE_FIELDS`:
    a network's meta.json (JSON: compared as written again, so that NaN equals NaN) or its checkpoint (loaded
    `weights_only`, memory-mapped: its tensors are read from the files page by page as they are compared, never
    copied whole into memory). Any other file, or one that cannot be read as its kind, is not."""
    import pickle

    fields = VOLATILE_FIELDS.get(a.name)
    if fields is None:
        return False
    if a.name == "meta.json":
        try:
            mine, theirs = (_without(json.loads(p.read_text()), fields) for p in (a, b))
        except (ValueError, UnicodeDecodeError):
            return False
        return json.dumps(mine, sort_keys=True) == json.dumps(theirs, sort_keys=True)
    import torch

    try:
        mine, theirs = (_without(torch.load(p, map_location="cpu", weights_only=True, mmap=True), fields)
                        for p in (a, b))
    except (RuntimeError, ValueError, pickle.UnpicklingError, EOFError):  # not a checkpoint torch can read safely
        return False
    return _same_tree(mine, theirs)


def _same_files(a: Path | None, b: Path | None) -> bool:
    """Whether the artifact directories `a` and `b` hold the same files (the recipe aside): byte for byte, compared
    streamed (`filecmp.cmp`, a few KiB at a time: sizes first; both read whole held two copies of every checkpoint in
    memory at once), or else the same content but their `VOLATILE_FIELDS` (a network's meta.json records its
    training time, its checkpoint the run's folder: the same network trained again was never the same files)."""
    names = _files_of(a)
    if names != _files_of(b):
        return False
    return a is None or b is None or all(filecmp.cmp(Path(a) / n, Path(b) / n, shallow=False)
                                         or _same_but_volatile(Path(a) / n, Path(b) / n) for n in names)


def same_registration(mv: ModelVersion, artifact_dir: Path | None, *, name: str, kind: str,
                      recipe: dict[str, Any] | None, config: dict | None, fingerprint: dict | None,
                      **_: Any) -> str:
    """'' when registering `artifact_dir` with these arguments (`register`'s) would store what version `mv` holds
    (provably the same model: its name, kind, recipe, configuration, data fingerprint, run key and files, the run
    that registered it and the files' `VOLATILE_FIELDS` aside), else what differs, in words. What a re-run of a killed run's as_of asks of the version
    that run registered and never published before it publishes that version instead of registering a second one
    (`ModelRegistry.reuse`). The data fingerprint's `preprocessing` (how the data were prepared: flowcast's
    preprocessing version and settings, `flows.tasks.preprocessing_identity`) is named on its own: a statistical
    version holds no trained files to differ when it changed. The recorded `metrics` are not compared: the backtest's
    scores follow from what is (the same data, preprocessing, configuration and model), but its `rank`, which says
    how the other candidates (the production model among them, which may have moved since) scored."""
    ours = {k: v for k, v in (fingerprint or {}).items() if k not in ("run_id", "preprocessing")}
    theirs = {k: v for k, v in (mv.fingerprint or {}).items() if k not in ("run_id", "preprocessing")}
    try:
        stored = _recipe_of(name, kind, recipe)
    except RegistryError as exc:
        return str(exc)
    for what, a, b in (("name", mv.name, name), ("kind", mv.kind, kind), ("recipe", mv.recipe, _as_stored(stored)),
                       ("configuration", mv.config, _as_stored(config or {})),
                       ("data fingerprint", theirs, _as_stored(ours)),
                       ("preprocessing (what it was trained on)", (mv.fingerprint or {}).get("preprocessing"),
                        _as_stored((fingerprint or {}).get("preprocessing")))):
        if a != b:
            return f"its {what} differs"
    try:
        if not _same_files(mv.path, artifact_dir):
            return "its model files differ"
    except OSError as exc:
        return f"its model files cannot be compared ({' '.join(str(exc).split())})"
    return ""


def network_recipe(cell: str) -> dict[str, Any]:
    """The recipe of one trained network whose files are the artifact directory itself."""
    return {"kind": "network", "components": [{"type": "network", "cell": cell, "path": "."}], "weights": [1.0]}


class PublishGuard:
    """What `ModelRegistry.publishing` yields while it holds the registry's lock: called with `what`, the check
    right before a publish becomes visible (a lease lost: StorageError); `refuse(reason)` when the store refused
    the publish (an `if_absent` publish into a key another run published): the promotion of the run that
    promoted (`promoted`: its version) is withdrawn under the same lock, unless what the key holds was made by that
    very version (`held_version`: another run published with it, so it stands). Returns the sentence saying so ('' when
    the run promoted nothing)."""

    def __init__(self, registry: ModelRegistry, dataset: str, promoted: str | None, at: datetime | None,
                 run: str | None = None, kept: tuple[str, Kept] | None = None) -> None:
        self._registry, self._dataset, self._promoted, self._at, self._run = registry, dataset, promoted, at, run
        self._kept = kept  # (the version kept, the record): its `keep` event, written once the publish is let through

    def __call__(self, what: str) -> None:
        self._registry._guarded(what)
        if self._kept is not None:  # the store let the publish through (its key's check passed): the run's keep
            version, kept = self._kept  # decision is recorded now, before the forecasts land; a refused publish
            self._kept = None           # (`refuse`) records none
            ptr = self._registry._pointer_locked()
            ptr["datasets"][self._dataset]["events"].append(
                {"action": "keep", "version": version, "previous": None, "reason": kept.reason, "at": _iso(self._at),
                 "as_of": _iso(kept.as_of), "run": kept.run})
            self._registry._write_pointer(ptr)

    def refuse(self, reason: str, held_version: str | None = None) -> str:
        if self._promoted is None or held_version == self._promoted:  # the other run published this very model
            return ""
        now = self._registry._withdraw_locked(self._dataset, self._promoted, reason=reason, at=self._at, run=self._run)
        _fault("refused_withdrawn")  # withdrawn, the run's note and its follow-up decision artifact not yet written
        self._promoted = None
        return f"Its promotion of the winner was withdrawn: production of {self._dataset} is {now or 'empty'} again."


@dataclass
class ModelVersion:
    version: str
    name: str
    path: Path  # the artifact directory
    config: dict
    fingerprint: dict
    metrics: dict
    as_of: str | None
    created_at: str
    seq: int = 0
    dataset: str | None = None
    kind: str = "network"
    recipe: dict = field(default_factory=dict)

    def describe(self) -> str:
        """What this version is, in plain words (kind, members and weights)."""
        from flowcast.models.recipes import describe_recipe

        return describe_recipe({"name": self.name, **(self.recipe or {})})  # (the name keys its own calibration)

    def trained_text(self) -> str:
        """When this version was trained, as its registration recorded it: `as_of 2026-12-06 04:31 UTC (last
        observation 2014-12-31)`, each written by `timekeys.utc_text`. The as_of is the run's, not where its data
        ended (data of 2014 retrained in 2026); the last observation is its data fingerprint's `last_observation`
        (none recorded before it was kept, or a version.json whose fingerprint is not an object: the as_of alone)."""
        text = f"as_of {utc_text(self.as_of)}" if self.as_of else "an unrecorded as_of"
        last = self.last_observation()
        return f"{text} (last observation {utc_text(last)})" if last else text

    def last_observation(self) -> str | None:
        """The newest ds of this version's training data, as its data fingerprint records it (a retrain's
        `last_observation`, on its source's ds axis); None where none is recorded (registered before it was kept,
        by hand, or a version.json whose fingerprint is not an object)."""
        last = self.fingerprint.get("last_observation") if isinstance(self.fingerprint, dict) else None
        return str(last) if last else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "name": self.name,
            "dataset": self.dataset,
            "kind": self.kind,
            "description": self.describe(),
            "recipe": self.recipe,
            "path": str(self.path),
            "config": self.config,
            "fingerprint": self.fingerprint,
            "metrics": self.metrics,
            "as_of": self.as_of,
            "created_at": self.created_at,
            "seq": self.seq,
        }


def _empty_pointer() -> dict[str, Any]:
    return {"format": POINTER_FORMAT, "datasets": {}}


def _is_legacy(data: Any) -> bool:
    return isinstance(data, dict) and "format" not in data and isinstance(data.get("stack"), list)


def default_cache_dir() -> Path:
    """Where versions of a registry at a URL are copied when no cache_dir is given."""
    return Path(tempfile.gettempdir()) / "flowcast-models"


class ModelRegistry:
    def __init__(self, root: str | Path, *, storage_options: dict[str, Any] | None = None,
                 cache_dir: Path | None = None, lock_timeout: float = 600.0):
        """`root`: a folder (or file:// URL), or an object-store URL (see module doc: shared registry)."""
        protocol, rest = split_url(root)
        self.remote: FileStore | None = None
        self.lock_timeout = lock_timeout
        self._lease: Lease | None = None  # the lock object's lease while this registry holds it (at a URL)
        if protocol in OBJECT_PROTOCOLS:
            self.remote = FileStore(root, storage_options=storage_options)
            self.location = self.remote.root
            key = hashlib.sha256(self.location.encode()).hexdigest()[:16]
            self.root = Path(cache_dir or default_cache_dir()) / key
        else:
            self.root = Path(rest) if protocol in ("file", "local") else Path(root)
            self.location = str(self.root)
        self.versions_dir = self.root / "versions"
        self.pointer_path = self.root / "production.json"
        self.pointer_label = f"{self.location}/production.json" if self.remote else str(self.pointer_path)

    def __repr__(self) -> str:
        return f"ModelRegistry({self.location!r})"

    # ------------------------------------------------------------------ files (local or remote)
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / ".lock", "a+")  # noqa: SIM115 - closed by the with below
        except OSError as exc:  # a read-only or full disk: say which file
            raise RegistryError(f"could not open the registry lock {self.root / '.lock'}: {exc.strerror or exc}; "
                                "the registry is unchanged") from exc
        with handle as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                if self.remote is not None:
                    with self.remote.lock(".lock", timeout=self.lock_timeout, stale_after=self.lock_timeout) as lease:
                        self._lease = lease
                        try:
                            self._recover_pending()
                            self._recover_removal()
                            yield
                        finally:
                            self._lease = None
                else:
                    self._recover_pending()
                    self._recover_removal()
                    yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # ------------------------------------------------------------------ notes beside the pointer (PENDING, REMOVING)
    def _read_note(self, name: str) -> Any:
        """The JSON of the note `name` at the registry's root: FileNotFoundError when there is none, another OSError
        or a ValueError when it cannot be read."""
        if self.remote is not None:
            if not self.remote.exists(name):
                raise FileNotFoundError(f"{self.location}/{name}")
            text = self.remote.read_text(name)
        else:
            text = (self.root / name).read_text()
        return json.loads(text)

    def _write_note(self, name: str, note: dict[str, Any]) -> None:
        """Called under the lock: the note `name` at the registry's root, written atomically."""
        if self.remote is not None:
            self._guarded(f"{self.location}/{name}")
            self.remote.write_text(name, json.dumps(note, default=str))
        else:
            _write_json_atomic(self.root / name, note, fault=None)

    def _clear_note(self, name: str) -> None:
        """Called under the lock: the note `name` removed. At a URL, as `_write_note`: StorageError, the note left,
        when this writer's lease on the lock object was lost (a waiter that broke the lock may have written a note of
        its own meanwhile, which this removal would have taken away)."""
        if self.remote is not None:
            self._guarded(removal(f"{self.location}/{name}"))
            self.remote.remove(name)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.root / name)
            _fsync_dir(self.root)

    # ------------------------------------------------------------------ register-and-promote transactions
    def _read_pending(self) -> dict[str, Any] | None:
        """The note of a register-and-promote transaction in flight (or of a dead writer's)."""
        try:
            note = self._read_note(PENDING)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # torn by a crash while it was written: nothing was placed after it
            self._damaged_pending(f"{type(exc).__name__}: {exc}")
            return {}
        if not isinstance(note, dict):
            self._damaged_pending(f"a JSON {type(note).__name__}, not an object")
            return {}
        return note

    def _damaged_pending(self, why: str) -> None:
        """Say what a damaged `.pending.json` is taken for: it used to be passed over without a word."""
        log.warning("the registration note %s/%s cannot be read (%s); assumed that no model version was placed after "
                    "it (a registration stopped while writing it): the next command that writes the registry removes "
                    "it; a version it named, if one was placed, is listed by `flowcast models list` and `flowcast gc "
                    "--version NAME --yes` removes it", self.location, PENDING, " ".join(why.split())[:200])

    def _guarded(self, what: str) -> None:
        """Called under the lock before a write to a registry at a URL: StorageError, `what` not
        written, when this writer's lease on the lock object was lost (see store.fs.Lease)."""
        if self._lease is not None:
            self._lease.check(what)

    def _write_pending(self, note: dict[str, Any]) -> None:
        self._write_note(PENDING, note)

    def _clear_pending(self) -> None:
        self._clear_note(PENDING)

    def _committed(self, ptr: dict[str, Any], note: dict[str, Any]) -> bool:
        ent = ptr["datasets"].get(note.get("dataset"), {})
        return any(isinstance(e, dict) and e.get("version") == note.get("version")
                   and e.get("action") == note.get("action") for e in ent.get("events", []))

    def _uncommitted(self) -> str | None:
        """The version a register-and-promote transaction placed and has not committed (in flight, or
        its writer died): not listed. None when there is none."""
        note = self._read_pending()
        if not note or not note.get("version"):
            return None
        try:
            ptr = self._read_pointer_file()
            committed = ptr is not None and not _is_legacy(ptr) and self._committed(self._checked(ptr), note)
        except RegistryError:
            committed = False
        return None if committed else str(note["version"])

    def _recover_pending(self) -> None:
        """Called under the lock, so a note found here is a dead writer's (or one whose pointer swap
        failed): if its pointer swap did not happen, its transaction is rolled back, the version
        removed (its name was never handed out: `register` returns after the swap); else committed."""
        note = self._read_pending()
        if note is None:
            return
        version = str(note.get("version") or "")
        try:
            ptr = self._pointer_locked() if version and _VERSION_RE.match(version) else None
        except RegistryError:  # a damaged pointer: the note waits for `repair`
            return
        if ptr is not None and self._has_version(version) and not self._committed(ptr, note):
            self._remove_version(version)
            self._remove_pins_of(version)  # a pin its registration wrote
            what = "record it as the champion" if note.get("action") == "champion" else "promote it"
            log.warning("removed model version %s from %s: the run that registered it stopped before it could %s "
                        "(killed, or out of disk)", version, self.location, what)
        self._clear_pending()

    def _remove_version(self, version: str) -> None:
        """Called under the lock: out of sight first (a rename, or at a URL its marker), then its files."""
        vdir = self.versions_dir / version
        tmp = self.versions_dir / f".tmp-deleted-{version}"
        _fault("before_version_removal")  # a gc's pointer commit made (when it had one), the version still listed
        if self.remote is not None:
            self._guarded(removal(f"{self.location}/versions/{version}"))
            self.remote.remove(f"versions/{version}/{MARKER}")
            _fault("version_hidden")  # out of sight (its marker gone), its objects not yet removed
            self.remote.remove(f"versions/{version}")
            if not vdir.exists():
                return
        os.rename(vdir, tmp)
        _fsync_dir(self.versions_dir)
        _fault("version_hidden")  # out of sight, its files not yet removed
        _make_writable(tmp)
        shutil.rmtree(tmp)

    # ------------------------------------------------------------------ removals: record committed, files next
    def _write_removing(self, version: str, dataset: str | None, action: str | None,
                        event: dict[str, Any] | None = None, *, spared: builtins.set[str] | None = None,
                        champion: Any = None, kept: str = "") -> None:
        """Called under the lock, before the pointer write that records the removal of `version` (`action`: the
        event that commits it, a `take_back`, `withdraw`, ...; None: a removal that writes no pointer, a gc's plain
        one): `REMOVING` names it until its files are gone (`_clear_removing`), beside the notes of other removals a
        writer left unfinished (one note per removal: a dead writer's that could not be finished is never
        overwritten). `before`: how many events of that action name it in the pointer as committed so far, so that
        an older one (V retracted once, promoted again by hand) is not taken for this removal's commit
        (`_removal_committed`). `event`: the event that commits it (a take-back's, a withdrawal's), which the next
        writer records and finishes when this one is killed before its pointer write (`_recover_removal`); a
        withdrawal's note adds `basis`, the digest of the dataset's entry in the pointer as committed (the next writer
        finishes it only where that entry is unchanged: what its checks read is what holds), `spared`, the pin files
        that did not keep the version (the withdrawing run's, dead runs'), and for a champion's the `champion` record
        it leaves (None: none). `kept`: why a withdrawal leaves the version in place, in words (a live run pins it,
        or the stack names it further down; '': it removes it): its note holds its event all the same, so that a kill before its pointer write
        is recorded by the next writer (it recorded nothing), but its version is not taken out of sight nor removed
        (`removals_due`, `_recover_one`), and the note goes once the pointer is written. RegistryError, nothing
        written, when an unfinished removal of `version` is noted already. Notes that cannot be read now are left as
        they are, and this removal goes on without its note (as where it cannot be written)."""
        try:
            notes = [n for n in self._read_removing() or [] if n.get("version")]
        except OSError as exc:
            self._unread_removing(exc, f"the removal of {version} is not noted there")
            return
        # a withdrawal that left its version in place (`kept`), unfinished (its recording failed this time: an I/O
        # error), is superseded by this removal of the same version: it removed nothing, and the withdrawal now is
        # decided on the pointer as it is (recording the stopped one too withdrew twice); a removal of the version's
        # files under way blocks it. A kept withdrawal raised here, however its version was noted (ops31).
        superseded = [n for n in notes if n.get("version") == version and n.get("kept")]
        if any(n.get("version") == version and not n.get("kept") for n in notes):
            raise RegistryError(f"a removal of {version} that a stopped command left is not finished yet (noted in "
                                f"{self.location}/{REMOVING}; the next command that writes the registry tries again): "
                                f"{version} was not removed again")
        for old in superseded:
            event = _noted_event(old) or {}
            doing, _, record = _noted_words(old, self.location)
            log.warning("%s that was %s stopped before it recorded %s, which is not recorded now: this %s supersedes "
                        "it (%s stays registered: %s)", _who(event), doing, record,
                        _NOTED_WORDS.get(str(action), ("", "", "removal"))[2].removeprefix("the "), version, old["kept"])
        notes = [n for n in notes if n not in superseded]
        note: dict[str, Any] = {"version": version, "dataset": dataset, "action": action,
                                "before": self._events_naming(version, dataset, action),
                                **({"event": event} if event else {})}
        if event and action in ("withdraw", "withdraw_champion"):
            with contextlib.suppress(RegistryError):  # (a pointer that does not read: no basis, never finished)
                data = self._read_pointer_file()
                if data is not None and not _is_legacy(data):
                    note["basis"] = _entry_digest(self._checked(data)["datasets"].get(dataset))
            note["spared"] = sorted(spared or ())
            if action == "withdraw_champion":
                note["champion"] = champion
            if kept:
                note["kept"] = kept
        try:
            self._put_removing([*notes, note])
        except (StorageError, OSError) as exc:  # a full disk: the pointer write that follows fails too, naming its
            log.debug("the removal note %s/%s could not be written (%s)", self.location, REMOVING, exc)  # file

    @contextlib.contextmanager
    def _unnoted_on_failure(self, version: str) -> Iterator[None]:
        """Around the pointer write that commits the removal of `version`, its note written (`_write_removing`): a
        write that fails (not killed: the caller is told the version stays) drops the note unless the removal was
        committed all the same (a folder sync failing after the rename), so that the next writer does not record the
        removal on the command's behalf (a take-back's, a withdrawal's noted event) after it was reported not done."""
        try:
            yield
        except Exception:
            with contextlib.suppress(Exception):
                if not any(self._removal_committed(n) for n in self._read_removing() or []
                           if n.get("version") == version):
                    self._clear_removing(version)
            raise

    def _put_removing(self, notes: builtins.list[dict[str, Any]]) -> None:
        """Called under the lock: `REMOVING` holds `notes` (one write: whole or not at all), removed when none."""
        if notes:
            self._write_note(REMOVING, {"removals": notes})
        else:
            self._clear_note(REMOVING)

    def _events_naming(self, version: str, dataset: str | None, action: str | None,
                       ptr: dict[str, Any] | None = None) -> int:
        """How many events of `action` name `version` in `dataset`'s entry of `ptr` (None: the pointer as committed;
        0 where it cannot be read)."""
        if not action:
            return 0
        if ptr is None:
            try:
                data = self._read_pointer_file()
                if data is None or _is_legacy(data):
                    return 0
                ptr = self._checked(data)
            except RegistryError:
                return 0
        ent = ptr["datasets"].get(dataset, {})
        return sum(1 for e in ent.get("events", [])
                   if isinstance(e, dict) and e.get("version") == version and e.get("action") == action)

    def _clear_removing(self, version: str) -> None:
        """Called under the lock once `version`'s files are gone: its note goes, the others' stay (notes that cannot
        be read now stay as they are: the next writer drops a finished removal's note)."""
        try:
            notes = self._read_removing()
        except OSError as exc:
            self._unread_removing(exc, f"the note of {version}, whose removal is done, is dropped by the next writer")
            return
        if notes is not None:
            self._put_removing([n for n in notes if n.get("version") and n.get("version") != version])

    def _read_removing(self) -> builtins.list[dict[str, Any]] | None:
        """The notes of the removals in flight (or of dead writers'), oldest first; [{}] when the file's text is not
        theirs (written atomically: only damage makes one), None when there is none. An older flowcast's file held one
        note (an object naming its version): a list of that one. OSError when the file cannot be read now (an I/O
        error, an object store's failed read): its notes may be whole, and a writer leaves it as it is (taken for a
        damaged file, it was cleared or overwritten, and a dead writer's removal it noted was lost: `_unread_removing`)."""
        try:
            doc = self._read_note(REMOVING)
        except FileNotFoundError:
            return None
        except ValueError:
            return [{}]
        if isinstance(doc, dict) and isinstance(doc.get("removals"), builtins.list):
            return [n if isinstance(n, dict) else {} for n in doc["removals"]]
        return [doc] if isinstance(doc, dict) else [{}]

    def _refuse_removed(self, version: str, what: str) -> None:
        """Called under the lock: RegistryError when the removal of `version` is recorded and not finished (its files
        left by an I/O error the lock's recovery met again: `_recover_removal`), so that nothing comes to name a
        version the next writer removes (production, the champion, a run's pin)."""
        if version in self.removals_due():
            raise RegistryError(f"{version}: its removal is recorded (noted in {self.location}/{REMOVING}) and its files "
                                "are not yet gone (the next command that writes the registry removes them): not "
                                f"{what}")

    def _unread_removing(self, exc: OSError, what: str) -> None:
        log.warning("could not read the removal notes %s/%s (%s): left as they are, %s; the next command that writes "
                    "the registry reads them again", self.location, REMOVING, " ".join(str(exc).split()), what)

    def _removal_committed(self, note: dict[str, Any], ptr: dict[str, Any] | None = None) -> bool:
        """Whether the removal `note` names was committed: its event is in the pointer (a removal with no pointer
        write, a gc's plain one, is committed by being decided)."""
        if not note.get("action"):
            return True
        if ptr is None:
            data = self._read_pointer_file()
            if data is None or _is_legacy(data):
                return False
            ptr = self._checked(data)
        # an event of its own, beyond those that named it when the note was written (`_write_removing`'s `before`)
        return self._events_naming(str(note.get("version")), note.get("dataset"), str(note["action"]), ptr) \
            > int(note.get("before") or 0)

    def removals_due(self) -> builtins.set[str]:
        """The versions whose removal was committed (a take-back, a withdrawal, a gc: its event is in the pointer) or
        decided and noted with the event the next writer records (a take-back killed before its pointer write), whose
        files a writer killed midway left: not listed (`list`), and the next command that writes the registry
        removes them (`_recover_removal`)."""
        out: builtins.set[str] = set()
        try:
            notes = self._read_removing() or []
        except OSError:  # not read now: none known (a writer leaves the file as it is)
            return out
        for note in notes:
            version = str(note.get("version") or "")
            if not version or not _VERSION_RE.match(version) or note.get("kept"):
                continue  # (a withdrawal that keeps its version: listed)
            with contextlib.suppress(RegistryError):
                if self._removal_committed(note) or (note.get("action") == "take_back" and _noted_event(note)):
                    out.add(version)
        return out

    def pending_removals(self, dataset: str | None = None) -> builtins.list[dict[str, Any]]:
        """The removals noted in `REMOVING` and not finished (of `dataset`, or all), oldest first, read without the
        lock (`models history`: what the next writer will do): {version, dataset, action, run, for_run, at, state}.
        `state`: 'recorded' (its event is in the pointer; its files are left, and the next writer removes them),
        'noted' (stopped before its pointer write, its event noted: the next writer records it on its run's behalf
        where nothing keeps the version), 'unrecorded' (stopped before its pointer write, with no event noted: nothing
        of it happened, and the next writer drops the note); a removal a live writer is making now reads the same (it
        cannot be told from a dead writer's here). `run`, `for_run`, `at`: the noted event's (None where none is
        noted). `kept`: why a withdrawal leaves its version in place ('' where it removes it): recorded, nothing is
        left to do but drop its note; noted, the next writer records it and leaves the version. Notes that cannot be
        read now: a warning, none listed."""
        try:
            notes = self._read_removing() or []
        except OSError as exc:
            log.warning("could not read the removal notes %s/%s (%s): the removals they note, if any, are not shown",
                        self.location, REMOVING, " ".join(str(exc).split()))
            return []
        out: builtins.list[dict[str, Any]] = []
        for note in notes:
            version = str(note.get("version") or "")
            if not version or not _VERSION_RE.match(version) or dataset not in (None, note.get("dataset")):
                continue
            event = _noted_event(note) or {}
            try:
                state = ("recorded" if self._removal_committed(note) else "noted" if event else "unrecorded")
            except RegistryError:  # a damaged pointer: `models repair` first
                state = "unknown"
            out.append({"version": version, "dataset": note.get("dataset"), "action": note.get("action"),
                        "run": event.get("run"), "for_run": event.get("for_run"), "at": event.get("at"),
                        "state": state, "kept": str(note.get("kept") or "")})
        return out

    def finish_removal(self) -> builtins.list[str]:
        """For a command that otherwise only reads the registry (a run that skips its date: it registers and pins
        nothing): take the lock when a removal note is left (`REMOVING`), which finishes or drops it
        (`_recover_removal`). Returns the versions they named (none: no note, nothing done)."""
        try:
            notes = self._read_removing()
        except OSError:  # not read now: the lock's recovery tries (and says why it cannot)
            notes = [{}]
        if notes is None:
            return []
        with self._lock():
            pass
        return [str(n["version"]) for n in notes if n.get("version")]

    def _recover_removal(self) -> None:
        """Called under the lock, so the removal notes found here are dead writers': committed (its event is in the
        pointer), a removal is finished, the pointer's backup copy brought up to date first (it may be one write
        behind) and the version's pins (lapsed: a run cannot pin a version taken out) removed with it; not committed
        (killed before its pointer write), nothing of it happened and the version stays, except a take-back or a
        withdrawal, whose note holds its event: that is recorded now, as the killed run decided it, where nothing keeps
        the version (`_kept_from_noted`; it used to leave no trace: the version stayed registered, no event said it was
        taken back; a withdrawal was dropped), and the version removed. A take-back killed
        between its `take_back` event and the removal left the version registered (`flowcast models list` showed a
        version the history said was taken back) until `flowcast gc`. A removal that cannot be finished (an I/O error)
        keeps its note, beside any this writer's own removal adds, and the next writer tries again; so do notes that
        cannot be read now (an I/O error: left as they are)."""
        try:
            notes = self._read_removing()
        except OSError as exc:
            self._unread_removing(exc, "none of them finished now")
            return
        if notes is None:
            return
        left = [note for note in notes if not self._recover_one(note)]
        if left != notes:
            self._put_removing(left)

    def _recover_one(self, note: dict[str, Any]) -> bool:
        """`_recover_removal` of one note: True when it is done with (finished, or dropped: nothing of it happened)."""
        version = str(note.get("version") or "")
        if not version or not _VERSION_RE.match(version):
            return True
        try:
            ptr = self._pointer_locked() if note.get("action") else None
            committed = self._removal_committed(note, ptr)
        except RegistryError:  # a damaged pointer: the note waits for `repair`
            return False
        event = None if committed or ptr is None else _noted_event(note)
        kept = bool(note.get("kept"))  # a withdrawal that leaves its version in place: its pointer write only
        if committed and kept:
            with contextlib.suppress(OSError, StorageError):  # (killed between the two writes: the next one copies)
                self._sync_backup_locked()
            return True
        if event is not None and ptr is not None and (why := self._kept_from_noted(ptr, note, event)):
            doing, _, record = _noted_words(note, self.location)
            log.warning("%s that was %s stopped (killed) before it recorded %s; it is not done now: %s",
                        _who(event), doing, record, why)
            return True
        if not committed and event is None:
            log.warning("model version %s of %s stays: the command that was removing it stopped before it "
                        "recorded the removal (killed, or out of disk); nothing of it was done", version, self.location)
            return True
        try:
            if event is not None and ptr is not None:  # the killed run's removal, recorded on its behalf
                ent = ptr["datasets"].setdefault(str(note.get("dataset")), {"stack": [], "events": []})
                if note["action"] == "withdraw":  # as it decided: the previous production model back
                    ent["stack"].pop()
                elif note["action"] == "withdraw_champion":  # as it decided: the champion it put back, or none
                    if isinstance(note.get("champion"), dict):
                        ent["champion"] = note["champion"]
                    else:
                        ent.pop("champion", None)
                kind = "run" if event.get("run") else "command"  # (a removal by hand names no run)
                ent["events"].append({**event, "late": kind, "reason": "; ".join(
                    x for x in (str(event.get("reason") or ""), _LATE_WORDS[kind]) if x)})
                self._write_pointer(ptr)
            self._sync_backup_locked()
            gone = False if kept else self._finish_removal(version)
            if not kept:
                self._remove_pins_of(version)
        except (OSError, StorageError) as exc:  # the note stays: the next writer tries again (this one's own
            log.warning("could not finish removing model version %s from %s (%s); the next command that writes the "
                        "registry tries again", version, self.location, " ".join(str(exc).split()))  # write goes on)
            return False
        if event is not None and kept:
            doing, _, record = _noted_words(note, self.location)
            log.warning("%s that was %s stopped (killed) before it recorded %s; its %s event is recorded now; %s stays "
                        "registered: %s", _who(event), doing, record, note["action"], version, note["kept"])
        elif event is not None:
            _, doing_it, record = _noted_words(note, self.location)
            log.warning("removed model version %s from %s: %s that was %s stopped (killed) before it recorded %s; its "
                        "%s event is recorded now", version, self.location, _who(event), doing_it, record,
                        note["action"])
        elif gone:
            what = f"its {note['action']} event" if note.get("action") else "its removal"
            log.warning("removed model version %s from %s: the command that removed it (%s is recorded in the "
                        "registry) stopped before its files were gone (killed, or out of disk)",
                        version, self.location, what)
        return True

    def _kept_from_noted(self, ptr: dict[str, Any], note: dict[str, Any], event: dict[str, Any]) -> str:
        """Why a removal a killed run decided (its note's `event`) is not done now ('': nothing keeps it). A take-back:
        its version gone, named by a dataset's production stack or champion, or pinned (as `delete` checks). A
        withdrawal (`withdraw`, `withdraw_champion`): its version gone, or the dataset's pointer entry not the one it
        was decided on (`basis`: its checks, the store's included, were read under the lock the killed run held, and
        the lock's next holder is the first to write; a later writer, after a recovery that failed, may have changed
        what they read), or pinned by a run other than those it spared. A withdrawal killed before its pointer write
        was dropped by the next writer, whatever held: the run's decision was lost (`model version V stays`)."""
        version = str(note["version"])
        if not self._has_version(version):
            return "the version is gone already"
        at = _event_time(event)
        if note.get("action") == "take_back":
            for ds, ent in ptr["datasets"].items():
                ch = ent.get("champion")
                if version in (ent.get("stack") or []) or (isinstance(ch, dict) and ch.get("version") == version):
                    return f"the version is named by the production pointer of {ds}"
            pinned = self.pins(at).get(version, "")
            return f"the version is {pinned}" if pinned else ""
        ds = note.get("dataset")
        if "basis" not in note or _entry_digest(ptr["datasets"].get(ds)) != note["basis"]:
            return (f"the production pointer of {ds} is no longer the one it was decided on (written since), so its "
                    f"checks do not hold for certain; {version} stays (a run of that date or slot decides again)")
        if not note.get("kept") and self._pinned_but_by(version, at, set(note.get("spared") or ())):
            return f"{version} is pinned by a run that forecasts with it since"  # (a kept one leaves it in place)
        return ""

    def _finish_removal(self, version: str) -> bool:
        """Called under the lock: remove what is left of `version` (whole, or out of sight with its files not yet
        removed). True when anything was left."""
        vdir = self.versions_dir / version
        if (self.remote is not None and self.remote.has_dir(f"versions/{version}")) or \
                (self.remote is None and vdir.is_dir()):
            self._remove_version(version)
            return True
        left = False
        if self.remote is not None and version in self.remote.list("versions"):  # its marker gone, objects not
            self._guarded(removal(f"{self.location}/versions/{version}"))
            self.remote.remove(f"versions/{version}")
            left = True
        for d in (vdir, self.versions_dir / f".tmp-deleted-{version}"):
            if d.is_dir():
                _make_writable(d)
                shutil.rmtree(d)
                left = True
        return left

    def _follow_up(self, ptr: dict[str, Any], ds: str, version: str, then: Promotion, *, check_only: bool = False,
                   ) -> None:
        """Apply `then` to pointer `ptr` (promote: compare and swap first; ProductionMovedError, nothing
        changed, when production moved); `check_only`: only the compare and swap, before `version` exists."""
        what = (f"this run's {version.rsplit('-v', 1)[0]} was neither registered nor promoted" if check_only
                else f"{version} was not promoted")
        ent = ptr["datasets"].setdefault(ds, {"stack": [], "events": []})
        previous = ent["stack"][-1] if ent["stack"] else None
        if then.action == "promote":
            if then.expected is not ANY and previous != then.expected:
                raise ProductionMovedError(
                    f"production of {ds} moved while this run was deciding: it started from "
                    f"{then.expected or 'no production model'} and is now {previous or 'empty'}; {what} (run again to "
                    "compare against the new production model)"
                )
            if check_only:
                return
            if previous != version:
                ent["stack"].append(version)
            # with the promoting run's as_of, as a retrain that kept production records it (`keep`): `models
            # history` listed a keep with its as_of below a promotion without one
            ent["events"].append({"action": "promote", "version": version, "previous": previous,
                                  "reason": then.reason, "at": _iso(then.at),
                                  **({"as_of": _iso(then.as_of)} if then.as_of is not None else {})})
        elif not check_only:
            _champion(ent, version, reason=then.reason, at=then.at, as_of=then.as_of)

    def _read_pointer_file(self) -> Any:
        try:
            if self.remote is not None:
                try:
                    text = self.remote.read_text("production.json")
                except FileNotFoundError:
                    return None
            else:
                if not self.pointer_path.exists():
                    return None
                text = self.pointer_path.read_text()
            return json.loads(text)
        except (ValueError, OSError) as exc:
            raise self._corrupt(str(exc)) from exc

    def _write_pointer(self, obj: Any, fault: str = "before_pointer_rename") -> bool:
        """Replace production.json whole (local: temp, fsync, rename; remote: one PUT). Called under
        the lock, so a temp file of the pointer, of its backup or of history.jsonl found here is a dead writer's:
        removed first (those of the backup and of history.jsonl, a full copy of the history each, stayed for good).
        Each dataset's `keep` events beyond its newest KEEP_EVENTS_KEPT go to history.jsonl first (`_archive_keeps`).
        Returns whether the backup copy was written too (False: one write behind, `_backup_written`)."""
        if self.remote is None:
            for name in (self.pointer_path.name, BACKUP_POINTER, HISTORY):
                for stale in self.root.glob(f".{name}.*.tmp"):
                    stale.unlink(missing_ok=True)
        self._archive_keeps(obj)
        if self.remote is None:
            _write_json_atomic(self.pointer_path, obj, fault=fault)
            _fault("after_pointer_rename")  # the swap is done, its backup copy not yet written
            return self._backup_written(lambda: _write_json_atomic(self.root / BACKUP_POINTER, obj, fault=None))
        text = json.dumps(obj, indent=2, default=str)
        _fault(fault)
        self._guarded(self.pointer_label)
        self.remote.write_text("production.json", text)
        remote = self.remote
        return self._backup_written(lambda: remote.write_text(BACKUP_POINTER, text))

    def _backup_written(self, write: Callable[[], Any]) -> bool:
        """The write of the pointer's backup copy, once production.json is committed: True when done; a failure there
        (a full disk, an I/O error) is a warning naming the copy, not the command's failure, and False. The change
        took effect, and a command that then failed (a promote, a withdrawal, a retrain's keep event) was reported as
        not done, and retried. The copy stays one write behind until the next pointer write (or
        `_sync_backup_locked`): a removal leaves its version to the next writer meanwhile (`_removed_now`)."""
        try:
            write()
            return True
        except (OSError, StorageError) as exc:
            log.warning("%s was written, but its backup copy %s/%s could not be (%s): the change took effect; the "
                        "copy is one write behind (what `flowcast models repair` would restore) until the next write of "
                        "the registry's pointer", self.pointer_label, self.location, BACKUP_POINTER,
                        " ".join(str(exc).split()))
            return False

    def _removed_now(self, version: str, backup_current: bool) -> bool:
        """Called under the lock, once the pointer write that commits the removal of `version` is done: whether its
        files go now. Not while the pointer's backup copy (what `models repair` restores) is one write behind, still
        naming it (`_backup_written`): restored, it named a version whose files were gone. Its note stays, and the
        next writer brings the copy up to date first, then removes it (`_recover_removal`), as for a command killed
        between the two writes. Where its note could not be written either (`_write_removing`: a full disk), no writer
        knows of it: the version stays registered and listed, and the warning says that `flowcast gc` removes it."""
        if backup_current:
            return True
        try:
            noted = any(n.get("version") == version for n in self._read_removing() or [])
        except OSError:  # not read now: the next writer reads the notes again
            noted = True
        if noted:
            log.warning("model version %s of %s is left for the next command that writes the registry to remove, "
                        "once the pointer's backup copy is up to date (it still names the version)", version,
                        self.location)
        else:
            log.warning("model version %s of %s stays registered (listed), though its removal is recorded: the "
                        "pointer's backup copy still names it, and its removal note could not be written, so no "
                        "later command finishes it; `flowcast gc --version %s --yes` removes it (the copy brought up "
                        "to date first)", version, self.location, version)
        return False

    # ------------------------------------------------------------------ history.jsonl: `keep` events moved out
    def _read_moved(self, *, required: bool = True) -> dict[str, builtins.list[tuple[int, dict[str, Any]]]]:
        """dataset -> [(after, event)] of history.jsonl, in file order (empty when there is none). Not `required`
        (a slot check, `history(recent_only_if_unreadable=True)`): a file that cannot be read at all is a warning
        naming it, and reads as empty. A line that
        does not read (the file is rewritten whole, so only damage makes one: a disk error, a copy cut short, a hand
        edit) is left out with a warning naming it; the others are read. Each line is decoded on its own: a byte
        that is not UTF-8 (the file is ASCII) failed every `models history` and every pointer write (a promotion,
        a retrain's keep event) with a bare UnicodeDecodeError."""
        try:
            data = (self.remote.read_bytes(HISTORY) if self.remote is not None
                    else (self.root / HISTORY).read_bytes())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            said = (f"could not read {self.location}/{HISTORY}, the older `keep` events of the registry: {exc}. "
                    "`flowcast models repair` mends production.json, not this file: make it readable again, or move "
                    "it aside (its events are records of retrains that kept production, kept for `flowcast models "
                    "history`)")
            if not required:
                log.warning("%s; read without them (a retrain's newest `keep` events are in production.json)", said)
                return {}
            raise RegistryError(said) from exc
        out: dict[str, builtins.list[tuple[int, dict[str, Any]]]] = {}
        for n, raw in enumerate(data.split(b"\n"), 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
                out.setdefault(str(rec["dataset"]), []).append((int(rec["after"]), dict(rec["event"])))
            except (ValueError, KeyError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
                log.warning("%s/%s line %d cannot be read (%s: %r): the `keep` event it held (a retrain that kept "
                            "production) is left out of the history; the other lines are read, and runs, "
                            "promotions and rollbacks are not affected", self.location, HISTORY, n,
                            " ".join(str(exc).split())[:160], raw[:80])
        return out

    def _archive_keeps(self, ptr: Any) -> None:
        """Called under the lock before `ptr` is written: move each dataset's `keep` events beyond its newest
        KEEP_EVENTS_KEPT to history.jsonl (written first, whole and atomically: a kill in between leaves them in
        both, which `history` shows once), then out of `ptr`."""
        if not isinstance(ptr, dict) or not isinstance(ptr.get("datasets"), dict):
            return
        over = {ds: ent for ds, ent in ptr["datasets"].items() if isinstance(ent, dict)
                and sum(isinstance(e, dict) and e.get("action") == "keep" for e in ent.get("events") or [])
                > KEEP_EVENTS_KEPT}
        if not over:
            return
        moved = self._read_moved()
        lines: builtins.list[str] = []
        for ds, ent in sorted(over.items()):
            events = ent["events"]
            keeps = [i for i, e in enumerate(events) if isinstance(e, dict) and e.get("action") == "keep"]
            out = set(keeps[:len(keeps) - KEEP_EVENTS_KEPT])
            have = {_event_key(e) for _, e in moved.get(ds, [])}
            others = 0
            for i, e in enumerate(events):
                if i in out and _event_key(e) not in have:
                    lines.append(json.dumps({"dataset": ds, "after": others, "event": e}, default=str))
                elif not (isinstance(e, dict) and e.get("action") == "keep"):
                    others += 1
            ent["events"] = [e for i, e in enumerate(events) if i not in out]
        if not lines:
            return
        if self.remote is not None:
            try:
                old_bytes = self.remote.read_bytes(HISTORY)  # bytes: a damaged line stays as it is (`_read_moved`)
            except FileNotFoundError:
                old_bytes = b""
        else:
            path = self.root / HISTORY
            old_bytes = path.read_bytes() if path.exists() else b""
        if old_bytes and not old_bytes.endswith(b"\n"):  # a last line cut short: the new ones start their own
            old_bytes += b"\n"
        if self.remote is not None:
            self._guarded(f"{self.location}/{HISTORY}")
            self.remote.write_bytes(HISTORY, old_bytes + "".join(f"{line}\n" for line in lines).encode())
            return
        _write_bytes_atomic(path, old_bytes + "".join(f"{line}\n" for line in lines).encode(),
                            fault="before_history_rename")

    def _version_names(self) -> builtins.list[str]:
        """Every name under versions/, complete or not (temporary folders included)."""
        if self.remote is not None:
            return self.remote.list("versions")
        return [d.name for d in self.versions_dir.iterdir()] if self.versions_dir.exists() else []

    def _has_version(self, version: str) -> bool:
        if self.remote is not None:
            return self.remote.has_dir(f"versions/{version}")
        return (self.versions_dir / version / "version.json").exists()

    def _read_meta(self, version: str) -> str:
        if self.remote is not None:
            return self.remote.read_text(f"versions/{version}/version.json")
        return (self.versions_dir / version / "version.json").read_text()

    def _materialize(self, version: str) -> None:
        """A registry at a URL: copy the version's files into the local cache once (immutable)."""
        local = self.versions_dir / version
        if self.remote is None or (local / "version.json").exists():
            return
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=self.versions_dir))
        os.chmod(tmp, plain_mode(directory=True))  # mkdtemp's 0700 would stay the version's
        try:
            self.remote.get_dir(f"versions/{version}", tmp)
            _make_readonly(tmp)
            os.rename(tmp, local)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):  # another process copied it meanwhile
                raise
        finally:
            if tmp.exists():
                _make_writable(tmp)
                shutil.rmtree(tmp, ignore_errors=True)

    def _checked(self, data: Any) -> dict[str, Any]:
        problem = None
        if not isinstance(data, dict) or data.get("format") != POINTER_FORMAT:
            problem = f"unknown format {data.get('format') if isinstance(data, dict) else type(data).__name__!r}"
        elif not isinstance(data.get("datasets"), dict):
            problem = "no 'datasets' mapping"
        else:
            for name, entry in data["datasets"].items():
                if not isinstance(entry, dict) or not isinstance(entry.get("stack"), list):
                    problem = f"dataset {name!r} has no 'stack' list"
                    break
                entry.setdefault("events", [])
        if problem:
            raise self._corrupt(problem)
        return data

    def _corrupt(self, problem: str) -> RegistryError:
        err = RegistryError(
            f"corrupt production pointer {self.pointer_label}: {problem}. `flowcast models repair` puts it back "
            f"from its copy {self.location}/{BACKUP_POINTER} (or, without a readable copy, points each dataset at "
            "the model of its newest publish) and keeps the damaged file beside it")
        err.problem = problem  # type: ignore[attr-defined]
        return err

    def _pointer(self) -> dict[str, Any]:
        """The pointer (format 2); a legacy one is migrated first, under the lock."""
        data = self._read_pointer_file()
        if data is None:
            return _empty_pointer()
        if _is_legacy(data):
            with self._lock():
                return self._pointer_locked()
        return self._checked(data)

    def _pointer_locked(self) -> dict[str, Any]:
        data = self._read_pointer_file()
        if data is None:
            return _empty_pointer()
        if _is_legacy(data):
            data = self._migrate(data)
        return self._checked(data)

    def _migrate(self, old: dict[str, Any]) -> dict[str, Any]:
        """Called under the lock: split the one legacy stack by dataset; keep the old file."""
        old.setdefault("events", [])
        trained_on = {v.version: v.dataset for v in self._scan()}
        known = sorted({d for d in trained_on.values() if d})
        fallback = known[0] if len(known) == 1 else DEFAULT_DATASET
        new: dict[str, Any] = _empty_pointer()
        new["migrated_from"] = LEGACY_POINTER
        new["legacy_dataset"] = fallback

        def entry(version: Any) -> dict[str, Any]:
            ds = trained_on.get(str(version)) or fallback
            return new["datasets"].setdefault(ds, {"stack": [], "events": []})

        for v in old["stack"]:
            entry(v)["stack"].append(v)
        for e in old["events"]:
            # a rollback undid a promotion of the version it removed ("previous"): that dataset's event
            by = e.get("previous") if isinstance(e, dict) and e.get("action") == "rollback" else (
                e.get("version") if isinstance(e, dict) else None)
            entry(by)["events"].append(e)
        for ds, ent in new["datasets"].items():
            ent["events"].append({
                "action": "migrate", "version": ent["stack"][-1] if ent["stack"] else None, "previous": None,
                "reason": f"one production pointer per dataset: "
                          f"{plural(len(ent['stack']), 'promotion')} of {ds} kept from "
                          f"the home's single pointer ({LEGACY_POINTER})", "at": None,
            })
        if self.remote is not None:
            if not self.remote.exists(LEGACY_POINTER):  # the old pointer, byte for byte
                self.remote.write_bytes(LEGACY_POINTER, self.remote.read_bytes("production.json"))
        else:
            legacy = self.root / LEGACY_POINTER
            if not legacy.exists():
                _write_bytes_atomic(legacy, self.pointer_path.read_bytes())
        self._write_pointer(new, fault="before_migration_rename")
        return new

    def _legacy_dataset(self) -> str:
        with contextlib.suppress(RegistryError):
            data = self._read_pointer_file()
            if isinstance(data, dict) and data.get("legacy_dataset"):
                return str(data["legacy_dataset"])
        return DEFAULT_DATASET

    def _read_version(self, version: str) -> ModelVersion:
        vdir = self.versions_dir / version
        meta_path = f"{self.location}/versions/{version}/version.json"
        try:
            meta = json.loads(self._read_meta(version))
            fingerprint = meta.get("fingerprint") or {}
            kind = meta.get("kind") or "network"
            recipe = meta.get("recipe") or network_recipe(meta["name"])
            return ModelVersion(
                version=meta["version"], name=meta["name"], path=vdir / "artifact", config=meta.get("config", {}),
                fingerprint=fingerprint, metrics=meta.get("metrics", {}), as_of=meta.get("as_of"),
                created_at=meta["created_at"], seq=int(meta.get("seq", 0)),
                dataset=meta.get("dataset") or (fingerprint.get("source") if isinstance(fingerprint, dict) else None),
                kind=kind, recipe=recipe,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RegistryError(f"corrupt registry entry {meta_path}: {exc}") from exc

    def _scan(self) -> list[ModelVersion]:
        """The versions whose metadata reads; a damaged one (its version.json cut short or
        overwritten) is left out with a warning, so that it does not take every listing, `gc`
        (which removes it when named) and `models list` down with it."""
        out = []
        for name, problem in self._entries():
            if isinstance(problem, ModelVersion):
                out.append(problem)
            else:
                log.warning("%s: left out of the registry's list (`flowcast gc --version %s --yes` removes it)",
                            problem, name)
        return out

    def _entries(self) -> list[tuple[str, ModelVersion | str]]:
        # a registration not committed, a removal committed and not finished (its writer killed): not listed
        hidden = {self._uncommitted(), *self.removals_due()}
        out: list[tuple[str, ModelVersion | str]] = []
        for n in self._version_names():
            if n.startswith(".") or n in hidden or not self._has_version(n):
                continue
            try:
                out.append((n, self._read_version(n)))
            except RegistryError as exc:
                out.append((n, str(exc)))
        return out

    def removed_before(self, version: str) -> bool:
        """Whether `version` names a version this registry once held and has removed since (a `flowcast gc`,
        perhaps one killed after the removal): its sequence number was handed out (numbers are never reused)
        and no version on disk carries it. A name whose number was never handed out is a typo."""
        m = _VERSION_RE.match(version)
        with contextlib.suppress(RegistryError):
            self._pointer()  # a legacy pointer is migrated under the lock first: _next_seq reads it unlocked
        if m is None or version.startswith(".") or int(m.group("seq")) >= self._next_seq():
            return False
        seq = int(m.group("seq"))
        due = self.removals_due()  # its removal committed, its files not yet removed: removed
        for n in self._version_names():
            on_disk = _VERSION_RE.match(n.removeprefix(".tmp-deleted-"))
            if on_disk is not None and int(on_disk.group("seq")) == seq and not n.startswith(".tmp-deleted-") \
                    and n not in due:
                if self.remote is not None and not self._has_version(n):
                    continue  # at a URL, a folder without its marker is no version: a removal stopped midway
                return False
        return True

    def damaged(self) -> dict[str, str]:
        """version -> why, of the registered versions whose metadata cannot be read."""
        return {n: p for n, p in self._entries() if isinstance(p, str)}

    def _next_seq(self) -> int:
        """One more than any version ever seen: on disk or named in a promotion history (so a
        version deleted by hand never has its name reused for a different model)."""
        names = self._version_names()
        with contextlib.suppress(RegistryError):
            for ent in self._pointer_locked()["datasets"].values():
                names += [str(v) for v in ent["stack"]]
                names += [str(e.get(k)) for e in ent["events"] for k in ("version", "previous") if e.get(k)]
                if isinstance(ent.get("champion"), dict):
                    names.append(str(ent["champion"].get("version")))
        with contextlib.suppress(RegistryError):
            names += [str(e.get("version")) for kept in self._read_moved().values() for _, e in kept if e.get("version")]
        seqs = [0]
        for n in names:
            m = _VERSION_RE.match(n)
            if m and not n.startswith("."):
                seqs.append(int(m.group("seq")))
        return max(seqs) + 1

    def leftovers(self) -> builtins.list[str]:
        """The folders under versions/ that writers stopped midway left, none of them a listed version, by name:
        `.tmp-deleted-<version>` (a version a gc took out of sight and did not finish removing), `.tmp-<random>` (a
        registration that never completed); at a URL, a version folder without its marker (either). The next
        registration removed them; `flowcast gc` lists and removes them too (`remove_leftover`), where its re-run
        said 'removed already: nothing to do' and left the files."""
        out = [d.name for d in self.versions_dir.iterdir() if d.name.startswith(".tmp-") and d.is_dir()] \
            if self.versions_dir.exists() else []
        if self.remote is not None:
            out += [n for n in self.remote.list("versions") if not self._has_version(n)]
        out += sorted(self.removals_due() & set(self._version_names()))  # (`removals_due`)
        return sorted(set(out))

    def leftover_size(self, name: str) -> int:
        """Bytes of one of `leftovers` (0 when they cannot be told)."""
        return self._size(f"versions/{name}")

    def version_size(self, version: str) -> int:
        """Bytes of a registered version where its files are (at a URL: the objects, whether or not this machine
        holds a copy; 0 when they cannot be told)."""
        return self._size(f"versions/{version}")

    def _size(self, rel: str) -> int:
        if self.remote is not None:
            with contextlib.suppress(Exception):  # a size is a courtesy of the listing
                return int(self.remote.fs.du(self.remote.url(rel)))
        total = 0
        for dirpath, _dirs, files in os.walk(self.root / rel):  # at a URL: this machine's copy, if any
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, f)).st_size
        return total

    def remove_leftover(self, name: str) -> bool:
        """Remove one of `leftovers` under the lock (where no writer is midway: a registration holds the lock until
        its version is in place). False when it is gone already, or became a version meanwhile. A removal whose record
        was committed is finished as the lock is taken: its version's folder, or `.tmp-deleted-<version>` where it was
        out of sight, goes then, removed by this call (it returned False, and gc said it kept that folder as 'protected
        meanwhile' under its 'Removed' table)."""
        if "/" in name or name in ("", ".", ".."):
            raise RegistryError(f"{name!r} is not a folder a stopped writer left under {self.location}/versions")
        due = bool({name, name.removeprefix(".tmp-deleted-")} & self.removals_due())
        with self._lock():  # (a removal whose record was committed is finished as the lock is taken)
            removed = due and name not in self._version_names()
            if self.remote is not None and name in self.remote.list("versions") and not self._has_version(name):
                self._guarded(removal(f"{self.location}/versions/{name}"))
                self.remote.remove(f"versions/{name}")
                removed = True
            d = self.versions_dir / name
            if name.startswith(".tmp-") and d.is_dir():
                _make_writable(d)
                shutil.rmtree(d)
                removed = True
            return removed

    def _clean_stale_temps(self) -> None:
        """Called under the lock: any temporary directory left is from a writer that died (at a
        URL: a version folder without its marker, uploaded half-way)."""
        if self.remote is not None:
            for name in self.remote.list("versions"):
                if not self.remote.has_dir(f"versions/{name}"):
                    self.remote.remove(f"versions/{name}")
        if self.versions_dir.exists():
            for d in self.versions_dir.iterdir():
                if d.name.startswith(".tmp-"):
                    _make_writable(d)
                    shutil.rmtree(d, ignore_errors=True)

    def _dataset_of(self, ptr: dict[str, Any], dataset: str | None, *, need_stack: bool = True) -> str | None:
        """`dataset`, or when None the one dataset that has a production model (None when there is
        none); RegistryError naming them when several datasets have one."""
        if dataset is not None:
            return dataset
        names = sorted(n for n, e in ptr["datasets"].items() if e["stack"] or not need_stack)
        if len(names) > 1:
            raise RegistryError(f"this registry holds production models of several datasets {names}: name one "
                                "(--dataset)")
        return names[0] if names else None

    def _existing(self, version: str, where: str, *, fetch: bool = True) -> ModelVersion:
        if not self._has_version(version):
            raise RegistryError(
                f"unknown model version {version!r} in {where} {self.pointer_label}: it is missing "
                f"from {self.location}/versions (deleted by hand?); `flowcast models rollback` or "
                "`flowcast models promote VERSION` puts an existing version in production"
            )
        try:
            return self.get(version, fetch=fetch)
        except RegistryError as exc:
            if where != "the production pointer" or version not in self.damaged():
                raise
            raise RegistryError(
                f"{exc}. {version} is production in {self.pointer_label}: `flowcast models repair` takes it out of "
                "production (the model before it is put back, or none, and the next `flowcast run` promotes its "
                "best), `flowcast models promote VERSION` puts another version in its place"
            ) from exc

    # ------------------------------------------------------------------ API
    def register(
        self,
        artifact_dir: Path | None,
        *,
        name: str,
        dataset: str | None = None,
        kind: str = "network",
        recipe: dict[str, Any] | None = None,
        config: dict | None = None,
        fingerprint: dict | None = None,
        metrics: dict | None = None,
        as_of: datetime | None = None,
        created_at: datetime,
        then: Promotion | None = None,
        pin: Pin | None = None,
    ) -> ModelVersion:
        """Copy `artifact_dir` (None for a statistical model: nothing was trained) into a new
        immutable version `<name>-v<seq>` of `dataset` (default: the fingerprint's `source`).
        `recipe` (JSON) says how it forecasts; default: one network. Production is untouched unless
        `then` promotes the version (or records it as the champion) in the same transaction (see
        the module doc): ProductionMovedError, and nothing registered, when production moved. `pin`: pinned
        for a run in the same transaction, before the lock is released (a pin taken after the registration
        left a window in which `flowcast gc` could remove a version that was neither production nor champion:
        a backfill date's own model, a candidate published without promotion)."""
        if then is not None and then.action not in FOLLOW_UPS:
            raise RegistryError(f"unknown follow-up {then.action!r} of a registration: one of {list(FOLLOW_UPS)}")
        if artifact_dir is not None:
            artifact_dir = Path(artifact_dir)
            if not artifact_dir.is_dir():
                raise RegistryError(f"artifact directory not found: {artifact_dir}")
        elif kind != "statistical":
            raise RegistryError(f"a {kind} model needs its artifact directory (only a statistical one has none)")
        if not _NAME_RE.match(name):
            raise RegistryError(f"model name {name!r} may only contain letters, digits, '.', '_' and '-'")
        if kind not in KINDS:
            raise RegistryError(f"model kind {kind!r} is not one of {list(KINDS)}")
        fingerprint = dict(fingerprint or {})
        dataset = dataset or fingerprint.get("source") or DEFAULT_DATASET
        recipe = _recipe_of(name, kind, recipe)
        recipe_text = json.dumps(recipe, indent=2, allow_nan=False)
        with self._lock():
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            self._clean_stale_temps()
            seq = self._next_seq()
            version = f"{name}-v{seq}"
            ptr = self._pointer_locked() if then is not None else None
            if ptr is not None and then is not None:  # a run that lost the race registers nothing
                self._follow_up(ptr, dataset, version, then, check_only=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.versions_dir))
            os.chmod(tmp, plain_mode(directory=True))  # mkdtemp's 0700 would stay the version's
            try:
                if artifact_dir is not None:
                    shutil.copytree(artifact_dir, tmp / "artifact")
                else:
                    (tmp / "artifact").mkdir()
                (tmp / "artifact" / RECIPE_FILE).write_text(recipe_text)
                meta = {
                    "version": version, "name": name, "seq": seq, "dataset": dataset, "kind": kind, "recipe": recipe,
                    "config": config or {}, "fingerprint": fingerprint, "metrics": metrics or {},
                    "as_of": _iso(as_of), "created_at": _iso(created_at),
                }
                (tmp / "version.json").write_text(json.dumps(meta, indent=2, default=str))
                _fsync_tree(tmp)
                _make_readonly(tmp)
                if then is not None:
                    self._write_pending({"version": version, "dataset": dataset, "action": then.action,
                                         "at": _iso(then.at)})
                _fault("before_version_rename")
                if self.remote is not None:  # uploaded whole (marker last), then kept as the local copy
                    self._guarded(f"{self.location}/versions/{version}")
                    self.remote.put_dir(tmp, f"versions/{version}")
                    stale = self.versions_dir / version
                    if stale.exists():  # a copy from a registry that was wiped and reused its names
                        _make_writable(stale)
                        shutil.rmtree(stale)
                os.rename(tmp, self.versions_dir / version)
                _fsync_dir(self.versions_dir)
                if pin is not None:  # before the commit: a pin that cannot be written rolls the registration back
                    self._write_pin(version, pin)
                if ptr is not None and then is not None:
                    _fault("before_promotion")
                    self._follow_up(ptr, dataset, version, then)
                    self._write_pointer(ptr)  # the commit
                    with contextlib.suppress(Exception):  # a note left behind is read as committed
                        self._clear_pending()
            except BaseException as exc:
                _make_writable(tmp)
                shutil.rmtree(tmp, ignore_errors=True)
                if then is not None:  # not committed: rolled back whole (else by the next writer)
                    with contextlib.suppress(Exception):
                        self._recover_pending()
                if isinstance(exc, OSError):  # a full disk (shutil.Error is one too): one sentence, the path
                    raise storage_error(self.versions_dir / version, exc) from exc
                raise
        return self.get(version)

    def get(self, version: str, *, fetch: bool = True) -> ModelVersion:
        """One version. At a URL its files are copied to the local cache first (`path` is that
        copy); fetch=False skips the copy (metadata only: the registry's own pointer moves)."""
        if not version or version.startswith(".") or "/" in version or not self._has_version(version):
            known = [v.version for v in self.list()]
            hint = f"; known: {known[-10:]}" if known else "; the registry is empty"
            raise RegistryError(f"unknown model version {version!r}{self._gone_hint(version)}{hint}")
        mv = self._read_version(version)
        if fetch:
            self._materialize(version)
        if mv.dataset is None:
            mv.dataset = self._legacy_dataset()
        return mv

    def _gone_hint(self, version: str) -> str:
        """What the history says of a `version` no longer on disk (a refused retrain's withdrawn winner, a version gc
        removed): its last event, numbered as `flowcast models history` numbers it. A winner the UI's withdrawn
        leaderboard named (ui20: `models show damped-v2`) read 'unknown model version' as if it never existed."""
        last: tuple[int, dict[str, Any]] | None = None
        with contextlib.suppress(RegistryError, OSError, ValueError):
            count: dict[str, int] = {}
            for e in self.history():
                n = count[str(e.get("dataset"))] = count.get(str(e.get("dataset")), 0) + 1
                if e.get("version") == version:
                    last = (n, e)
        if last is None:
            return ""
        n, e = last
        ds, action = e.get("dataset"), str(e.get("action"))
        what = _GONE_WORDS.get(action, f"its last event: {action}").format(ds=ds)
        try:  # to the second, as every instant reads (`timekeys.utc_text`; it read ISO, '2026-12-05T05:58:42')
            at = f" at {utc_text(str(e['at']))}" if e.get("at") else ""
        except ValueError:  # not a time: as recorded
            at = f" at {e['at']}"
        return (f": it is no longer in this registry (removed; {what}{at}, #{n} of `flowcast models history "
                f"--dataset {ds}`)")

    def list(self, name: str | None = None, dataset: str | None = None) -> list[ModelVersion]:
        """Registered versions, oldest first (optionally only those of model `name` or `dataset`)."""
        out = self._scan()
        legacy = self._legacy_dataset() if any(v.dataset is None for v in out) else None
        for v in out:
            if v.dataset is None:
                v.dataset = legacy
        if name is not None:
            out = [v for v in out if v.name == name]
        if dataset is not None:
            out = [v for v in out if v.dataset == dataset]
        return sorted(out, key=lambda v: (v.seq, v.version))

    def datasets(self) -> builtins.list[str]:
        """Datasets with a production pointer (a model in production now or before)."""
        return sorted(self._pointer()["datasets"])

    def production(self, dataset: str | None = None) -> ModelVersion | None:
        """The production version of `dataset` (None: the only dataset that has one); None when it
        has none; RegistryError when the pointer names a version that is gone."""
        ptr = self._pointer()
        ds = self._dataset_of(ptr, dataset)
        stack = ptr["datasets"].get(ds, {}).get("stack") if ds is not None else None
        if not stack:
            return None
        return self._existing(stack[-1], "the production pointer")

    def productions(self) -> dict[str, ModelVersion]:
        """dataset -> its production version, for every dataset that has one (gone versions left out;
        metadata only: at a URL their files are not copied here)."""
        out = {}
        for ds, ent in self._pointer()["datasets"].items():
            if ent["stack"] and self._has_version(ent["stack"][-1]):
                out[ds] = self.get(ent["stack"][-1], fetch=False)
        return out

    def history(self, dataset: str | None = None, *,
                recent_only_if_unreadable: bool = False) -> builtins.list[dict[str, Any]]:
        """Promotions, rollbacks, champion choices and retrains that kept production, oldest first: {action,
        version, previous, reason, at} (`keep` adds as_of and run; plus `dataset` when all datasets are listed),
        the `keep` events moved to history.jsonl included, each in its place. `recent_only_if_unreadable`: a
        history.jsonl that cannot be read is a warning naming it, and the events of production.json are read (each
        dataset's newest KEEP_EVENTS_KEPT `keep` events: a scheduled retrain's slot check, which asks of the slot
        retrained now, failed the run's publish, where its check as it started went on)."""
        ptr = self._pointer()
        moved = self._read_moved(required=not recent_only_if_unreadable)
        if dataset is not None:
            return _merge_history(ptr["datasets"].get(dataset, {}).get("events", []), moved.get(dataset, []))
        # a dataset whose events are all in history.jsonl (its pointer entry lost: `repair` re-derived the pointer
        # from the publishes, with none of that dataset) was left out: `models history` said 'no history'
        return [{**e, "dataset": ds} for ds in sorted(set(ptr["datasets"]) | set(moved))
                for e in _merge_history(ptr["datasets"].get(ds, {}).get("events", []), moved.get(ds, []))]

    def promote(self, version: str, *, dataset: str | None = None, expected: Any = ANY, reason: str = "",
                at: datetime | None = None) -> ModelVersion:
        """Make `version` the production model of `dataset` (default: the dataset it was trained on)
        in one atomic pointer swap. With `expected` (a version, or None for 'no production model'),
        compare and swap: ProductionMovedError, and nothing changed, when production moved."""
        with self._lock():
            mv = self.get(version, fetch=False)  # under the lock: no download
            self._refuse_removed(version, "promoted")
            ds = dataset or mv.dataset or DEFAULT_DATASET
            _refuse_other_dataset(mv, dataset, "production model")
            ptr = self._pointer_locked()
            ent = ptr["datasets"].setdefault(ds, {"stack": [], "events": []})
            previous = ent["stack"][-1] if ent["stack"] else None
            if expected is not ANY and previous != expected:
                raise ProductionMovedError(
                    f"production of {ds} moved while this run was deciding: it started from "
                    f"{expected or 'no production model'} and is now {previous or 'empty'}; {version} was not promoted "
                    "(run again to compare against the new production model)"
                )
            if previous != version:
                ent["stack"].append(version)
            ent["events"].append(
                {"action": "promote", "version": version, "previous": previous, "reason": reason, "at": _iso(at)}
            )
            self._write_pointer(ptr)
        return mv

    @contextlib.contextmanager
    def publishing(self, dataset: str, expected: str | None, *, promoted: bool = False,
                   at: datetime | None = None, kept: Kept | None = None, run: str | None = None,
                   ) -> Iterator[PublishGuard]:
        """Hold the registry's lock while a run publishes forecasts of `dataset` made by `expected`,
        the production model the run decided on (None: none was in production). Checked under the
        lock first: ProductionMovedError, and the caller publishes nothing, when production of
        `dataset` is no longer `expected` (another run or a person promoted, rolled back or
        withdrew meanwhile). No pointer moves until the block ends, so forecasts land only while
        the model that made them is in production, and two runs' check-then-publish never
        interleave. Nothing in the block may take this registry's lock again (it would wait for itself).
        `promoted`: the run promoted `expected` itself; when it lost, its promotion, still in the
        stack under the later one, is taken out (a `retract` event), so a rollback never puts back
        a model whose forecasts were never published.
        Yields `check(what)`: call it right before the publish becomes visible (the store's rename or
        commit). At a URL it fails (StorageError, `what` not written) when this holder's lease on the lock
        object was lost meanwhile (a process stopped or cut off for longer than the lease: a waiter broke
        the lock and may have promoted), so a publish never lands under a production it was not checked
        against; a local registry's lock cannot be lost (it does nothing).
        `kept`: the run kept `expected` in production; a `keep` event is written (`Kept`) when `check(what)` is called,
        which the store does only once its key let the publish through (a publish refused there records none).
        What it yields also has `refuse(reason)`: the store refused the publish (overwrite off: another run published
        the key meanwhile); a run that `promoted` `expected` has that promotion withdrawn there and then, still under
        this lock (no other run can have promoted over it or published with it in between), and the version removed."""
        with self._lock():
            ptr = self._pointer_locked()
            ent = ptr["datasets"].get(dataset, {})
            stack = ent.get("stack") or []
            now = stack[-1] if stack else None
            if now != expected:
                retracted = ""
                if promoted and expected is not None and _retract(
                        ent, expected, at=at, reason=f"promoted, but production moved to {now} before it published"):
                    self._write_pointer(ptr)
                    retracted = f"; {expected} was taken out of the production stack (a rollback skips it)"
                raise ProductionMovedError(
                    f"production of {dataset} moved before this run published: it decided on "
                    f"{expected or 'no production model'} and production is now {now or 'empty'}; nothing was "
                    f"published{retracted} (run again to compare against the new production model)")
            yield PublishGuard(self, dataset, expected if promoted else None, at, run,
                               # expected is production: its entry exists
                               kept=(expected, kept) if kept is not None and expected is not None else None)

    def _withdraw_locked(self, dataset: str, version: str, *, reason: str, at: datetime | None,
                         run: str | None = None, for_run: str | None = None,
                         released: builtins.list[str] | tuple[str, ...] = ()) -> str | None:
        """Called under the lock, `version` production of `dataset`: put the previous production model back (a
        `withdraw` event) and remove `version` when nothing else names it and no run but `run` (the withdrawing
        run's own pin) has it pinned. Returns what production is now."""
        ptr = self._pointer_locked()
        ent = ptr["datasets"].get(dataset)
        stack = ent["stack"] if ent else []
        if ent is None or not stack or stack[-1] != version:
            raise ProductionMovedError(f"production of {dataset} is {stack[-1] if stack else 'empty'}, not {version}: "
                                       f"{version} was not withdrawn")
        stack.pop()
        target = stack[-1] if stack else None
        # `run`: the run that promoted it withdraws it (its publish failed or was refused); a run that skips a slot finds
        # it, when that run was killed before its follow-up decision artifact (`flows.common.withdrawn_unsaid`);
        # `for_run`: the run whose winner it is, withdrawn by another (a run that skips its slot or date: that run was
        # killed), whose decision the withdrawing run's follow-up answers (a later run writes it when that one is killed)
        ent["events"].append({"action": "withdraw", "version": version, "previous": target, "reason": reason,
                              "at": _iso(at), **({"run": run} if run is not None else {}),
                              **({"for_run": for_run} if for_run else {})})
        # promoted by that run only: nothing else names it, unless a running run forecasts with it (a forecast that
        # started while it was production pinned it): kept, as `withdraw_champion` keeps it, for `flowcast gc` to
        # remove once unpinned (removed under it, that run failed to load it or published forecasts of a version gone);
        # a pin lapsed at `at` (a killed run's) keeps it no longer than it keeps it from gc
        own = {_pin_name(version, r) for r in (run, *released) if r}  # the withdrawing run's, dead runs'
        kept = (f"the production stack of {dataset} names it further down (a rollback may put it back)"
                if version in stack else _PINNED_KEEPS if self._pinned_but_by(version, at, own) else "")
        remove = not kept
        # killed after the commit, the next writer removes it (`_recover_removal`): it stayed registered; killed
        # before it, the next writer records the withdrawal as decided, on this pointer only (`basis`); one that
        # keeps its version (`kept`) wrote no note, and a kill there recorded nothing
        self._write_removing(version, dataset, "withdraw", event=ent["events"][-1], spared=own, kept=kept)
        with self._unnoted_on_failure(version):
            current = self._write_pointer(ptr)  # the commit: production is `target` again
        if not remove:
            self._clear_removing(version)
        elif self._removed_now(version, current):
            self._remove_version(version)
            self._remove_pins_of(version, but=_pin_name(version, run) if run else None)
            self._clear_removing(version)
        return target

    def retract(self, version: str, *, dataset: str, reason: str = "", at: datetime | None = None) -> bool:
        """Take `version`, promoted by a run that then published nothing, out of `dataset`'s production
        stack where another promotion already lies on top of it (a `retract` event), so that a rollback
        never puts it back. True when it was taken out; False when it is production (withdraw it) or
        not in the stack."""
        with self._lock():
            ptr = self._pointer_locked()
            ent = ptr["datasets"].get(dataset)
            if ent is None or not _retract(ent, version, at=at, reason=reason):
                return False
            self._write_pointer(ptr)
        return True

    def rollback(self, *, dataset: str | None = None, expected: Any = ANY, reason: str = "",
                 at: datetime | None = None) -> ModelVersion:
        """Put the previous production version of `dataset` back; RegistryError when there is none. Earlier
        promotions of versions that are gone from the registry (removed by a `flowcast gc` older than gc19, which left
        the stack naming them; deleted by hand) are gone past: each taken out of the stack with a `retract` event
        (`ROLLBACK_SKIPPED` in its reason, what `models rollback` reports), in the same pointer write as the rollback.
        The rollback failed `unknown model version 'V'` on them. When every earlier promotion is gone: RegistryError
        naming them, nothing changed."""
        with self._lock():
            ptr = self._pointer_locked()
            ds = self._dataset_of(ptr, dataset)
            ent = ptr["datasets"].get(ds) if ds is not None else None
            stack = ent["stack"] if ent else []
            current = stack[-1] if stack else None
            if expected is not ANY and current != expected:
                raise ProductionMovedError(f"production of {ds} is {current or 'empty'}, not {expected}: not rolled back")
            if len(stack) < 2:
                known = sorted(ptr["datasets"])
                other = (f" (this registry has production pointers for {', '.join(known)} only)"
                         if ds is not None and ent is None and known else "")  # a typo in --dataset
                raise RegistryError(
                    f"nothing to roll back to: production{f' of {ds}' if ds else ''} is {current or 'empty'} and there "
                    f"is no earlier promotion{other}"
                )
            assert ent is not None
            earlier = stack[:-1]
            gone = builtins.list(dict.fromkeys(str(v) for v in reversed(earlier) if not self._has_version(str(v))))
            for v in gone:  # out of the stack first, as gc takes out what it removes (`_unstack`; written below)
                _unstack(ent, v, at=at, reason=f"{ROLLBACK_SKIPPED}: {v} is gone from the registry (removed by an "
                                                 "older flowcast gc, or by hand)")
            if len(stack) < 2:  # (nothing written)
                raise RegistryError(
                    f"nothing to roll back to: production of {ds} is {current}, and every earlier promotion of another "
                    f"version ({', '.join(gone)}) is gone from {self.location}/versions (removed by an older `flowcast "
                    "gc`, or by hand); nothing changed. `flowcast models promote VERSION` puts an existing version in "
                    "production")
            stack.pop()
            target = stack[-1]
            mv = self.get(target, fetch=False)
            ent["events"].append(
                {"action": "rollback", "version": target, "previous": current, "reason": reason, "at": _iso(at)}
            )
            self._write_pointer(ptr)
        return mv

    def sync_backup(self) -> bool:
        """Rewrite the pointer's backup copy (what `repair` restores) from production.json when the two
        differ: a command killed between the swap and the copy left it one swap behind, and a retry that
        changes nothing (`rollback --expected`, promoting production again) would leave it so. True when
        it was rewritten."""
        with self._lock():
            return self._sync_backup_locked()

    def _sync_backup_locked(self) -> bool:
        """`sync_backup`, called under the lock."""
        if self.remote is not None:
            if not self.remote.exists("production.json"):
                return False
            text = self.remote.read_text("production.json")
            if self.remote.exists(BACKUP_POINTER) and self.remote.read_text(BACKUP_POINTER) == text:
                return False
            self.remote.write_text(BACKUP_POINTER, text)
            return True
        backup = self.root / BACKUP_POINTER
        if not self.pointer_path.exists():
            return False
        data = self.pointer_path.read_bytes()
        if backup.exists() and backup.read_bytes() == data:
            return False
        _write_bytes_atomic(backup, data)
        return True

    def withdraw(self, version: str, *, dataset: str, reason: str = "", at: datetime | None = None,
                 run: str | None = None, check: Callable[[], None] | None = None,
                 for_run: str | None = None, released: builtins.list[str] | tuple[str, ...] = ()) -> str | None:
        """Undo the register-and-promote transaction of a run whose publish then failed: in one
        pointer swap, and only while `version` is still `dataset`'s production model (compare and
        swap: ProductionMovedError, nothing changed, when another run promoted meanwhile), put the
        previous production model back (none when `version` was the first), record a `withdraw`
        event, and remove `version` (no publish names it; kept while a run other than `run`, the withdrawing run, has
        it pinned with a pin not lapsed at `at`: it forecasts with it, and `flowcast gc` removes it later; lapsed pins,
        killed runs', go with it). Returns what production is now.
        `check`: called first, in the same hold of the lock (a promoting run's publish lands only under it:
        `publishing`), it raises, nothing changed, when `version` must stay (the conditions a withdrawal was decided
        on, read again: `flows.common.withdraw_unpublished_winner`). `for_run`: the run whose winner `version` is, when
        `run` withdraws it on its behalf (it was killed), named in the event too (`flows.common.withdrawn_unsaid`).
        `released`: runs found dead (`for_run`, a run that forecast with it), whose pins do not keep it (removed with
        it): the killed run's own pin, which lasts PIN_TTL_HOURS, kept a winner withdrawn on its behalf registered."""
        with self._lock():
            if check is not None:
                check()
            now = self._withdraw_locked(dataset, version, reason=reason, at=at, run=run, for_run=for_run,
                                        released=released)
            _fault("winner_withdrawn")  # withdrawn, the withdrawing run's note and follow-up artifact not yet written
            return now

    def repair(self, *, newest: dict[str, str] | None = None, at: datetime | None = None) -> dict[str, Any]:
        """Put back a production pointer that cannot be read (`flowcast models repair`). The damaged
        file is kept as production.json.damaged-<n>; the pointer comes back from its copy
        (production.backup.json, written after every pointer swap) when that reads, else each dataset
        of `newest` (dataset -> the model version of its newest publish) whose version is registered
        points at it, with a `repair` event (its earlier history is in the damaged file only).
        An intact pointer whose production version cannot be read (its version.json cut short) has that version
        taken off the stack ("withdrawn": {version: why}).
        An intact pointer whose backup copy is damaged, missing or one write behind has the copy rewritten from it:
        a repair killed between its pointer write and its copy's left the copy as it was (damaged, when the pointer
        was re-derived), and the re-run said `intact; nothing changed` (faults42).
        Returns {"status": "intact" | "restored" | "derived" | "withdrawn", "damaged": where the damaged file is
        kept, "problem": what was wrong, "productions": {dataset: version}, and, when intact, "backup": what was
        wrong with the copy it rewrote (None: nothing)}."""
        with self._lock():
            try:
                data = self._read_pointer_file()
                if data is not None and not _is_legacy(data):
                    ptr = self._checked(data)
                    withdrawn = self._withdraw_damaged(ptr, at)
                    if withdrawn:
                        self._write_pointer(ptr)
                        return {"status": "withdrawn", "damaged": None, "withdrawn": withdrawn,
                                "problem": "; ".join(withdrawn.values()),
                                "productions": {d: e["stack"][-1] for d, e in ptr["datasets"].items() if e["stack"]}}
                return {"status": "intact", "damaged": None, "problem": None,
                        "backup": None if data is None else self._mend_backup_locked(),
                        "productions": {} if data is None or _is_legacy(data)
                        else {d: e["stack"][-1] for d, e in data["datasets"].items() if e["stack"]}}
            except RegistryError as exc:
                problem = str(getattr(exc, "problem", exc))
            try:
                kept = self._keep_damaged()
            except StorageError as exc:
                raise self._repair_failed(exc, None) from exc
            try:
                backup = json.loads(self.remote.read_text(BACKUP_POINTER) if self.remote is not None
                                    else (self.root / BACKUP_POINTER).read_text())
                ptr = self._checked(backup)
                status = "restored"
            except (OSError, ValueError, RegistryError):
                ptr, status = _empty_pointer(), "derived"
                for ds, version in sorted((newest or {}).items()):
                    if self._has_version(version):
                        ptr["datasets"][ds] = {"stack": [version], "events": [{
                            "action": "repair", "version": version, "previous": None, "at": _iso(at),
                            "reason": f"production.json was damaged ({problem}); {version} published the newest "
                                      f"forecasts of {ds}"}]}
            try:
                self._write_pointer(ptr)
            except StorageError as exc:
                raise self._repair_failed(exc, kept) from exc
        return {"status": status, "damaged": kept, "problem": problem,
                "productions": {d: e["stack"][-1] for d, e in ptr["datasets"].items() if e["stack"]}}

    def _repair_failed(self, exc: StorageError, kept: str | None, *, copy: str | None = None) -> StorageError:
        """A repair's write that failed (a full disk) as what it leaves and what to do: the bare write error said the
        damaged pointer was `intact` ('the previous file, if any, is intact', faults42) and not that it is unrepaired.
        `copy`: what is wrong with the backup copy of an intact pointer whose rewrite failed (`_mend_backup_locked`):
        the previous file was that copy, damaged, missing or one write behind."""
        room = f" ({room_in(self.root)})" if self.remote is None and no_room(exc) else ""
        said = str(exc).removesuffix("; the previous file, if any, is intact")  # (of a damaged file: not so)
        if copy is not None:
            label = f"{self.location}/{BACKUP_POINTER}" if self.remote is not None else str(self.root / BACKUP_POINTER)
            done, left = (f"rewrite the copy {BACKUP_POINTER} of the intact production pointer",
                          f"{self.pointer_label} is intact; its copy {label} is still {copy}")
        else:
            where = f", its bytes kept as {kept}" if kept else ""
            done, left = "put the production pointer back", f"{self.pointer_label} is still the damaged file{where}"
        return StorageError(f"flowcast models repair could not {done}: {said}. {left}{room}; make room and run "
                            "`flowcast models repair` again")

    def _mend_backup_locked(self) -> str | None:
        """Called under the lock with an intact pointer: rewrite its backup copy from it when the two differ. Returns
        what was wrong with the copy (`damaged (<why>)`, `missing`, `one write behind`), None when it was current."""
        why = "one write behind"
        try:
            self._checked(json.loads(self.remote.read_text(BACKUP_POINTER) if self.remote is not None
                                     else (self.root / BACKUP_POINTER).read_text()))
        except FileNotFoundError:
            why = "missing"
        except (ValueError, RegistryError) as exc:  # (UnicodeDecodeError is a ValueError)
            why = f"damaged ({' '.join(str(getattr(exc, 'problem', exc)).split())})"
        except OSError as exc:
            why = f"damaged ({type(exc).__name__}: {exc})"
        try:
            return why if self._sync_backup_locked() else None
        except StorageError as exc:
            raise self._repair_failed(exc, None, copy=why) from exc

    def _withdraw_damaged(self, ptr: dict[str, Any], at: datetime | None) -> dict[str, str]:
        """Called under the lock with an intact pointer: take every production version whose metadata cannot
        be read off its dataset's stack (a `withdraw` event each; the version's folder stays, `flowcast gc
        --version V --yes` removes it). Returns {version: why} of those taken off."""
        damaged = self.damaged()
        out: dict[str, str] = {}
        for ent in ptr["datasets"].values():
            stack = ent["stack"]
            while stack and stack[-1] in damaged:
                version = stack.pop()
                out[version] = damaged[version]
                ent["events"].append({"action": "withdraw", "version": version,
                                      "previous": stack[-1] if stack else None, "at": _iso(at),
                                      "reason": f"flowcast models repair: {damaged[version]}"})
        return out

    def _keep_damaged(self) -> str:
        """Called under the lock: copy the damaged pointer to production.json.damaged-<n> (a new name), unless such a
        copy holds its bytes already: a repair killed between its copy and its pointer write, run again, kept the
        same damaged file once more per try (faults29)."""
        remote = self.remote
        names = set(remote.list("")) if remote is not None else {p.name for p in self.root.iterdir()}

        def read(name: str) -> bytes | None:
            with contextlib.suppress(FileNotFoundError):
                return remote.read_bytes(name) if remote is not None else (self.root / name).read_bytes()
            return None

        def where(name: str) -> str:
            return f"{self.location}/{name}" if remote is not None else str(self.root / name)

        data = read("production.json")
        n = 1
        while f"production.json.damaged-{n}" in names:
            if data is not None and read(f"production.json.damaged-{n}") == data:
                return where(f"production.json.damaged-{n}")
            n += 1
        kept = f"production.json.damaged-{n}"
        if data is not None and remote is not None:
            remote.write_bytes(kept, data)
        elif data is not None:
            _write_bytes_atomic(self.root / kept, data)
        return where(kept)

    def record_champion(self, version: str, *, dataset: str | None = None, reason: str = "",
                        at: datetime | None = None, as_of: datetime | None = None) -> ModelVersion:
        """Note `version` as the champion a retrain chose without promoting it (a backfill's
        retrain, `promote=False`): the forecast flow publishes it while no model is in production.
        A champion of older data (`as_of` before the recorded one's) leaves the recorded one (its
        event is recorded all the same: a forecast of its past date takes it)."""
        with self._lock():
            mv = self.get(version, fetch=False)  # under the lock: no download
            self._refuse_removed(version, "recorded as the champion")
            _refuse_other_dataset(mv, dataset, "recorded champion")  # (it recorded one: see `_refuse_other_dataset`)
            ds = dataset or mv.dataset or DEFAULT_DATASET
            ptr = self._pointer_locked()
            ent = ptr["datasets"].setdefault(ds, {"stack": [], "events": []})
            _champion(ent, version, reason=reason, at=at, as_of=as_of)
            self._write_pointer(ptr)
        return mv

    def reuse(self, version: str, *, dataset: str, run: str, for_run: str | None, pin: Pin, reason: str,
              then: Promotion | None = None, released: builtins.list[str] | tuple[str, ...] = (),
              check: Callable[[], None] | None = None) -> ModelVersion:
        """Run `run`, a re-run of the dataset and as_of of the killed run `for_run`, takes over `version`, which that
        run registered and never published, instead of registering the same model a second time (the caller proved
        it the same: `same_registration`). In one hold of the lock: `check` first (it raises, nothing changed, when
        the version must be left alone: as `withdraw`'s), the version pinned for `run` (`pin`) and the pins of the
        dead runs `released` removed, `then` applied to it where its registration did not (a promotion: compare and
        swap, ProductionMovedError and nothing changed when production moved; a champion already recorded by that
        registration is not recorded twice), and a `reuse` event naming both runs and `reason`. RegistryError, nothing
        changed, when its removal is recorded and not finished (`_refuse_removed`). Returns the version."""
        with self._lock():
            if check is not None:
                check()
            self._existing(version, "the registry at", fetch=False)
            self._refuse_removed(version, "reused")  # (as `pin`: the next writer removes it)
            ptr = self._pointer_locked()
            ent = ptr["datasets"].setdefault(dataset, {"stack": [], "events": []})
            if then is not None and not (then.action == "champion" and any(
                    isinstance(e, dict) and e.get("action") == "champion" and e.get("version") == version
                    for e in ent["events"])):
                self._follow_up(ptr, dataset, version, then)
            self._write_pin(version, pin)
            for r in released:
                if r != run:
                    self._remove_pin(_pin_name(version, r))
            ent["events"].append({"action": "reuse", "version": version, "previous": None, "reason": reason,
                                  "at": _iso(pin.at), "run": run, **({"for_run": for_run} if for_run else {})})
            self._write_pointer(ptr)
        return self.get(version)

    def pin_runs(self, version: str) -> builtins.list[str]:
        """The runs with a pin file of `version`, lapsed or not (a run that ended removed its own: one left is a
        run's that was killed, or still runs)."""
        return sorted(n.removesuffix(".json").partition("@")[2] for n in self._pin_names()
                      if n.startswith(f"{version}@"))

    def withdraw_champion(self, version: str, *, dataset: str, reason: str = "", at: datetime | None = None,
                          check: Callable[[], None] | None = None, run: str | None = None,
                          for_run: str | None = None, released: builtins.list[str] | tuple[str, ...] = (),
                          ) -> str | None:
        """Undo the register-and-record transaction of a retrain that did not promote (`Promotion("champion")`)
        whose forecasts were then not published (another run published its key first, overwrite off): in one
        pointer swap, a `withdraw_champion` event, the dataset's recorded champion put back to the newest-data
        champion still recorded when it was `version`, and `version` removed (no publish names it; kept while another
        run's pin, not lapsed at `at`, says it forecasts with it, for `flowcast gc` to remove later). A version in
        the production stack is left alone (RegistryError). Returns the dataset's champion now (None: none). `check`:
        as `withdraw`'s, called first in the same hold of the lock. `run`: the run withdrawing the record of its own
        winner (its publish refused), named in the event, as `withdraw` names it (`flows.common.withdrawn_unsaid`), or
        withdrawing a killed run's (`for_run`, named too: a run that skips its date on its behalf). `released`: as
        `withdraw`'s, runs found dead whose pins do not keep it."""
        with self._lock():
            if check is not None:
                check()
            ptr = self._pointer_locked()
            ent = ptr["datasets"].get(dataset)
            if ent is None or version in (ent.get("stack") or []):
                raise RegistryError(f"{version} is not a recorded champion of {dataset} outside production: "
                                    "not withdrawn")
            now = self._withdraw_champion_locked(ent, version, reason=reason, at=at, run=run, for_run=for_run)
            # a running run forecasts with it: kept (no longer a champion: `flowcast gc` removes it once unpinned)
            # a pin lapsed at `at` (a killed run's) keeps it no longer than it keeps it from gc
            dead = {_pin_name(version, r) for r in released}
            remove = not self._pinned_but_by(version, at, dead)
            # killed after the commit, the next writer removes it (`_recover_removal`); killed before it, the next
            # writer records the withdrawal as decided, on this pointer only (`basis`), and removes it unless `kept`
            self._write_removing(version, dataset, "withdraw_champion", event=ent["events"][-1], spared=dead,
                                 champion=ent.get("champion"), kept="" if remove else _PINNED_KEEPS)
            with self._unnoted_on_failure(version):
                current = self._write_pointer(ptr)  # the commit
            if not remove:
                self._clear_removing(version)
            elif self._removed_now(version, current):
                self._remove_version(version)
                self._remove_pins_of(version)
                self._clear_removing(version)
            _fault("champion_withdrawn")  # withdrawn, the run's note and its follow-up decision artifact not yet written
        return now

    def _withdraw_champion_locked(self, ent: dict[str, Any], version: str, *, reason: str, at: datetime | None,
                                  run: str | None = None, for_run: str | None = None) -> str | None:
        """Called under the lock, on a dataset's pointer entry: if `version` is its recorded champion, put back the
        newest-data champion still recorded, its removal not recorded (none: no champion); a `withdraw_champion` event
        either way. The caller
        writes the pointer. Returns the dataset's champion now (None: none)."""
        ch = ent.get("champion")
        if isinstance(ch, dict) and ch.get("version") == version:
            # (a version whose removal is recorded and not finished, its files still there: the next writer removes it)
            gone = {version} | {e.get("version") for e in ent["events"]
                                if e.get("action") in ("withdraw", "retract", "withdraw_champion")} | self.removals_due()
            from flowcast.timekeys import storage_naive

            best: tuple[datetime, ModelVersion] | None = None
            for name in dict.fromkeys(e.get("version") for e in ent["events"] if e.get("action") == "champion"):
                if not name or name in gone or not self._has_version(str(name)):
                    continue
                try:
                    mv = self.get(str(name), fetch=False)
                except RegistryError:
                    continue
                key = storage_naive(mv.as_of) if mv.as_of else datetime.min
                if best is None or key >= best[0]:
                    best = (key, mv)
            if best is None:
                ent.pop("champion", None)
            else:
                ent["champion"] = {"version": best[1].version, "as_of": best[1].as_of, "at": _iso(at),
                                   "reason": f"put back: {reason}"}
        now = ent.get("champion", {}).get("version") if isinstance(ent.get("champion"), dict) else None
        ent["events"].append({"action": "withdraw_champion", "version": version, "previous": now,
                              "reason": reason, "at": _iso(at), **({"run": run} if run else {}),
                              **({"for_run": for_run} if for_run else {})})
        return now

    def champion(self, dataset: str | None = None) -> ModelVersion | None:
        """The champion the latest retrain of `dataset` (by as_of) chose without promoting it (None if none)."""
        ptr = self._pointer()
        ds = self._dataset_of(ptr, dataset, need_stack=False)
        ch = ptr["datasets"].get(ds, {}).get("champion") if ds is not None else None
        if not isinstance(ch, dict) or not ch.get("version"):
            return None
        return self._existing(str(ch["version"]), "the last champion of")


    def protected(self) -> dict[str, str]:
        """version -> why it must stay: every dataset's production model, its predecessor (what a
        rollback puts back) and the champion a promote=False retrain recorded."""
        out: dict[str, str] = {}
        for ds, ent in self._pointer()["datasets"].items():
            stack = ent["stack"]
            if len(stack) > 1:
                out.setdefault(str(stack[-2]), f"the previous production model of {ds}")
            ch = ent.get("champion")
            if isinstance(ch, dict) and ch.get("version"):
                out.setdefault(str(ch["version"]), f"the recorded champion of {ds}")
            if stack:
                out[str(stack[-1])] = f"the production model of {ds}"
        return out

    def stacked(self) -> dict[str, str]:
        """version -> the dataset whose production stack holds it under the top (a rollback may put it back; `delete`
        takes it out of that stack): the predecessor, which `protected` names, and every promotion deeper down."""
        out: dict[str, str] = {}
        for ds, ent in sorted(self._pointer()["datasets"].items()):
            for v in (ent.get("stack") or [])[:-1]:
                out.setdefault(str(v), ds)
        return out

    # ------------------------------------------------------------------ pins: versions runs are using
    def pin(self, version: str, *, run: str, at: datetime, until: datetime) -> None:
        """Record that run `run` chose `version` at `at` to forecast with: `gc` keeps it, and `delete`
        refuses it, until the run ends (`unpin`) or, for a run killed before it could, until `until`.
        Written under the lock, where `delete` checks: RegistryError when the version was removed
        between the run's choice and this pin (the run then fails before forecasting with it)."""
        with self._lock():
            self._existing(version, "the registry at", fetch=False)
            self._refuse_removed(version, "pinned")
            self._write_pin(version, Pin(run=run, at=at, until=until))

    def _write_pin(self, version: str, pin: Pin) -> None:
        """Called under the lock: the pin file of `version` for `pin.run`."""
        from flowcast.timekeys import storage_naive

        note = {"version": version, "run": pin.run, "at": _iso(storage_naive(pin.at)),
                "until": _iso(storage_naive(pin.until))}
        name = _pin_name(version, pin.run)
        if self.remote is not None:
            self._guarded(f"{self.location}/{PINS}/{name}")
            self.remote.write_text(f"{PINS}/{name}", json.dumps(note))
        else:
            (self.root / PINS).mkdir(exist_ok=True)
            _write_json_atomic(self.root / PINS / name, note, fault=None)

    def unpin(self, version: str, *, run: str) -> None:
        """The run `run` no longer uses `version` (it published, or failed)."""
        self._remove_pin(_pin_name(version, run))

    def _remove_pin(self, name: str) -> None:
        if self.remote is not None:
            self.remote.remove(f"{PINS}/{name}")
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.root / PINS / name)

    def _pinned_but_by(self, version: str, at: datetime | None, spared: builtins.set[str]) -> bool:
        """Whether a pin of `version` other than the pin files `spared` keeps it: one whose run has not ended and
        whose pin has not lapsed at `at` (`pinned_by`; every pin file when `at` is None, as `pins(None)` counts)."""
        if at is None:
            return any(n.startswith(f"{version}@") and n not in spared for n in self._pin_names())
        return any(_pin_name(version, r) not in spared for r in self.pinned_by(version, at))

    def _remove_pins_of(self, version: str, *, but: str | None = None) -> None:
        """Called under the lock, `version` removed: its pins go with it (lapsed, or of runs found dead: a run cannot
        pin a version taken out), but the pin file `but` (a withdrawing run's own, which it unpins itself)."""
        for name in self._pin_names():
            if name.startswith(f"{version}@") and name != but:
                self._remove_pin(name)

    def _pin_names(self) -> builtins.list[str]:
        if self.remote is not None:
            return self.remote.list(PINS)
        return [p.name for p in (self.root / PINS).glob("*.json")] if (self.root / PINS).is_dir() else []

    def pins(self, at: datetime | None = None) -> dict[str, str]:
        """version -> why it stays: the runs using it (`pin`) whose pin has not lapsed at `at` (every pin
        when None). A pin that cannot be read (cut short by a full disk, zeroed by a crash) counts until
        PIN_TTL_HOURS after its file was last written (its modification time: a run writes its pin after it
        started, so no readable pin of it would have lasted longer), then lapses like any other: it never lapsed,
        and kept its version for good. The reason names its version, run and file, when it lapses, and that
        deleting the file once the run ended lets the version go sooner. Where its time cannot be read (an object
        store that does not say) it never lapses, and the reason says so."""
        from datetime import timedelta

        from flowcast.timekeys import storage_naive

        out: dict[str, str] = {}
        damaged: dict[str, str] = {}
        for name in sorted(self._pin_names()):
            where = f"{self.location}/{PINS}/{name}" if self.remote is not None else str(self.root / PINS / name)
            try:
                text = (self.remote.read_text(f"{PINS}/{name}") if self.remote is not None
                        else (self.root / PINS / name).read_text())
                note = json.loads(text)
                version, run, until = str(note["version"]), str(note["run"]), note.get("until")
            except FileNotFoundError:  # unpinned meanwhile
                continue
            except (OSError, ValueError, KeyError, TypeError) as exc:
                version, _, run = name.removesuffix(".json").partition("@")
                written = self._pin_written(name)
                lapses = None if written is None else written + timedelta(hours=PIN_TTL_HOURS)
                if at is not None and lapses is not None and lapses <= storage_naive(at):
                    continue  # lapsed: as a readable pin of that run would have
                when = (f"lapses at {utc_text(lapses)}, {PIN_TTL_HOURS} hours after the file was written"
                        if lapses is not None else "never lapses (its modification time cannot be read)")
                damaged.setdefault(version, (
                    f"pinned by {where}, which cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())}) "
                    f"and {when}: it names the flow run {run}; once that run has ended (see it in the Prefect UI), "
                    "delete that file and the version is kept no longer"))
                continue
            if at is not None and until and storage_naive(str(until)) <= storage_naive(at):
                continue
            out.setdefault(version, f"in use by the running flow run {run} (it chose this version to forecast with; "
                           f"unless that run ends first, kept until {utc_text(str(until)) if until else 'its pin is removed'})")
        for version, why in damaged.items():
            out.setdefault(version, why)
        return out

    def pinned_by(self, version: str, at: datetime) -> builtins.list[str]:
        """The flow runs whose pin of `version` has not lapsed at `at` (`pins`): each a run that was using it when it
        pinned, running still or killed (its pin lasts PIN_TTL_HOURS). A pin that cannot be read names its run in its
        file name (`_pin_name`) and lapses PIN_TTL_HOURS after it was written (never, where that cannot be read)."""
        from datetime import timedelta

        from flowcast.timekeys import storage_naive

        out: builtins.list[str] = []
        for name in sorted(n for n in self._pin_names() if n.startswith(f"{version}@")):
            try:
                text = (self.remote.read_text(f"{PINS}/{name}") if self.remote is not None
                        else (self.root / PINS / name).read_text())
                note = json.loads(text)
                run, until = str(note["run"]), note.get("until")
                lapses = storage_naive(str(until)) if until else None
            except FileNotFoundError:  # unpinned meanwhile
                continue
            except (OSError, ValueError, KeyError, TypeError):
                run = name.removesuffix(".json").partition("@")[2]
                written = self._pin_written(name)
                lapses = None if written is None else written + timedelta(hours=PIN_TTL_HOURS)
            if lapses is None or lapses > storage_naive(at):
                out.append(run)
        return out

    def _pin_written(self, name: str) -> datetime | None:
        """When pin file `name` was last written (naive UTC; its modification time, not the clock); None when
        that cannot be read."""
        from datetime import UTC

        try:
            if self.remote is not None:  # an object's last write (S3 LastModified, GCS updated)
                when = self.remote.fs.modified(self.remote.url(f"{PINS}/{name}"))
            else:
                when = datetime.fromtimestamp(os.stat(self.root / PINS / name).st_mtime, UTC)
        except Exception:  # noqa: BLE001 - a store that cannot say: the pin never lapses, and its reason says so
            return None
        if not isinstance(when, datetime):
            return None
        return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when

    def delete(self, version: str, *, allow_protected: bool = False, at: datetime | None = None,
               keep: Callable[[str], str | None] | None = None, run: str | None = None,
               dataset: str | None = None, reason: str = "", for_run: str | None = None,
               released: builtins.list[str] | tuple[str, ...] = (), check: Callable[[], None] | None = None,
               ) -> None:
        """Remove one version (`flowcast gc`). Never a production model, nor one a running run uses
        (`pins` at `at`), nor one `keep` names a reason for, asked under the lock after the pins (gc: the
        forecasts it made are published; a run publishes before it unpins, so a version found unpinned here
        has its publish visible); a previous production model or a recorded champion only with allow_protected.
        A previous production model (anywhere under the top of a dataset's production stack) is taken out of the
        stack in the same lock hold (a `retract` event whose `previous` names what a rollback puts back now, none:
        nothing): the stack kept naming it and `flowcast models rollback` failed `unknown model version V`.
        A recorded champion's record is withdrawn first, in the same lock hold (a `withdraw_champion` event, the
        newest-data champion still recorded put back, as `withdraw_champion` does): it named the removed version,
        and reading the champion (what a forecast run takes while no model is in production) failed.
        Under the lock the version is renamed out of sight first (atomic: it is listed whole or not at
        all), then removed; a crash in between leaves a `.tmp-` folder the next registry writer deletes.
        `run` (with `dataset`): the run that registered `version` for a publish without promotion takes it back, that
        publish refused: a `take_back` event naming the run, the version and `reason` is committed first, in the same
        lock hold (`flows.common.withdrawn_unsaid`: a later run writes the follow-up decision of a run killed after
        it). `for_run` (with `run`): the killed run that registered `version` and never published it, whose version
        `run`, a re-run of its dataset and as_of, takes back before it registers its own (named in the event);
        `released`: runs found dead whose pins do not keep it (removed with it); `check`: as `withdraw`'s, called
        first in the same hold of the lock."""
        with self._lock():
            if check is not None:
                check()
            if version not in self.damaged():  # a damaged version is removed without reading it
                self._existing(version, "the registry at", fetch=False)
            dead = {_pin_name(version, r) for r in released}
            if self._pinned_but_by(version, at, dead) and (in_use := self.pins(at).get(version)):
                raise RegistryError(f"{version} is {in_use}: not deleted")
            if keep is not None and (needed := keep(version)):
                raise RegistryError(f"{version} is kept: {needed}")
            why = self.protected().get(version)
            if why and (why.startswith("the production model") or not allow_protected):
                raise RegistryError(f"{version} is {why}: not deleted"
                                    + ("" if why.startswith("the production model") else
                                       " (name it explicitly to delete it anyway)"))
            ptr = self._pointer_locked()
            if champion_of := [ds for ds, ent in ptr["datasets"].items()
                               if isinstance(ent.get("champion"), dict) and ent["champion"].get("version") == version]:
                for ds in champion_of:  # its record goes first: a champion naming a removed version fails every read
                    self._withdraw_champion_locked(ptr["datasets"][ds], version, at=at,
                                                   reason=reason if run is not None
                                                   else f"{version} removed by flowcast gc --version")
            unstacked = [ds for ds, ent in ptr["datasets"].items() if version in (ent.get("stack") or [])[:-1]]
            for ds in unstacked:  # a rollback would put back a version whose files are gone: it failed
                _unstack(ptr["datasets"][ds], version, at=at,  # `unknown model version`
                         reason=f"{version} removed by flowcast gc: a rollback no longer reaches it")
            event = None
            if run is not None and dataset is not None:  # a run's own take-back: said in the history, named
                event = {"action": "take_back", "version": version, "previous": None, "reason": reason,
                         "at": _iso(at), "run": run, **({"for_run": for_run} if for_run else {})}
                ptr["datasets"].setdefault(dataset, {"stack": [], "events": []})["events"].append(event)
            # the removal's note first (`REMOVING`): killed after the commit below, the next writer finishes the removal
            # (`_recover_removal`); a take-back left its version registered, listed, until `flowcast gc`
            # (the dataset whose event commits it: gc names none, its withdrawn record's or retraction's is it). A
            # take-back's note holds its event: killed before the commit, the next writer records it and finishes (a
            # take-back killed there left no trace: the version registered, no event saying the run took it back)
            self._write_removing(version, dataset if event else champion_of[0] if champion_of
                                 else unstacked[0] if unstacked else dataset,
                                 "take_back" if event else "withdraw_champion" if champion_of
                                 else "retract" if unstacked else None, event=event)
            with self._unnoted_on_failure(version):
                current = True
                if champion_of or unstacked or event:
                    current = self._write_pointer(ptr)  # the commit
                else:  # a gc killed between its commit and the backup copy, run again: the copy still names the
                    self._sync_backup_locked()  # version, and `models repair` would restore a pointer naming it
            if not self._removed_now(version, current):
                return
            self._remove_version(version)
            self._remove_pins_of(version)  # lapsed pins of killed runs
            self._clear_removing(version)
            if run is not None:
                _fault("taken_back")  # removed, the run's note and its follow-up decision artifact not yet written


def _refuse_other_dataset(mv: ModelVersion, dataset: str | None, what: str) -> None:
    """RegistryError when `mv`, trained on a dataset of its own, is to be `dataset`'s `what` (its production model, its
    recorded champion): a version is named by the pointer of its own dataset only, which a withdrawal relies on (it
    checks that dataset's stack, champion and pointer digest alone before it removes the version; the pins of every
    run, whatever its dataset). `record_champion` recorded one of another dataset, which a withdrawal from its own
    then removed from under that dataset's champion record. A version with no recorded dataset (an older flowcast's)
    is let through, as `promote` lets it: no withdrawal takes one (it withdraws only a run's own registration)."""
    if dataset is not None and mv.dataset not in (None, dataset):
        raise RegistryError(f"{mv.version} was trained on dataset {mv.dataset!r}, not {dataset!r}: it cannot be "
                            f"{dataset!r}'s {what}")


def _pin_name(version: str, run: str) -> str:
    return f"{version}@{re.sub(r'[^A-Za-z0-9_.-]', '_', run)}.json"


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(dirpath))


def _make_readonly(root: Path) -> None:
    """Files of a registered version are read-only (directories stay writable so it can be deleted)."""
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            os.chmod(p, stat.S_IMODE(os.stat(p).st_mode) & ~0o222)


def _make_writable(root: Path) -> None:
    if not root.exists():
        return
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with contextlib.suppress(OSError):
                os.chmod(p, stat.S_IMODE(os.stat(p).st_mode) | 0o200)
