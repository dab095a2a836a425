"""One loader for released state dicts, our checkpoints and safetensors; never runs pickled code."""
import os
import pickle

import numpy as np
import pytest
import torch

from matte_ros.core.model import (
    CheckpointError,
    MattingBase,
    MattingRefine,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    save_safetensors,
)

EXECUTED = []


class _Payload:
    def __reduce__(self):
        return (EXECUTED.append, ("ran",))


def _random_model(**kw):
    m = MattingRefine("mobilenetv2", **kw)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return m.eval()


def _same_weights(a, b, atol=0.0):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.allclose(sa[k].float(), sb[k].float(), atol=atol, rtol=0) for k in sa)


def test_released_plain_state_dict_config_is_inferred(tmp_path):
    m = MattingRefine("resnet50", refine_kernel_size=1)
    path = tmp_path / "pytorch_resnet50.pth"
    torch.save(m.state_dict(), path)
    loaded = load_checkpoint(str(path), backbone_scale=0.125, refine_mode="thresholding")
    assert isinstance(loaded, MattingRefine) and loaded.backbone_name == "resnet50"
    assert loaded.refiner.kernel_size == 1 and loaded.backbone_scale == 0.125
    assert loaded.refiner.mode == "thresholding" and not loaded.training
    assert _same_weights(m, loaded)


def test_refine_checkpoint_loads_into_base_by_dropping_refiner(tmp_path):
    m = _random_model()
    path = tmp_path / "refine.pth"
    torch.save(m.state_dict(), path)
    base = load_checkpoint(str(path), arch="MattingBase")
    assert isinstance(base, MattingBase) and not isinstance(base, MattingRefine)
    assert torch.equal(base.state_dict()["decoder.conv4.weight"], m.state_dict()["decoder.conv4.weight"])
    base2 = load_checkpoint(str(path), MattingBase("mobilenetv2"))
    assert _same_weights(base, base2)


def test_project_checkpoint_round_trip_keeps_config_and_extra(tmp_path):
    m = _random_model(backbone_scale=0.5, refine_mode="full")
    path = tmp_path / "ckpt" / "last.pth"
    save_checkpoint(str(path), m, step=7, optimizer={"lr": torch.tensor(1e-4)})
    ck = read_checkpoint(str(path))
    assert ck.extra["step"] == 7 and ck.config["refine_mode"] == "full"
    loaded = load_checkpoint(str(path))
    assert loaded.backbone_scale == 0.5 and loaded.refiner.mode == "full"
    assert _same_weights(m, loaded)
    assert [p.name for p in path.parent.iterdir()] == ["last.pth"]  # no temporary left behind
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("dtype,atol", [(None, 0.0), (torch.float16, 1e-3)])
def test_safetensors_round_trip(tmp_path, dtype, atol):
    m = _random_model(refine_kernel_size=1)
    path = tmp_path / "model.safetensors"
    save_safetensors(str(path), m, dtype=dtype)
    loaded = load_checkpoint(str(path))
    assert loaded.refiner.kernel_size == 1
    assert _same_weights(m, loaded, atol=atol)
    assert loaded.state_dict()["decoder.bn1.weight"].dtype == torch.float32


def test_file_that_would_execute_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"decoder.conv4.weight": _Payload()}, f)
    torch.save({"a": _Payload()}, tmp_path / "evil2.pth")
    EXECUTED.clear()
    for p in (path, tmp_path / "evil2.pth"):
        with pytest.raises(CheckpointError, match="execute code"):
            load_checkpoint(str(p))
    assert EXECUTED == []


def test_mismatch_names_expected_backbone_and_keys(tmp_path):
    path = tmp_path / "r50.pth"
    torch.save(MattingRefine("resnet50").state_dict(), path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(str(path), MattingRefine("mobilenetv2"))
    msg = str(e.value)
    assert "MattingRefine(mobilenetv2)" in msg and "MattingRefine(resnet50)" in msg
    assert "missing keys: backbone.features" in msg and "unexpected keys: backbone.bn1" in msg


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(str(tmp_path / "nope.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="bad.pth is not a PyTorch checkpoint"):
        load_checkpoint(str(bad))
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="no backbone"):
        load_checkpoint(str(other))


def _save_as_if_on_cuda(obj, path) -> None:
    """torch.save with every storage tagged "cuda:0", as a GPU machine writes it (no GPU needed)."""
    from torch import serialization
    entry = (-1, lambda storage: "cuda:0", lambda storage, location: None)     # consulted before the CPU tag
    serialization._package_registry.insert(0, entry)
    try:
        torch.save(obj, path)
    finally:
        serialization._package_registry.remove(entry)


def test_cuda_saved_checkpoint_maps_to_cpu(tmp_path):
    """Tensors saved from CUDA come back on the CPU (map_location='cpu'), even where CUDA is absent."""
    path = tmp_path / "m.pth"
    state = MattingBase("mobilenetv2").state_dict()
    _save_as_if_on_cuda(state, path)
    if not torch.cuda.is_available():           # the file really asks for CUDA: a plain load fails here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    ck = read_checkpoint(str(path))
    assert all(v.device.type == "cpu" for v in ck.state_dict.values())
    assert all(torch.equal(ck.state_dict[k], v) for k, v in state.items())


def _bad_files(tmp_path):
    """(file name, bytes or writer, expected message) of broken weight files."""
    good = tmp_path / "good.safetensors"
    save_safetensors(str(good), MattingBase("mobilenetv2"))
    data = good.read_bytes()
    pth = tmp_path / "good.pth"
    torch.save(MattingBase("mobilenetv2").state_dict(), pth)
    zipped = pth.read_bytes()
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return [("truncated.safetensors", data[:len(data) // 2], "is not a readable safetensors file"),
            ("empty.safetensors", b"", "is not a readable safetensors file"),
            ("random.safetensors", noise, "is not a readable safetensors file"),
            ("empty.pth", b"", "is empty (0 bytes): not a PyTorch checkpoint"),
            ("random.pth", noise, "is not a PyTorch checkpoint"),
            ("truncated.pth", zipped[:len(zipped) // 2], "is a truncated or corrupt PyTorch checkpoint")]


def test_broken_files_raise_one_sentence_naming_the_file(tmp_path):
    for name, data, expected in _bad_files(tmp_path):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(str(path))
        msg = str(e.value)
        assert msg.startswith(str(path)) and expected in msg, (name, msg)
        assert "\n" not in msg and "execute code" not in msg, (name, msg)


def test_bad_json_metadata_names_the_file(tmp_path):
    from safetensors.torch import save_file
    tensors = {k: v.contiguous() for k, v in MattingBase("mobilenetv2").state_dict().items()}
    for name, meta, expected in (("badjson.safetensors", "{not json", "metadata is not valid JSON"),
                                 ("list.safetensors", "[1, 2]", "must be a JSON object, found list"),
                                 ("arch.safetensors", '{"arch": "Nope"}', "cannot build the model of")):
        path = str(tmp_path / name)
        save_file(tensors, path, metadata={"model_config": meta})
        with pytest.raises(CheckpointError, match=expected) as e:
            load_checkpoint(path)
        assert path in str(e.value)


def test_kill_9_during_an_atomic_write_leaves_a_temporary_that_the_cleanup_removes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from matte_ros.core.files import TEMP_PREFIX, remove_orphaned_temporaries
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    writer = ("import sys, time\nfrom matte_ros.core.files import atomic_write\n"
              "def write(tmp):\n    open(tmp, 'wb').write(b'half a checkpoint')\n    print('writing', flush=True)\n"
              "    time.sleep(600)\n"
              f"atomic_write({str(tmp_path / 'last.pth')!r}, write)\n")
    proc = subprocess.Popen([sys.executable, "-c", writer], cwd=repo, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "writing\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (tmp_path / "keep.pth").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / (TEMP_PREFIX + "xlast.pth")).write_bytes(b"x")      # only the folder itself is cleaned
    orphans = [p for p in os.listdir(tmp_path) if p.startswith(TEMP_PREFIX)]
    assert len(orphans) == 1 and orphans[0].endswith("last.pth")
    assert remove_orphaned_temporaries(str(tmp_path)) == []       # written after this process started: in use
    assert remove_orphaned_temporaries(str(tmp_path), older_than=time.time() + 1) == [str(tmp_path / orphans[0])]
    assert sorted(os.listdir(tmp_path)) == ["keep.pth", "sub"]
    assert remove_orphaned_temporaries(str(tmp_path / "missing")) == []
