"""The RVM peer of the benchmark, on a stand-in ONNX model with RVM's inputs and outputs (no download)."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from matte_ros.tools.bench_peers import RvmOnnx, rvm_onnx


def _stand_in(path):
    """A model with RVM's signature and known answers: fgr = src, pha = src[:, :1] * ratio, r{i}o = r{i}i + 1."""
    f = TensorProto.FLOAT
    dims = ["b", "c", "h", "w"]
    inputs = [helper.make_tensor_value_info("src", f, ["b", 3, "h", "w"])]
    inputs += [helper.make_tensor_value_info(f"r{i}i", f, dims) for i in range(1, 5)]
    inputs += [helper.make_tensor_value_info("downsample_ratio", f, [1])]
    outputs = [helper.make_tensor_value_info("fgr", f, ["b", 3, "h", "w"]),
               helper.make_tensor_value_info("pha", f, ["b", 1, "h", "w"])]
    outputs += [helper.make_tensor_value_info(f"r{i}o", f, dims) for i in range(1, 5)]
    one = helper.make_tensor("one", f, [1], [1.0])
    starts, ends, axes = (helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in
                          (("s", 0), ("e", 1), ("a", 1)))
    nodes = [helper.make_node("Identity", ["src"], ["fgr"]),
             helper.make_node("Slice", ["src", "s", "e", "a"], ["first"]),
             helper.make_node("Mul", ["first", "downsample_ratio"], ["pha"])]
    nodes += [helper.make_node("Add", [f"r{i}i", "one"], [f"r{i}o"]) for i in range(1, 5)]
    graph = helper.make_graph(nodes, "rvm_stand_in", inputs, outputs, [one, starts, ends, axes])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def test_rvm_runner_carries_the_recurrent_state_between_frames(tmp_path):
    rvm = RvmOnnx(rvm_onnx(_stand_in(tmp_path / "rvm.onnx")), threads=1)
    src = np.random.default_rng(0).random((1, 3, 8, 12), dtype=np.float32)
    for _ in range(3):
        pha, fgr = rvm(src, 0.25)
    assert np.array_equal(fgr, src) and np.allclose(pha, src[:, :1] * 0.25)
    assert all(float(r.ravel()[0]) == 3.0 for r in rvm._rec)          # zeros + 1 per frame
    rvm.reset()
    rvm(src, 0.25)
    assert all(float(r.ravel()[0]) == 1.0 for r in rvm._rec)


def test_a_missing_model_file_is_one_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="does not exist"):
        rvm_onnx(str(tmp_path / "nope.onnx"))
