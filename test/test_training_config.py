"""TrainConfig: flags and YAML keys, precedence, mode defaults, checks, the saved config round trip."""
import pytest
import yaml

from training.config import TrainConfig, build_parser, parse_config, save_config


def test_mode_defaults_are_the_published_sizes():
    base, refine = parse_config([]), parse_config(["--model-type", "refine"])
    assert (base.image_size, base.crop_size) == (512, (256, 512))
    assert (refine.image_size, refine.crop_size) == (2048, (1024, 2048))
    assert (refine.backbone_scale, refine.refine_sample_pixels) == (0.25, 80_000)
    assert (base.disc_layers, base.gan_weight) == (4, 0.002)
    assert base.output_dir == "checkpoints/base" and base.log_dir == "checkpoints/base/logs"


def test_every_field_is_a_flag():
    flags = {a.dest for a in build_parser()._actions}
    import dataclasses
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= flags


def test_yaml_then_flags_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model-type: refine\nbatch_size: 6\ncrop_size: [64, 96]\namp: false\nseed: 3\n")
    cfg = parse_config(["--config", str(path), "--batch-size", "8", "--amp"])
    assert (cfg.model_type, cfg.batch_size, cfg.crop_size, cfg.amp, cfg.seed) == ("refine", 8, (64, 96), True, 3)


def test_saved_config_loads_back_identically(tmp_path):
    cfg = parse_config(["--model-type", "gan", "--crop-size", "40", "80", "--max-steps", "7", "--no-amp"])
    save_config(cfg, str(tmp_path / "config.yaml"))
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["crop_size"] == [40, 80]
    assert parse_config(["--config", str(tmp_path / "config.yaml")]) == cfg


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "1"], "batch_size must be at least 2"),
    (["--crop-size", "96", "64"], "crop_size"),
    (["--backbone-scale", "0.75"], "backbone_scale"),
    (["--max-steps", "0"], "max_steps"),
    (["--load-base", "a", "--init-weights", "b"], "either load_base or init_weights"),
])
def test_bad_settings_are_clear_errors(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_config(argv)


def test_unknown_yaml_key_is_named(tmp_path):
    (tmp_path / "c.yaml").write_text("batchsize: 4\n")
    with pytest.raises(ValueError, match="unknown setting 'batchsize'"):
        parse_config(["--config", str(tmp_path / "c.yaml")])
