"""UNet family: shapes for odd sizes, parameter counts, deep supervision, channels_last_3d, torch.compile."""

from __future__ import annotations

import pytest
import torch
from medseg_fast.models import AttentionGate, AttentionUNet, UNet, VNet, build_model

torch.set_num_threads(1)


@pytest.mark.parametrize("cls", [UNet, AttentionUNet, VNet])
@pytest.mark.parametrize("upsample", ["transpose", "nearest", "linear"])
@pytest.mark.parametrize("shape", [(5, 7, 9), (1, 6, 11), (8, 8, 8)])
def test_output_shape_3d_odd_sizes(cls, upsample, shape):
    net = cls(3, 2, 4, channels=(4, 8, 16), upsample=upsample).eval()
    with torch.no_grad():
        y = net(torch.randn(2, 2, *shape))
    assert y.shape == (2, 4, *shape)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("shape", [(13, 1), (17, 31), (2, 3)])
def test_output_shape_2d(residual, attention, shape):
    net = UNet(2, 1, 3, channels=(4, 8, 8, 16), residual=residual, attention=attention, norm="batch").eval()
    with torch.no_grad():
        assert net(torch.randn(1, 1, *shape)).shape == (1, 3, *shape)


def test_parameter_count_classic():
    # counted by hand: conv 1->4 (36+4), 4->4 (144+4), 4->8 (288+8), 8->8 (576+8), transposed 8->4 (8*4*4),
    # decoder 8->4 (288+4), 4->4 (144+4), head 4->2 (8+2)
    net = UNet(2, 1, 2, channels=(4, 8), blocks=2, norm="none")
    assert sum(p.numel() for p in net.parameters()) == 40 + 148 + 296 + 584 + 128 + 292 + 148 + 10


def test_parameter_count_default_3d_matches_nnunet_scale():
    net = UNet(3, 1, 2)
    n = sum(p.numel() for p in net.parameters())
    # 5 levels of (32, 64, 128, 256, 320) with instance norm: 16.5 M, the size of nnU-Net's 3d_fullres body
    assert 16_000_000 < n < 17_000_000


def test_deep_supervision_outputs():
    net = UNet(3, 1, 3, channels=(4, 8, 16, 32), deep_supervision=True)
    outs = net(torch.randn(1, 1, 16, 20, 24))
    assert isinstance(outs, list)
    assert len(outs) == 3
    assert [tuple(o.shape[2:]) for o in outs] == [(16, 20, 24), (8, 10, 12), (4, 5, 6)]
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(1, 1, 16, 20, 24)).shape == (1, 3, 16, 20, 24)


def test_attention_gate_weights_in_unit_interval():
    gate = AttentionGate(3, 4, 6)
    x, g = torch.randn(2, 4, 5, 5, 5), torch.randn(2, 6, 5, 5, 5)
    y = gate(x, g)
    ratio = y / x
    assert y.shape == x.shape
    assert (ratio >= 0).all()
    assert (ratio <= 1).all()


def test_channels_last_3d_same_result():
    torch.manual_seed(0)
    net = UNet(3, 1, 2, channels=(4, 8, 16)).eval()
    x = torch.randn(1, 1, 9, 12, 10)
    with torch.no_grad():
        ref = net(x)
        net_cl = net.to(memory_format=torch.channels_last_3d)
        out = net_cl(x.contiguous(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_channels_last_3d_training_step():
    net = UNet(3, 1, 2, channels=(4, 8), deep_supervision=False).to(memory_format=torch.channels_last_3d)
    x = torch.randn(2, 1, 8, 8, 8).contiguous(memory_format=torch.channels_last_3d)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_torch_compile_runs():
    torch.manual_seed(0)
    net = UNet(3, 1, 2, channels=(2, 4), blocks=1, upsample="linear", attention=True).eval()
    x = torch.randn(1, 1, 5, 6, 7)
    compiled = torch.compile(net, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), net(x), atol=1e-5, rtol=1e-5)


def test_vnet_configuration():
    net = VNet(3, 1, 2, channels=(4, 8, 16))
    assert net.config["residual"]
    assert net.config["kernel_size"] == 5
    assert net.config["downsample"] == "conv"
    assert net.config["blocks"] == [1, 2, 3]


def test_build_model_round_trip():
    net = AttentionUNet(3, 2, 3, channels=(4, 8), norm="group")
    clone = build_model(net.config)
    clone.load_state_dict(net.state_dict())
    x = torch.randn(1, 2, 6, 6, 6)
    net.eval(), clone.eval()
    with torch.no_grad():
        torch.testing.assert_close(clone(x), net(x))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spatial_dims": 4}, "spatial_dims must be 2 or 3"),
        ({"channels": ()}, "channels must be a non-empty"),
        ({"blocks": (2, 2)}, "blocks must be"),
        ({"norm": "layer"}, "norm must be one of"),
        ({"upsample": "cubic"}, "upsample must be one of"),
        ({"act": "swish"}, "act must be one of"),
        ({"downsample": "avg"}, "downsample must be one of"),
        ({"kernel_size": 4}, "kernel_size must be odd"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": (4, 8, 16)}
    args.update(kwargs)
    dims, cin, cout = args.pop("spatial_dims"), args.pop("in_channels"), args.pop("out_channels")
    with pytest.raises(ValueError, match=match):
        UNet(dims, cin, cout, **args)
