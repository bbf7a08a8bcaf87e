"""A panic of polars in a courtesy probe of a file (a hint's, a command's guess: `series_keys`, `probes`) gives no
answer, as any other failure to read the file cheaply does: it fails no validation nor command. Real panics: a
Parquet file cut short under the probe's own lazy scan once its footer is read (polars 2.1: 'assertion failed:
range.end as u64 <= self.size'), as tests/data/test_panics.py's; skipped, saying so, where the installed polars
reads such a file with an ordinary error instead (the probe's answer, None, asserted before)."""

from __future__ import annotations

import polars as pl
import pytest
from proc_state import written_in_place

from flowcast.data import probes, series_keys

# each courtesy probe (a hint's, a command's guess), the module whose scan of the file it reads through, that scan's
# name there, and its call of a Parquet file of columns id, date, val, region (one value: 'north')
COURTESIES = [
    ("series_keys", "_probe_scan", lambda p: series_keys.columns_telling_apart(p, ["id", "date"], ["val"])),
    ("series_keys", "_probe_scan", lambda p: series_keys.repeated_times(p, "date")),
    ("series_keys", "_scan_one", lambda p: series_keys.keyings(p, "date", [["id"], []])),
    ("series_keys", "_scan_one", lambda p: series_keys.times_repeat_within(p, "date", ["id"])),
    ("probes", "_probe_scan", lambda p: probes.head_text_of(p, ["id"])),
    ("probes", "_scan_one", lambda p: probes.wide_probe(p, "date", long_only=True)),
    ("probes", "_scan_one", lambda p: probes.constant_values(p, ["region"])),
]


@pytest.mark.parametrize(("module", "scan", "probe"), COURTESIES)
def test_a_panic_in_a_courtesy_probe_gives_no_answer(tmp_path, monkeypatch, module, scan, probe):
    """Regression: a courtesy probe's `try: ... except Exception: return None` gives no hint for a file it cannot
    read, but its panic-naming wrapper sat outside that `try`: a panic of polars in a hint (`columns_telling_apart`,
    of validation's duplicate-rows reason) failed the validation with 'cannot read ...' instead of giving no hint.
    A real panic: the file is cut short under the probe's own scan once its footer is read (the scan is the probe's,
    made by the function it calls; only the moment of the cut is chosen here). Each probe answers of the file whole:
    the panic, not the file, is what makes it answer None."""
    path = tmp_path / "sales.parquet"
    n = 20 * 500  # 20 series x 500 days, in row groups of 1,000 rows
    pl.DataFrame({"id": [f"s{i // 500}" for i in range(n)],
                  "date": pl.date_range(pl.date(2020, 1, 1), pl.date(2021, 5, 14), eager=True).to_list() * 20,
                  "val": [float(i) for i in range(n)], "region": ["north"] * n}).write_parquet(path, row_group_size=1000)
    whole = path.read_bytes()
    assert probe(str(path)) is not None
    probes._wide_probed.cache_clear()  # (read once per state of the file: the cut comes after its state is taken)
    own = {"series_keys": series_keys, "probes": probes}[module]
    real = getattr(own, scan)

    scans = []  # the probe's own scans of the file, each cut short once its footer is read

    def cut_under(*args, **kwargs):  # (each scan of the file whole: a probe's header read scans it too)
        written_in_place(path, whole)
        lazy = real(*args, **kwargs)
        lazy.collect_schema()  # its footer read, as the probe's own scan reads it
        written_in_place(path, whole[:64])
        scans.append(lazy)
        return lazy

    monkeypatch.setattr(own, scan, cut_under)
    assert probe(str(path)) is None
    try:  # what the probe met: a panic of polars, not an error
        scans[-1].collect()
    except pl.exceptions.PolarsError as exc:  # (a polars that reads the cut file with an ordinary error: no panic met)
        pytest.skip(f"polars {pl.__version__} reads a Parquet file cut under its scan with an ordinary error, no "
                    f"panic ({type(exc).__name__}): the probe gave no answer, as of any error, but met no panic")
    except pl.exceptions.PanicException:
        pass
    else:
        pytest.fail("the file cut short under the probe's scan read whole")
