"""``au gold``: the leaderboard from scores directories, layer-wise entries, coverage vs training size, refusals."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from au import data
from au.ablation import SWEEP_TRAINING, SweepConfig, run_sweep
from au.errors import AUError
from au.files import sha256_file
from au.gold import GoldConfig, TrainingSizeOptions, gold_run, read_leaderboard
from au.gold.tables import SPLITS_SCHEMA, TRAINING_SIZE_SCHEMA
from au.score import ScoreConfig, score_run
from browser import render
from conftest import TinyNet, make_dataset, run_au, tiny_net

DETECTORS = ("msp", "energy", "knn", "parzen_lsh")
PARAMS = {"parzen_lsh": {"heldout": 40, "partitions": 2, "partitionings": 2}, "knn": {"k": 5}}


def _scores(out, layer=None, detectors=DETECTORS, ood=True):
    train, test = make_dataset(300, 3, seed=0, split="train"), make_dataset(200, 3, seed=1, split="test")
    noise = [data.load("noise-uniform:n=100:shape=8x8x1", "all")] if ood else []
    config = ScoreConfig(
        detectors=detectors,
        layer=layer,
        val_size=0,
        params={k: v for k, v in PARAMS.items() if k in detectors},
    )
    score_run(tiny_net(), train, test, noise, out, config)
    return out


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    return _scores(tmp_path_factory.mktemp("scores") / "s")


def test_leaderboard_end_to_end(tmp_path, scores):
    config = GoldConfig(epsilons=(0.01, 0.7), n_splits=20, mixed=("all",))
    result = gold_run([scores], tmp_path / "g", config)
    entries = result["entries"]
    assert len(entries) == (len(DETECTORS) + 1) * 2 * 2  # the detectors and combo, 2 streams, 2 epsilons
    assert {e["method"] for e in entries} == {"ltt"} and {e["entry"] for e in entries} >= {"combo"}
    for stream in ("in", "mixed"):
        combos = result["streams"][stream]["combo"]
        assert list(combos) == ["0.01", "0.7"]  # fitted for each epsilon
        for combo in combos.values():
            assert combo["entries"] == ["msp", "energy", "knn@conv1", "parzen_lsh@conv1"]
            assert list(combo["weights"]) == [*combo["entries"], "weakest rank"] and combo["splits"] == 20
            assert sum(combo["choices"].values()) == 20
        assert result["streams"][stream]["guarantee"]["line"].startswith("The guarantee ")
        for eps in (0.01, 0.7):
            group = [e for e in entries if e["stream"] == stream and e["epsilon"] == eps]
            assert [e["rank"] for e in group] == list(range(1, len(DETECTORS) + 2))
            means = [e["coverage_mean"] for e in group]
            assert means == sorted(means, reverse=True)
    for e in entries:
        assert {"coverage", "threshold", "risk_bound", "test_risk", "aurc", "violation_rate"} <= set(e)
        assert e["n_splits"] == 20 and 0 <= e["violation_rate"] <= 1
        lo, hi = e["violation_ci"]
        assert lo <= e["violation_rate"] <= hi and e["verdict"] in ("held", "within noise", "violated")
        assert e["population"] is None  # 200 and 300 inputs: too few for a held-out population
        # LTT orders on a fifth of the calibration inputs (100 in, 150 mixed) and certifies on the rest
        assert e["n_certify"] == {"in": 80, "mixed": 120}[e["stream"]]
        if e["epsilon"] == 0.01:  # 100 calibration inputs cannot certify 1%: documented, not an error
            assert e["coverage"] == 0 and e["threshold"] is None and e["risk_bound"] == 1.0
            assert "calibration split too small" in e["note"]
    # the untrained tiny net is wrong about 2/3 of the time: 70% is certifiable on the in stream
    assert any(
        e["certified"] and e["coverage"] > 0 for e in entries if e["stream"] == "in" and e["epsilon"] == 0.7
    )
    assert result["streams"]["in"]["inputs"] == 200 and result["streams"]["mixed"]["inputs"] == 300
    mixed = [e for e in entries if e["stream"] == "mixed"]
    assert all("in_coverage" in e and "ood_accepted" in e for e in mixed)
    splits = pq.read_table(tmp_path / "g" / "splits.parquet")
    assert splits.schema.remove_metadata() == SPLITS_SCHEMA and splits.num_rows == len(entries) * 20
    cal = result["calibration"]
    assert cal["temperature"] > 0 and set(cal) >= {"ece_before", "ece_after", "reliability_before"}
    html = (tmp_path / "g" / "report.html").read_text()
    assert "gold leaderboard" in html and "Risk-coverage curves" in html
    # as a reader sees it: every figure loads, the wide leaderboards scroll in their own boxes
    seen = render(tmp_path / "g" / "report.html", 800)
    assert seen["images"] == 3 and seen["broken"] == 0 and seen["page_width"] <= seen["window_width"]
    assert {"risk_coverage_in", "risk_coverage_mixed", "reliability"} <= set(result["figures"])
    board = read_leaderboard(tmp_path / "g")
    assert board["entries"] == json.loads(json.dumps(result["entries"])) and board["gold"] == result["gold"]
    # the logits calibrated are the test recording that the scores job's manifest names
    assert result["sources"][0]["test_recording"] == str(scores / "acts" / "test")
    # same job again: nothing to do; another job into that directory: refused, nothing touched
    before = (tmp_path / "g" / "leaderboard.json").read_bytes()
    assert gold_run([scores], tmp_path / "g", config)["entries"] == board["entries"]
    with pytest.raises(AUError, match=r"already holds a finished leaderboard .* \(different config\)"):
        gold_run([scores], tmp_path / "g", GoldConfig(epsilons=(0.5,), n_splits=20))
    assert (tmp_path / "g" / "leaderboard.json").read_bytes() == before


def test_same_seed_same_leaderboard(tmp_path, scores):
    config = GoldConfig(epsilons=(0.7,), n_splits=10)
    a = gold_run([scores], tmp_path / "a", config)["entries"]
    b = gold_run([scores], tmp_path / "b", config)["entries"]
    assert a == b
    c = gold_run([scores], tmp_path / "c", GoldConfig(epsilons=(0.7,), n_splits=10, seed=1))["entries"]
    assert [e["coverage"] for e in a] != [e["coverage"] for e in c]


def test_layer_wise_entries(tmp_path, scores):
    other = _scores(tmp_path / "pool", layer="pool", detectors=("msp", "knn"))
    result = gold_run([scores, other], tmp_path / "g", GoldConfig(epsilons=(0.7,), n_splits=5))
    keys = {e["entry"] for e in result["entries"]}
    assert keys == {"msp", "energy", "knn@conv1", "parzen_lsh@conv1", "knn@pool", "combo"}
    layers = {e["entry"]: e["layer"] for e in result["entries"]}
    assert layers["knn@pool"] == "pool" and layers["msp"] == "logits"
    with pytest.raises(AUError, match="knn@conv1 is scored in two directories"):
        gold_run([scores, scores], tmp_path / "g2", GoldConfig(epsilons=(0.7,), n_splits=5))


def test_combo_needs_two_detectors_not_one_at_two_layers(tmp_path, scores):
    """An explicit --combo on fewer than two detectors is one line and exit 1, nothing written; the default
    (auto) combines where it can and otherwise says nothing."""
    conv1 = _scores(tmp_path / "conv1", detectors=("knn",))
    pool = _scores(tmp_path / "pool", layer="pool", detectors=("knn",))
    config = GoldConfig(epsilons=(0.7,), n_splits=5)
    quiet = gold_run([conv1, pool], tmp_path / "auto", config)
    assert {e["entry"] for e in quiet["entries"]} == {"knn@conv1", "knn@pool"}  # no combo, no error
    assert quiet["streams"]["in"]["combo"] is None
    for combo in (("all",), ("knn@conv1", "knn@pool")):
        with pytest.raises(AUError, match=r"combines at least two detectors' scores, got 1 \(knn\)"):
            gold_run([conv1, pool], tmp_path / "g", GoldConfig(epsilons=(0.7,), n_splits=5, combo=combo))
    # two layers of knn with msp beside them: two detectors, combined
    mixed = gold_run(
        [scores, pool], tmp_path / "two", GoldConfig(epsilons=(0.7,), n_splits=5, combo=("msp", "knn@pool"))
    )
    assert mixed["streams"]["in"]["combo"]["0.7"]["entries"] == ["msp", "knn@pool"]
    base = ("gold", "--scores", f"{conv1},{pool}", "--epsilon", "0.7", "--splits", "5", "--out")
    for combo in ("all", "knn@conv1,knn@pool"):
        proc = run_au(*base, str(tmp_path / "g"), "--combo", combo)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr == (
            f"au gold: error: --combo {combo} combines at least two detectors' scores, got 1 (knn); name entries of "
            "two or more detectors, score more detectors, or pass --combo none\n"
        )
    assert not (tmp_path / "g").exists()
    proc = run_au(*base, str(tmp_path / "cli-auto"))
    assert proc.returncode == 0, proc.stderr
    assert "combo" not in proc.stdout.replace(str(tmp_path), "") + proc.stderr.replace(str(tmp_path), "")


def test_nan_scores_and_other_inputs_are_refused(tmp_path, scores):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(scores, bad)
    table = pq.read_table(bad / "scores.parquet")
    knn = table.column("knn").to_numpy().copy()
    knn[5] = np.nan
    table = table.set_column(table.column_names.index("knn"), "knn", [knn])
    pq.write_table(table, bad / "scores.parquet")
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["outputs"]["scores.parquet"]["sha256"] = sha256_file(bad / "scores.parquet")
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AUError, match="detector 'knn' has 1 NaN or infinite score"):
        gold_run([bad], tmp_path / "g", GoldConfig(n_splits=5))
    assert not (tmp_path / "g").exists()
    with pytest.raises(AUError, match="not in the scores"):
        gold_run([scores], tmp_path / "g", GoldConfig(n_splits=5, mixed=("fashion-mnist",)))
    with pytest.raises(AUError, match="does not exist; pass the --out of 'au score'"):
        gold_run([tmp_path / "nothing"], tmp_path / "g", GoldConfig(n_splits=5))
    with pytest.raises(AUError, match="leaves an empty calibration or test part"):
        gold_run([scores], tmp_path / "g", GoldConfig(n_splits=5, cal_fraction=0.001))
    with pytest.raises(AUError, match="seed must be a non-negative integer"):
        GoldConfig(seed=-1)
    no_ood = _scores(tmp_path / "no-ood", detectors=("msp",), ood=False)
    with pytest.raises(AUError, match="the scores hold no OOD inputs"):
        gold_run([no_ood], tmp_path / "g", GoldConfig(n_splits=5, mixed=("all",)))
    assert not (tmp_path / "g").exists()  # every refusal came before anything was written


def test_cli_gold_and_its_errors(tmp_path, scores):
    out = tmp_path / "g"
    for args, message in [
        (("--epsilon", "1.5"), "argument --epsilon: 1.5 is not in (0, 1)"),
        (("--epsilon", "0.01,abc"), "argument --epsilon: 'abc' is not a number"),
        (("--delta", "0"), "argument --delta: 0 is not in (0, 1)"),
        (("--delta", "0.05,0.1"), "argument --delta: '0.05,0.1' is not a number"),
        (("--seed", "-1"), "argument --seed: -1 is not an integer >= 0"),
        (("--method", "bonferroni"), "argument --method: invalid choice: 'bonferroni'"),
        (("--holdout-max", "1"), "argument --holdout-max: 1 is not in (0, 1)"),
    ]:
        proc = run_au("gold", "--scores", str(scores), "--out", str(out), *args)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert not out.exists()
    proc = run_au("gold", "--scores", str(scores), "--out", str(out), "--epsilon", "0.7", "--splits", "10")
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout and "knn@conv1" in proc.stdout
    assert read_leaderboard(out)["config"]["n_splits"] == 10


def test_both_methods_side_by_side_with_a_population_check(tmp_path, scores):
    config = GoldConfig(
        epsilons=(0.7,),
        n_splits=20,
        method="both",
        population_min=200,
        population_fraction=0.3,
        mixed=("all",),
    )
    result = gold_run([scores], tmp_path / "g", config)
    entries = result["entries"]
    assert len(entries) == (len(DETECTORS) + 1) * 2 * 2  # (detectors + combo) x methods x streams
    pairs = {(e["stream"], e["entry"], e["method"]) for e in entries}
    assert all((s, k, "sgr") in pairs and (s, k, "ltt") in pairs for s, k, _ in pairs)
    for e in entries:  # both streams have at least 200 inputs: certified on 30%, measured on the other 70%
        pop = e["population"]
        n = {"in": 200, "mixed": 300}[e["stream"]]
        assert (pop["n_cal"], pop["n_test"]) == (round(0.3 * n), n - round(0.3 * n))
        assert pop["violation_ci"][0] <= pop["violation_rate"] <= pop["violation_ci"][1]
        # SGR certifies a single score on the whole calibration part; combo and LTT keep a fifth out
        whole = e["method"] == "sgr" and e["entry"] != "combo"
        assert e["n_certify"] == (e["n_cal"] if whole else round(0.8 * e["n_cal"]))
    splits = pq.read_table(tmp_path / "g" / "splits.parquet").to_pylist()
    assert {(r["method"], r["check"]) for r in splits} == {
        (m, c) for m in ("sgr", "ltt") for c in ("split", "population")
    }
    assert len(splits) == len(entries) * 20 * 2
    html = (tmp_path / "g" / "report.html").read_text()
    assert (
        "Learn then Test beside SGR" in html and "The guarantee " in html and "combo on the in stream" in html
    )
    assert all(" (sgr)" in g or " (ltt)" in g for g in result["gold"].values())
    with pytest.raises(AUError, match="--combo msp combines at least two detectors' scores, got 1"):
        gold_run([scores], tmp_path / "g1", GoldConfig(epsilons=(0.7,), n_splits=5, combo=("msp",)))
    with pytest.raises(AUError, match="--combo: no entry 'knn' in the scores"):
        gold_run([scores], tmp_path / "g1", GoldConfig(epsilons=(0.7,), n_splits=5, combo=("msp", "knn")))
    assert not (tmp_path / "g1").exists()
    with pytest.raises(AUError, match="method must be one of ltt, sgr, both"):
        GoldConfig(method="holm")


def _tiny_factory(input_shape, num_classes, seed):
    import torch

    torch.manual_seed(seed)
    return TinyNet(num_classes)


def test_coverage_vs_training_size_from_a_sweep(tmp_path, scores):
    train, test = make_dataset(300, 3, seed=0, split="train"), make_dataset(200, 3, seed=1, split="test")
    sweep = SweepConfig(
        model="tiny",
        data="blobs",
        fractions=(0.2, 1.0),
        trials=2,
        training=SWEEP_TRAINING.updated(max_steps=40, batch_size=16, lr=0.01, patience=3),
    )
    run_sweep(sweep, tmp_path / "sweep", train=train, test=test, factory=_tiny_factory, show_progress=False)
    options = TrainingSizeOptions(detectors=("msp", "knn"), limit=150, held_out_max_fraction=0.5)
    result = gold_run(
        [scores],
        tmp_path / "g",
        GoldConfig(epsilons=(0.3, 0.7), n_splits=10),
        ablation=tmp_path / "sweep",
        ablation_options=options,
        train=train,
        test=test,
        factory=_tiny_factory,
    )
    table = pq.read_table(tmp_path / "g" / "training_size.parquet")
    assert table.schema.remove_metadata() == TRAINING_SIZE_SCHEMA
    rows = table.to_pylist()
    assert len(rows) == 4 * 2 * 2  # trials x detectors x epsilons
    small = [r["n_train"] for r in rows if r["fraction"] == 0.2]
    large = [r["n_train"] for r in rows if r["fraction"] == 1.0]
    assert max(small) < min(large)
    assert all(0 <= r["coverage_mean"] <= 1 and np.isfinite(r["score_mean"]) for r in rows)
    # each trial model was scored against its own training subset: the kNN fit size equals n_train
    fitted = json.loads((tmp_path / "g" / "ablation" / "f0.2-t0" / "manifest.json").read_text())
    assert fitted["in_distribution"]["n_fit"] == next(
        r["n_train"] for r in rows if r["run_dir"].endswith("f0.2-t0")
    )
    assert result["figures"]["coverage_vs_training"] == "coverage_vs_training.png"
    assert "Certified coverage vs training examples" in (tmp_path / "g" / "report.html").read_text()
    # two training-set sizes are too few for the needed-data fit: one entry per (detector, epsilon), with a note
    needed = result["training_size"]["needed_data"]
    assert result["training_size"]["method"] == "ltt" and len(needed["entries"]) == 2 * 2
    assert all("only 2 training-set size" in e["note"] and e["needed"] is None for e in needed["entries"])
    # the held-out check fits on keep-fractions <= the option (0.5: only 0.2 there), and says so
    assert needed["held_out_max_fraction"] == 0.5
    assert all(
        e["held_out"]["skipped"]
        == "at keep-fractions <= 0.5: only 1 training-set size(s); a coverage curve needs 3"
        for e in needed["entries"]
    )
    html = (tmp_path / "g" / "report.html").read_text()
    assert (
        "The data a guarantee needs" in html
        and "Held-out check (fit on keep-fractions &lt;= 0.5): not made" in html
    )
    assert "needed_data" not in result["figures"]  # nothing fitted, nothing to draw
