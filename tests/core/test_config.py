"""Config files: ``base:`` chains, and the shipped configs against the runs they made."""

import pytest

from deepraft.core.card import bundled_models, resolve_card
from deepraft.core.config import load_train_config, read_config_file, to_dict
from tests.conftest import REPO

# What the command line sets per run (not the recipe): the run's start, device and workers,
# and where a slice was told to stop.
RUN_KEYS = {"init_from", "device", "max_steps"}


def test_base_is_read_first_and_the_file_goes_over_it(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text(
        "model: {encoder: unet_tiny, work_size: 32, psnr_target: 30.0}\n"
        "augment: {enabled: true, names: [jpeg, blur], max_strength: {jpeg: 0.5, blur: 0.4}}\n"
        "lr: 0.01\nbatch_size: 4\n"
    )
    (tmp_path / "sub" / "mid.yaml").write_text("base: ../root.yaml\nlr: 0.001\n")
    (tmp_path / "sub" / "leaf.yaml").write_text(
        "base: mid.yaml\naugment: {names: [noise], max_strength: {blur: 0.1}}\nbatch_size: 8\n"
    )
    cfg = load_train_config(tmp_path / "sub" / "leaf.yaml")
    assert (cfg.lr, cfg.batch_size) == (0.001, 8)  # the nearest file wins
    assert cfg.model.encoder == "unet_tiny" and cfg.model.work_size == 32  # kept from the root
    assert cfg.augment.names == ["noise"]  # lists are replaced
    assert cfg.augment.max_strength == {"jpeg": 0.5, "blur": 0.1}  # mappings merge key by key
    assert "base" not in to_dict(cfg)
    assert load_train_config(tmp_path / "sub" / "leaf.yaml", {"lr": 0.5}).lr == 0.5


def test_bad_bases_are_named(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\nlr: 0.1\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match="loop"):
        load_train_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ValueError, match="missing.yaml: cannot read config"):
        load_train_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: [a.yaml]\n")
    with pytest.raises(ValueError, match="d.yaml: base must be"):
        load_train_config(tmp_path / "d.yaml")
    (tmp_path / "e.yaml").write_text("base: f.yaml\n")
    (tmp_path / "f.yaml").write_text("model:\n  encodr: unet\n")
    with pytest.raises(ValueError, match="unknown key"):
        load_train_config(tmp_path / "e.yaml")


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_resolves(path):
    assert load_train_config(path).max_steps > 0
    assert "base" not in read_config_file(path)


@pytest.mark.parametrize("name", bundled_models(), ids=str)
def test_each_bundled_model_was_trained_on_what_its_config_says(name):
    """The resolved config a bundled model's card saved (the last stage's training run) matches
    ``configs/<name>.yaml`` today, key by key, on every key the run knew (keys added since then
    keep their defaults), except what the command line sets per run: so the recipe's configs,
    written as changes over their bases, still say how the shipped model was made."""
    saved = resolve_card(name).training["config"]
    resolved = to_dict(load_train_config(REPO / "configs" / f"{name}.yaml"))
    for key, value in saved.items():
        if key in RUN_KEYS:
            continue
        if isinstance(value, dict):
            for sub, v in value.items():
                if (key, sub) != ("data", "num_workers"):
                    assert resolved[key][sub] == v, f"{name}: {key}.{sub}"
        else:
            assert resolved[key] == value, f"{name}: {key}"
