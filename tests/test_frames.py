"""``.to_frame()`` on every result type of the Python API: real results (a real search, a real
campaign on a small model, a real sweep), each frame with its documented columns, every column
in dse.frames' vocabulary, units in the names of the columns that have one."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from test_resilience_mapped_campaign import eyeriss_mapping

from dse.arch import load_arch
from dse.frames import COLUMNS, definition, frame
from dse.mapper import search
from dse.problems.models import DigitsCNN
from dse.problems.problem import conv_problem
from dse.resilience import FastEngine, campaign, outcomes, sampling
from dse.resilience.mapped import mapping_resilience
from dse.resilience.mapped.adaptive import LayerCampaign, adaptive_resilience
from dse.resilience.network import network_sdc
from dse.resilience.strata import Plan

PROBLEM = conv_problem(C=16, M=32, R=3, S=3, P=8, Q=8)
# a unit that a column's values carry must be in its name
UNIT_NAMES = {"energy_pJ": "pJ", "mac_energy_pJ": "pJ", "edp_J_cycles": "J_cycles",
              "sdc_FIT": "FIT", "sdc_FIT_lo": "FIT", "sdc_FIT_hi": "FIT", "due_FIT": "FIT",
              "exposed_Mbit": "Mbit", "wall_s": "_s", "gops_at_1GHz": "GHz", "area_um2": "um2"}


def _check(df: pd.DataFrame, expected: list[str]) -> None:
    assert isinstance(df, pd.DataFrame) and len(df) > 0
    assert list(df.columns) == expected
    assert set(df.attrs["units"]) == set(df.columns)
    for col in df.columns:
        assert definition(col)
        if col in UNIT_NAMES:
            assert UNIT_NAMES[col] in col


@pytest.fixture(scope="module")
def model_and_images():
    torch.manual_seed(1)
    return DigitsCNN().eval(), torch.randn(6, 1, 8, 8)


def test_mapper_result_and_stats_frames_name_their_units() -> None:
    res = search(PROBLEM, load_arch("eyeriss_like"), "edp", max_evals=200, workers=1,
                 time_limit=None, seed=0)
    df = res.to_frame()
    _check(df, ["kept", "energy_pJ", "cycles", "edp_J_cycles", "utilization", "macs"])
    assert df.iloc[0]["kept"] == "best" and df.iloc[0]["energy_pJ"] == res.best_stats.energy_pJ
    assert df.iloc[0]["edp_J_cycles"] == pytest.approx(res.best_stats.edp)
    levels = res.best_stats.to_frame()
    _check(levels, ["level", "dataspace", "instances", "reads", "updates", "fills", "energy_pJ",
                    "macs"])
    assert levels["energy_pJ"].sum() == pytest.approx(res.best_stats.energy_pJ, rel=1e-9)


def test_layer_resilience_frames_per_site_and_per_stratum(model_and_images) -> None:
    model, images = model_and_images
    arch = load_arch("eyeriss_like")
    res = mapping_resilience(PROBLEM, arch, eyeriss_mapping(), model, "features.2", images,
                             n_faults=4, seed=3, fmt="bf16")
    df = res.to_frame()
    _check(df, ["level", "dataspace", "exposure_share", "sdc_per_fault", "sdc_per_fault_lo",
                "sdc_per_fault_hi", "faults", "outputs_per_fault", "live_fraction"])
    assert df["exposure_share"].sum() == pytest.approx(1.0)
    camp = LayerCampaign(PROBLEM, arch, eyeriss_mapping(), model, "features.2", images, None,
                         seed=2, fmt="bf16")
    adaptive = adaptive_resilience(camp, Plan(0.9, 0.0, 120))
    strata = adaptive.to_frame()
    _check(strata, ["level", "dataspace", "bits", "exposed_Mbit", "faults", "sdc_per_fault",
                    "sdc_per_fault_lo", "sdc_per_fault_hi", "sdc_FIT"])
    assert strata["faults"].sum() == adaptive.sdc.n
    assert strata["exposed_Mbit"].sum() == pytest.approx(adaptive.exposed_mbit)
    # the strata's FIT adds up to the layer's FIT (FIT is linear in the strata)
    assert strata["sdc_FIT"].sum() == pytest.approx(adaptive.fit.value, rel=1e-9)
    net = network_sdc([(1.0, adaptive.to_dict()["strata"])], fit_per_mbit=1000.0,
                      confidence=0.95, seconds_per_inference=1e-3).to_frame()
    _check(net, ["sdc_per_fault", "sdc_per_fault_lo", "sdc_per_fault_hi", "sdc_FIT",
                 "sdc_FIT_lo", "sdc_FIT_hi", "sdc_per_inference", "sdc_per_inference_hi",
                 "due_per_fault", "due_FIT", "exposed_Mbit", "faults"])
    assert net.iloc[0]["sdc_FIT"] == pytest.approx(adaptive.fit.value, rel=1e-9)


def test_engine_and_campaign_summary_frames_count_pairs_and_faults(model_and_images) -> None:
    model, images = model_and_images
    labels = model(images).argmax(1)
    shapes = sampling.tensor_shapes(model, sampling.fault_layers(model), "weight", images)
    faults = sampling.generate(shapes, role="weight", kind="bitflip", fmt="fp32", bits=[30],
                               n_bits=1, margin=0.2, confidence=0.9, mode="network", n_faults=10,
                               seed=0, model="digits_cnn")
    engine = FastEngine(model, images, labels)
    result = engine.run(faults)
    classes = list(outcomes.get("top1").classes)
    df = result.to_frame()
    _check(df, ["fault", "fault_image_pairs", *[f"{c}_pairs" for c in classes]])
    assert (df["fault_image_pairs"] == len(images)).all()
    rows = [campaign.Row(i, f, tuple(int(x) for x in c))
            for i, (f, c) in enumerate(zip(faults, result.counts(), strict=True))]
    summary = campaign.summarize_rows(rows, engine.spec, 0.95)
    sf = summary.to_frame()
    per_class = [f"{c}{s}" for c in classes
                 for s in ("_pairs", "_per_pair", "_per_pair_lo", "_per_pair_hi")]
    _check(sf, ["group", "key", "faults", "fault_image_pairs", *per_class])
    overall = sf[sf["group"] == "overall"].iloc[0]
    assert overall["faults"] == 10 and overall["fault_image_pairs"] == 10 * len(images)
    assert sf[sf["group"] == "layer"]["faults"].sum() == 10


def test_training_summary_frame_has_a_wilson_interval_per_outcome() -> None:
    from dse.resilience.training.campaign import summarize
    from dse.resilience.training.outcome import GROUPS, OUTCOMES

    rows = [{"optimizer": "sgd", "mitigation": "none", "outcome": o, "detections": 0,
             "acc_drop": 0.0, "slope": 0.0} for o in ("Masked", "Masked", "SharpDegrade")]
    df = summarize(rows, 0.95).to_frame()
    names = [f"{o}{s}" for o in (*OUTCOMES, *GROUPS)
             for s in ("_experiments", "_per_experiment", "_per_experiment_lo",
                       "_per_experiment_hi")]
    _check(df, ["key", "experiments", *names])
    assert df.iloc[0]["Masked_per_experiment"] == pytest.approx(2 / 3)
    assert df.iloc[0]["Masked_per_experiment_lo"] < 2 / 3 < df.iloc[0]["Masked_per_experiment_hi"]


def test_sweep_result_frames_network_and_mapping_rows(tmp_path) -> None:
    from dse.sweep import ModelSpec, SweepConfig, run_sweep
    from dse.sweep.config import FaultSettings, MapperSettings

    config = SweepConfig(name="f", designs=["simple_weight_stationary"],
                         models=[ModelSpec("digits_cnn")],
                         mapper=MapperSettings(budget=100, time_limit=30.0),
                         resilience=FaultSettings(enabled=False), seed=0, executor="inprocess",
                         output=str(tmp_path))
    result = run_sweep(config, progress=False)
    net = result.to_frame()
    assert {"point", "model", "energy_pJ", "cycles", "edp_J_cycles", "gops_at_1GHz"} \
        <= set(net.columns)
    assert "edp" not in net.columns and "injections" not in net.columns
    assert net.iloc[0]["edp_J_cycles"] == result.network[0]["edp"]
    maps = result.to_frame("mappings")
    assert len(maps) == len(result.rows) and "mapping" not in maps.columns
    _check(net, list(net.columns))
    _check(maps, list(maps.columns))


def test_a_column_outside_the_vocabulary_is_refused() -> None:
    assert "sdc_FIT" in COLUMNS
    with pytest.raises(KeyError, match="sdc_rate_typo"):
        frame([{"sdc_rate_typo": 1.0}])
