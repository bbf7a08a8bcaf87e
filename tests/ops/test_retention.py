"""`flowcast gc` on a tiny home: what goes, what stays, dry run, explicit versions, the CLI."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.config import load_settings
from flowcast.errors import RegistryError
from flowcast.ops.retention import execute, plan, total_bytes
from flowcast.registry import ModelRegistry
from flowcast.timekeys import utc_text

NOW = datetime(2024, 6, 1, 12, 0)


def _touch(path: Path, days_old: float, data: bytes = b"x" * 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    when = (NOW - timedelta(days=days_old)).timestamp()
    os.utime(path, (when, when))
    return path


def _age_tree(path: Path, days_old: float) -> None:
    when = (NOW - timedelta(days=days_old)).timestamp()
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            os.utime(os.path.join(dirpath, f), (when, when))
        os.utime(dirpath, (when, when))


def _registry(tmp_path: Path, home: Path, size: int) -> tuple[ModelRegistry, Path]:
    """The registry of `home` and an artifact folder holding a checkpoint of `size` bytes to register."""
    art = tmp_path / "art"
    (art / "ckpt").mkdir(parents=True)
    (art / "ckpt" / "model.ckpt").write_bytes(b"w" * size)
    return ModelRegistry(home / "models"), art


@pytest.fixture
def home(tmp_path) -> Path:
    """sales: 6 versions, v5 in production after v4 (v4 its predecessor), v2 a recorded champion;
    stock: 2 versions, v7 in production. Old and new run folders, cache entries, quarantine files,
    report images, and a published forecast."""
    home = tmp_path / "home"
    reg, art = _registry(tmp_path, home, 1000)
    v = [reg.register(art, name="gru", dataset="sales", created_at=NOW).version for _ in range(6)]
    w = [reg.register(art, name="lstm", dataset="stock", created_at=NOW).version for _ in range(2)]
    reg.promote(v[3], dataset="sales")
    reg.promote(v[4], dataset="sales")
    reg.record_champion(v[1], dataset="sales")
    reg.promote(w[1], dataset="stock")
    _age_tree(home / "models" / "versions", 400)  # versions go by count, never by age
    for name, age in (("20240101T000000-aaaa", 40), ("20240520T000000-bbbb", 5)):
        _touch(home / "runs" / name / "gru" / "checkpoints" / "last.ckpt", age)
        _age_tree(home / "runs" / name, age)
    _touch(home / "models" / "runs" / "sales_gru_2024-01-01" / "meta.json", 60)
    _age_tree(home / "models" / "runs" / "sales_gru_2024-01-01", 60)
    for key, age in (("flowcast-preprocess-old", 10), ("flowcast-preprocess-new", 1)):
        _touch(home / "cache" / "prefect" / key, age, b"r" * 10)
        _touch(home / "cache" / "results" / key, age, b"v" * 500)
    for label, age in (("2024-01-01T00-00-00", 120), ("2024-05-30T00-00-00", 2)):
        _touch(home / "quarantine" / "sales" / label / "quarantine.parquet", age)
        _age_tree(home / "quarantine" / "sales" / label, age)
    _touch(home / "reports" / "forecast_20240101T000000.png", 45)
    _touch(home / "reports" / "forecast_20240529T000000.png", 3)
    _touch(home / "warehouse" / "forecasts" / "dataset=sales" / "as_of=2023-01-01T00:00:00" / "part-0.parquet", 500)
    return home


def _settings(home: Path, **retention):
    return load_settings(home=home, retention=retention or None)


def _publish_with_record(settings, dataset: str, as_of: datetime, *, model_version: str | None = "gru-v1",
                         ds: datetime | None = None, tz: str | None = None) -> None:
    """Publish one forecast row of `dataset` at `as_of` (of series a, at `ds`, default 31 days after), with
    `model_version` (gru, or naive without one), and record its publish as a run does (fingerprint "f")."""
    import polars as pl

    from flowcast.ops.quiet import record_fingerprint
    from flowcast.store import open_store

    fc = pl.DataFrame({"unique_id": ["a"], "ds": [ds or as_of + timedelta(days=31)], "step": [1], "y_hat": [1.0]},
                      schema_overrides={"step": pl.Int32})
    receipt = open_store(settings).publish(fc, dataset=dataset, as_of=as_of, model="naive" if model_version is None
                                           else "gru", model_version=model_version, run_id="r", created_at=NOW)
    record_fingerprint(settings, dataset=dataset, as_of=as_of, content_hash=receipt.content_hash, fingerprint="f",
                       run_id="r", tz=tz)


def test_dry_run_lists_what_the_policy_lets_go_and_touches_nothing(home):
    settings = _settings(home, keep_versions=1)
    before = sorted(str(p) for p in home.rglob("*"))
    items = plan(settings, NOW)
    got = {(i.kind, str(i.path.relative_to(home))) for i in items}
    assert got == {
        # sales: v6 is the newest kept one; v5 production, v4 its predecessor, v2 champion stay
        ("model", "models/versions/gru-v3"), ("model", "models/versions/gru-v1"),
        ("run", "runs/20240101T000000-aaaa"), ("run", "models/runs/sales_gru_2024-01-01"),
        ("cache", "cache/prefect/flowcast-preprocess-old"), ("cache", "cache/results/flowcast-preprocess-old"),
        ("quarantine", "quarantine/sales/2024-01-01T00-00-00"),
        ("report", "reports/forecast_20240101T000000.png"),
    }
    sizes = {str(i.path.relative_to(home)): i.bytes for i in items}
    assert sizes["runs/20240101T000000-aaaa"] == 100 and sizes["cache/results/flowcast-preprocess-old"] == 500
    assert sizes["models/versions/gru-v1"] > 1000  # the checkpoint copy and its metadata
    kinds = [i.kind for i in items if i.kind == "cache"]
    assert [str(i.path.parent.name) for i in items if i.kind == "cache"] == ["prefect", "results"] and len(kinds) == 2
    assert sorted(str(p) for p in home.rglob("*")) == before  # a plan removes nothing


def test_a_cache_entrys_digest_goes_with_it(home):
    """faults31: each preprocessing cache entry has a digest (`cache/digests/<key>`, `flows.tasks.check_cache_digest`);
    gc did not know that folder, and a digest stayed for good after its entry went."""
    _touch(home / "cache" / "digests" / "flowcast-preprocess-old", 10, b"d" * 32)
    _touch(home / "cache" / "digests" / "flowcast-preprocess-new", 1, b"d" * 32)
    settings = _settings(home, keep_versions=1)
    cache = [str(i.path.relative_to(home)) for i in plan(settings, NOW) if i.kind == "cache"]
    assert cache[0] == "cache/prefect/flowcast-preprocess-old"  # the record first: nothing reads the rest then
    assert sorted(cache[1:]) == ["cache/digests/flowcast-preprocess-old", "cache/results/flowcast-preprocess-old"]
    execute(settings, plan(settings, NOW))
    assert not (home / "cache" / "digests" / "flowcast-preprocess-old").exists()
    assert (home / "cache" / "digests" / "flowcast-preprocess-new").exists()


def test_execute_removes_exactly_the_plan_and_rollback_still_works(home):
    settings = _settings(home, keep_versions=1)
    items = plan(settings, NOW)
    done = execute(settings, items)
    assert len(done) == len(items) and total_bytes(done) == total_bytes(items)
    assert all(not i.path.exists() for i in items)
    reg = ModelRegistry(home / "models")
    assert [v.version for v in reg.list(dataset="sales")] == ["gru-v2", "gru-v4", "gru-v5", "gru-v6"]
    assert [v.version for v in reg.list(dataset="stock")] == ["lstm-v7", "lstm-v8"]
    assert reg.production("sales").version == "gru-v5" and reg.champion("sales").version == "gru-v2"
    # what was not old enough, and the published forecasts, are all there
    for kept in ("runs/20240520T000000-bbbb", "cache/prefect/flowcast-preprocess-new",
                 "cache/results/flowcast-preprocess-new", "quarantine/sales/2024-05-30T00-00-00",
                 "reports/forecast_20240529T000000.png",
                 "warehouse/forecasts/dataset=sales/as_of=2023-01-01T00:00:00/part-0.parquet"):
        assert (home / kept).exists(), kept
    # nothing more to do: the plan is empty, a second gc is a no-op
    assert plan(settings, NOW) == []
    assert reg.rollback(dataset="sales").version == "gru-v4"  # the predecessor was kept


def test_ages_are_measured_from_the_given_instant(home):
    settings = _settings(home, keep_versions=10, runs_days=30, cache_days=7, quarantine_days=90, reports_days=30)
    assert {i.kind for i in plan(settings, NOW - timedelta(days=365))} == set()  # a year earlier all is young
    later = {str(i.path.relative_to(home)) for i in plan(settings, NOW + timedelta(days=100))}
    assert "runs/20240520T000000-bbbb" in later and "cache/prefect/flowcast-preprocess-new" in later
    assert not any(p.startswith("models/versions") for p in later)  # keep_versions=10 keeps all 8


def test_keep_zero_still_keeps_production_its_predecessor_and_the_champion(home):
    items = plan(_settings(home, keep_versions=0), NOW)
    models = sorted(i.version for i in items if i.kind == "model")
    assert models == ["gru-v1", "gru-v3", "gru-v6", "lstm-v7"]


def test_protected_versions_go_only_when_named_and_production_never(home):
    settings = _settings(home, keep_versions=10)
    items = plan(settings, NOW, versions=["gru-v4"])
    named = [i for i in items if i.kind == "model"]
    assert [i.version for i in named] == ["gru-v4"] and "previous production model of sales" in named[0].reason
    execute(settings, named)
    assert "gru-v4" not in {v.version for v in ModelRegistry(home / "models").list()}
    with pytest.raises(RegistryError, match="gru-v5 is the production model of sales"):
        plan(settings, NOW, versions=["gru-v5"])
    with pytest.raises(RegistryError, match="the production model of sales"):
        ModelRegistry(home / "models").delete("gru-v5", allow_protected=True)
    with pytest.raises(RegistryError, match="recorded champion of sales: not deleted"):
        ModelRegistry(home / "models").delete("gru-v2")


def test_a_model_promoted_after_the_plan_is_not_removed(home):
    settings = _settings(home, keep_versions=1)
    items = plan(settings, NOW)
    ModelRegistry(home / "models").promote("gru-v3", dataset="sales")  # production moved meanwhile
    done = execute(settings, items)
    assert "gru-v3" not in {i.version for i in done}
    assert ModelRegistry(home / "models").production("sales").version == "gru-v3"


@pytest.mark.parametrize(("n", "items"), [(1, "1 item,"), (3, "3 items,")])
def test_cli_gc_says_its_items_in_words(tmp_path, n, items):
    """plurals27: gc said '1 item(s), ... would be removed' and 'removed 3 item(s)' of counts it knew."""
    home = tmp_path / "home"
    for k in range(n):  # old quarantine folders, one item each
        _touch(home / "quarantine" / "sales" / f"2024-01-0{k + 1}T00-00-00" / "quarantine.parquet", 120)
        _age_tree(home / "quarantine" / "sales" / f"2024-01-0{k + 1}T00-00-00", 120)
    args = ["gc", "--home", str(home), "--as-of", NOW.isoformat()]
    dry = CliRunner().invoke(app, args)
    said = " ".join(dry.stdout.split())
    assert dry.exit_code == 0 and f"{items} " in said and "would be removed: run again with --yes" in said, said
    assert "item(s)" not in said
    res = CliRunner().invoke(app, [*args, "--yes"])
    said = " ".join(res.stdout.split())
    assert res.exit_code == 0 and f"removed {items} " in said and "item(s)" not in said, said


def test_cli_dry_run_then_yes(home):
    cfg = home.parent / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 1\n")
    args = ["gc", "--home", str(home), "--config", str(cfg), "--as-of", NOW.isoformat()]
    dry = CliRunner().invoke(app, args)
    assert dry.exit_code == 0, dry.output
    assert "8 items," in dry.stdout and "would be removed: run again with --yes" in dry.stdout
    assert (home / "models" / "versions" / "gru-v1").exists()
    res = CliRunner().invoke(app, [*args, "--yes", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["dry_run"] is False and out["removed"] == 8 and out["removed_bytes"] == out["bytes"] > 0
    assert not (home / "models" / "versions" / "gru-v1").exists()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "nothing to remove" in again.stderr
    # the policy as the [retention] settings that change it, not a Python dict (newuser43: "policy: {'keep_versions':
    # 3, 'runs_days': 30.0, ...}")
    said = " ".join(again.stderr.split())
    assert ("(policy: [retention] keep_versions = 1, runs_days = 30, cache_days = 7, quarantine_days = 90, "
            "reports_days = 30, prefect_runs_days = 90, in_runs = true)") in said, said
    bad = CliRunner().invoke(app, [*args, "--version", "gru-v5"])
    assert bad.exit_code == 1 and "never removes a production" in " ".join(bad.stderr.split())


@pytest.mark.parametrize(("text", "width", "shown"), [
    ("runs/abc", 8, "runs/abc"),  # fits exactly
    ("runs/abcd", 8, "run…abcd"),  # the end gets the larger half
    ("quarantine/north/2024", 12, "quara…h/2024"),
    ("ab", 1, "…"),
])
def test_middle_cut_keeps_a_paths_start_and_end(text, width, shown):
    from flowcast.cli.gc import middle_cut

    assert middle_cut(text, width) == shown and len(shown) <= width


def test_cli_gc_table_keeps_each_path_on_one_line_at_80_columns(home, monkeypatch):
    """polish43: at 80 columns the path column folded mid-word ('models/runs/sales_gru_202' over '4-01-01'); each
    path is one line now, a path too long for it cut in the middle ('...' between its start and its end), and
    --json gives the full paths."""
    from flowcast.cli.common import out

    long = home / "quarantine" / ("northern_region_" * 4 + "stores") / "2024-01-01T00-00-00"
    _touch(long / "quarantine.parquet", 120)
    _age_tree(long, 120)
    monkeypatch.setattr(out, "_width", 80)
    args = ["gc", "--home", str(home), "--as-of", NOW.isoformat()]
    dry = CliRunner().invoke(app, args)
    lines = dry.stdout.splitlines()
    assert dry.exit_code == 0 and max(map(len, lines)) <= 80, dry.stdout
    for path in ("models/runs/sales_gru_2024-01-01", "cache/prefect/flowcast-preprocess-old",
                 "reports/forecast_20240101T000000.png", "quarantine/sales/2024-01-01T00-00-00"):
        assert any(path in line for line in lines), (path, dry.stdout)
    cut = next(line for line in lines if "quarantine/northern_region_" in line)
    assert "…" in cut and "_stores/2024-01-01T00-00-00" in cut, dry.stdout
    shown = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout.strip().splitlines()[-1])
    assert str(long.relative_to(home)) in [i["path"] for i in shown["items"]]


def test_published_forecasts_go_only_when_asked_for(tmp_path):
    """Published forecasts are never in a plan; --forecasts-before lists (and --yes removes,
    through the store) every as_of of a dataset before that date, the later ones stay."""
    import polars as pl

    from flowcast.store import open_store

    home = tmp_path / "home"
    settings = load_settings(home=home)
    store = open_store(settings)
    as_ofs = [datetime(2023, 1, 1), datetime(2023, 6, 1), datetime(2024, 1, 1)]
    for a in as_ofs:
        fc = pl.DataFrame({"unique_id": ["a", "a"], "ds": [datetime(a.year, a.month + 1, 1), datetime(a.year, a.month + 2, 1)],
                           "step": [1, 2], "y_hat": [1.0, 2.0]}, schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="sales", as_of=a, model="naive", model_version=None, run_id="r", created_at=NOW)
    assert plan(settings, NOW) == []
    items = plan(settings, NOW, forecasts_before=datetime(2023, 12, 1), dataset="sales")
    assert [(i.kind, i.key) for i in items] == [("forecast", ("sales", as_ofs[0])), ("forecast", ("sales", as_ofs[1]))]
    assert all("(2 rows)" in i.reason and i.bytes > 0 for i in items)
    assert store.as_ofs("sales") == as_ofs  # a plan removes nothing
    assert len(execute(settings, items)) == 2
    assert open_store(settings).as_ofs("sales") == as_ofs[2:]


def test_a_damaged_version_is_left_out_of_listings_and_gc_removes_it_when_named(home):
    """Regression: one version whose version.json was cut short (a disk error, a truncated copy)
    failed `flowcast models list` and `flowcast gc`, the very command that removes it, with
    'corrupt registry entry ...'. It is left out of every listing with a warning, never removed by
    the policy, and removed when named; reading it still names the damage."""
    meta = home / "models" / "versions" / "gru-v1" / "version.json"
    meta.chmod(0o644)
    meta.write_text(meta.read_text()[:40])
    reg = ModelRegistry(home / "models")
    assert "gru-v1" not in {v.version for v in reg.list()} and len(reg.list()) == 7
    assert list(reg.damaged()) == ["gru-v1"] and "corrupt registry entry" in reg.damaged()["gru-v1"]
    with pytest.raises(RegistryError, match="corrupt registry entry .*gru-v1/version.json"):
        reg.get("gru-v1")
    listed = CliRunner().invoke(app, ["models", "list", "--home", str(home)])
    assert listed.exit_code == 0, listed.output
    settings = _settings(home, keep_versions=1)
    assert "gru-v1" not in {i.version for i in plan(settings, NOW)}  # never by the policy
    named = [i for i in plan(settings, NOW, versions=["gru-v1"]) if i.version == "gru-v1"]
    assert len(named) == 1 and "damaged" in named[0].reason
    execute(settings, named)
    assert not (home / "models" / "versions" / "gru-v1").exists() and not ModelRegistry(home / "models").damaged()


@pytest.mark.parametrize("publishes, more", [
    (1, ""), (2, " (and 1 earlier as_of)"), (3, " (and 2 earlier as_ofs)"),
])
def test_why_a_version_stays_counts_its_earlier_publishes_in_words(home, publishes, more):
    """polish30: the '(and N earlier as_of(s))' of a kept version was built by hand; `wording.plural` says it."""
    import polars as pl

    from flowcast.ops.retention import PublishIndex
    from flowcast.store import open_store

    settings = _settings(home)
    store = open_store(settings)
    dates = [datetime(2023, m, 1) for m in range(1, publishes + 1)]
    for a in dates:
        fc = pl.DataFrame({"unique_id": ["a"], "ds": [a + timedelta(days=31)], "step": [1], "y_hat": [1.0]},
                          schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="sales", as_of=a, model="gru", model_version="gru-v1", run_id="r", created_at=NOW)
    why, unread = PublishIndex(settings).versions(set())
    assert unread == [] and why == {
        "gru-v1": f"it made the published forecasts of sales as_of {dates[-1]:%Y-%m-%d}{more}"}


def test_versions_that_made_forecasts_still_published_stay_and_gc_says_why(home):
    """Regression: gc removed by count versions that older publishes still name (each publish
    records its model_version): those forecasts then named a model that no longer existed. Such a
    version stays, listed as kept with the publish that needs it, until its forecasts go
    (--forecasts-before in the same gc)."""
    import polars as pl

    from flowcast.store import open_store

    settings = _settings(home, keep_versions=1)
    store = open_store(settings)
    for a, version in ((datetime(2023, 6, 1), "gru-v1"), (datetime(2023, 7, 1), "gru-v1"),
                       (datetime(2023, 9, 1), "gru-v3")):
        fc = pl.DataFrame({"unique_id": ["a", "a"], "ds": [a + timedelta(days=31), a + timedelta(days=62)],
                           "step": [1, 2], "y_hat": [1.0, 2.0]}, schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="sales", as_of=a, model="gru", model_version=version, run_id="r", created_at=NOW)

    assert not {"gru-v1", "gru-v3"} & {i.version for i in plan(settings, NOW) if i.kind == "model"}
    cfg = home.parent / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 1\n")
    args = ["gc", "--home", str(home), "--config", str(cfg), "--as-of", NOW.isoformat()]
    res = CliRunner().invoke(app, [*args, "--yes"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.stdout.split())
    assert "kept gru-v1: it made the published forecasts of sales as_of 2023-07-01 (and 1 earlier as_of)" \
        in said and "kept gru-v3: it made the published forecasts of sales as_of 2023-09-01" in said
    assert "kept gru-v5: the production model of sales" in said
    reg = ModelRegistry(home / "models")
    assert {"gru-v1", "gru-v3"} <= {v.version for v in reg.list()}

    # the forecasts gru-v1 made go in the same gc: so does it; gru-v3's stay, and it with them
    res = CliRunner().invoke(app, [*args, "--forecasts-before", "2023-08-01", "--yes", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert sorted(i["version"] for i in out["items"] if i["kind"] == "model") == ["gru-v1"]
    assert {"version": "gru-v3", "why": "it made the published forecasts of sales as_of 2023-09-01"} \
        in out["kept"]
    assert {v.version for v in reg.list()} >= {"gru-v3"} and "gru-v1" not in {v.version for v in reg.list()}
    assert open_store(settings).as_ofs("sales") == [datetime(2023, 9, 1)]


def test_forecasts_before_removes_the_publish_records_of_the_keys_it_deletes(home):
    """Regression (faults31): `gc --forecasts-before` deleted a key's forecasts, realized rows and lock files but left
    its publish record (`published/<dataset>/<as_of>.json`, the data fingerprint it forecast from) for good: one file
    per as_of ever published, naming forecasts no longer there. It goes with its key; a kept key keeps its own."""
    from flowcast.ops.quiet import fingerprint_path
    from flowcast.store import open_store

    settings = _settings(home, keep_versions=10)
    for a in (datetime(2023, 6, 1), datetime(2023, 9, 1)):
        _publish_with_record(settings, "sales", a)
    execute(settings, plan(settings, NOW, forecasts_before=datetime(2023, 8, 1), dataset="sales"))
    assert open_store(settings).as_ofs("sales") == [datetime(2023, 9, 1)]
    assert not fingerprint_path(home, "sales", datetime(2023, 6, 1)).exists(), "the removed key's record stayed"
    assert fingerprint_path(home, "sales", datetime(2023, 9, 1)).exists()


def test_forecasts_before_lists_and_removes_a_damaged_publish_before_the_cut(tmp_path):
    """rev45: the plan of `gc --forecasts-before` read each key's receipt to say its rows, and one partition whose file
    is damaged (cut short) failed the whole gc with the store's PublishError ('... cannot be read: ... is damaged'),
    the very command asked to remove it: it is listed (its rows not known, said with why) and removed with the rest,
    its record too."""
    from flowcast.ops.quiet import fingerprint_path
    from flowcast.store import open_store

    settings = _settings(tmp_path / "home", keep_versions=10)
    as_ofs = [datetime(2023, 6, 1), datetime(2023, 7, 1), datetime(2023, 9, 1)]
    for a in as_ofs:
        _publish_with_record(settings, "sales", a)
    key_dir = Path(settings.warehouse_dir) / "forecasts" / "dataset=sales"
    (part,) = [p for p in key_dir.rglob("*.parquet") if "2023-06-01" in str(p)]
    part.write_bytes(part.read_bytes()[:50])  # cut short
    items = plan(settings, NOW, forecasts_before=datetime(2023, 8, 1), dataset="sales")
    assert [(i.kind, i.key) for i in items] == [("forecast", ("sales", a)) for a in as_ofs[:2]]
    # fix45: only that its rows are not known, naming the file and the error; not the store's advice to re-publish
    # the as_of this plan is about to delete
    said = items[0].reason
    assert f"(rows not known: its file {part} cannot be read (ArrowInvalid: " in said, said
    assert "publishes them again" not in said and "--as-of" not in said and "--overwrite" not in said, said
    assert "(1 row)" in items[1].reason
    assert len(execute(settings, items)) == 2
    assert open_store(settings).as_ofs("sales") == as_ofs[2:]
    assert not fingerprint_path(settings.home, "sales", as_ofs[0]).exists()


def test_forecasts_before_removes_a_record_whose_key_holds_nothing_and_keeps_those_of_published_keys(home):
    """pg43: a gc killed after its delete's commit, before the record's removal, leaves the record of a key that
    holds nothing (also of a dataset with no key left). The next `--forecasts-before` lists it (kind `record`) and
    removes it; a record of a key still published stays, also one whose as_of has a fraction of a second (the file's
    name drops it), and a folder whose name is not a dataset is passed over."""
    from flowcast.ops.quiet import fingerprint_path
    from flowcast.store import open_store

    settings = _settings(home, keep_versions=10)
    store = open_store(settings)
    kept = datetime(2023, 6, 1, 0, 0, 0, 500)
    _publish_with_record(settings, "sales", kept)
    for ds, a in (("sales", datetime(2023, 5, 1)), ("gone", datetime(2023, 4, 1))):  # what the killed gc left (a
        record = fingerprint_path(home, ds, a)  # publish records only while its key holds it: `record_fingerprint`)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"dataset": ds, "as_of": a.isoformat(), "content_hash": "c",
                                      "data_fingerprint": "f", "run_id": "r"}))
    _touch(home / "published" / "_not_a_dataset" / "20230101T000000.json", 1)
    items = plan(settings, NOW, forecasts_before=datetime(2023, 7, 1))
    stale = sorted(i.key for i in items if i.kind == "record")
    assert stale == [("gone", datetime(2023, 4, 1)), ("sales", datetime(2023, 5, 1))]
    assert all("whose forecasts are no longer published" in i.reason for i in items if i.kind == "record")
    only_records = [i for i in items if i.kind == "record"]
    assert [i.key for i in execute(settings, only_records)] == [i.key for i in only_records]
    assert not fingerprint_path(home, "sales", datetime(2023, 5, 1)).exists()
    assert not fingerprint_path(home, "gone", datetime(2023, 4, 1)).exists()
    assert fingerprint_path(home, "sales", kept).exists() and store.as_ofs("sales") == [kept]


def test_forecasts_before_removes_a_stale_record_of_another_machine_from_the_shared_home(tmp_path):
    """gc44: with a shared home a publish's record is copied there (`share_file`), and gc's sweep of stale records read
    this home's `published/` alone: the record machine A published, left by a gc killed after the key's delete, was
    never listed by a gc on machine B, and stayed in the shared home for good. B's gc lists it (by its URL) and removes
    it; a record of a key still published stays."""
    from flowcast.ops.quiet import fingerprint_path
    from flowcast.store import open_store

    shared = tmp_path / "shared"
    a = load_settings(home=tmp_path / "machine-a", shared=str(shared))
    b = load_settings(home=tmp_path / "machine-b", shared=str(shared))
    old, new = datetime(2023, 5, 1), datetime(2023, 6, 1)
    for ds, as_of in (("sales", old), ("sales", new), ("gone", old)):  # (gone: a dataset with no key left)
        _publish_with_record(a, ds, as_of, model_version=None)
    for ds in ("sales", "gone"):
        assert open_store(a).delete(ds, old)  # a gc killed before the record's removal (`then`) left it
    copies = [shared / fingerprint_path(Path(), ds, old) for ds in ("gone", "sales")]
    assert all(c.exists() for c in copies) and not (b.home / "published").exists()
    items = plan(b, NOW, forecasts_before=datetime(2023, 7, 1))
    assert [(i.kind, i.key) for i in items] == [("record", ("gone", old)), ("record", ("sales", old)),
                                                ("forecast", ("sales", new))]
    assert [i.to_dict(b.home)["path"] for i in items[:2]] == [str(c) for c in copies]
    assert len(execute(b, items[:2])) == 2
    assert not any(c.exists() for c in copies) and (shared / fingerprint_path(Path(), "sales", new)).exists()
    assert open_store(b).as_ofs("sales") == [new]


def test_the_stale_record_sweep_reads_only_the_shared_records_named_before_the_cut(tmp_path, monkeypatch):
    """perf44: the sweep of stale records downloaded every record of the shared home (one request each) before it
    compared the as_of its name encodes with the cut. A record named at or after the cut is passed over unread (its
    own as_of is its name's or a fraction of a second later); those before it are read, and the same ones listed."""
    from flowcast.ops.quiet import fingerprint_path
    from flowcast.store import open_store
    from flowcast.store.fs import FileStore

    shared = tmp_path / "shared"
    a = load_settings(home=tmp_path / "machine-a", shared=str(shared))
    b = load_settings(home=tmp_path / "machine-b", shared=str(shared))
    gone, held, at_cut, later = (datetime(2023, 5, 1), datetime(2023, 5, 2), datetime(2023, 6, 1),
                                 datetime(2023, 7, 1))
    for as_of in (gone, held, at_cut, later):
        _publish_with_record(a, "sales", as_of, model_version=None)
    assert open_store(a).delete("sales", gone)  # a gc killed before the record's removal left it
    reads: list[str] = []
    real = FileStore.read_bytes

    def counted(self: FileStore, rel: str) -> bytes:
        reads.append(rel)
        return real(self, rel)

    monkeypatch.setattr(FileStore, "read_bytes", counted)
    items = plan(b, NOW, forecasts_before=at_cut, dataset="sales")
    assert [(i.kind, i.key) for i in items] == [("record", ("sales", gone)), ("forecast", ("sales", held))]
    assert sorted(r for r in reads if r.startswith("published/")) == [
        fingerprint_path(Path(), "sales", d).as_posix() for d in (gone, held)]


def test_a_failed_forecast_deletion_leaves_the_version_its_forecasts_name(home):
    """Regression: gc removed model versions before the --forecasts-before deletions; when one
    failed, the forecasts it left published named a version that was already gone. Forecasts go
    first, versions only after their forecasts' deletion succeeded."""
    import polars as pl

    from flowcast.errors import PublishError
    from flowcast.store import open_store
    from flowcast.store.parquet import partition_name

    settings = _settings(home, keep_versions=1)
    store = open_store(settings)
    for a in (datetime(2023, 6, 1), datetime(2023, 7, 1)):
        fc = pl.DataFrame({"unique_id": ["a", "a"], "ds": [a + timedelta(days=31), a + timedelta(days=62)],
                           "step": [1, 2], "y_hat": [1.0, 2.0]}, schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="sales", as_of=a, model="gru", model_version="gru-v1", run_id="r", created_at=NOW)
    items = plan(settings, NOW, forecasts_before=datetime(2023, 8, 1), dataset="sales")
    assert "gru-v1" in {i.version for i in items if i.kind == "model"}
    # the second deletion cannot take its writer lock (a folder where the lock file goes)
    lock = home / "warehouse" / ".locks" / f"forecasts.dataset=sales.{partition_name(datetime(2023, 7, 1))}.lock"
    lock.unlink(missing_ok=True)
    lock.mkdir(parents=True)
    with pytest.raises(PublishError, match="could not open the writer lock"):
        execute(settings, items)
    assert open_store(settings).as_ofs("sales") == [datetime(2023, 7, 1)]
    assert "gru-v1" in {v.version for v in ModelRegistry(home / "models").list()}


def test_forecasts_before_a_date_keep_that_dates_run_of_a_source_east_of_utc(tmp_path):
    """Regression: `gc --forecasts-before 2023-08-01` read the date as midnight UTC, while the run of a source in
    Australia/Melbourne keyed by 2023-08-01 is the midnight that day starts at there (2023-07-31 14:00 UTC): gc
    removed the forecasts of the very date it was told to keep, and their realized accuracy. A date alone is each
    dataset's day, as for `flowcast forecasts --as-of DATE` (its source's tz, else the one its publishes recorded)."""
    from flowcast.store import open_store
    from flowcast.timekeys import day_start, storage_naive

    home = tmp_path / "home"
    settings = load_settings(home=home)
    keys = {}
    for ds, tz in (("melb", "Australia/Melbourne"), ("utc", None)):
        keys[ds] = [storage_naive(day_start(datetime(2023, 7, d).date(), tz)) for d in (30, 31)] + [
            storage_naive(day_start(datetime(2023, 8, d).date(), tz)) for d in (1, 2)]
        for a in keys[ds]:
            _publish_with_record(settings, ds, a, model_version=None, ds=datetime(2023, 9, 1), tz=tz)
    assert keys["melb"][2] == datetime(2023, 7, 31, 14, 0)  # the key of Melbourne's 1 August
    res = CliRunner().invoke(app, ["gc", "--home", str(home), "--as-of", NOW.isoformat(), "--forecasts-before",
                                   "2023-08-01", "--yes", "--json"])
    assert res.exit_code == 0, res.output
    assert open_store(settings).as_ofs("melb") == keys["melb"][2:]
    assert open_store(settings).as_ofs("utc") == keys["utc"][2:]


def test_a_version_that_published_after_the_plan_stays(home):
    """Regression: execute re-checked under the registry's lock only what the registry protects (production, its
    predecessor, the champion), not the publishes: a version the plan let go that published forecasts between the
    plan and its execution (a forecast backfill of a past date chose it: `model_for_as_of`) was removed, and
    those forecasts named a version already gone."""
    import polars as pl

    from flowcast.store import open_store

    settings = _settings(home, keep_versions=1)
    items = plan(settings, NOW)
    assert {"gru-v1", "gru-v3"} <= {i.version for i in items if i.kind == "model"}
    fc = pl.DataFrame({"unique_id": ["a"], "ds": [datetime(2023, 4, 1)], "step": [1], "y_hat": [1.0]},
                      schema_overrides={"step": pl.Int32})
    open_store(settings).publish(fc, dataset="sales", as_of=datetime(2023, 3, 1), model="gru", model_version="gru-v3",
                                 run_id="backfill", created_at=NOW)
    done = execute(settings, items)
    assert "gru-v3" not in {i.version for i in done} and "gru-v1" in {i.version for i in done}
    assert "gru-v3" in {v.version for v in ModelRegistry(home / "models").list()}


def test_a_version_a_running_run_chose_stays_until_the_run_ends_and_gc_says_why(home):
    """Regression: gc let go any version but production, its predecessor, the champion and those named by
    publishes, so a forecast backfill of a past date (which forecasts with the newest model promoted for data up
    to it: `model_for_as_of`, here gru-v3) lost its model between choosing it and publishing. The run pins the
    version it chose (`ModelRegistry.pin`, under the registry's lock) and gc keeps it, says why, and refuses it
    even when the plan was made before the pin; a pin a killed run left lapses at its `until`."""
    settings = _settings(home, keep_versions=1)
    reg = ModelRegistry(home / "models")
    items = plan(settings, NOW)  # planned before the run chose gru-v3
    assert "gru-v3" in {i.version for i in items}
    reg.pin("gru-v3", run="3f2a-backfill-2023-03-01", at=NOW, until=NOW + timedelta(hours=24))
    done = execute(settings, items, NOW)
    assert "gru-v3" not in {i.version for i in done} and "gru-v1" in {i.version for i in done}
    assert "gru-v3" in {v.version for v in reg.list()}

    cfg = home.parent / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 1\n")
    args = ["gc", "--home", str(home), "--config", str(cfg), "--as-of", NOW.isoformat()]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    said = " ".join(res.stdout.split())
    assert ("kept gru-v3: in use by the running flow run 3f2a-backfill-2023-03-01 (it chose this version to forecast "
            "with; unless that run ends first, kept until 2024-06-02 12:00 UTC)") in said, said
    named = CliRunner().invoke(app, [*args, "--version", "gru-v3"])
    assert named.exit_code == 1 and "never removes a version in use" in " ".join(named.stderr.split())

    later = CliRunner().invoke(app, ["gc", "--home", str(home), "--config", str(cfg), "--as-of",
                                     (NOW + timedelta(hours=25)).isoformat(), "--yes", "--json"])
    assert later.exit_code == 0, later.output  # a killed run's pin lapsed: the policy applies again
    assert "gru-v3" in {i["version"] for i in json.loads(later.stdout.strip().splitlines()[-1])["items"]}
    assert "gru-v3" not in {v.version for v in reg.list()}

    reg.pin("gru-v6", run="r2", at=NOW, until=NOW + timedelta(hours=24))
    reg.unpin("gru-v6", run="r2")  # the run ended
    assert reg.pins(NOW) == {}
    with pytest.raises(RegistryError, match="unknown model version 'gru-v3'"):  # gone before the run could pin it
        reg.pin("gru-v3", run="r3", at=NOW, until=NOW + timedelta(hours=24))


@pytest.mark.parametrize("damage", [b"", b'{"version": "gru-v3", "run": "3f2a-ba', b"\x00\xff not json"])
def test_a_damaged_pin_names_its_file_and_what_to_do(home, damage):
    """Regression (faults18): a pin file that cannot be read (cut short by a full disk, zeroed by a crash) keeps
    its version for good, lapsing never (its run may still use it), and gc said only 'kept until its pin is
    removed', naming no file. It names the pin file and says to delete it once that run has ended; then the
    policy applies again. (Written now, the pin has not lapsed 30 days after NOW: it lapses a day after it was
    written, the test below.)"""
    reg = ModelRegistry(home / "models")
    reg.pin("gru-v3", run="3f2a-backfill-2023-03-01", at=NOW, until=NOW + timedelta(hours=24))
    (pin,) = (home / "models" / "pins").iterdir()
    pin.write_bytes(damage)
    cfg = home.parent / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 1\n")
    args = ["gc", "--home", str(home), "--config", str(cfg), "--as-of", (NOW + timedelta(days=30)).isoformat()]
    res = CliRunner().invoke(app, args)
    said = "".join(res.stdout.split())  # the console folds long lines, paths among them
    assert res.exit_code == 0 and f"keptgru-v3:pinnedby{pin},whichcannotberead" in said, res.stdout
    assert "namestheflowrun3f2a-backfill-2023-03-01" in said and "deletethatfile" in said, res.stdout
    named = CliRunner().invoke(app, [*args, "--version", "gru-v3"])
    told = "".join(named.stderr.split())
    assert named.exit_code == 1 and str(pin) in told and "deletethatfile" in told, named.stderr
    assert "runGCafterthatrun" not in told.replace("gc", "GC")  # it never ends that way
    pin.unlink()  # what it says to do, once that run has ended
    done = CliRunner().invoke(app, [*args, "--yes", "--json"])
    assert done.exit_code == 0, done.output
    assert "gru-v3" not in {v.version for v in reg.list()}


@pytest.mark.parametrize("damage", [b"", b'{"version": "gru-v3", "run": "3f2a-ba', b"\x00" * 64])
def test_a_damaged_pin_lapses_a_day_after_it_was_written(home, damage):
    """Regression (registry19): a pin file that could not be read never lapsed, so a run killed while its pin was
    written (a full disk cuts it short) kept that version from gc for good, until a person deleted the file. Such a
    pin lapses PIN_TTL_HOURS after its file was last written (no readable pin of its run lasts longer: the run
    writes it after it started); until then gc names the file, when it lapses and what to do; then the policy
    applies again and gc --yes removes the version with its pin files."""
    from flowcast.registry import PIN_TTL_HOURS

    reg = ModelRegistry(home / "models")
    reg.pin("gru-v3", run="3f2a-backfill-2023-03-01", at=NOW, until=NOW + timedelta(hours=24))
    (pin,) = (home / "models" / "pins").iterdir()
    pin.write_bytes(damage)
    written = NOW + timedelta(minutes=5)
    os.utime(pin, (written.replace(tzinfo=UTC).timestamp(),) * 2)
    lapses = written + timedelta(hours=PIN_TTL_HOURS)
    assert set(reg.pins(lapses - timedelta(seconds=1))) == {"gru-v3"}
    assert reg.pins(lapses) == {} and set(reg.pins()) == {"gru-v3"}  # every pin when no time is given
    cfg = home.parent / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 1\n")
    args = ["gc", "--home", str(home), "--config", str(cfg)]
    early = CliRunner().invoke(app, [*args, "--as-of", (NOW + timedelta(hours=2)).isoformat()])
    said = "".join(early.stdout.split())
    assert early.exit_code == 0 and f"keptgru-v3:pinnedby{pin},whichcannotberead" in said, early.stdout
    assert f"lapsesat{utc_text(lapses).replace(' ', '')}" in said and "deletethatfile" in said, early.stdout
    late = CliRunner().invoke(app, [*args, "--as-of", (lapses + timedelta(minutes=1)).isoformat(), "--yes", "--json"])
    assert late.exit_code == 0, late.output
    assert "gru-v3" in {i["version"] for i in json.loads(late.stdout.strip().splitlines()[-1])["items"]}
    assert "gru-v3" not in {v.version for v in reg.list()} and not pin.exists()


def test_a_version_that_published_while_gc_removed_other_versions_stays(home, monkeypatch):
    """Regression: execute read the published versions once, before the first model went: a run that published
    with a version the plan let go (a forecast backfill date chose gru-v3: `model_for_as_of`), and unpinned it,
    while gc was removing the versions before it lost its model (its forecasts named a version gone). The
    publishes are read again under the registry's lock before each version goes, after its pin check (a run
    publishes before it unpins)."""
    import polars as pl

    from flowcast.store import open_store

    settings = _settings(home, keep_versions=1)
    items = plan(settings, NOW)
    assert {"gru-v1", "gru-v3"} <= {i.version for i in items if i.kind == "model"}
    fc = pl.DataFrame({"unique_id": ["a"], "ds": [datetime(2023, 4, 1)], "step": [1], "y_hat": [1.0]},
                      schema_overrides={"step": pl.Int32})
    real = ModelRegistry.delete
    published: list[str] = []

    def deleting(self, version, **kw):  # the backfill date runs while gc removes its first version
        if not published:
            self.pin("gru-v3", run="backfill-2023-03-01", at=NOW, until=NOW + timedelta(hours=24))
            open_store(settings).publish(fc, dataset="sales", as_of=datetime(2023, 3, 1), model="gru",
                                         model_version="gru-v3", run_id="backfill-2023-03-01", created_at=NOW)
            self.unpin("gru-v3", run="backfill-2023-03-01")
            published.append(version)
        return real(self, version, **kw)

    monkeypatch.setattr(ModelRegistry, "delete", deleting)
    done = execute(settings, items, NOW)
    assert published and "gru-v3" not in {i.version for i in done}
    assert "gru-v3" in {v.version for v in ModelRegistry(home / "models").list()}
    assert {"gru-v1"} <= {i.version for i in done}


def test_superseded_parquet_files_go_once_their_grace_has_passed_and_a_keys_current_file_never(tmp_path):
    """Regression: a publish deletes the files of its own key superseded more than store.superseded_grace_s
    (60 s) before it, and only those: a backfill (each date rewrites the realized accuracy of every earlier
    as_of, seconds apart) left up to 5 realized files per as_of for good, and a writer killed between its rename
    and that deletion left its key's previous file; each a full copy of the key, never read, never removed
    (16 Parquet files for 5 as_of after one 5-date backfill). gc and every run's retention remove them once
    superseded for longer than the grace; a key's current file is never listed."""
    import polars as pl

    from flowcast.store import open_store
    from flowcast.store.parquet import is_part

    settings = load_settings(home=tmp_path / "home")
    store = open_store(settings)
    a = datetime(2023, 1, 1)
    for y in (1.0, 2.0, 3.0):  # three publishes of one key seconds apart: two superseded files stay
        fc = pl.DataFrame({"unique_id": ["a", "a"], "ds": [datetime(2023, 2, 1), datetime(2023, 3, 1)],
                           "step": [1, 2], "y_hat": [y, y]}, schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="sales", as_of=a, model="naive", model_version=None, run_id=f"r{y}", created_at=NOW)
    key_dir = settings.warehouse_dir / "forecasts" / "dataset=sales" / "as_of=2023-01-01T00:00:00"
    parts = sorted(p for p in key_dir.iterdir() if is_part(p.name))
    assert len(parts) == 3
    written = datetime(2024, 6, 1, 12, 0)
    for i, p in enumerate(parts):  # written 10 s apart, the last at `written`
        t = (written - timedelta(seconds=10 * (len(parts) - 1 - i))).timestamp()
        os.utime(p, (t, t))
    # within the grace of its successor: kept (a DuckDB query planned on it may still read it)
    assert plan(settings, written + timedelta(seconds=30)) == []
    assert [i.path for i in plan(settings, written + timedelta(seconds=55))] == [parts[0]]  # its successor: 65 s
    items = plan(settings, written + timedelta(seconds=61))
    assert [(i.kind, i.path) for i in items] == [("superseded", parts[0]), ("superseded", parts[1])]
    assert "superseded by " + parts[2].name in items[1].reason
    assert plan(settings, written + timedelta(days=999))[-1].path != parts[2]  # the current file: never
    assert len(execute(settings, items)) == 2
    assert sorted(key_dir.iterdir()) == [parts[2]]
    assert open_store(settings).read(dataset="sales", as_of=a)["y_hat"].to_list() == [3.0, 3.0]


def test_superseded_objects_of_a_store_in_an_object_store_go_by_the_same_rule(tmp_path, s3_url):
    """Regression: gc and every run's retention listed superseded Parquet files of the local warehouse only
    (`store.url` or `shared` set: nothing), so a store in S3 kept every object a publish within
    store.superseded_grace_s of its key's previous one had superseded (a backfill rewrites the realized accuracy
    of every earlier as_of seconds apart): full copies, never read, never removed. They are listed by the same
    rule (`parquet.expired`, on the objects' LastModified), shown by URL, and removed through the store's file
    system (by gc; a run's own retention leaves them: one listing per key); a key's current object never."""
    import polars as pl

    from flowcast.store import open_store

    url, opts = s3_url
    settings = load_settings(home=tmp_path / "home", store={"url": url, "storage_options": opts})
    store = open_store(settings)
    a = datetime(2023, 1, 1)
    for y in (1.0, 2.0, 3.0):  # three publishes of one key seconds apart: two superseded objects stay
        fc = pl.DataFrame({"unique_id": ["a", "a"], "ds": [datetime(2023, 2, 1), datetime(2023, 3, 1)],
                           "step": [1, 2], "y_hat": [y, y]}, schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="sales", as_of=a, model="naive", model_version=None, run_id=f"r{y}", created_at=NOW)
    key_dir = store.data.key_dir("forecasts", "sales", a)
    parts = store.data._parts_in(key_dir)
    assert len(parts) == 3 and all(p.startswith("s3://") for p in parts)
    assert plan(settings, datetime(2000, 1, 1)) == []  # superseded after `now`: within the grace
    from flowcast.ops.retention import expire

    assert expire(settings, datetime(2999, 1, 1)) == []  # a run's retention lists no objects: left to gc
    assert store.data._parts_in(key_dir) == parts
    items = plan(settings, datetime(2999, 1, 1))
    assert [(i.kind, i.url) for i in items] == [("superseded", parts[0]), ("superseded", parts[1])]
    assert all(i.bytes > 0 for i in items) and items[0].to_dict(tmp_path / "home")["path"] == parts[0]
    assert len(execute(settings, items)) == 2
    assert store.data._parts_in(key_dir) == [parts[2]]
    assert execute(settings, items) == []  # gone already (another run's retention): nothing to report
    assert open_store(settings).read(dataset="sales", as_of=a)["y_hat"].to_list() == [3.0, 3.0]


def test_gc_of_a_named_version_run_again_after_it_was_removed_says_so_and_succeeds(home):
    """Regression: `flowcast gc --yes --version V` killed after it removed V (before it printed anything) and run
    again, as one does after a kill, failed with exit 2: '--version names versions that are not registered'.
    A version whose number was handed out and that no version on disk carries now was removed already: the
    re-run says so and does the rest; a number never handed out is still a typo."""
    settings = _settings(home, keep_versions=10)
    execute(settings, plan(settings, NOW, versions=["gru-v3"]))
    runner = CliRunner()
    again = runner.invoke(app, ["gc", "--yes", "--version", "gru-v3", "--home", str(home)])
    assert again.exit_code == 0, again.output
    assert "gru-v3 was removed already" in " ".join(again.output.split())
    typo = runner.invoke(app, ["gc", "--yes", "--version", "gru-v30", "--home", str(home)])
    assert typo.exit_code == 2 and "not registered: ['gru-v30']" in " ".join(typo.output.split())
    # killed between hiding the version and removing its files: the hidden folder is not a registered version
    reg = ModelRegistry(home / "models")
    (reg.versions_dir / "gru-v1").rename(reg.versions_dir / ".tmp-deleted-gru-v1")
    assert reg.removed_before("gru-v1") and not reg.removed_before("gru-v2") and not reg.removed_before("gru-v9")


def test_a_recorded_champion_named_to_gc_has_its_record_withdrawn_with_it_the_previous_champion_back(home):
    """gc19: `gc --version V --yes` of the dataset's recorded champion removed V's files and left the champion
    record naming it: reading the champion (what a forecast run takes while no model is in production) failed
    `unknown model version`. Its record is withdrawn in the same lock hold (a `withdraw_champion` event), the
    previous recorded champion put back."""
    reg = ModelRegistry(home / "models")
    reg.record_champion("gru-v6", dataset="sales", reason="a backfill's retrain")  # over gru-v2
    cfg = home.parent / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 10\n")
    args = ["gc", "--home", str(home), "--config", str(cfg), "--as-of", NOW.isoformat(), "--version", "gru-v6"]
    dry = CliRunner().invoke(app, [*args, "--json"])
    assert dry.exit_code == 0, dry.output
    why = [i["reason"] for i in json.loads(dry.stdout.strip().splitlines()[-1])["items"] if i["version"] == "gru-v6"]
    assert why == [("named explicitly (the recorded champion of sales: the record is withdrawn, the previous recorded "
                    "champion put back)")]
    assert reg.champion("sales").version == "gru-v6"  # a dry run changes nothing
    res = CliRunner().invoke(app, [*args, "--yes", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["skipped"] == []
    assert not (home / "models" / "versions" / "gru-v6").exists()
    reg = ModelRegistry(home / "models")
    assert reg.champion("sales").version == "gru-v2"
    last = reg.history("sales")[-1]
    assert (last["action"], last["version"], last["previous"]) == ("withdraw_champion", "gru-v6", "gru-v2")
    assert "flowcast gc --version" in last["reason"]
    shown = CliRunner().invoke(app, ["models", "list", "--home", str(home)])
    assert shown.exit_code == 0 and "unknown model version" not in shown.output, shown.output


@pytest.mark.parametrize("explicit", [True, False])
def test_registry_delete_of_the_only_recorded_champion_leaves_no_champion_or_refuses(home, explicit):
    reg = ModelRegistry(home / "models")
    if not explicit:
        with pytest.raises(RegistryError, match="gru-v2 is the recorded champion of sales: not deleted"):
            reg.delete("gru-v2")
        assert reg.champion("sales").version == "gru-v2" and reg.history("sales")[-1]["action"] == "champion"
        return
    reg.delete("gru-v2", allow_protected=True, at=NOW.replace(tzinfo=None))
    assert reg.champion("sales") is None and "gru-v2" not in {v.version for v in reg.list()}
    assert "gru-v2" not in reg.protected() and reg.production("sales").version == "gru-v5"
    last = reg.history("sales")[-1]
    assert (last["action"], last["version"], last["previous"]) == ("withdraw_champion", "gru-v2", None)


@pytest.mark.parametrize(("promote", "remove", "stack", "back_to"), [
    ([], "gru-v4", ["gru-v5"], None),  # the only previous production model: nothing to roll back to
    (["gru-v3", "gru-v6"], "gru-v3", ["gru-v4", "gru-v5", "gru-v6"], "gru-v5"),
    (["gru-v4"], "gru-v5", ["gru-v4"], None),  # v4 on v4 once v5 is out: one promotion, as `promote` stacks
    (["gru-v3", "gru-v6"], "gru-v4", ["gru-v5", "gru-v3", "gru-v6"], "gru-v3"),  # deeper in the stack
])
def test_registry_delete_of_a_previous_production_model_takes_it_out_of_the_stack(home, promote, remove, stack,
                                                                                   back_to):
    """rollback19: `gc --version V --yes` of a previous production model removed its files and left V in the
    dataset's production stack: `flowcast models rollback` then failed `unknown model version 'V'`. V is taken out
    of the stack in the same lock hold (a `retract` event naming what a rollback puts back now)."""
    reg = ModelRegistry(home / "models")
    for v in promote:
        reg.promote(v, dataset="sales")
    reg.delete(remove, allow_protected=True, at=NOW)
    assert remove not in {v.version for v in reg.list()}
    with open(home / "models" / "production.json") as fh:
        assert json.load(fh)["datasets"]["sales"]["stack"] == stack
    last = reg.history("sales")[-1]
    assert (last["action"], last["version"], last["previous"]) == ("retract", remove, back_to)
    assert "removed by flowcast gc" in last["reason"] and last["at"] == NOW.isoformat()
    if back_to is None:
        with pytest.raises(RegistryError, match="nothing to roll back to"):
            reg.rollback(dataset="sales")
    else:
        assert reg.rollback(dataset="sales").version == back_to


def test_gc_of_the_previous_production_model_says_rollback_will_not_reach_it_and_rollback_goes_past_it(home):
    reg = ModelRegistry(home / "models")
    reg.promote("gru-v3", dataset="sales")  # sales: gru-v4, gru-v5, gru-v3
    cfg = home.parent / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 10\n")
    args = ["gc", "--home", str(home), "--config", str(cfg), "--as-of", NOW.isoformat(), "--version", "gru-v5"]
    dry = CliRunner().invoke(app, [*args, "--json"])
    assert dry.exit_code == 0, dry.output
    why = [i["reason"] for i in json.loads(dry.stdout.strip().splitlines()[-1])["items"] if i["version"] == "gru-v5"]
    assert why == [("named explicitly (the previous production model of sales: taken out of its production stack, "
                    "`flowcast models rollback` will not reach it)")]
    res = CliRunner().invoke(app, [*args, "--yes"])
    assert res.exit_code == 0, res.output
    back = CliRunner().invoke(app, ["models", "rollback", "--dataset", "sales", "--home", str(home)])
    assert back.exit_code == 0, back.output
    assert "gru-v3 -> gru-v4 (rolled back)" in " ".join(back.output.split())
    again = CliRunner().invoke(app, ["models", "rollback", "--dataset", "sales", "--home", str(home)])
    assert again.exit_code == 1 and "nothing to roll back to" in " ".join(again.output.split()), again.output
    assert "unknown model version" not in again.output


def test_a_retried_rollback_after_gc_took_a_version_out_of_the_stack_still_says_it_was_rolled_back(home):
    """The retract event gc writes moves no production: a retried `rollback --expected V` still finds its rollback
    the latest change of production and says so (it read the retract as a change, and refused)."""
    reg = ModelRegistry(home / "models")
    reg.promote("gru-v3", dataset="sales")  # sales: gru-v4, gru-v5, gru-v3
    args = ["models", "rollback", "--dataset", "sales", "--expected", "gru-v3", "--home", str(home)]
    assert CliRunner().invoke(app, args).exit_code == 0  # production gru-v5, gru-v4 the previous one
    reg.delete("gru-v4", allow_protected=True, at=NOW)
    assert reg.history("sales")[-1]["action"] == "retract"
    again = CliRunner().invoke(app, args, terminal_width=300)
    assert again.exit_code == 0, again.output
    assert "was already rolled back from gru-v3 to gru-v5" in " ".join(again.output.split())


@pytest.mark.parametrize("named", [False, True])
def test_gc_of_a_version_deeper_in_a_production_stack_says_rollback_will_not_reach_it(home, named):
    """review21: a version deeper in a dataset's production stack than the predecessor (sales: gru-v4 under gru-v5
    under gru-v3) is not protected, so the policy removes it, or `--version` names it without a protection note;
    `delete` takes it out of the stack, as the README says, but the plan said only 'older than the newest 1
    versions ...' (or 'named explicitly'), not that `flowcast models rollback` will no longer reach it, which the
    README says the plan says."""
    reg = ModelRegistry(home / "models")
    reg.promote("gru-v3", dataset="sales")  # sales: gru-v4, gru-v5, gru-v3
    items = plan(_settings(home, keep_versions=1 if not named else 10), NOW, versions=["gru-v4"] if named else ())
    why = [i.reason for i in items if i.version == "gru-v4"]
    said = "(in the production stack of sales: taken out of it, `flowcast models rollback` will not reach it)"
    head = "named explicitly" if named else "older than the newest 1 versions of sales besides production and its predecessor"
    assert why == [f"{head} {said}"], why
    execute(_settings(home, keep_versions=1 if not named else 10), [i for i in items if i.version == "gru-v4"])
    assert reg.rollback(dataset="sales").version == "gru-v5"
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        reg.rollback(dataset="sales")


@pytest.mark.parametrize("fault", ["before_pointer_rename", "after_pointer_rename", "before_version_removal",
                                   "version_hidden"])
@pytest.mark.parametrize("version", ["gru-v4", "gru-v2"])  # a previous production model; the recorded champion
def test_gc_of_a_stacked_or_champion_version_killed_anywhere_never_leaves_a_record_of_a_removed_version(home, version,
                                                                                                      fault):
    """faults21: `flowcast gc --yes --version V` (V the previous production model, taken out of the stack with it,
    or the recorded champion, whose record is withdrawn with it), a real process SIGKILLed before its pointer rename,
    after it (its backup copy not written), before the version's removal, and with the version out of sight and its
    files not removed. Neither the pointer nor its backup ever names a version whose files are gone, and the re-run
    finishes the job. It did not: killed with V out of sight, the re-run said 'removed already: nothing to do' and
    left `versions/.tmp-deleted-V` (V's files) until the next registration; killed before the backup copy, the
    re-run removed V and left the backup naming it, which `models repair` then restored: a pointer naming a removed
    version."""
    import signal
    import subprocess
    import sys

    models = home / "models"
    cfg = home.parent / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 10\n")
    args = ["gc", "--yes", "--home", str(home), "--config", str(cfg), "--as-of", NOW.isoformat(), "--version", version]
    env = {**os.environ, "FLOWCAST_FAULT": f"registry:{fault}"}
    killed = subprocess.run([sys.executable, "-m", "flowcast", *args], env=env, check=False, capture_output=True,
                            text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    def named() -> set[str]:  # every version the pointer and its backup name
        out = set()
        for name in ("production.json", "production.backup.json"):
            for ent in json.loads((models / name).read_text())["datasets"].values():
                out |= set(ent.get("stack") or []) | {(ent.get("champion") or {}).get("version")}
        return out - {None}

    on_disk = {d.name for d in (models / "versions").iterdir() if not d.name.startswith(".")}
    assert named() <= on_disk
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    # faults29: killed out of sight, the re-run's registry lock finished the removal before gc reached the folder it
    # listed, and gc said 'removed 0 items, 0 B; kept 1 that became protected meanwhile' under its 'Removed' table
    words = " ".join(again.output.split())
    assert "removed 1 item," in words and "protected meanwhile" not in words, words
    assert sorted(d.name for d in (models / "versions").iterdir()) == sorted(on_disk - {version})  # no .tmp- left
    assert version not in named() and named() <= on_disk - {version}
    assert (models / "production.backup.json").read_bytes() == (models / "production.json").read_bytes()
    (models / "production.json").write_text("{cut sh")  # a damaged pointer: repair restores the backup copy
    ModelRegistry(models).repair()
    assert version not in named()
    reg = ModelRegistry(models)
    assert reg.production("sales").version == "gru-v5" and getattr(reg.champion("sales"), "version", None) != version


def test_gc_on_a_full_disk_frees_room_before_the_pointer_write_a_named_version_needs(home, monkeypatch):
    """faults21: `gc --yes --version V` of a previous production model rewrites the pointer (V out of the stack)
    before V goes. On a full disk that write failed (ENOSPC) and stopped gc before it removed anything else: the
    old run folders, cache entries and reports the policy lets go, which would have made the room. Models go last
    now; the disk here is full while the 40-day-old run folder exists."""
    import errno

    from flowcast import registry
    from flowcast.atomic import storage_error

    old_run = home / "runs" / "20240101T000000-aaaa"
    real = registry._write_json_atomic

    def full_until_the_old_run_goes(path, obj, fault="before_pointer_rename"):
        if old_run.exists():
            raise storage_error(path, OSError(errno.ENOSPC, "No space left on device"))
        return real(path, obj, fault=fault)

    monkeypatch.setattr(registry, "_write_json_atomic", full_until_the_old_run_goes)
    cfg = home.parent / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 10\n")
    res = CliRunner().invoke(app, ["gc", "--yes", "--home", str(home), "--config", str(cfg), "--as-of",
                                   NOW.isoformat(), "--version", "gru-v4"])
    assert res.exit_code == 0, res.output
    assert not old_run.exists() and not (home / "models" / "versions" / "gru-v4").exists()
    assert ModelRegistry(home / "models").production("sales").version == "gru-v5"


def test_gc_that_cannot_write_the_pointer_says_what_it_removed_and_to_run_again(home, monkeypatch):
    """faults21: a full disk that gc's other removals do not relieve: the error names the file and ENOSPC, that the
    version stays registered, what gc removed before it, and to run it again once there is room."""
    import errno

    from flowcast import registry
    from flowcast.atomic import storage_error

    def full(path, obj, fault="before_pointer_rename"):
        raise storage_error(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(registry, "_write_json_atomic", full)
    cfg = home.parent / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 10\n")
    res = CliRunner().invoke(app, ["gc", "--yes", "--home", str(home), "--config", str(cfg), "--as-of",
                                   NOW.isoformat(), "--version", "gru-v4"], terminal_width=400)
    said = "".join(res.output.split())  # the console folds long lines anywhere
    assert res.exit_code == 1, res.output
    for part in ("production.json: no space left on device", "gc stopped before removing gru-v4, which stays registered",
                 "it removed 6 items before it", "run it again once there is room"):
        assert "".join(part.split()) in said, res.output
    assert (home / "models" / "versions" / "gru-v4").is_dir() and not (home / "runs" / "20240101T000000-aaaa").exists()


def test_gc_whose_backup_sync_fails_says_the_noted_version_goes_with_the_next_writer(home, monkeypatch):
    """mend29: a plain gc removal (no pointer write) brings the pointer's backup copy up to date first (it may still
    name the version). On a full disk that copy failed and gc said the version 'stays registered', but its removal was
    noted already: it is no longer listed, and the next command that writes the registry removes it. Say that."""
    import errno

    from flowcast import registry
    from flowcast.atomic import storage_error

    models = home / "models"
    (models / registry.BACKUP_POINTER).unlink()  # the copy one write behind (here: missing), so gc's sync writes it
    real = registry._write_bytes_atomic

    def backup_full(path, data, fault=None):
        if Path(path).name == registry.BACKUP_POINTER:
            raise storage_error(path, OSError(errno.ENOSPC, "No space left on device"))
        return real(path, data, fault)

    monkeypatch.setattr(registry, "_write_bytes_atomic", backup_full)
    cfg = home.parent / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 10\n")
    res = CliRunner().invoke(app, ["gc", "--yes", "--home", str(home), "--config", str(cfg), "--as-of",
                                   NOW.isoformat(), "--version", "gru-v1"], terminal_width=400)
    said = "".join(res.output.split())
    assert res.exit_code == 1, res.output
    assert "staysregistered" not in said, res.output
    for part in ("production.backup.json: no space left on device",
                 "gc stopped at gru-v1: its removal is noted", "it is no longer listed",
                 "the next command that writes the registry removes its files",
                 "it removed 6 items before it", "run it again once there is room"):
        assert "".join(part.split()) in said, res.output
    assert (models / "versions" / "gru-v1").is_dir()
    assert "gru-v1" not in {v.version for v in ModelRegistry(models).list()}
    monkeypatch.setattr(registry, "_write_bytes_atomic", real)  # room again: the next writer finishes the removal
    ModelRegistry(models).sync_backup()
    assert not (models / "versions" / "gru-v1").exists()
    assert (models / registry.BACKUP_POINTER).read_bytes() == (models / "production.json").read_bytes()


def test_a_run_folder_whose_cut_checkpoint_was_set_aside_goes_by_its_age(tmp_path):
    """ckpt33: a killed run's cut `last.ckpt`, set aside once said (`models.train.set_aside`: renamed
    `last.ckpt.unreadable`, kept), leaves its run folder as old as it was: retention removes it as any other."""
    from flowcast.models.train import set_aside

    home = tmp_path / "home"
    last = _touch(home / "runs" / "20240101T000000-aaaa" / "gru-backtest" / "checkpoints" / "last.ckpt", 40)
    _age_tree(home / "runs" / "20240101T000000-aaaa", 40)
    kept = set_aside(last)
    assert kept.name == "last.ckpt.unreadable" and not last.exists() and kept.read_bytes() == b"x" * 100
    settings = _settings(home)
    [item] = [i for i in plan(settings, NOW) if i.kind == "run"]
    assert item.path == home / "runs" / "20240101T000000-aaaa" and item.age_days > 39, item
    execute(settings, [item])
    assert not (home / "runs" / "20240101T000000-aaaa").exists()


@pytest.mark.parametrize("n_keys, before", [(1, None), (5, None), (5, "2023-03-01")])
def test_gc_reads_each_publish_receipt_once(tmp_path, monkeypatch, n_keys, before):
    """Regression (gc43): before each model version went, gc read the receipt of every published key again (which
    versions made forecasts still published), and the plan once more: (versions + 1) x keys reads, each a Parquet
    footer (a request on an object store). Each receipt is read once per gc now; a key published again since is
    read again (`test_gc_publish_race.py`). gc44: with --forecasts-before the plan read the receipt of each key it
    deletes twice (its rows, then the version it names); once now."""
    from collections import Counter

    import polars as pl

    from flowcast.store import open_store
    from flowcast.store.embedded import EmbeddedStore

    home = tmp_path / "home"
    reg, art = _registry(tmp_path, home, 100)
    versions = [reg.register(art, name="gru", dataset="sales", created_at=NOW).version for _ in range(6)]
    reg.promote(versions[-1], dataset="sales")
    settings = load_settings(home=home)
    for n in range(n_keys):
        a = datetime(2023, 1 + n, 1)
        fc = pl.DataFrame({"unique_id": ["a"], "ds": [a + timedelta(days=31)], "step": [1], "y_hat": [1.0]},
                          schema_overrides={"step": pl.Int32})
        open_store(settings).publish(fc, dataset="sales", as_of=a, model="gru", model_version=versions[-1],
                                     run_id="r", created_at=NOW)
    reads: Counter[tuple[str, datetime]] = Counter()
    real = EmbeddedStore.receipt_of

    def counted(self, dataset, as_of):
        reads[(dataset, as_of)] += 1
        return real(self, dataset, as_of)

    monkeypatch.setattr(EmbeddedStore, "receipt_of", counted)
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 0\n")
    res = CliRunner().invoke(app, ["gc", "--home", str(home), "--config", str(cfg), "--as-of", NOW.isoformat(),
                                   "--yes", "--json", *(["--forecasts-before", before] if before else [])])
    assert res.exit_code == 0, res.output
    items = json.loads(res.stdout.strip().splitlines()[-1])["items"]
    gone = [i["version"] for i in items if i["kind"] == "model"]
    assert sorted(gone) == sorted(versions[:-1])  # five versions checked one by one before each went
    assert {v.version for v in reg.list()} == {versions[-1]}
    assert len(reads) == n_keys and set(reads.values()) == {1}, reads
    assert sum(i["kind"] == "forecast" for i in items) == (2 if before else 0)
    assert all("(1 row)" in i["reason"] for i in items if i["kind"] == "forecast")  # the rows of the one read


def test_gc_removes_the_lock_objects_killed_writers_left_in_an_object_store(tmp_path, s3_url):
    """lock43: on an object store a key's lock is an object `.locks/<key>` (`FileStore.lock`) that its holder renews;
    a writer killed while it held one left it, with its claim, and nothing swept them: on a key nobody writes again
    they stayed for good (`gc --yes` swept only a local store's idle lock files). gc removes every lock object last
    written more than store.lock_timeout ago (no holder renews it), its claim and what else of it is as old, counts
    them, and leaves a held lock (renewed; its claim is written once, never rewritten) and one just taken."""
    import time

    from flowcast.store.fs import FileStore

    url, opts = s3_url
    files = FileStore(url, storage_options=opts)
    dead = ".locks/forecasts.dataset=sales.as_of=2023-01-01T00:00:00"
    files.write_text(dead, "0dead0writer host-a 4242 7")  # killed after its 7th renewal
    files.write_text(f"{dead}.claims/0dead0writer", "")
    files.write_text(".locks/realized.k.now/0dead1writer", "")  # a probe a waiter killed as it looked left
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(f"[store]\nurl = {json.dumps(url)}\nlock_timeout = 3\n[store.storage_options]\n"
                   f"key = 'testing'\nsecret = 'testing'\nendpoint_url = {json.dumps(opts['endpoint_url'])}\n"
                   "client_kwargs = { region_name = 'us-east-1' }\n")
    args = ["gc", "--home", str(tmp_path / "home"), "--config", str(cfg), "--yes"]
    with files.lock(".locks/held", stale_after=3, poll=0.05):  # a live writer: renews its object, not its claim
        (claim,) = files.list(".locks/held.claims")
        time.sleep(6)  # over lock_timeout (3 s) and the server's whole seconds
        files.write_text(".locks/fresh", "0new0writer host-b 7")  # taken just now
        res = CliRunner().invoke(app, [*args, "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout.strip().splitlines()[-1])["lock_files_removed"] == 1
        assert files.list(".locks") == ["fresh", "held", "held.claims"]
        assert files.list(".locks/held.claims") == [claim]
    files.write_text(dead, "0dead0writer host-a 4242")
    time.sleep(5)
    said = " ".join(CliRunner().invoke(app, args).output.split())
    assert "removed 2 idle writer lock files of the forecast store" in said, said  # the dead one and 'fresh'
    assert files.list(".locks") == []
