"""softseg.models: U-Net and UNet++ shapes, parameter counts, heads, deep supervision, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from conftest import DEVICES
from softseg.models import MODELS, UNet, UNetPlusPlus, build_model, count_parameters


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny convolutions on a shared 2-core machine: one OpenMP thread avoids spin-wait stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def unet_parameters(cin: int, cout: int, w: int, depth: int) -> int:
    """Parameters of U-Net with norm=None, derived from the architecture of Ronneberger et al.
    (Fig. 1): two 3x3 convolutions per level, a 2x2 up-convolution halving the channels, two
    3x3 convolutions after each concatenation and a 1x1 head."""
    ch = [w * 2**i for i in range(depth + 1)]
    total = _conv(cin, ch[0], 3) + _conv(ch[0], ch[0], 3)
    for i in range(1, depth + 1):
        total += _conv(ch[i - 1], ch[i], 3) + _conv(ch[i], ch[i], 3)
    for i in range(depth):
        total += _conv(ch[i + 1], ch[i], 2)                    # up-convolution
        total += _conv(2 * ch[i], ch[i], 3) + _conv(ch[i], ch[i], 3)
    return total + _conv(ch[0], cout, 1)


def unetpp_parameters(cin: int, cout: int, w: int, depth: int, heads: int) -> int:
    """UNet++ with norm=None (Zhou et al. 2019, eq. 1): node X^{i,j}, j >= 1, takes j maps of
    level i plus an up-convolution of X^{i+1,j-1} to the channels of level i."""
    ch = [w * 2**i for i in range(depth + 1)]
    total = _conv(cin, ch[0], 3) + _conv(ch[0], ch[0], 3)
    for i in range(1, depth + 1):
        total += _conv(ch[i - 1], ch[i], 3) + _conv(ch[i], ch[i], 3)
    for j in range(1, depth + 1):
        for i in range(depth + 1 - j):
            total += _conv(ch[i + 1], ch[i], 2) + _conv((j + 1) * ch[i], ch[i], 3) + _conv(ch[i], ch[i], 3)
    return total + heads * _conv(ch[0], cout, 1)


@pytest.mark.parametrize("cls", [UNet, UNetPlusPlus])
@pytest.mark.parametrize("size", [(32, 32), (37, 50), (16, 23)])
@pytest.mark.parametrize("norm,upsample", [("batch", "transpose"), (None, "interpolate"), ("group", "transpose"),
                                           ("instance", "interpolate")])
def test_output_at_input_resolution(cls, size, norm, upsample) -> None:
    net = cls(3, 2, width=4, depth=3, norm=norm, upsample=upsample)
    out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 2, *size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("cls", [UNet, UNetPlusPlus])
def test_3d_volumes(cls) -> None:
    net = cls(1, 3, width=2, depth=2, spatial_dims=3)
    assert net(torch.randn(1, 1, 8, 13, 12)).shape == (1, 3, 8, 13, 12)


@settings(deadline=None, max_examples=25)
@given(h=st.integers(8, 40), w=st.integers(8, 40), depth=st.integers(1, 3))
def test_any_size_above_two_to_the_depth(h, w, depth) -> None:
    for cls in (UNet, UNetPlusPlus):
        net = cls(1, 1, width=2, depth=depth, norm=None)
        assert net(torch.zeros(1, 1, h, w)).shape == (1, 1, h, w)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cls", [UNet, UNetPlusPlus])
def test_dtype_device_and_gradients_reach_every_parameter(cls, dtype, device) -> None:
    """Every parameter gets a gradient: DistributedDataParallel runs with
    find_unused_parameters=False, which needs exactly this."""
    net = cls(3, 2, width=4, depth=2).to(device=device, dtype=dtype)
    out = net(torch.randn(2, 3, 16, 16, device=device, dtype=dtype))
    assert out.dtype == dtype and out.device.type == device
    out.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("cin,cout,w,depth", [(1, 2, 64, 4), (3, 1, 8, 2), (2, 5, 3, 1)])
def test_unet_parameter_count_matches_the_architecture(cin, cout, w, depth) -> None:
    assert count_parameters(UNet(cin, cout, width=w, depth=depth, norm=None)) == unet_parameters(cin, cout, w, depth)


def test_unet_paper_configuration_has_31_million_parameters() -> None:
    # Ronneberger et al., Fig. 1: 64 ... 1024 channels, one input channel, two classes. The
    # unpadded original has the same weights (padding does not change parameter counts), the
    # 31.0 M usually quoted for it.
    n = count_parameters(UNet(1, 2, norm=None))
    assert n == unet_parameters(1, 2, 64, 4) == 31_030_658


@pytest.mark.parametrize("cin,cout,w,depth,ds", [(3, 1, 32, 4, False), (1, 2, 4, 3, True), (2, 3, 2, 1, True)])
def test_unetpp_parameter_count_matches_eq1(cin, cout, w, depth, ds) -> None:
    net = UNetPlusPlus(cin, cout, width=w, depth=depth, norm=None, deep_supervision=ds)
    assert count_parameters(net) == unetpp_parameters(cin, cout, w, depth, depth if ds else 1)


def test_unetpp_paper_configuration_has_9_million_parameters() -> None:
    # Zhou et al. 2018, Table 1: UNet++ with filters 32..512 has 9.04 M parameters
    # (their blocks are conv-BN-ReLU: 2 * 32 ... BN parameters on top of the conv weights).
    n = count_parameters(UNetPlusPlus(1, 1, width=32, depth=4))
    assert 9.0e6 < n < 9.1e6


def test_heads_map_to_their_ranges() -> None:
    x = torch.randn(2, 3, 16, 16)
    torch.manual_seed(0)
    p = UNet(3, 1, width=4, depth=2, activation="sigmoid")(x)
    assert ((p > 0) & (p < 1)).all()
    s = UNet(3, 4, width=4, depth=2, activation="softmax")(x)
    torch.testing.assert_close(s.sum(1), torch.ones(2, 16, 16))
    t = UNetPlusPlus(3, 1, width=4, depth=2, activation="tanh")(x)
    assert ((t > -1) & (t < 1)).all()


def test_activation_is_applied_to_the_logits() -> None:
    torch.manual_seed(0)
    logits_net = UNet(3, 2, width=4, depth=2)
    soft_net = UNet(3, 2, width=4, depth=2, activation="softmax")
    soft_net.load_state_dict(logits_net.state_dict())
    x = torch.randn(1, 3, 16, 16)
    torch.testing.assert_close(soft_net(x), torch.softmax(logits_net(x), 1))


def test_deep_supervision_training_tuple_and_eval_mean() -> None:
    torch.manual_seed(0)
    net = UNetPlusPlus(1, 2, width=4, depth=3, deep_supervision=True, norm=None)
    x = torch.randn(2, 1, 16, 16)
    outs = net.train()(x)
    assert isinstance(outs, tuple) and len(outs) == 3 and all(o.shape == (2, 2, 16, 16) for o in outs)
    # without normalization, train and eval compute the same heads; eval averages them
    torch.testing.assert_close(net.eval()(x), torch.stack(outs).mean(0))


def test_deep_supervision_averages_after_the_activation() -> None:
    net = UNetPlusPlus(1, 1, width=2, depth=2, deep_supervision=True, norm=None, activation="sigmoid")
    x = torch.randn(1, 1, 8, 8)
    outs = net.train()(x)
    torch.testing.assert_close(net.eval()(x), (outs[0] + outs[1]) / 2)


def test_he_initialization() -> None:
    # U-Net Sect. 3: Gaussian weights with standard deviation sqrt(2 / N), N = fan-in
    torch.manual_seed(0)
    net = UNet(3, 1, width=32, depth=2, norm=None)
    conv = net.encoder[2][3]  # 128 -> 128 channels, 3x3: N = 1152, ~147k weights
    assert isinstance(conv, nn.Conv2d)
    assert abs(conv.weight.std().item() / (2 / 1152) ** 0.5 - 1) < 0.02
    assert conv.bias.abs().max().item() == 0.0


def test_same_seed_same_weights_and_channels_last_agrees() -> None:
    torch.manual_seed(3)
    a = UNet(3, 2, width=4, depth=2)
    torch.manual_seed(3)
    b = UNet(3, 2, width=4, depth=2)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    x = torch.randn(2, 3, 16, 16)
    b = b.to(memory_format=torch.channels_last).eval()
    torch.testing.assert_close(a.eval()(x), b(x.contiguous(memory_format=torch.channels_last)))


def test_build_model_by_name() -> None:
    assert isinstance(build_model("unet", in_channels=1, out_channels=1, width=2, depth=1), UNet)
    assert isinstance(build_model("UNet++", in_channels=1, out_channels=1, width=2, depth=1), UNetPlusPlus)
    assert set(MODELS) == {"unet", "unet++", "unetplusplus"}


@pytest.mark.parametrize("kwargs,error,match", [
    ({"width": 0}, ValueError, "width: expected an integer >= 1, got 0"),
    ({"depth": 1.5}, TypeError, "depth: expected an integer"),
    ({"norm": "layer"}, ValueError, "norm: expected one of"),
    ({"upsample": "nearest"}, ValueError, "upsample: expected one of"),
    ({"spatial_dims": 1}, ValueError, "spatial_dims: expected one of"),
    ({"activation": "relu"}, ValueError, "activation: expected one of"),
    ({"out_channels": 1, "activation": "softmax"}, ValueError, "softmax over one channel"),
])
@pytest.mark.parametrize("cls", [UNet, UNetPlusPlus])
def test_constructor_errors(cls, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        cls(**{"in_channels": 1, "out_channels": 2, **kwargs})


def test_input_errors() -> None:
    net = UNet(3, 1, width=2, depth=3)
    with pytest.raises(ValueError, match=r"x: expected shape \(N, C, H, W\) \(4 dims\), got \(3, 16, 16\)"):
        net(torch.randn(3, 16, 16))
    with pytest.raises(ValueError, match=r"x: expected 3 channels \(in_channels\), got shape \(1, 1, 16, 16\)"):
        net(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"expected every spatial size >= 2\*\*depth = 8 \(depth=3\)"):
        net(torch.randn(1, 3, 7, 16))
    with pytest.raises(TypeError, match="x: expected a torch.Tensor"):
        net([[0.0]])
    with pytest.raises(TypeError, match="deep_supervision: expected a bool"):
        UNetPlusPlus(1, 1, deep_supervision=1)


def test_build_model_errors() -> None:
    with pytest.raises(ValueError, match=r"model name: expected one of \['unet', 'unet\+\+', 'unetplusplus'\], got 'vnet'"):
        build_model("vnet")
    with pytest.raises(TypeError, match=r"unexpected arguments \['channels'\]"):
        build_model("unet", channels=3)
