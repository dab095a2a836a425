"""Subject families (matte_ros.core.synthetic.families): the registry, each family's shapes, and that
the training generator never draws a held-out family."""
import cv2
import numpy as np
import pytest

from matte_ros.core.synthetic import HELD_OUT_FAMILIES, SUBJECT_KINDS, TRAINING_FAMILIES, flat_texture, render_subject
from matte_ros.core.synthetic.families import FAMILIES
from matte_ros.core.synthetic.families.person import hair_layer
from training.synth import make_foreground, subject_options


def _holes(pha: np.ndarray) -> int:
    """Background regions (alpha < 0.05) of at least 4 px enclosed by the subject."""
    n, labels = cv2.connectedComponents((pha < 0.05).astype(np.uint8), connectivity=4)
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    sizes = np.bincount(labels.ravel(), minlength=n)
    return sum(1 for i in range(1, n) if i not in border and sizes[i] >= 4)


def _thin(pha: np.ndarray) -> int:
    """Solid pixels an opening with a 5x5 square removes: structures under 5 px wide."""
    solid = (pha > 0.5).astype(np.uint8)
    return int((solid - cv2.morphologyEx(solid, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))).sum())


def _faint(pha: np.ndarray) -> int:
    """Faint alpha (0.03..0.6) further than 3 px from the solid subject: strands under a pixel wide."""
    solid = cv2.dilate((pha > 0.9).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    return int(((pha > 0.03) & (pha < 0.6) & ~solid).sum())


def test_registry_splits_families_into_training_and_held_out():
    assert set(TRAINING_FAMILIES) | set(HELD_OUT_FAMILIES) == set(SUBJECT_KINDS) == set(FAMILIES)
    assert not set(TRAINING_FAMILIES) & set(HELD_OUT_FAMILIES)
    assert set(HELD_OUT_FAMILIES) == {"animal", "furniture"}
    assert {"person", "object", "plant", "text"} <= set(TRAINING_FAMILIES)


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_every_family_renders_a_subject_with_soft_edges(kind):
    fgr, pha = render_subject(np.random.default_rng(3), 96, 128, kind=kind, extras=False)
    assert fgr.shape == (96, 128, 3) and pha.shape == (96, 128) and fgr.dtype == pha.dtype == np.float32
    assert 0 <= pha.min() and pha.max() <= 1 and 0 <= fgr.min() and fgr.max() <= 1
    assert (pha > 0.5).sum() > 30                          # something there
    assert ((pha > 0.02) & (pha < 0.98)).sum() > 50        # anti-aliased edges
    assert (pha < 0.01).mean() > 0.2                       # and background around it


def test_family_shapes_have_their_difficulty():
    renders = {k: [render_subject(np.random.default_rng(i), 128, 160, kind=k, extras=False)[1] for i in range(4)]
               for k in ("plant", "text", "animal", "furniture")}
    assert sum(_thin(p) > 40 for p in renders["plant"]) >= 3              # stems and branches
    assert sum(_holes(p) > 0 for p in renders["text"]) >= 3               # letters with holes
    assert sum(_holes(p) + (_thin(p) > 40) >= 2 for p in renders["furniture"]) >= 3   # bars, open between
    assert min(_faint(p) for p in renders["animal"]) > 300                # dense fur all round


def test_dense_hair_has_more_strands_than_sparse():
    def hair(density, seed):
        return hair_layer(np.random.default_rng(seed), 160, 160, (80, 60), (20, 24), None, density)[0]

    for seed in range(3):
        sparse, usual, dense = hair("sparse", seed), hair(None, seed), hair("dense", seed)
        volume = cv2.dilate((usual > 0.9).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        strands = {k: float(a[~volume].sum()) for k, a in (("sparse", sparse), ("usual", usual), ("dense", dense))}
        assert strands["sparse"] > 0 and strands["dense"] > 2 * strands["usual"] > 4 * strands["sparse"], strands
    with pytest.raises(ValueError, match="density"):
        render_subject(np.random.default_rng(0), 64, 64, kind="person", hair="bald")
    with pytest.raises(ValueError, match="persons only"):
        render_subject(np.random.default_rng(0), 64, 64, kind="text", hair="dense")


def test_flat_texture_is_one_colour_with_gentle_shading():
    t = flat_texture(np.random.default_rng(2), 40, 50)
    assert t.shape == (40, 50, 3)
    mean = t.reshape(-1, 3).mean(0)
    assert np.abs(t - mean).max() <= 0.04 * mean.max() + 1e-6


def test_training_generator_draws_only_training_families():
    drawn = [subject_options(0, split, i) for split in ("train", "valid") for i in range(400)]
    kinds = {o.get("kind") for o in drawn}
    assert kinds == set(TRAINING_FAMILIES) | {None}                        # every training family, no other
    assert not kinds & set(HELD_OUT_FAMILIES)
    assert 0.4 < sum(not o for o in drawn) / len(drawn) < 0.6             # about half the original mix
    assert any(o.get("hair") == "dense" for o in drawn) and any(o.get("hair") == "sparse" for o in drawn)
    assert any(o.get("flat") for o in drawn)


def test_original_mix_foregrounds_are_unchanged_by_the_families():
    # a foreground drawn from the original mix is the image render_subject gave before the families
    index = next(i for i in range(50) if not subject_options(1, "train", i))
    fg = make_foreground(1, "train", index, (48, 48))
    rng = np.random.default_rng(np.random.SeedSequence([1, 1, index]))
    palette = None
    if rng.random() < 0.35:
        from training.synth import dataset_palette
        palette = dataset_palette(1)
    fgr, pha = render_subject(rng, 48, 48, palette=palette)
    np.testing.assert_array_equal(fg[..., 3], np.clip(np.round(pha * 255), 0, 255).astype(np.uint8))
