"""FrameIO: numpy views on the CPU; pinned, stream-ordered copies on CUDA whose results outlive later frames."""
import numpy as np
import pytest
import torch

from matte_ros.core.transfer import FrameIO


def test_cpu_copies_are_views_and_finish_passes_none_through():
    io = FrameIO(torch.device("cpu"))
    frame = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    with io.stream():
        t = io.upload(frame)
        assert np.shares_memory(t.numpy(), frame)
        out = io.download(t.permute(2, 0, 1).float())
    got, none = io.finish(out, None)
    assert none is None and np.array_equal(got, frame.transpose(2, 0, 1))


@pytest.mark.gpu
def test_cuda_copies_are_pinned_and_each_result_keeps_its_own_buffer():
    io = FrameIO(torch.device("cuda"))
    results = []
    for value in (1, 2, 3):
        frame = np.full((64, 48, 3), value, np.uint8)
        with io.stream():
            u8 = io.upload(frame)
            pending = io.download(u8.float() * 2)
        assert pending.is_pinned()
        results.append(io.finish(pending)[0])
    assert [float(r[0, 0, 0]) for r in results] == [2.0, 4.0, 6.0]
