import os

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "test", "data")
# The published reference outputs live beside the checkout (too large to commit); override with
# MATTE_REFERENCE_DIR. Tests that need them skip where they are absent.
_CANDIDATES = [os.environ.get("MATTE_REFERENCE_DIR", ""), os.path.join(os.path.dirname(REPO), "shared", "reference"),
               "/work/shared/reference"]
REFERENCE_DIR = next((d for d in _CANDIDATES if d and os.path.isdir(d)), _CANDIDATES[1])


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
