"""TrainConfig: flags and YAML keys, precedence, mode defaults, checks, the saved config round trip."""
import dataclasses

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
    cfg = parse_config(["--model-type", "gan", "--crop-size", "40", "80", "--disc-layers", "1", "--max-steps", "7",
                        "--no-amp"])
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


def _float_fields():
    from training.config import _scalar_type
    return [f.name for f in dataclasses.fields(TrainConfig) if _scalar_type(f.type) is float]


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_every_float_setting_must_be_finite(value, tmp_path):
    names = _float_fields()
    assert {"lr_scale", "grad_clip", "gan_weight", "disc_lr", "backbone_scale"} <= set(names)
    for name in names:
        with pytest.raises(ValueError, match=f"^{name} must be a finite number, got {value}$"):
            parse_config(["--" + name.replace("_", "-"), value])
        (tmp_path / "c.yaml").write_text(f"{name}: .{value}\n")          # YAML's .nan and .inf
        with pytest.raises(ValueError, match=f"^{name} must be a finite number"):
            parse_config(["--config", str(tmp_path / "c.yaml")])


@pytest.mark.parametrize("argv, message", [
    (["--lr-scale", "0"], "lr_scale must be > 0, got 0.0"),
    (["--lr-scale", "-1"], "lr_scale must be > 0, got -1.0"),
    (["--disc-lr", "0"], "disc_lr must be > 0, got 0.0"),
    (["--grad-clip", "-1"], "grad_clip must be >= 0, got -1.0"),
    (["--gan-weight", "-0.5"], "gan_weight must be >= 0, got -0.5"),
    (["--seed", "-1"], "seed must be >= 0, got -1"),
    (["--model-type", "refine", "--crop-size", "33", "35"], "crop_size 33 35 holds no multiple of 4"),
    (["--model-type", "gan", "--crop-size", "64", "64", "--backbone-scale", "0.25"],
     r"gan: the smallest coarse crop \(64 x 0.25 = 16 px\) is below the 48 px"),
])
def test_each_number_is_checked_by_name(argv, message):
    with pytest.raises(ValueError, match="^" + message):
        parse_config(argv)


def test_a_base_crop_need_not_hold_a_multiple_of_4():
    assert parse_config(["--crop-size", "33", "35"]).crop_size == (33, 35)


def test_weights_to_start_from_may_not_be_a_file_the_run_overwrites(tmp_path):
    out = tmp_path / "run"
    for flag, name in (("--load-base", "last.pth"), ("--init-weights", "best.pth")):
        with pytest.raises(ValueError, match=f"is a file this run overwrites .in output_dir {out}"):
            parse_config(["--model-type", "refine", "--output-dir", str(out), flag, str(out / name)])
    assert parse_config(["--output-dir", str(out), "--load-base", str(tmp_path / "last.pth")]).load_base
