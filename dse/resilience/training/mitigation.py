"""Mitigations checked between ``backward`` and the optimizer step.

- ``adam-bound`` (seed 002's detector): Adam's next first moment ``m' = b1 m + (1 - b1) g`` is
  computed before the step; a variable with any element ``|m'| >= bound`` (default 20) or a
  non-finite one is detected and its update skipped (its gradient is dropped, so neither the weight
  nor its moments change at this step). Adam and AdamW only.
- ``adam-bound-rollback``: the same detector; recovery instead of skipping (below).
- ``guard``: a non-finite loss or gradient norm, a loss above ``loss_factor`` x the median of the
  last ``window`` losses, or a gradient norm above ``gnorm_factor`` x their median is detected.

Recovery (``*-rollback`` and ``guard``), as in seed 002: the model and optimizer state are rolled
back to the start of the previous step and the last two iterations are re-executed (the runner
keeps those two snapshots). A detection during re-execution is counted but rolls nothing back.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

import torch

from dse.errors import InputError
from dse.resilience.training.trainer import StepRecord, Trainer, finite

MITIGATIONS = ("none", "adam-bound", "adam-bound-rollback", "guard")


@dataclass
class Mitigation:
    """A mitigation's settings and its running state (the recent-history window)."""

    name: str = "none"
    bound: float = 20.0
    loss_factor: float = 5.0
    gnorm_factor: float = 10.0
    window: int = 20
    history: deque = field(default_factory=deque)
    detections: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.name not in MITIGATIONS:
            raise InputError(f"unknown mitigation {self.name!r}; expected one of "
                             f"{list(MITIGATIONS)}", field="mitigation")

    def check_optimizer(self, optimizer: str) -> None:
        if self.name.startswith("adam-bound") and optimizer not in ("adam", "adamw"):
            raise InputError(f"{self.name} bounds Adam's first moment; optimizer {optimizer!r} "
                             "has none (use adam or adamw, or guard)", field="mitigation")

    @property
    def rolls_back(self) -> bool:
        return self.name in ("adam-bound-rollback", "guard")

    def check(self, g: int, trainer: Trainer, rec: StepRecord) -> bool:
        """True when step ``g`` is detected as faulty (a skip mitigation has already acted)."""
        if self.name == "none":
            return False
        hit = self._adam_bound(trainer) if self.name.startswith("adam-bound") else self._spike(rec)
        if hit:
            self.detections.append(g)
        return hit

    def _adam_bound(self, trainer: Trainer) -> bool:
        hit = False
        for group in trainer.opt.param_groups:
            b1 = group["betas"][0]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = trainer.opt.state.get(p, {}).get("exp_avg")
                nxt = (1 - b1) * p.grad if m is None else b1 * m + (1 - b1) * p.grad
                if not bool(torch.isfinite(nxt).all()) or float(nxt.abs().max()) >= self.bound:
                    hit = True
                    if not self.rolls_back:
                        p.grad = None
        return hit

    def _spike(self, rec: StepRecord) -> bool:
        if not rec.finite:
            return True
        if len(self.history) < 5:
            return False
        losses, norms = zip(*self.history, strict=True)
        return (rec.loss > self.loss_factor * statistics.median(losses)
                or rec.grad_norm > self.gnorm_factor * statistics.median(norms))

    def observe(self, rec: StepRecord) -> None:
        """Remember a completed step (the guard's window)."""
        if self.name == "guard" and finite(rec.loss) and finite(rec.grad_norm):
            self.history.append((rec.loss, rec.grad_norm))
            while len(self.history) > self.window:
                self.history.popleft()

    def state(self) -> tuple:
        return tuple(self.history)

    def load(self, state: tuple) -> None:
        self.history = deque(state)
