"""Errors a user reads: one line each (flowcast.errors)."""

from __future__ import annotations

import pytest

from flowcast.config import load_settings
from flowcast.errors import one_line


def test_a_misspelled_setting_is_unknown_and_names_the_one_it_may_be(tmp_path):
    """Regression: a misspelled key said pydantic's 'Extra inputs are not permitted' and no more; it says
    'unknown setting' and names the nearest key of its section (also inside [sources.NAME])."""
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text('hom = "x"\n[model]\nmax_step = 5\n[sources.sales]\npath = "a.csv"\ntime_col = "d"\n'
                   'target_col = "y"\nfreq = "1d"\nfutur_cols = ["promo"]\nzzzz = 1\n')
    with pytest.raises(ValueError) as err:
        load_settings(cfg)
    said = one_line(err.value)
    assert "hom: unknown setting (got 'x'; did you mean 'home'?)" in said
    assert "model.max_step: unknown setting (got 5; did you mean 'max_steps'?)" in said
    assert "sources.sales.futur_cols: unknown setting (got ['promo']; did you mean 'future_cols'?)" in said
    assert "sources.sales.zzzz: unknown setting (got 1)" in said and "Extra inputs" not in said
