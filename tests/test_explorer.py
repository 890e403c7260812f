"""headplast.analysis.explorer: the grids hold each head's seed mean and standard error at
[layer][head]; the page embeds plotly (offline) and its data."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from headplast.analysis.explorer import explorer_data, measures_of, render_explorer


def heads_mean(n_layers=2, n_heads=3, n_seeds=3, shift=0.0):
    rows = []
    for la in range(n_layers):
        for h in range(n_heads):
            rows.append(
                {
                    "layer": la,
                    "head": h,
                    "n_seeds": n_seeds,
                    "Urel_mean": 0.1 * la + 0.01 * h + shift,
                    "Urel_sd": 0.02,
                    "I_pre_mean": -0.5 + h,
                    "I_pre_sd": 0.3,
                    "I_pre_se_mean": 0.1,
                    "I_pre_se_sd": 0.0,
                    "I_pre_ci_low_mean": -1.0,
                    "I_pre_ci_low_sd": 0.0,
                }
            )
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # row order does not matter


def test_measures_leave_out_per_seed_uncertainties():
    assert measures_of(heads_mean()) == ["Urel", "I_pre"]


def test_grids_are_indexed_by_layer_and_head_with_standard_errors():
    data = explorer_data(
        {("m", "t", "random"): heads_mean(), ("m", "t", "probe"): heads_mean(shift=1)}
    )
    entry = data["m/t"]
    assert (entry["layers"], entry["heads"]) == (2, 3)
    assert list(entry["starts"]) == ["random", "probe"]
    random = entry["starts"]["random"]
    assert random["mean"]["Urel"][1][2] == pytest.approx(0.12)
    assert entry["starts"]["probe"]["mean"]["Urel"][1][2] == pytest.approx(1.12)
    assert random["se"]["I_pre"][0][1] == pytest.approx(0.3 / math.sqrt(3))
    assert random["n_seeds"] == 3


def test_one_seed_has_no_standard_error_and_empty_runs_are_left_out():
    df = heads_mean(n_seeds=1)
    df["Urel_sd"] = np.nan
    data = explorer_data({("m", "t", "random"): df, ("m", "t", "probe"): df.iloc[0:0]})
    assert data["m/t"]["starts"]["random"]["se"]["Urel"][0][0] is None
    assert list(data["m/t"]["starts"]) == ["random"]


def test_page_is_self_contained_and_carries_the_data():
    data = explorer_data({("m", "t", "random"): heads_mean()})
    page = render_explorer(data)
    assert "plotly" in page.lower() and len(page) > 1_000_000  # the library itself, inline
    assert not re.search(r'<script[^>]+src="(https?:)?//', page)
    payload = re.search(r"const DATA = (\{.*?\});\n", page).group(1)
    assert json.loads(payload) == json.loads(json.dumps(data))
    assert "No run has a usable seed" in render_explorer({})


def test_a_run_without_usable_seed_is_read_empty_only_when_asked(tmp_path):
    from headplast.analysis.summary import read_heads_mean
    from headplast.io import ArtifactError

    path = tmp_path / "heads_mean.csv"
    path.write_text("layer,head,n_seeds\n")
    assert read_heads_mean(path, allow_empty=True).empty
    with pytest.raises(ArtifactError, match="no rows"):
        read_heads_mean(path)
    path.write_text("x,y\n")  # not a heads table at all: refused either way
    with pytest.raises(ArtifactError):
        read_heads_mean(path, allow_empty=True)
