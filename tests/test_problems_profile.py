"""profile(): MAC totals against torch's FlopCounterMode, attention against the analytic count,
Timeloop's W/H naming, dilation footprints, deduplication and what is not a MAC layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dse.errors import InputError
from dse.problems import profile, zoo


def flop_counter_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """The independent reference: FLOPs / 2 as torch counts them on the same input."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(shape))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize(("name", "options", "shape"), [
    ("resnet18", {}, (1, 3, 64, 64)),
    ("mobilenet_v2", {}, (2, 3, 64, 64)),
    ("vgg16", {}, (1, 3, 32, 32)),
    ("deeplabv3_resnet50", {}, (1, 3, 65, 65)),
    ("deeplabv3_undilated", {}, (1, 3, 65, 65)),
    ("deeplabv3", {"dilated": False}, (1, 3, 48, 40)),
    ("cifar_resnet20", {}, (1, 3, 32, 32)),
    ("digits_cnn", {}, (3, 1, 8, 8)),
])
def test_total_macs_equal_flop_counter_half_flops(name, options, shape):
    model = zoo.get_model(name, **options)
    workload = profile(model, shape, name=name)
    assert workload.total_macs == flop_counter_macs(model, shape)
    assert workload.unmapped == []
    assert all(layer.problem.instance["N"] == shape[0] for layer in workload.layers
               if layer.op.startswith("conv"))


def test_undilated_twin_has_the_same_layers_without_dilation():
    shape = (1, 3, 65, 65)
    dilated = profile(zoo.get_model("deeplabv3"), shape)
    twin = profile(zoo.get_model("deeplabv3_undilated"), shape)
    assert [lay.module_path for lay in twin.layers] != []
    by_path = {lay.module_path: lay for lay in dilated.layers}
    # Same layers, same shapes and strides: only the dilation coefficients differ.
    for lay in twin.layers:
        assert lay.problem.coefficients["Hdilation"] == lay.problem.coefficients["Wdilation"] == 1
        if lay.module_path in by_path:
            assert lay.problem.instance == by_path[lay.module_path].problem.instance
    assert max(lay.problem.coefficients["Hdilation"] for lay in dilated.layers) == 36
    assert twin.total_macs == dilated.total_macs


def test_conv_maps_width_to_r_p_and_height_to_s_q():
    conv = nn.Conv2d(4, 6, kernel_size=(3, 5), stride=(1, 2), dilation=(2, 3), padding=(2, 6))
    w = profile(conv, (2, 4, 11, 20))
    (layer,) = w.layers
    out = conv(torch.zeros(2, 4, 11, 20)).shape
    i, c = layer.problem.instance, layer.problem.coefficients
    assert (i["S"], i["R"]) == (3, 5) and (i["Q"], i["P"]) == (out[2], out[3])
    assert (c["Hstride"], c["Wstride"], c["Hdilation"], c["Wdilation"]) == (1, 2, 2, 3)
    assert (i["N"], i["C"], i["M"], i["G"]) == (2, 4, 6, 1)


def test_dilated_conv_inputs_footprint_follows_its_dilation():
    # Padding chosen so the window lands exactly on the padded input edge: the Inputs footprint
    # then is the whole padded input, and a wrong dilation (or W/H swap) would miss it.
    conv = nn.Conv2d(3, 8, 3, stride=1, dilation=(4, 2), padding=(4, 2))
    (layer,) = profile(conv, (1, 3, 9, 13)).layers
    assert layer.problem.tensor_size("Inputs") == 3 * (9 + 8) * (13 + 4)
    undilated = profile(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 9, 13)).layers[0].problem
    assert undilated.tensor_size("Inputs") == 3 * (9 + 2) * (13 + 2)


def test_depthwise_and_grouped_convs_are_groups_of_one_channel():
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8),
                          nn.Conv2d(8, 16, 3, padding=1, groups=8),
                          nn.Conv2d(16, 12, 1, groups=4))
    w = profile(model, (1, 8, 6, 6))
    dims = [(lay.problem.instance["G"], lay.problem.instance["C"], lay.problem.instance["M"])
            for lay in w.layers]
    assert dims == [(8, 1, 1), (8, 1, 2), (4, 4, 3)]
    assert w.total_macs == flop_counter_macs(model, (1, 8, 6, 6))


def test_conv1d_runs_along_the_width():
    model = nn.Sequential(nn.Conv1d(6, 9, 5, stride=2, dilation=3, padding=4, groups=3))
    w = profile(model, (2, 6, 40))
    i, c = w.layers[0].problem.instance, w.layers[0].problem.coefficients
    assert (i["R"], i["S"], i["Q"], i["G"], i["C"], i["M"]) == (5, 1, 1, 3, 2, 3)
    assert (c["Wstride"], c["Wdilation"]) == (2, 3)
    assert w.layers[0].op == "conv1d"
    assert w.total_macs == flop_counter_macs(model, (2, 6, 40))


class Matmuls(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 8))
        self.lin = nn.Linear(8, 5)

    def forward(self, x):
        y = x @ self.w                                   # (2, 7, 3, 16) @ (16, 8)
        z = torch.matmul(y, y.transpose(-1, -2))         # batch dims (2, 7)
        b = torch.bmm(y.flatten(0, 1), torch.ones(14, 8, 4))
        return self.lin(y).sum() + z.sum() + b.sum()


def test_linear_and_matmul_put_leading_dims_in_n_and_p():
    model = Matmuls()
    w = profile(model, (2, 7, 3, 16))
    ops = [(lay.op, lay.problem.instance["N"], lay.problem.instance["P"],
            lay.problem.instance["C"], lay.problem.instance["M"]) for lay in w.layers]
    assert ops == [("matmul", 14, 3, 16, 8), ("matmul", 14, 3, 8, 3), ("matmul", 14, 3, 8, 4),
                   ("linear", 2, 21, 8, 5)]
    assert w.total_macs == flop_counter_macs(model, (2, 7, 3, 16))
    assert {op.op for op in w.non_mac} >= {"transpose", "sum", "add", "flatten"}


def analytic_encoder_macs(batch: int, seq: int, d: int, heads: int, ff: int) -> int:
    tokens = batch * seq
    projections = tokens * d * 3 * d + tokens * d * d
    attention = 2 * batch * heads * seq * seq * (d // heads)
    return projections + attention + 2 * tokens * d * ff


@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_encoder_layer_counts_projections_and_attention(batch_first):
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=batch_first)
    shape = (3, 7, 32) if batch_first else (7, 3, 32)
    w = profile(layer, shape)
    assert w.total_macs == analytic_encoder_macs(3, 7, 32, 4, 64)
    qk = next(lay for lay in w.layers if lay.op == "attn_qk").problem.instance
    assert (qk["N"], qk["G"], qk["P"], qk["C"], qk["M"]) == (3, 4, 7, 8, 7)
    assert layer.training  # profiled in eval mode, handed back as it came


def test_cross_attention_matches_flop_counter_on_the_unfused_path():
    # need_weights=True makes torch run explicit bmm's, which FlopCounterMode does see.
    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(24, 3, kdim=10, vdim=6, batch_first=True)

        def forward(self, x):
            return self.attn(x, x[:, :4, :10], x[:, :4, :6], need_weights=True)[0]

    model = Cross().eval()
    w = profile(model, (2, 9, 24))
    assert [lay.name for lay in w.layers] == ["attn.q_proj", "attn.k_proj", "attn.v_proj",
                                              "attn.qk", "attn.av"]
    assert w.layers[0].count == 2  # out_proj has the q projection's shape: folded into it
    assert w.total_macs == flop_counter_macs(model, (2, 9, 24))


def test_scaled_dot_product_attention_outside_modules_is_counted():
    class Sdpa(nn.Module):
        def forward(self, x):
            return nn.functional.scaled_dot_product_attention(x, x, x[..., :5])

    w = profile(Sdpa(), (2, 3, 6, 8))  # batch 2, 3 heads, 6 tokens, 8 dims
    assert w.total_macs == 2 * 3 * 6 * 6 * 8 + 2 * 3 * 6 * 6 * 5


def test_vit_b_16_is_17_56_gmacs():
    w = profile(zoo.get_model("vit_b_16"), (1, 3, 224, 224))
    assert w.total_macs == 17_563_828_224
    assert w.unmapped == []


def test_identical_layers_fold_into_one_with_a_count_in_first_occurrence_order():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                          nn.Conv2d(4, 4, 3, padding=2, dilation=2), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 25, 3))
    w = profile(model, (1, 4, 5, 5))
    assert [(lay.name, lay.count) for lay in w.layers] == [("0", 3), ("3", 1), ("7", 1)]
    assert w.total_macs == flop_counter_macs(model, (1, 4, 5, 5))
    relu = next(op for op in w.non_mac if op.op == "ReLU")
    assert (relu.count, relu.elements, relu.name) == (2, 200, "1")


def test_unmappable_ops_are_reported_by_name_and_not_counted():
    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.up = nn.ConvTranspose2d(4, 2, 2, stride=2)

        def forward(self, x):
            y = self.up(self.conv(x))
            return torch.einsum("nchw,nchw->n", y, y)

    w = profile(Decoder(), (1, 3, 6, 6))
    assert w.unmapped == ["up (ConvTranspose2d)", "einsum (einsum)"]
    assert [lay.name for lay in w.layers] == ["conv"]


def test_forward_that_raises_is_input_error_and_mode_is_restored():
    model = zoo.get_model("resnet18").train()
    with pytest.raises(InputError, match="expected input.*3 channels"):
        profile(model, (1, 1, 32, 32), name="resnet18")
    assert model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_functional_convs_and_linears_outside_modules_are_layers_too():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 4, 3, 3))
            self.fc = nn.Parameter(torch.randn(5, 8))
            self.same = nn.Conv2d(8, 8, 3, padding="same", padding_mode="reflect", dilation=2)

        def forward(self, x):
            y = self.same(nn.functional.conv2d(x, self.w, None, 2, 1))
            y = nn.functional.conv2d(y, self.w[:, :2], padding="same", groups=4)
            return nn.functional.linear(y.flatten(2).transpose(1, 2), self.fc)

    model = Functional()
    w = profile(model, (2, 4, 10, 12))
    assert [(lay.name, lay.op, lay.problem.instance["G"]) for lay in w.layers] == [
        ("conv2d", "conv2d", 1), ("same", "conv2d", 1), ("conv2d_2", "conv2d", 4),
        ("linear", "linear", 1)]
    assert w.layers[0].problem.coefficients["Wstride"] == 2
    assert w.layers[1].problem.coefficients["Hdilation"] == 2
    assert w.total_macs == flop_counter_macs(model, (2, 4, 10, 12))


def test_token_models_profile_with_an_integer_input_dtype():
    model = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 4))
    w = profile(model, (2, 9), dtype=torch.long)
    assert [(lay.op, lay.problem.instance["N"], lay.problem.instance["P"]) for lay in w.layers] == [
        ("linear", 2, 9)]
    assert [op.op for op in w.non_mac] == ["Embedding"]
    with pytest.raises(InputError, match="forward pass"):
        profile(model, (2, 9))
