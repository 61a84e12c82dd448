"""How fast can an injector with per-(fault, image) outcomes identical to re-inference be?

The same ResNet-20, images and fault list as ``bench/fi.py``. For every fault the script runs the
faulty network once with hooks and measures, for every (fault, image) row, the conv work that any
injector must redo to know that row's output bits:

- **exact bound** -- a conv must be recomputed at every output position whose receptive field reads
  a changed input value (all output channels there), and the faulty layer's one output channel
  everywhere. Floating-point rounding leaves no cheaper way to the output bits. This counts only
  what changed, position by position, so it also bounds sparse or cropped recompute.
- **oracle floor** -- the same work, counted only for rows whose linearised logit change (the
  Jacobian of the logits at the faulty layer times the change there) is under one unit in the last
  place of the logits. Whether such a row ends masked or non-critical is decided by rounding, so
  even an oracle that settles every other row for free must run these exactly.

The ratios are conv MACs of full re-inference over those bounds: the most any engine with identical
outcomes can gain over naive re-inference (pytorchfi re-runs the whole network too).

    python bench/fi_bound.py [--faults 1000] [--images 100]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402
from fi import workload  # noqa: E402

from dse.resilience.inference.targets import faulty_params  # noqa: E402
from dse.resilience.outcomes import TOP1  # noqa: E402

ULP = 2.0 ** -23
SDC_EDGE = 0.05  # a logit change under this moves log p(top-1) by < 0.1: drop under 5 %
SCREENS = ((8.0, 30.0), (1.0, 10.0), (1.0, 1.0))  # (change threshold in ulp, safety factor)


def conv_inputs(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, dict, dict]:
    """Logits, every conv's input and output (by module name) for ``images``."""
    ins, outs = {}, {}

    def record(name: str):
        def hook(_m, i, o) -> None:
            ins[name], outs[name] = i[0], o
        return hook

    hooks = [m.register_forward_hook(record(n))
             for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        logits = model(images)
    for h in hooks:
        h.remove()
    return logits, ins, outs


def jacobians(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """d logits / d (conv output) for every conv: (classes, images, C, H, W)."""
    outs = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__(n, o))
             for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    for p in model.parameters():
        p.requires_grad_(False)
    logits = model(images.clone().requires_grad_())
    for h in hooks:
        h.remove()
    names = list(outs)
    jac = {n: torch.empty(logits.shape[1], *outs[n].shape) for n in names}
    for c in range(logits.shape[1]):
        grads = torch.autograd.grad(logits[:, c].sum(), [outs[n] for n in names], retain_graph=True)
        for n, g in zip(names, grads, strict=True):
            jac[n][c] = g
    for p in model.parameters():
        p.requires_grad_(True)
    return jac


def touched_macs(conv: nn.Conv2d, changed_in: torch.Tensor) -> torch.Tensor:
    """Per image: MACs of the output positions whose receptive field reads a changed input."""
    mask = changed_in.any(dim=1, keepdim=True).float()
    reach = F.max_pool2d(mask, conv.kernel_size, conv.stride, conv.padding)
    per_position = conv.out_channels * conv.in_channels // conv.groups * int(np.prod(conv.kernel_size))
    return reach.flatten(1).sum(dim=1) * per_position


def measure(model: nn.Module, images: torch.Tensor, faults: list) -> dict[str, np.ndarray]:
    """Per (fault, image): the exact-bound conv MACs, the faulty channel's MACs (per fault), the
    predicted logit change in ulps of the largest golden logit, the naive outcome code and SDC
    bucket; per image, the top-1 margin and the SDC bucket edge in the same ulps."""
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    golden, g_in, g_out = conv_inputs(model, images)
    jac = jacobians(model, images)
    ulp = golden.abs().amax(dim=1).double() * ULP
    shape = (len(faults), len(images))
    top2 = golden.double().topk(2, dim=1).values
    out = {"exact": np.zeros(shape), "channel": np.zeros(len(faults)),
           "pred_ulps": np.zeros(shape),
           "labels": np.zeros((*shape, len(TOP1.axes)), dtype=np.int8),
           "margin_ulps": ((top2[:, 0] - top2[:, 1]) / ulp).numpy(),
           "edge_ulps": (SDC_EDGE / ulp).numpy(),
           "full": sum(touched_macs(m, torch.ones_like(g_in[n][:1, :1])).item()
                       for n, m in convs.items())}
    for f, fault in enumerate(tqdm(faults, unit="fault")):
        conv = convs[fault.where.layer]
        saved = conv.weight.data
        conv.weight.data = faulty_params(conv, fault)[0]
        try:
            logits, f_in, f_out = conv_inputs(model, images)
        finally:
            conv.weight.data = saved
        out["labels"][f] = TOP1.classify(golden, logits)
        work = touched_macs(conv, torch.ones_like(g_in[fault.where.layer][:, :1])) / conv.out_channels
        out["channel"][f] = work[0].item()
        for name, m in convs.items():
            changed = f_in[name] != g_in[name]
            if name != fault.where.layer and changed.any():
                work = work + touched_macs(m, changed)
        out["exact"][f] = work.numpy()
        delta = (f_out[fault.where.layer] - g_out[fault.where.layer]).double().flatten(1)
        pred = torch.einsum("cnp,np->nc", jac[fault.where.layer].flatten(2).double(), delta)
        out["pred_ulps"][f] = (pred.abs().amax(dim=1) / ulp).numpy()
    return out


def report(m: dict[str, np.ndarray], args: argparse.Namespace) -> str:
    total = m["full"] * m["exact"].size
    masked = TOP1.is_class(m["labels"], "masked")
    top = float(m["pred_ulps"][masked].max()) if masked.any() else 0.0

    def floor(threshold: float) -> float:
        """Rows under ``threshold`` run exactly; an oracle settles the rest past their channel."""
        tiny = m["pred_ulps"] < threshold
        return total / np.where(tiny, m["exact"], m["channel"][:, None]).sum()

    def screen(threshold: float, safety: float) -> str:
        """A real predictor: settle a row as non-critical, bucket 0, when its predicted change
        is over ``threshold`` ulp and ``safety`` times it stays under half the top-1 margin and
        the bucket edge; every other row runs exactly."""
        p = m["pred_ulps"]
        ok = (p >= threshold) & (safety * p < m["margin_ulps"][None] / 2) & (
            2 * safety * p < m["edge_ulps"][None])
        small = TOP1.is_class(m["labels"], "non_critical") & TOP1.is_class(m["labels"], "sdc_0_5")
        wrong = int((ok & ~small).sum())
        work = np.where(ok, m["channel"][:, None], m["exact"]).sum()
        return (f"| linear screen: over {threshold:g} ulp, safety {safety:g}x ({ok.mean():.0%} of "
                f"rows settled, {wrong} wrong) | {total / work:.1f}x |")

    lines = [
        f"ResNet-20 (CIFAR, random init), {args.images} images, {args.faults} single fp32 weight "
        "bit flips -- the fault list of bench/fi.py.",
        "",
        "| bound | conv MACs of full re-inference / bound |",
        "|---|---:|",
        f"| exact bound (every changed receptive field, every row) | {total / m['exact'].sum():.1f}x |",
        f"| oracle floor, rows under 1 ulp run exactly | {floor(1.0):.1f}x |",
        f"| oracle floor, only rows up to the largest masked one ({top:.2g} ulp) run exactly "
        f"| {floor(np.nextafter(top, np.inf)):.1f}x |",
        *(screen(t, s) for t, s in SCREENS),
        "",
        f"Rows under 1 ulp of predicted change: {(m['pred_ulps'] < 1).mean():.1%} of all "
        f"(fault, image) rows; masked rows: {int(masked.sum())}, of which "
        f"{int((masked & (m['pred_ulps'] >= 1)).sum())} lie above 1 ulp.",
        "",
        "An injector that computes outcomes exactly cannot beat the first line; one that settles "
        "rows by prediction cannot beat the oracle floors even with a perfect predictor, no safety "
        "margin and no overhead (the golden run, the predictions, Python), since whether a row "
        "under the threshold ends masked is decided by rounding. The screens are a real "
        "predictor (the logits' Jacobian at the faulty layer times the change there) with the "
        "safety it needs: a wrong row is an outcome that differs from re-inference.",
        "",
        f"Command: `python bench/fi_bound.py --faults {args.faults} --images {args.images}`",
    ]
    return "\n".join(lines)


def main() -> None:
    args, model, images, faults = workload(__doc__.splitlines()[0])
    text = report(measure(model, images, faults), args)
    print(text)
    if not args.no_write:
        write_section("fi_bound", "## Fault injection: the bound on exact injectors "
                      "(bench/fi_bound.py)\n\n" + text)


if __name__ == "__main__":
    main()
