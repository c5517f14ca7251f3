"""The ablation table: the method minus every other system, paired, per condition and genre."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anchormix_kedro.evaluation.ablations import (
    OTHER_ANCHOR,
    SAME_EXAMPLE,
    ablation_comparisons,
    ablation_sections,
    genre_context,
    genre_markdown,
    genre_table,
    paired_rows,
    plot_ablation,
)

SYSTEMS = {
    "variants": {
        "advisor": {"formulation": "anchor_target"},
        "no_anchor": {"formulation": "target_only"},
        "anchor_vocals": {"formulation": "anchor_target", "anchor": "vocals"},
        "no_genre": {"formulation": "anchor_target", "prompt": {"genre": False}},
    },
    "baselines": ["dsp_baseline"],
}


def _metrics(correct: dict[tuple[str, str], float], songs: int = 12) -> pd.DataFrame:
    """A metric table: every system on the same (excerpt, target, offset) in two
    conditions, 4 dB offsets; ``correct[(system, condition)]`` is the share of songs it gets
    right (the first songs), per genre alike. anchor_vocals hears the vocals as its anchor."""
    rows = []
    for (system, condition), share in correct.items():
        anchor = "vocals" if system == "anchor_vocals" else "drums"
        for s in range(songs):
            for gain in (-4.0, 4.0):
                right = s < round(share * songs)
                genre = "Pop" if s % 2 else "Rap"
                # no_genre loses the Rap songs only: genre context matters there.
                if system == "no_genre" and genre == "Rap":
                    right = False
                excerpt = f"song{s}/0"
                rows.append(
                    {
                        "example_id": f"{excerpt}|{anchor}>bass|{gain:+.1f}",
                        "condition": condition,
                        "system": system,
                        "excerpt_id": excerpt,
                        "song": f"song{s}",
                        "genre": genre,
                        "anchor": anchor,
                        "target": "bass",
                        "gain_db": gain,
                        "direction_correct_score": float(right),
                        "direction_correct_4db_score": float(right),
                        "amount_error_db": 1.0 if right else 3.0,
                        "balanced_outcome": "tn",
                    }
                )
    return pd.DataFrame(rows)


TABLE = _metrics(
    {
        ("advisor", "as_mixed"): 1.0,
        ("advisor", "gain_staged"): 1.0,
        ("no_anchor", "as_mixed"): 1.0,
        ("no_anchor", "gain_staged"): 0.5,
        ("anchor_vocals", "as_mixed"): 0.75,
        ("anchor_vocals", "gain_staged"): 0.75,
        ("no_genre", "as_mixed"): 1.0,
        ("no_genre", "gain_staged"): 1.0,
        ("dsp_baseline", "as_mixed"): 1.0,
        ("dsp_baseline", "gain_staged"): 1.0,
    }
)


def _row(comparisons, system, condition, metric="direction_accuracy_4db"):
    hit = comparisons[
        (comparisons["system"] == system)
        & (comparisons["condition"] == condition)
        & (comparisons["metric"] == metric)
    ]
    assert len(hit) == 1
    return hit.iloc[0]


def test_other_anchors_pair_on_the_same_target_and_offset():
    same = paired_rows(TABLE, "advisor", "no_anchor")
    assert set(same["pairing"]) == {SAME_EXAMPLE} and len(same) == 48
    across = paired_rows(TABLE, "advisor", "anchor_vocals")
    assert set(across["pairing"]) == {OTHER_ANCHOR} and len(across) == 48
    assert (across["anchor"] == "vocals").all() and (across["anchor_ref"] == "drums").all()
    expected = across["excerpt_id"] + "|drums>bass|" + across["gain_db"].map("{:+.1f}".format)
    assert (across["example_id_ref"] == expected).all()
    # The oracle meters every anchor's examples: it meets the advisor on the advisor's only.
    vocals = TABLE[TABLE["system"] == "anchor_vocals"].assign(system="oracle_meter")
    drums = TABLE[TABLE["system"] == "advisor"].assign(system="oracle_meter")
    oracle = paired_rows(pd.concat([TABLE, vocals, drums]), "advisor", "oracle_meter")
    assert set(oracle["pairing"]) == {SAME_EXAMPLE} and (oracle["anchor"] == "drums").all()
    assert len(oracle) == 48


def test_the_anchor_shows_where_the_session_level_changes():
    comparisons = ablation_comparisons(TABLE, "advisor", SYSTEMS, n_resamples=400)
    mixed = _row(comparisons, "no_anchor", "as_mixed")
    assert mixed["difference"] == 0.0 and mixed["p_wilcoxon"] == 1.0
    staged = _row(comparisons, "no_anchor", "gain_staged")
    assert staged["difference"] == pytest.approx(0.5)
    assert staged["reference_estimate"] == 1.0 and staged["system_estimate"] == 0.5
    assert staged["ci_low"] > 0.2 and staged["p_bootstrap"] < 0.05 and staged["p_wilcoxon"] < 0.05
    assert staged["n"] == 24 and staged["n_songs"] == 12 and staged["kind"] == "trained"
    vocals = _row(comparisons, "anchor_vocals", "as_mixed")
    assert vocals["difference"] == pytest.approx(0.25) and vocals["pairing"] == OTHER_ANCHOR
    assert _row(comparisons, "dsp_baseline", "as_mixed")["kind"] == "baseline"
    amount = _row(comparisons, "no_anchor", "gain_staged", "amount_mae_db")
    assert amount["difference"] == pytest.approx(-1.0)  # the advisor's error is lower
    assert set(comparisons["reference"]) == {"advisor"}
    assert "advisor" not in set(comparisons["system"])


def test_the_markdown_and_the_figure_show_each_condition():
    comparisons = ablation_comparisons(TABLE, "advisor", SYSTEMS, n_resamples=200)
    sections = ablation_sections(comparisons)
    assert list(sections) == ["as_mixed", "gain_staged"]
    staged = sections["gain_staged"]
    assert "| no_anchor | trained | 24 (12) | +0.500 [" in staged
    assert "own anchor: anchor_vocals." in staged
    figure = plot_ablation(comparisons)
    assert len(figure.axes) == 2
    assert ablation_sections(comparisons.iloc[0:0]) == {}


def test_the_genre_table_shows_where_genre_context_changes_the_advice():
    assert genre_context(SYSTEMS, "advisor") == {
        "advisor": "as the reference",
        "no_anchor": "as the reference",
        "anchor_vocals": "as the reference",
        "no_genre": "genre not named",
    }
    genres = genre_table(TABLE, "advisor", SYSTEMS, n_resamples=200)
    rap = genres[
        (genres["genre"] == "Rap") & (genres["system"] == "no_genre")
        & (genres["condition"] == "as_mixed")
    ].iloc[0]  # fmt: skip
    pop = genres[
        (genres["genre"] == "Pop") & (genres["system"] == "no_genre")
        & (genres["condition"] == "as_mixed")
    ].iloc[0]  # fmt: skip
    assert rap["estimate"] == 0.0 and rap["difference"] == 1.0 and rap["n_songs"] == 6
    assert pop["estimate"] == 1.0 and pop["difference"] == 0.0
    advisor = genres[genres["system"] == "advisor"]
    assert advisor["difference"].isna().all() and (advisor["estimate"] == 1.0).all()
    markdown = genre_markdown(genres, "advisor", "as_mixed")
    assert "| Rap | 1.00 [1.00, 1.00] (12) |" in markdown
    assert "; +1.00 [" in markdown and "`no_genre` (genre not named)" in markdown
    assert np.isnan(genres.loc[genres["system"] == "dsp_baseline", "difference"]).sum() == 0


def test_an_environments_grid_reaches_the_tables_of_the_evaluation():
    """`evaluation_common.systems` is interpolated in base, so an environment's extra
    variants (the grid of --env=ablations) reach the tables through `params:systems`."""
    import inspect

    from anchormix_kedro.pipelines import automated_eval, correlation
    from anchormix_kedro.pipelines.correlation.nodes import compare_ablations

    base_only = {"systems": {"variants": {"advisor": {}}}, "bootstrap": {"n_resamples": 50}}
    _, genres, _ = compare_ablations(TABLE, base_only, SYSTEMS)
    no_genre = genres[genres["system"] == "no_genre"]
    assert set(no_genre["genre_context"]) == {"genre not named"}
    for pipeline in (automated_eval.create_pipeline(), correlation.create_pipeline()):
        for node in pipeline.nodes:
            if "systems" in inspect.signature(node.func).parameters:
                assert "params:systems" in node.inputs, node.name
