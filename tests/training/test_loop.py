import csv
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import deepraft
from deepraft.core.config import ModelConfig, from_dict, load_train_config
from deepraft.core.weights_io import checkpoint_dirs, latest_checkpoint, read_model_config
from deepraft.models import build_model
from deepraft.training.loop import init_weights, schedule_db, stamp_boost, train
from tests.conftest import EXAMPLES, REPO, TINY_AREA_MODEL, TINY_MODEL


def _cfg(**over):
    base = {
        "model": TINY_MODEL,
        "data": {"image_size": 40, "max_side": 96},
        "batch_size": 3,
        "max_steps": 6,
        "checkpoint_every": 2,
        "log_every": 1,
        "warmup_steps": 2,
        "keep_checkpoints": 10,
        "augment": {"enabled": True, "aug_start": 0, "aug_end": 3, "max_ops": 3},
    }
    base.update(over)
    return load_train_config(None, base)


def test_run_writes_checkpoints_log_and_config(tmp_path, photo_dir):
    res = train(_cfg(), photo_dir, tmp_path / "r", show_progress=False)
    assert res.step == 6
    assert [d.name for d in checkpoint_dirs(tmp_path / "r")] == ["step_0000002", "step_0000004", "step_0000006"]
    cfg = read_model_config(latest_checkpoint(tmp_path / "r") / "model.safetensors")
    assert cfg.encoder == "unet_tiny" and cfg.work_size == 32
    rows = list(csv.DictReader((tmp_path / "r" / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(0 <= float(r["acc"]) <= 1 for r in rows)
    assert "psnr" in rows[0] and (tmp_path / "r" / "config.yaml").exists()


def test_training_learns_to_tell_stamped_from_clean(tmp_path):
    """120 steps on the example photos (32 px crops, no augmentation, seeded): the detection loss
    falls from about ln 2 and the accuracy rises from chance to well above it, while the stamp
    keeps its strength (PSNR at the model's target)."""
    cfg = _cfg(
        data={"image_size": 32, "max_side": 96},
        batch_size=8,
        max_steps=120,
        checkpoint_every=120,
        warmup_steps=5,
        augment={"enabled": False},
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on two busy shared cores, two threads took 160 s where one takes 6 s
    try:
        train(cfg, EXAMPLES, tmp_path / "r", show_progress=False)
    finally:
        torch.set_num_threads(threads)
    rows = list(csv.DictReader((tmp_path / "r" / "log.csv").open()))
    assert len(rows) == 120
    acc = [float(r["acc"]) for r in rows]
    loss = [float(r["det_loss"]) for r in rows]
    first_acc, last_acc = sum(acc[:10]) / 10, sum(acc[-20:]) / 20
    first_loss, last_loss = sum(loss[:10]) / 10, sum(loss[-20:]) / 20
    assert first_acc <= 0.6 and abs(first_loss - 0.693) < 0.02, (first_acc, first_loss)  # chance
    assert last_acc >= 0.85 and last_loss <= 0.7 * first_loss, (last_acc, last_loss)
    assert all(28.0 < float(r["psnr"]) < 32.0 for r in rows[-20:])


def test_log_rows_average_the_steps_since_the_row_before(tmp_path, photo_dir):
    train(_cfg(max_steps=4), photo_dir, tmp_path / "every", show_progress=False)
    train(_cfg(max_steps=4, log_every=2), photo_dir, tmp_path / "pairs", show_progress=False)
    every = list(csv.DictReader((tmp_path / "every" / "log.csv").open()))
    pairs = list(csv.DictReader((tmp_path / "pairs" / "log.csv").open()))
    assert [int(r["step"]) for r in pairs] == [2, 4]
    for row, (a, b) in zip(pairs, [every[0:2], every[2:4]]):  # the same steps: runs are seeded
        for k in ("loss", "det_loss", "psnr", "acc", "tpr", "tnr"):
            assert float(row[k]) == pytest.approx((float(a[k]) + float(b[k])) / 2, rel=1e-4, abs=1e-6), k
        assert row["lr"] == b["lr"]  # the learning rate of the row's last step


def test_resume_is_exact(tmp_path, photo_dir):
    train(_cfg(), photo_dir, tmp_path / "straight", show_progress=False)
    train(_cfg(), photo_dir, tmp_path / "sliced", show_progress=False, until_step=4)
    # drop the last checkpoint so the resume starts from step 2 and re-runs 3..6
    for d in checkpoint_dirs(tmp_path / "sliced")[1:]:
        import shutil

        shutil.rmtree(d)
    train(_cfg(), photo_dir, tmp_path / "sliced", show_progress=False)
    a = load_file(latest_checkpoint(tmp_path / "straight") / "model.safetensors")
    b = load_file(latest_checkpoint(tmp_path / "sliced") / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = list(csv.DictReader((tmp_path / "sliced" / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]


def _grads(model):
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def test_grad_accum_averages_the_gradients_of_its_micro_batches(photo_dir):
    from deepraft.core.data import find_images
    from deepraft.models import build_model
    from deepraft.training.augment import AugmentLayer
    from deepraft.training.datasets import PhotoCrops
    from deepraft.training.distributed import DistInfo
    from deepraft.training.loop import _micro_step, train_step

    cfg = _cfg(batch_size=2, grad_accum=2, lr=0.0, grad_clip=0.0)
    one = _cfg(batch_size=2, lr=0.0, grad_clip=0.0)
    crops = PhotoCrops(find_images(photo_dir), 40, 0.3, 96, 0)
    batch = torch.stack([crops[(5, i)] for i in range(4)])
    torch.manual_seed(0)
    model = build_model(cfg.model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=0.0)
    info, dev, attack = DistInfo(), torch.device("cpu"), AugmentLayer(cfg.augment)
    acc = train_step(model, opt, batch, 5, cfg, attack, dev, info)
    both = _grads(model)
    # micro-batch 0 is the step one would take on its crops without accumulation
    first = train_step(model, opt, batch[:2], 5, one, attack, dev, info)
    g0 = _grads(model)
    model.zero_grad(set_to_none=True)
    stats1, _ = _micro_step(model, batch[2:].float() / 255, 5, 1, one, attack, dev, info)
    g1 = _grads(model)
    assert both.keys() == g0.keys() == g1.keys() and len(both) > 4
    for k in both:
        torch.testing.assert_close(both[k], (g0[k] + g1[k]) / 2, rtol=1e-4, atol=1e-7)
    assert acc["loss"] == pytest.approx((first["loss"] + float(stats1[0])) / 2, rel=1e-5)
    assert not torch.allclose(g0[next(iter(g0))], g1[next(iter(g1))])  # the two halves differ
    with pytest.raises(ValueError, match="batch_size x grad_accum = 4 crops, got 2"):
        train_step(model, opt, batch[:2], 5, cfg, attack, dev, info)


def test_grad_accum_run_trains_and_refuses_zero(tmp_path, photo_dir):
    res = train(_cfg(grad_accum=2, max_steps=2), photo_dir, tmp_path / "r", show_progress=False)
    assert res.step == 2 and 0 <= res.last["acc"] <= 1
    with pytest.raises(ValueError, match="grad_accum must be at least 1, got 0"):
        train(_cfg(grad_accum=0), photo_dir, tmp_path / "z", show_progress=False)


def test_init_from_starts_a_new_run_from_other_weights(tmp_path, photo_dir):
    train(_cfg(max_steps=2), photo_dir, tmp_path / "base", show_progress=False)
    base = load_file(latest_checkpoint(tmp_path / "base") / "model.safetensors")
    cfg = _cfg(max_steps=1, lr=0.0, warmup_steps=1, init_from=str(tmp_path / "base"))
    cfg.model.residual_blur = 1.0  # the stamp's post-processing may change, the weights must fit
    train(cfg, photo_dir, tmp_path / "tuned", show_progress=False)
    tuned = load_file(latest_checkpoint(tmp_path / "tuned") / "model.safetensors")
    learned = [k for k in base if "running_" not in k and "num_batches" not in k]
    assert learned
    for k in learned:
        assert torch.equal(base[k], tuned[k]), k  # lr 0: the weights are the base run's
    assert "init_from" in (tmp_path / "tuned" / "config.yaml").read_text()
    other = _cfg(max_steps=1, init_from=str(tmp_path / "base"))
    other.model.encoder_kwargs = {"channels": [6, 12]}
    other.model.encoder = "unet"
    with pytest.raises(ValueError, match="do not fit"):
        train(other, photo_dir, tmp_path / "bad", show_progress=False)


def test_freeze_encoder_trains_the_scanner_alone_at_two_scales(tmp_path, photo_dir):
    train(_cfg(max_steps=2), photo_dir, tmp_path / "base", show_progress=False)
    base = load_file(latest_checkpoint(tmp_path / "base") / "model.safetensors")
    cfg = _cfg(max_steps=3, lr=1e-2, freeze=["encoder"], train_scan_scales=[0.5, 1.0], init_from=str(tmp_path / "base"))
    res = train(cfg, photo_dir, tmp_path / "tuned", show_progress=False)
    assert res.step == 3
    tuned = load_file(latest_checkpoint(tmp_path / "tuned") / "model.safetensors")
    enc = [k for k in base if k.startswith("encoder.")]
    scan = [k for k in base if k.startswith("scanner.") and k.endswith("weight")]
    assert enc and scan
    for k in enc:  # weights and batch norm statistics alike
        assert torch.equal(base[k], tuned[k]), k
    assert any(not torch.equal(base[k], tuned[k]) for k in scan)
    assert "train_scan_scales" in (tmp_path / "tuned" / "config.yaml").read_text()


def _loss_over_parts(run_dir):
    """(loss, det_loss + img_loss) of each logged step of a run (detection and image weights 1)."""
    rows = list(csv.DictReader((run_dir / "log.csv").open()))
    return [(float(r["loss"]), float(r["det_loss"]) + float(r["img_loss"])) for r in rows]


def test_distill_from_a_teacher_adds_the_hinge_on_the_same_copies(tmp_path, photo_dir):
    """A teacher identical to the model being trained reads exactly the same augmented, noisy
    copies: the hinge is 0 and the loss is the detection and image losses alone. A teacher with
    another scanner puts some stamped copies below it: the loss is larger."""
    train(_cfg(max_steps=2), photo_dir, tmp_path / "base", show_progress=False)
    base = str(tmp_path / "base")
    frozen = {"freeze": ["encoder"], "init_from": base, "max_steps": 2, "lr": 0.0}
    train(_cfg(**frozen, distill_from=base), photo_dir, tmp_path / "same", show_progress=False)
    assert all(loss == pytest.approx(parts, rel=1e-5, abs=1e-6) for loss, parts in _loss_over_parts(tmp_path / "same"))
    train(_cfg(**{**frozen, "lr": 5e-2, "max_steps": 4}), photo_dir, tmp_path / "other", show_progress=False)
    teach = {**frozen, "distill_from": str(tmp_path / "other"), "loss": {"distill_weight": 10.0}}
    train(_cfg(**teach), photo_dir, tmp_path / "taught", show_progress=False)
    assert any(loss > parts + 1e-3 for loss, parts in _loss_over_parts(tmp_path / "taught"))


def test_init_parts_starts_a_wider_scanner_behind_the_same_stamp(tmp_path, photo_dir):
    """init_parts [encoder]: the encoder comes from the base run, a scanner of another shape
    (``convnet``, not ``convnet_tiny``) starts fresh and learns from the base's narrow scanner."""
    train(_cfg(max_steps=2), photo_dir, tmp_path / "base", show_progress=False)
    base = load_file(latest_checkpoint(tmp_path / "base") / "model.safetensors")
    wide = {**TINY_MODEL, "scanner": "convnet", "scanner_kwargs": {"channels": [6, 12]}}
    start = {"model": wide, "freeze": ["encoder"], "init_from": str(tmp_path / "base"), "max_steps": 2}
    with pytest.raises(ValueError, match="do not fit"):
        train(_cfg(**start), photo_dir, tmp_path / "all", show_progress=False)
    with pytest.raises(ValueError, match="unknown part"):
        train(_cfg(**start, init_parts=["decoder"]), photo_dir, tmp_path / "bad", show_progress=False)
    train(
        _cfg(**start, init_parts=["encoder"], distill_from=str(tmp_path / "base")),
        photo_dir,
        tmp_path / "wide",
        show_progress=False,
    )
    tuned = load_file(latest_checkpoint(tmp_path / "wide") / "model.safetensors")
    enc = [k for k in base if k.startswith("encoder.")]
    assert enc and all(torch.equal(base[k], tuned[k]) for k in enc)
    assert tuned["scanner.features.0.weight"].shape[0] == 6 != base["scanner.features.0.weight"].shape[0]


def test_init_widen_starts_a_wider_scanner_from_what_the_narrow_one_computes(tmp_path, photo_dir):
    train(_cfg(max_steps=2), photo_dir, tmp_path / "base", show_progress=False)
    wide_cfg = {**TINY_MODEL, "scanner": "convnet", "scanner_kwargs": {"channels": [6, 12, 12]}}
    base, wide = build_model(from_dict(ModelConfig, TINY_MODEL)), build_model(from_dict(ModelConfig, wide_cfg))
    init_weights(base, str(tmp_path / "base"))
    with pytest.raises(ValueError, match="do not fit"):
        init_weights(wide, str(tmp_path / "base"))
    init_weights(wide, str(tmp_path / "base"), widen=True)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(wide.eval().scanner(x), base.eval().scanner(x), atol=1e-5)
    start = {"model": wide_cfg, "freeze": ["encoder"], "init_from": str(tmp_path / "base"), "init_widen": True}
    assert train(_cfg(**start, max_steps=1), photo_dir, tmp_path / "wide", show_progress=False).step == 1


def test_keyed_run_starts_from_a_zero_bit_model_widened_and_logs_bit_accuracy(tmp_path, photo_dir):
    """A keyed model (message_bits) widened from a zero-bit run: the message's input planes read
    by zero weights, so its first stamps are the zero-bit model's whatever the bits; it trains,
    logs its bits' accuracy, and a distillation teacher is refused."""
    area = {k: v for k, v in TINY_AREA_MODEL.items() if k != "scan_scales"}
    train(_cfg(model=area, max_steps=1), photo_dir, tmp_path / "zero", show_progress=False)
    keyed_cfg = {**area, "message_bits": 6}
    base, keyed = build_model(from_dict(ModelConfig, area)), build_model(from_dict(ModelConfig, keyed_cfg))
    init_weights(base, str(tmp_path / "zero"))
    init_weights(keyed, str(tmp_path / "zero"), widen=True)
    x = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        assert torch.allclose(keyed.stamp(x, message=torch.ones(2, 6)), base.stamp(x), atol=1e-6)
    start = {"model": keyed_cfg, "init_from": str(tmp_path / "zero"), "init_widen": True}
    res = train(_cfg(**start, max_steps=2), photo_dir, tmp_path / "keyed", show_progress=False)
    assert res.step == 2 and 0 <= res.last["acc"] <= 1 and 0 <= res.last["tnr"] <= 1
    with pytest.raises(ValueError, match="keyed study model"):  # the runtime reads zero-bit models only
        deepraft.load(tmp_path / "keyed", device="cpu")
    with pytest.raises(ValueError, match="reads bits"):
        cfg = _cfg(model=keyed_cfg, freeze=["encoder"], distill_from=str(tmp_path / "zero"))
        train(cfg, photo_dir, tmp_path / "distilled", show_progress=False)


def test_channels_last_and_cpu_autocast_train_and_a_bad_autocast_is_refused(tmp_path, photo_dir):
    cfg = _cfg(max_steps=1, channels_last=True, autocast="always")
    res = train(cfg, photo_dir, tmp_path / "r", show_progress=False)
    assert res.step == 1 and 0 <= res.last["acc"] <= 1
    with pytest.raises(ValueError, match="autocast must be one of"):
        train(_cfg(max_steps=1, autocast="sometimes"), photo_dir, tmp_path / "bad", show_progress=False)


def test_distill_from_needs_the_frozen_encoder_of_the_teacher(tmp_path, photo_dir):
    train(_cfg(max_steps=2), photo_dir, tmp_path / "a", show_progress=False)
    train(_cfg(max_steps=2, seed=1), photo_dir, tmp_path / "b", show_progress=False)
    with pytest.raises(ValueError, match="needs freeze"):
        train(_cfg(distill_from=str(tmp_path / "a")), photo_dir, tmp_path / "r1", show_progress=False)
    cfg = _cfg(freeze=["encoder"], init_from=str(tmp_path / "a"), distill_from=str(tmp_path / "b"))
    with pytest.raises(ValueError, match="encoder differs"):
        train(cfg, photo_dir, tmp_path / "r2", show_progress=False)


@pytest.mark.parametrize(
    "over, match",
    [
        ({"freeze": ["decoder"]}, "unknown part"),
        ({"freeze": ["encoder", "scanner"]}, "nothing left to train"),
        ({"train_scan_scales": []}, "train_scan_scales must be positive"),
        ({"train_scan_scales": [0.0, 1.0]}, "train_scan_scales must be positive"),
    ],
)
def test_freeze_and_train_scan_scales_refuse_bad_values(tmp_path, photo_dir, over, match):
    with pytest.raises(ValueError, match=match):
        train(_cfg(**over), photo_dir, tmp_path / "r", show_progress=False)


def test_training_record_counts_every_stage_of_a_chain(tmp_path, photo_dir):
    """A stage fine-tuned from a stage that was itself fine-tuned: the card counts all three."""
    from deepraft.evaluation.card_export import training_record

    train(_cfg(max_steps=2), photo_dir, tmp_path / "s1", show_progress=False)
    train(_cfg(max_steps=1, init_from=str(tmp_path / "s1")), photo_dir, tmp_path / "s2", show_progress=False)
    train(_cfg(max_steps=3, init_from=str(tmp_path / "s2")), photo_dir, tmp_path / "s3", show_progress=False)
    rec = training_record(tmp_path / "s3", latest_checkpoint(tmp_path / "s3"), "recipe")
    assert [st["run"] for st in rec["stages"]] == ["s1", "s2", "s3"]
    assert [st["steps"] for st in rec["stages"]] == [2, 1, 3] and rec["steps"] == 6
    assert rec["wall_time_s"] == pytest.approx(sum(st["wall_time_s"] for st in rec["stages"]), abs=0.2)
    assert rec["recipe"] == "recipe" and rec["config"]["max_steps"] == 3
    alone = training_record(tmp_path / "s1", latest_checkpoint(tmp_path / "s1"), None)
    assert "stages" not in alone and alone["steps"] == 2


def test_no_resume_refuses_existing_run(tmp_path, photo_dir):
    train(_cfg(max_steps=2), photo_dir, tmp_path / "r", show_progress=False)
    with pytest.raises(FileExistsError):
        train(_cfg(max_steps=2), photo_dir, tmp_path / "r", resume=False, show_progress=False)


def test_unknown_config_key_is_rejected(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  encodr: unet\n")
    with pytest.raises(ValueError, match="unknown key"):
        load_train_config(p)


@pytest.mark.parametrize("name", ["plain", "smoothing", "smoothing_aug", "default"])
def test_shipped_configs_resolve(name):
    cfg = load_train_config(REPO / "configs" / f"{name}.yaml")
    assert cfg.max_steps > 0
    if name.startswith("smoothing"):
        assert cfg.model.smoothing_std == 0.5
    if name == "smoothing_aug":
        assert (cfg.augment.aug_start, cfg.augment.aug_end) == (5000, 100000)


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path, photo_dir):
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(
        "model: {encoder: unet_tiny, scanner: convnet_tiny, work_size: 32, psnr_target: 30.0}\n"
        "data: {image_size: 40, max_side: 96}\nbatch_size: 2\nmax_steps: 3\ncheckpoint_every: 3\n"
        "log_every: 1\nwarmup_steps: 1\ndevice: cpu\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "deepraft.apps.cli",
        "train",
        "--config",
        str(cfg),
        "--data",
        str(photo_dir),
        "--run-name",
        "ddp",
        "--runs-dir",
        str(tmp_path),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert latest_checkpoint(tmp_path / "ddp").name == "step_0000003"
    info = (tmp_path / "ddp" / "run.json").read_text()
    assert '"world_size": 2' in info


def test_cli_train_overrides_and_resume(tmp_path, photo_dir):
    import yaml

    from tests.conftest import run_cli

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "model: {encoder: unet_tiny, scanner: convnet_tiny, work_size: 32}\n"
        "data: {image_size: 40, max_side: 96}\nbatch_size: 2\nmax_steps: 50\ncheckpoint_every: 2\n"
    )
    args = [
        "train",
        "--config",
        cfg,
        "--data",
        photo_dir,
        "--run-name",
        "r",
        "--runs-dir",
        tmp_path,
        "--no-progress",
        "--std",
        "0.3",
        "--aug-start",
        "0",
        "--aug-end",
        "1",
        "--lr",
        "0.01",
        "--grad-accum",
        "2",
        "--until-step",
        "2",
    ]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    resolved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert resolved["model"]["smoothing_std"] == 0.3 and resolved["lr"] == 0.01 and resolved["grad_accum"] == 2
    assert resolved["augment"]["aug_start"] == 0 and resolved["augment"]["aug_end"] == 1
    assert latest_checkpoint(tmp_path / "r").name == "step_0000002"
    r = run_cli(*args[:-1], "4")
    assert r.returncode == 0 and latest_checkpoint(tmp_path / "r").name == "step_0000004"
    assert run_cli(*args[:-2], "--no-resume").returncode == 2


def test_train_state_loads_with_weights_only(tmp_path, photo_dir):
    import numpy as np

    from deepraft.training.checkpoint import read_train_state, set_rng_state

    train(_cfg(max_steps=2), photo_dir, tmp_path / "r", show_progress=False)
    ckpt = latest_checkpoint(tmp_path / "r")
    state = torch.load(ckpt / "train_state.pt", map_location="cpu", weights_only=True)  # no extra globals
    assert state["step"] == 2 and "optimizer" in state
    set_rng_state(state["rng"])
    a = np.random.rand(4)
    set_rng_state(state["rng"])
    assert np.array_equal(a, np.random.rand(4))  # the NumPy state round-trips exactly
    # a checkpoint written before the tensor form (a NumPy array inside) still loads, weights_only
    legacy = {**state, "rng": {**state["rng"], "numpy": np.random.get_state()}}
    torch.save(legacy, ckpt / "train_state.pt")
    assert read_train_state(ckpt)["rng"]["numpy"][0] == "MT19937"


def test_no_unsafe_torch_load_in_the_package():
    import ast

    offenders = []
    for path in (REPO / "src" / "deepraft").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "weights_only":
                if not (isinstance(node.value, ast.Constant) and node.value.value is True):
                    offenders.append(f"{path.name}:{node.value.lineno}")
    assert offenders == []


def _crash_on_rename(monkeypatch):
    import deepraft.core.fileio

    def boom(tmp, path):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(deepraft.core.fileio, "finish_temp_file", boom)


def test_run_files_are_written_atomically(tmp_path, monkeypatch):
    from deepraft.training.loop import write_run_files

    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text("old config\n")
    (run / "run.json").write_text("{}\n")
    _crash_on_rename(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        write_run_files(run, _cfg(), tmp_path, torch.device("cpu"), 1)
    assert (run / "config.yaml").read_text() == "old config\n" and (run / "run.json").read_text() == "{}\n"
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "run.json"]  # no temporary files left


def test_log_rewrite_on_resume_is_atomic(tmp_path, monkeypatch):
    from deepraft.training.loop import LOG_FIELDS, _CsvLog

    path = tmp_path / "log.csv"
    old = ",".join(LOG_FIELDS) + "\n" + "\n".join(f"{s}" + "," * (len(LOG_FIELDS) - 1) for s in (1, 2, 3)) + "\n"
    path.write_text(old)
    _CsvLog(path, 2)
    assert [int(r["step"]) for r in csv.DictReader(path.open())] == [1, 2]
    path.write_text(old)
    _crash_on_rename(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        _CsvLog(path, 2)
    assert path.read_text() == old  # a crash while shortening the log leaves the old log whole


@pytest.mark.slow
def test_ddp_refusal_is_taken_by_every_rank(tmp_path, photo_dir):
    """--no-resume on an existing run: every rank refuses (exit 2), none waits in a collective.
    Plain processes (no torchrun, which would kill the waiting rank and hide the hang)."""
    import socket

    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(
        "model: {encoder: unet_tiny, scanner: convnet_tiny, work_size: 32, psnr_target: 30.0}\n"
        "data: {image_size: 40, max_side: 96}\nbatch_size: 2\nmax_steps: 1\ncheckpoint_every: 1\n"
        "log_every: 1\nwarmup_steps: 1\ndevice: cpu\n"
    )
    args = [
        sys.executable,
        "-m",
        "deepraft.apps.cli",
        "train",
        "--config",
        str(cfg),
        "--data",
        str(photo_dir),
        "--run-name",
        "r",
        "--runs-dir",
        str(tmp_path),
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    assert subprocess.run(args, capture_output=True, text=True, env=env, timeout=300).returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [
        subprocess.Popen(
            [*args, "--no-resume"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **env,
                "RANK": str(r),
                "LOCAL_RANK": str(r),
                "WORLD_SIZE": "2",
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
            },
        )
        for r in range(2)
    ]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, stderr) in zip(procs, outs):
        assert p.returncode == 2 and "run exists" in stderr, stderr[-2000:]


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_resolves_and_builds_its_model(path):
    from deepraft.models import build_model

    cfg = load_train_config(path)
    assert cfg.max_steps > 0 and cfg.batch_size > 0
    model = build_model(cfg.model)
    x = torch.rand(1, 3, cfg.model.work_size, cfg.model.work_size)
    with torch.no_grad():
        assert model.scanner(x).shape == ((1, cfg.model.message_bits) if cfg.model.message_bits else (1,))


def test_default_recipe_stages_fine_tune_each_other():
    """scripts/make_model.sh default: configs/default_stage2.yaml continues
    configs/default_stage1.yaml's weights with a weaker stamp that fades in from stage 1's
    strength; configs/default_stage3.yaml continues stage 2's at its strength, with an
    anti-aliased scanner (same weights) reading crops at the working copy's scale;
    configs/default.yaml (stage 4) continues stage 3 with the same model and a larger batch and
    harder geometry; configs/default_nonphoto.yaml (an experiment, not bundled) fine-tunes stage
    4's scanner alone (same model, encoder frozen) with non-photos mixed in; the recipe's chain
    names the bundled stages in this order."""
    from deepraft.models import build_model

    s1, s2, s3, s4 = (
        load_train_config(REPO / "configs" / f"{n}.yaml")
        for n in ("default_stage1", "default_stage2", "default_stage3", "default")
    )
    build_model(s2.model).load_state_dict(build_model(s1.model).state_dict())  # strict: same shapes
    build_model(s3.model).load_state_dict(build_model(s2.model).state_dict())
    assert s2.model.psnr_target is not None and s1.model.psnr_target is not None
    gap = s2.model.psnr_target - s1.model.psnr_target
    assert gap > 0 and s2.strength_schedule is not None
    assert stamp_boost(0, s2) == pytest.approx(10 ** (gap / 20)) and stamp_boost(s2.max_steps, s2) == 1.0
    assert s3.model.psnr_target == s2.model.psnr_target and stamp_boost(0, s3) == 1.0
    assert s3.model.scanner_kwargs["antialias"] and s3.data.at_work_scale and "jitter" in s3.augment.always
    assert s4.model == s3.model and s4.data == s3.data and stamp_boost(0, s4) == 1.0  # same stamp, same reads
    assert s4.batch_size > s3.batch_size and s4.lr < s3.lr
    for name in ("affine", "crop", "occlude", "perspective"):  # harder geometry, never easier
        assert s4.augment.max_strength[name] >= s3.augment.max_strength[name]
    assert s4.augment.max_strength["collage"] < s3.augment.max_strength["collage"]  # smaller pastes
    s5 = load_train_config(REPO / "configs" / "default_nonphoto.yaml")
    assert s5.model == s4.model and s5.freeze == ["encoder"] and s5.data.nonphoto_fraction > 0
    s6 = load_train_config(REPO / "configs" / "default_distill.yaml")
    assert s6.model == s4.model and s6.data == s5.data and s6.distill_from == "default" and s6.freeze == ["encoder"]
    recipe = (REPO / "scripts" / "make_model.sh").read_text()
    assert "default_stage1:2500 default_stage2:2000 default_stage3:3000}" in recipe


@pytest.mark.parametrize(
    ("step", "db"), [(-1, 10.5), (0, 10.5), (500, 6.5), (1000, 2.5), (1375, 1.25), (1750, 0.0), (9999, 0.0)]
)
def test_strength_schedule_is_piecewise_linear(step, db):
    cfg = load_train_config(None, {"strength_schedule": [[0, 10.5], [1000, 2.5], [1750, 0]]})
    assert cfg.strength_schedule is not None
    assert schedule_db(step, cfg.strength_schedule) == pytest.approx(db)
    assert stamp_boost(step, cfg) == pytest.approx(10 ** (db / 20))


@pytest.mark.parametrize("points", [[], [[0, 1], [0, 2]], [[10, 1], [5, 0]], [[0, 1, 2]]])
def test_strength_schedule_rejects_bad_points(points):
    with pytest.raises(ValueError, match="strength_schedule"):
        schedule_db(3, points)
