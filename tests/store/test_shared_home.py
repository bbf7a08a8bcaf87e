"""The shared home on an S3-compatible server (moto in server mode on loopback): the model
registry and the forecast store that workers on several machines share (flowcast.shared).

"Machines" are registries with their own local cache folder, or processes: nothing but the
bucket is shared between them. Kill tests SIGKILL a child process (tests/publish_faults/) at a
named point or at a random moment.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from publisher import make_forecast
from store_helpers import AS_OF, DS, H, child, publish, variant_of

from flowcast.config import load_settings
from flowcast.errors import ProductionMovedError, StorageError
from flowcast.registry import ModelRegistry, Promotion
from flowcast.store import content_hash, open_store
from flowcast.timekeys import utc_text

CHILD = Path(__file__).resolve().parents[1] / "publish_faults" / "registry_child.py"
AT = datetime(2024, 1, 2)


def _artifact(tmp_path: Path, payload: str) -> Path:
    art = tmp_path / f"art-{payload}"
    art.mkdir(parents=True)
    (art / "model.ckpt").write_bytes(payload.encode() * 500)
    (art / "meta.json").write_text(json.dumps({"cell": "gru", "payload": payload}))
    return art


def _keys(url: str, opts: dict) -> list[str]:
    """Every object under `url`, relative to it."""
    import fsspec

    fs = fsspec.filesystem("s3", **opts)
    fs.invalidate_cache()
    root = url.split("://", 1)[1]
    return sorted(p.removeprefix(root + "/") for p in fs.find(root))


def test_two_machines_share_one_registry_on_s3(s3_url, tmp_path):
    url, opts = s3_url
    models = f"{url}/models"
    a = ModelRegistry(models, storage_options=opts, cache_dir=tmp_path / "machine-a")
    b = ModelRegistry(models, storage_options=opts, cache_dir=tmp_path / "machine-b")
    v1 = a.register(_artifact(tmp_path, "one"), name="gru", dataset="sales", created_at=AT)
    assert v1.version == "gru-v1" and b.production("sales") is None
    a.promote(v1.version, dataset="sales", expected=None, at=AT)

    seen = b.production("sales")  # machine b reads what machine a wrote, from the bucket alone
    assert seen is not None and seen.version == "gru-v1" and seen.kind == "network"
    assert seen.path.is_relative_to(tmp_path / "machine-b")  # b's own local copy ...
    assert (seen.path / "model.ckpt").read_bytes() == b"one" * 500  # ... of a's files
    v2 = b.register(_artifact(tmp_path, "two"), name="gru", dataset="sales", created_at=AT)
    assert v2.version == "gru-v2"
    with pytest.raises(ProductionMovedError, match="gru-v1"):  # compare and swap across machines
        b.promote(v2.version, dataset="sales", expected=None)
    b.promote(v2.version, dataset="sales", expected="gru-v1", at=AT)
    now = a.production("sales")
    assert now is not None and (now.path / "model.ckpt").read_bytes() == b"two" * 500
    assert [v.version for v in a.list()] == ["gru-v1", "gru-v2"]
    assert a.rollback(dataset="sales", expected="gru-v2").version == "gru-v1"
    assert [e["action"] for e in b.history("sales")] == ["promote", "promote", "rollback"]
    c = ModelRegistry(models, storage_options=opts, cache_dir=tmp_path / "machine-c")  # moves pointers only:
    c.record_champion("gru-v2", dataset="sales", at=AT)
    assert set(c.productions()) == {"sales"}
    assert not list((tmp_path / "machine-c").rglob("model.ckpt"))  # ... nothing of the models is downloaded

    keys = _keys(url, opts)
    assert "models/production.json" in keys and "models/.lock" not in keys  # every lock released
    assert {k for k in keys if k.startswith("models/versions/gru-v1/")} == {
        "models/versions/gru-v1/_COMPLETE", "models/versions/gru-v1/version.json",
        "models/versions/gru-v1/artifact/model.ckpt", "models/versions/gru-v1/artifact/meta.json",
        "models/versions/gru-v1/artifact/recipe.json"}
    a.delete("gru-v2", allow_protected=True)  # the recorded champion, named explicitly
    assert [v.version for v in b.list()] == ["gru-v1"]
    assert not any(k.startswith("models/versions/gru-v2/") for k in _keys(url, opts))


def _registry_child(spec: dict, artifact: Path, name: str, fault: str | None = None, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "FLOWCAST_FAULT"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")])
    if fault:
        env["FLOWCAST_FAULT"] = fault
    return subprocess.Popen([sys.executable, str(CHILD), json.dumps(spec), str(artifact), name, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_writers_on_four_machines_never_take_one_version_name_twice(s3_url, tmp_path):
    """Four processes, each with its own cache folder (so no local lock joins them), register a
    model named `gru` and promote it at once: the lock object in the bucket serialises them,
    gru-v1..v4 each hold the files of the process that printed that name."""
    url, opts = s3_url
    procs = {}
    for i in range(4):
        spec = {"url": f"{url}/models", "storage_options": opts, "cache_dir": str(tmp_path / f"machine-{i}")}
        procs[i] = _registry_child(spec, _artifact(tmp_path, f"p{i}"), "gru")
    printed = {}
    for i, p in procs.items():
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        printed[i] = out.split()[0]
    assert sorted(printed.values()) == ["gru-v1", "gru-v2", "gru-v3", "gru-v4"]
    reg = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "reader")
    for i, version in printed.items():
        assert (reg.get(version).path / "model.ckpt").read_bytes() == f"p{i}".encode() * 500
    stack = [e["version"] for e in reg.history("toy") if e["action"] == "promote"]
    assert sorted(stack) == sorted(printed.values())  # four promotions, none lost by a torn pointer
    prod = reg.production("toy")
    assert prod is not None and prod.version == stack[-1]


@pytest.mark.parametrize("fault", ["fs:mid_put_dir", "registry:before_pointer_rename"])
def test_a_registry_writer_killed_half_way_leaves_the_shared_registry_whole(s3_url, tmp_path, fault):
    """Killed with one file of the version uploaded (no marker), or with the version uploaded
    and the pointer not yet written: production stays gru-v1, a half version is never listed,
    the dead writer's lock is broken after the lock timeout and the next writer completes."""
    url, opts = s3_url
    reg = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "parent")
    reg.promote(reg.register(_artifact(tmp_path, "old"), name="gru", dataset="toy", created_at=AT).version, at=AT)
    spec = {"url": f"{url}/models", "storage_options": opts, "cache_dir": str(tmp_path / "child")}
    proc = _registry_child(spec, _artifact(tmp_path, "dead"), "gru", fault)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    keys = _keys(url, opts)
    assert "models/.lock" in keys  # the dead writer's lock is still there
    assert any(k.startswith("models/versions/gru-v2/") for k in keys)  # what it uploaded before it died
    half = fault == "fs:mid_put_dir"
    assert ("models/versions/gru-v2/_COMPLETE" in keys) is not half
    prod = reg.production("toy")
    assert prod is not None and prod.version == "gru-v1"
    assert [v.version for v in reg.list()] == (["gru-v1"] if half else ["gru-v1", "gru-v2"])

    quick = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "next", lock_timeout=2.0)
    new = quick.register(_artifact(tmp_path, "next"), name="gru", dataset="toy", created_at=AT)
    quick.promote(new.version, expected="gru-v1", at=AT)
    assert new.version == ("gru-v2" if half else "gru-v3")  # the half version was removed, its name reused
    prod = reg.production("toy")
    assert prod is not None and (prod.path / "model.ckpt").read_bytes() == b"next" * 500
    assert "models/.lock" not in _keys(url, opts)


def test_a_shared_registry_rolls_back_a_writer_killed_between_registering_and_promoting(s3_url, tmp_path):
    """Register and promote in one transaction at a URL: the version a killed writer uploaded is not
    listed, and the next writer (on another machine) removes it from the bucket."""
    url, opts = s3_url
    reg = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "parent")
    reg.promote(reg.register(_artifact(tmp_path, "old"), name="gru", dataset="toy", created_at=AT).version, at=AT)
    spec = {"url": f"{url}/models", "storage_options": opts, "cache_dir": str(tmp_path / "child")}
    proc = _registry_child(spec, _artifact(tmp_path, "dead"), "gru", "registry:before_promotion", "together")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    assert "models/versions/gru-v2/_COMPLETE" in _keys(url, opts) and "models/.pending.json" in _keys(url, opts)
    assert [v.version for v in reg.list()] == ["gru-v1"] and reg.production("toy").version == "gru-v1"
    quick = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "next", lock_timeout=2.0)
    new = quick.register(_artifact(tmp_path, "next"), name="gru", dataset="toy", created_at=AT,
                         then=Promotion("promote", expected="gru-v1", at=AT))
    assert new.version == "gru-v2" and reg.production("toy").version == "gru-v2"
    assert (reg.production("toy").path / "model.ckpt").read_bytes() == b"next" * 500
    keys = _keys(url, opts)
    assert "models/.pending.json" not in keys and "models/.lock" not in keys


def _shared_spec(s3_url) -> tuple[str, str, dict]:
    """A publisher's spec of the shared home at `s3_url`; a killed publisher's key lock object is broken after 3 s
    (`store.lock_timeout`, 600 s by default), not after 10 minutes."""
    url, opts = s3_url
    return json.dumps({"shared": url, "shared_options": opts, "store": {"lock_timeout": 3}}), url, opts


def _whole(store, n: int, h: int = H) -> int:
    back = store.read(dataset=DS, as_of=AS_OF)
    assert back.height == n * h and back.select("unique_id", "ds").n_unique() == n * h
    (variant,) = variant_of(back)
    assert back["model_version"].unique().to_list() == [f"lstm-v{variant}"]
    assert store.receipt_of(DS, AS_OF)["content_hash"] == content_hash(back)
    return variant


def test_publishers_killed_at_random_leave_whole_forecasts_in_the_shared_home(s3_url, tmp_path):
    """The forecast store of a shared home (shared/warehouse on S3, no store.url): a publisher
    killed at a random moment of a publish loop leaves one publish whole, never a mix."""
    spec, url, opts = _shared_spec(s3_url)
    settings = load_settings(home=tmp_path / "home", shared=url, shared_options=opts)
    store = open_store(settings)
    assert store.location == f"{url}/warehouse"
    n = 1000
    publish(store, make_forecast(1, n, H, AS_OF))
    rng = random.Random(11)
    seen = []
    for i in range(3):
        proc = child(spec, AS_OF, 10 + 100 * i, n, None, "--loop")
        first = proc.stdout.readline()
        assert first.startswith("published"), proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        seen.append(_whole(open_store(settings), n))
    assert all(v >= 10 for v in seen), seen  # each child published whole at least once before it died
    assert not any(k.startswith("forecasts") for k in _keys(url, opts))  # all under shared/warehouse
    # besides the key's lock objects, and claims, a killed writer left (the next writer breaks them: parquet.py): the
    # forecasts key's, and its realized key's, which a publish replacing other forecasts holds as it removes their
    # realized accuracy (embedded.py `publish`; CI killed one there once)
    others = [k for k in _keys(url, opts)
              if not k.startswith(("warehouse/forecasts/dataset=sales/as_of=", "warehouse/.locks/forecasts.dataset=sales.",
                                   "warehouse/.locks/realized.dataset=sales."))]
    assert not others, others


def test_a_multipart_upload_killed_half_way_leaves_the_previous_forecasts(s3_url, tmp_path):
    spec, url, opts = _shared_spec(s3_url)
    settings = load_settings(home=tmp_path / "home", shared=url, shared_options=opts)
    big = 20000  # series, horizon 1, with --noise: a ~6 MB file, two parts of a multipart upload
    proc = child(spec, AS_OF, 1, big, None, "--noise", horizon=1)
    assert proc.communicate(timeout=300) and proc.returncode == 0
    proc = child(spec, AS_OF, 2, big, "publish:mid_upload", "--noise", horizon=1)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    assert _whole(open_store(settings), big, h=1) == 1
    proc = child(spec, AS_OF, 3, big, None, "--noise", horizon=1)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _whole(open_store(settings), big, h=1) == 3


def test_the_shared_home_setting_names_what_is_wrong(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="home must be a folder of this machine.*shared = 's3://b/fc'"):
        load_settings(home="s3://b/fc")
    with pytest.raises(ValidationError, match="shared must be a folder, file:// or an object-store URL.*ftp://h/x"):
        load_settings(shared="ftp://h/x")
    s = load_settings(home=tmp_path / "h", shared="s3://b/fc/")
    assert s.shared_remote and s.models_location == "s3://b/fc/models" and s.shared_path("warehouse") == \
        "s3://b/fc/warehouse"
    nfs = load_settings(home=tmp_path / "h", shared=f"file://{tmp_path}/nfs")
    assert not nfs.shared_remote and nfs.models_location == str(tmp_path / "nfs" / "models")
    assert open_store(nfs).location == str(tmp_path / "nfs" / "warehouse")
    alone = load_settings(home=tmp_path / "h")
    assert alone.models_location == str(tmp_path / "h" / "models")


def test_a_publish_held_past_the_lock_lease_keeps_the_registry_lock(s3_url, tmp_path):
    """Regression: the lock object was never renewed, so a run publishing under the registry's lock
    (`publishing`) for longer than the lease (lock_timeout, 600 s by default; 2 s here) lost it: a
    run on another machine took it for a dead writer's, broke it and promoted in the middle of the
    publish. The holder now renews its lease while it holds the lock, so the other run waits."""
    import threading

    url, opts = s3_url
    a = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "machine-a", lock_timeout=2.0)
    b = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "machine-b", lock_timeout=2.0)
    v1 = a.register(_artifact(tmp_path, "one"), name="gru", dataset="toy", created_at=AT)
    a.promote(v1.version, dataset="toy", expected=None, at=AT)
    v2 = a.register(_artifact(tmp_path, "two"), name="gru", dataset="toy", created_at=AT)
    publishing = threading.Event()
    seen: dict[str, object] = {}

    def other_machine() -> None:
        for _ in range(4):  # each try gives up after its timeout (> the lease): 4 tries outlast the publish
            try:
                b.promote(v2.version, dataset="toy", expected="gru-v1", at=AT)
                seen["promoted_while_publishing"] = publishing.is_set()
                return
            except StorageError as exc:  # waited its timeout for a live holder
                seen.setdefault("waited", str(exc))

    with a.publishing("toy", "gru-v1"):
        publishing.set()
        thread = threading.Thread(target=other_machine)
        thread.start()
        thread.join(4 * 2.0)  # four leases: a lease not renewed is broken after one
        production_during = a.production("toy")
        publishing.clear()
    thread.join(120)
    assert production_during is not None and production_during.version == "gru-v1"
    assert seen.get("promoted_while_publishing") is False  # b promoted, only after the publish
    assert b.production("toy").version == v2.version
    assert "models/.lock" not in _keys(url, opts)


def test_a_publish_whose_registry_lock_was_lost_never_becomes_visible(backend, s3_url, tmp_path):
    """Regression: the registry lock's lease was renewed while held and checked before each registry
    write, but not before the publish it guards (`publishing`) became visible: a run stopped or cut off
    for longer than the lease (a waiter broke its lock, took it and promoted) made its forecasts visible
    under a production model it was never checked against. `publishing` yields the lease's check, which
    the store calls right before the rename / the upload's completion / the commit."""
    from flowcast.store.fs import FileStore

    url, opts = s3_url
    models = f"{url.rsplit('/', 1)[0]}/models"
    reg = ModelRegistry(models, storage_options=opts, cache_dir=tmp_path / "machine-a")
    v1 = reg.register(_artifact(tmp_path, "one"), name="gru", dataset=DS, created_at=AT)
    reg.promote(v1.version, dataset=DS, expected=None, at=AT)
    publish(backend.store, make_forecast(1, 20, H, AS_OF))
    files = FileStore(models, storage_options=opts)
    lost = (r"lost the lock .*/models/\.lock \(it is now held by 0a1b2c other-machine 42\): forecasts of dataset "
            r"sales as_of 2024-03-01 was not written")
    with pytest.raises(StorageError, match=lost), reg.publishing(DS, v1.version) as still_held:
        files.remove(".lock")  # what a waiter that broke the lock does, then takes it
        files.write_text(".lock", "0a1b2c other-machine 42")
        publish(backend.store, make_forecast(2, 20, H, AS_OF), variant=2, before_visible=still_held)
    assert variant_of(backend.reopen().read(dataset=DS, as_of=AS_OF)) == {1}  # the previous publish, whole
    publish(backend.reopen(), make_forecast(3, 20, H, AS_OF), variant=3)  # nothing of the refused one in the way
    assert variant_of(backend.reopen().read(dataset=DS, as_of=AS_OF)) == {3}


def test_a_shared_registry_moves_old_keep_events_to_its_history_and_lets_a_damaged_pin_lapse(s3_url, tmp_path):
    """registry19, on an object store: the `keep` events beyond a dataset's newest KEEP_EVENTS_KEPT go to
    history.jsonl in the bucket (another machine's `history` shows every one in place), and a pin object that
    cannot be read lapses PIN_TTL_HOURS after the object was last written (its LastModified)."""
    from datetime import UTC, timedelta

    import fsspec

    from flowcast.registry import HISTORY, KEEP_EVENTS_KEPT, PIN_TTL_HOURS, Kept

    url, opts = s3_url
    models = f"{url}/models"
    a = ModelRegistry(models, storage_options=opts, cache_dir=tmp_path / "machine-a")
    b = ModelRegistry(models, storage_options=opts, cache_dir=tmp_path / "machine-b")
    v = a.register(None, name="theta", dataset="sales", kind="statistical", recipe={"model": "theta"},
                   created_at=AT).version
    a.promote(v, dataset="sales", at=AT)
    for week in range(KEEP_EVENTS_KEPT + 3):
        slot = AT + timedelta(weeks=week)
        with a.publishing("sales", v, at=slot, kept=Kept(as_of=slot, run=f"run-{week}")) as check:
            check("the publish")  # the store let it through: its keep event is written
    assert f"models/{HISTORY}" in _keys(url, opts)
    live = json.loads(fsspec.filesystem("s3", **opts).cat(f"{models}/production.json"))
    assert sum(e["action"] == "keep" for e in live["datasets"]["sales"]["events"]) == KEEP_EVENTS_KEPT
    assert [e.get("run") for e in b.history("sales")] == [None] + [f"run-{w}" for w in range(KEEP_EVENTS_KEPT + 3)]

    a.pin(v, run="r1", at=AT, until=AT + timedelta(hours=PIN_TTL_HOURS))
    fs = fsspec.filesystem("s3", **opts)
    (pin,) = fs.ls(f"{models}/pins", detail=False)
    fs.pipe(pin, b'{"version": "the')  # cut short
    fs.invalidate_cache()
    written = fs.modified(pin).astimezone(UTC).replace(tzinfo=None)
    lapses = written + timedelta(hours=PIN_TTL_HOURS)
    assert f"lapses at {utc_text(lapses)}," in b.pins(lapses - timedelta(minutes=1))[v]
    assert b.pins(lapses + timedelta(seconds=1)) == {}


@pytest.mark.parametrize("damage", [
    pytest.param(lambda b: b[:-40], id="last-line-cut"),
    pytest.param(lambda b: b[:-60] + b"\xff" + b[-59:], id="a-byte-not-utf8"),
])
def test_a_damaged_history_object_loses_only_its_damaged_line(s3_url, tmp_path, damage):
    """faults21, on an object store: history.jsonl with its last line damaged (cut short, a byte that is not UTF-8).
    The next pointer write that moves events appended its lines to the cut line (no newline between: the first new
    event lost too), and a byte that is not UTF-8 failed it, and every later one, with a bare UnicodeDecodeError.
    Only the damaged line is lost now, with a warning; every later event is listed."""
    from datetime import timedelta

    import fsspec

    from flowcast.registry import HISTORY, KEEP_EVENTS_KEPT, Kept

    url, opts = s3_url
    models = f"{url}/models"
    reg = ModelRegistry(models, storage_options=opts, cache_dir=tmp_path / "machine-a")
    v = reg.register(None, name="theta", dataset="sales", kind="statistical", recipe={"model": "theta"},
                     created_at=AT).version
    reg.promote(v, dataset="sales", at=AT)

    def keep(week: int) -> None:
        slot = AT + timedelta(weeks=week)
        with reg.publishing("sales", v, at=slot, kept=Kept(as_of=slot, run=f"run-{week}")) as check:
            check("the publish")

    weeks = KEEP_EVENTS_KEPT + 2
    for week in range(weeks):
        keep(week)
    fs = fsspec.filesystem("s3", **opts)
    fs.pipe(f"{models}/{HISTORY}", damage(fs.cat(f"{models}/{HISTORY}")))  # run-1's line damaged
    fs.invalidate_cache()
    for week in range(weeks, weeks + 2):
        keep(week)  # each moves one more event (run-2, run-3) to the history object
    runs = [e.get("run") for e in reg.history("sales") if e["action"] == "keep"]
    assert runs == ["run-0"] + [f"run-{w}" for w in range(2, weeks + 2)], runs


_GC_CHILD = """
import json, sys
from flowcast.config import load_settings
from flowcast.ops.retention import execute, plan
from datetime import datetime
spec = json.loads(sys.argv[1])
settings = load_settings(home=spec["home"], shared=spec["url"], shared_options=spec["opts"], store={"lock_timeout": 3})
execute(settings, plan(settings, datetime(2024, 6, 1), versions=[spec["version"]]))
"""


def test_a_gc_killed_mid_removal_in_a_shared_registry_is_finished_by_its_re_run(s3_url, tmp_path):
    """faults21, on an object store: `gc --yes --version V` (V the previous production model) SIGKILLed with V's
    marker removed and its objects not (`registry:version_hidden`). A folder without its marker is no version, but
    it counted as one in `removed_before`, so the re-run would refuse V as not registered (exit 2), its objects
    staying until the next registration; and gc on a machine holding no copy of a version it lists (this test's
    home: another machine registered them) failed at once with FileNotFoundError: it measured the local copy.
    The re-run now says V was removed already and removes the rest; sizes come from the bucket."""
    from flowcast.config import load_settings
    from flowcast.ops.retention import execute, plan, plan_and_kept

    url, opts = s3_url
    # the killed gc's lock object is broken after store.lock_timeout (a live holder renews it)
    settings = load_settings(home=tmp_path / "home", shared=url, shared_options=opts, store={"lock_timeout": 3})
    reg = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "machine-a", lock_timeout=3)
    vs = [reg.register(_artifact(tmp_path, f"p{i}"), name="gru", dataset="toy", created_at=AT).version for i in range(3)]
    for v in vs:
        reg.promote(v, dataset="toy", at=AT)
    spec = {"home": str(tmp_path / "home"), "url": url, "opts": opts, "version": vs[1]}
    env = {**os.environ, "FLOWCAST_FAULT": "registry:version_hidden"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")])
    killed = subprocess.run([sys.executable, "-c", _GC_CHILD, json.dumps(spec)], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [v.version for v in reg.list()] == [vs[0], vs[2]] and reg.removed_before(vs[1])
    assert any(k.startswith(f"models/versions/{vs[1]}/") for k in _keys(url, opts))  # its objects, no marker
    items, kept = plan_and_kept(settings, datetime(2024, 6, 1), versions=[vs[1]])
    assert any(f"{vs[1]} was removed already" in i.reason for i in kept)
    execute(settings, items)
    assert not any(k.startswith(f"models/versions/{vs[1]}/") for k in _keys(url, opts))
    assert [v.version for v in reg.list()] == [vs[0], vs[2]] and reg.production("toy").version == vs[2]
    assert plan(settings, datetime(2024, 6, 1)) == []  # nothing left over


_TAKE_BACK_CHILD = """
import json, sys
from datetime import datetime
from pathlib import Path
from flowcast.registry import ModelRegistry
spec = json.loads(sys.argv[1])
reg = ModelRegistry(spec["url"], storage_options=spec["opts"], cache_dir=Path(spec["cache"]), lock_timeout=3)
reg.delete(spec["version"], at=datetime(2024, 1, 3), run="run-k", dataset="toy", reason="refused")
"""


def test_a_take_back_killed_before_its_record_in_a_shared_registry_is_recorded_by_the_next_writer(s3_url, tmp_path):
    """removal25, on an object store: a run's take-back of the version it registered for a refused publish, SIGKILLed
    after its removal note and before its pointer write (`registry:before_pointer_rename`), left no trace: the version
    registered and listed, no `take_back` event. The note object holds the event: the version is not listed, and the
    next writer, on another machine, records the event on the run's behalf and removes the version's objects."""
    url, opts = s3_url
    reg = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "machine-a", lock_timeout=3)
    a = reg.register(_artifact(tmp_path, "a"), name="gru", dataset="toy", created_at=AT).version
    reg.promote(a, dataset="toy", at=AT)
    v = reg.register(_artifact(tmp_path, "v"), name="gru", dataset="toy", created_at=AT).version
    spec = {"url": f"{url}/models", "opts": opts, "cache": str(tmp_path / "machine-k"), "version": v}
    env = {**os.environ, "FLOWCAST_FAULT": "registry:before_pointer_rename"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")])
    killed = subprocess.run([sys.executable, "-c", _TAKE_BACK_CHILD, json.dumps(spec)], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [x.version for x in reg.list()] == [a] and not [e for e in reg.history("toy") if e["action"] == "take_back"]
    assert "models/.removing.json" in _keys(url, opts)
    other = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "machine-b", lock_timeout=3)
    b = other.register(_artifact(tmp_path, "b"), name="gru", dataset="toy", created_at=AT).version  # the next writer
    assert [x.version for x in reg.list()] == [a, b] and reg.production("toy").version == a
    keys = _keys(url, opts)
    assert not any(k.startswith(f"models/versions/{v}/") for k in keys) and "models/.removing.json" not in keys, keys
    (event,) = [e for e in reg.history("toy") if e["action"] == "take_back"]
    assert (event["version"], event["run"], event["at"]) == (v, "run-k", "2024-01-03T00:00:00"), event


@pytest.mark.parametrize("note", [".pending.json", ".removing.json"])
def test_a_shared_registry_whose_lock_was_lost_does_not_remove_its_notes(s3_url, tmp_path, note):
    """removal27: every write of a registry at a URL checks the lock's lease first (`_guarded`), but clearing the
    register-and-promote note (`_clear_pending`) and the removal notes (`REMOVING`, once none is left) did not: a
    writer that lost its lock (a waiter broke it and may have written a note of its own) removed the note object
    all the same. It now fails (StorageError naming the note), and the note stays for the holder of the lock."""
    from flowcast.errors import LockLostError
    from flowcast.store.fs import FileStore

    url, opts = s3_url
    models = f"{url}/models"
    reg = ModelRegistry(models, storage_options=opts, cache_dir=tmp_path / "machine-a", lock_timeout=3)
    v = reg.register(_artifact(tmp_path, "v"), name="gru", dataset="toy", created_at=AT).version
    files = FileStore(models, storage_options=opts)
    lost = rf"lost the lock .*/models/\.lock \(it is now held by 0a1b2c other-machine 42\): .*/{note} was not removed"
    with reg._lock():
        reg._write_note(note, {"removals": [{"version": v, "dataset": "toy", "action": None}]}
                        if note == ".removing.json" else {"version": v, "dataset": "toy", "action": "promote"})
        files.remove(".lock")  # what a waiter that broke the lock does, then takes it
        files.write_text(".lock", "0a1b2c other-machine 42")
        with pytest.raises(LockLostError, match=lost):
            reg._clear_pending() if note == ".pending.json" else reg._put_removing([])
    assert f"models/{note}" in _keys(url, opts)
