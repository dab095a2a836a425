"""The package's own encoders and ASPP equal the torchvision-built modules they replace: same
state_dict keys, shapes and layers in the same order, bit-identical outputs on the same weights
(float32, bfloat16, channels_last; eval and train mode), the same weights from the same seed;
and the matting node's process no longer imports torchvision."""
import os
import subprocess
import sys
import warnings

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPP as TorchvisionASPP

from matte_ros.core.model.aspp import ASPP
from matte_ros.core.model.backbones import ENCODER_CHANNELS, MobileNetV2Encoder, build_encoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENCODERS = ("mobilenetv2", "resnet50", "resnet101")


def _torchvision_encoder(backbone):
    """The encoder as the package built it from torchvision before it had its own."""
    if backbone == "mobilenetv2":
        m = torchvision.models.MobileNetV2()
        m.features[0][0] = nn.Conv2d(6, 32, kernel_size=3, stride=2, padding=1, bias=False)
        m.features = m.features[:-1]
        m.features[14].conv[1][0].stride = (1, 1)
        for block in m.features[15:]:
            block.conv[1][0].dilation = (2, 2)
            block.conv[1][0].padding = (2, 2)
        del m.classifier

        def forward(x0):
            x1, x2, x3, x = x0, x0, x0, x0
            for i, block in enumerate(m.features):
                x = block(x)
                x1, x2, x3 = (x if i == 1 else x1), (x if i == 3 else x2), (x if i == 6 else x3)
            return [x, x3, x2, x1, x0]
    else:
        blocks = [3, 4, 6, 3] if backbone == "resnet50" else [3, 4, 23, 3]
        m = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, blocks,
                                             replace_stride_with_dilation=[False, False, True])
        m.conv1 = nn.Conv2d(6, 64, kernel_size=7, stride=2, padding=3, bias=False)
        del m.avgpool
        del m.fc

        def forward(x0):
            x1 = m.relu(m.bn1(m.conv1(x0)))
            x2 = m.layer1(m.maxpool(x1))
            x3 = m.layer2(x2)
            return [m.layer4(m.layer3(x3)), x3, x2, x1, x0]
    m.forward = forward
    return m


def _pair(name):
    """(ours, torchvision's) for an encoder name or 'aspp'."""
    if name == "aspp":
        return ASPP(320, [3, 6, 9]), TorchvisionASPP(320, [3, 6, 9])
    return build_encoder(name, 6), _torchvision_encoder(name)


def _random_weights(module, seed=0):
    """Every parameter and buffer random (BatchNorm variances positive), so no layer is an identity."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in module.state_dict().items():
        if not v.is_floating_point():
            state[k] = v
        elif k.endswith("running_var"):
            state[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith(("running_mean", ".bias")):
            state[k] = torch.randn(v.shape, generator=g) * 0.1
        elif v.dim() == 1:      # BatchNorm weight
            state[k] = torch.rand(v.shape, generator=g) + 0.5
        else:                   # conv weight, scaled so activations neither vanish nor blow up
            state[k] = torch.randn(v.shape, generator=g) * (2.0 / v[0].numel()) ** 0.5
    return state


def _leaves(module):
    """(name, type, settings) of every layer that has no children, in registration order."""
    return [(n, type(m), m.extra_repr()) for n, m in module.named_modules() if not list(m.children())]


def _outputs(module, x):
    out = module(x)
    return out if isinstance(out, (list, tuple)) else [out]


@pytest.mark.parametrize("name", ENCODERS + ("aspp",))
def test_same_state_dict_keys_shapes_and_layers(name):
    ours, theirs = _pair(name)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype for k in a)
    assert _leaves(ours) == _leaves(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)


def _input(name, dtype, channels_last, batch=2, seed=1):
    c = ENCODER_CHANNELS["mobilenetv2"][0] if name == "aspp" else 6
    hw = (6, 10) if name == "aspp" else (66, 98)
    x = torch.rand(batch, c, *hw, generator=torch.Generator().manual_seed(seed)).to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.parametrize("name", ENCODERS + ("aspp",))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bit_identical_outputs_in_eval_mode(name, dtype, channels_last):
    ours, theirs = _pair(name)
    weights = _random_weights(theirs)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for m in (ours, theirs):
        m.load_state_dict(weights)
        m.eval().to(dtype=dtype, memory_format=fmt)
    x = _input(name, dtype, channels_last)
    with torch.no_grad():
        a, b = _outputs(ours, x), _outputs(theirs, x)
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert p.dtype == q.dtype == dtype and torch.equal(p, q)
    assert torch.isfinite(a[0].float()).all() and a[0].float().std() > 0


@pytest.mark.parametrize("name", ENCODERS + ("aspp",))
def test_train_mode_same_outputs_statistics_and_gradients(name):
    """BatchNorm on batch statistics, ASPP's dropout drawing the same mask: same outputs, same
    running statistics afterwards, same gradients."""
    ours, theirs = _pair(name)
    weights = _random_weights(theirs)
    x = _input(name, torch.float32, False)
    results = []
    for m in (ours, theirs):
        m.load_state_dict(weights)
        m.train()
        torch.manual_seed(7)
        out = _outputs(m, x)
        sum(o.float().square().mean() for o in out[:4]).backward()
        grads = [p.grad for p in m.parameters()]
        results.append((out, m.state_dict(), grads))
    (a, sa, ga), (b, sb, gb) = results
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert len(ga) == len(gb) and all(torch.equal(p, q) for p, q in zip(ga, gb))


@pytest.mark.parametrize("name", ENCODERS + ("aspp",))
def test_seeded_initialisation_equals_the_torchvision_built_one(name):
    """From the same seed, the same weights: He-normal (fan_out) convs, the 6-channel stems and ASPP
    at PyTorch's defaults, BatchNorm 1 and 0, drawn in the same order; the generator ends where it did."""
    torch.manual_seed(3)
    ours = ASPP(320, [3, 6, 9]) if name == "aspp" else build_encoder(name, 6)
    after_ours = torch.rand(4)
    torch.manual_seed(3)
    theirs = _torchvision_encoder(name) if name != "aspp" else TorchvisionASPP(320, [3, 6, 9])
    after_theirs = torch.rand(4)
    a, b = ours.state_dict(), theirs.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(after_ours, after_theirs)
    w = a["features.2.conv.0.0.weight" if name == "mobilenetv2" else "convs.0.0.weight" if name == "aspp"
          else "layer1.0.conv2.weight"]
    assert w.std() > 0 and w.abs().max() < 1


def test_mobilenetv2_encoder_traces_to_the_same_numbers():
    m = MobileNetV2Encoder(6)
    m.load_state_dict(_random_weights(m))
    m.eval()
    x = _input("mobilenetv2", torch.float32, True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(m, x, check_trace=False)
        assert all(torch.equal(p, q) for p, q in zip(traced(x), m(x)))


def test_node_process_does_not_import_torchvision():
    code = "import matte_ros.ros.node, sys; sys.exit('torchvision' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:] or "torchvision was imported"
