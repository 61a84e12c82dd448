"""A deterministic training loop that faults and mitigations can hook into.

Why its own loop: a fault experiment must restart from a checkpoint and land on *exactly* the
state the uninterrupted golden run had, so everything that decides a step is a function of the
setup and the global step number: the data order of epoch ``e`` comes from a generator seeded by
``(seed, e)``, the last partial batch is dropped (every step sees a full batch, so a tensor position
means the same thing at every step), models are built under ``torch.manual_seed(seed)``, and a
checkpoint holds the model and optimizer state dicts (loading them is a bit-exact copy). CPU
kernels are deterministic at one thread; :func:`deterministic` makes torch refuse any that is not.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from dse.errors import InputError
from dse.validate import resolve

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad", "adamw")
DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.05, "rmsprop": 1e-3, "adagrad": 0.05}
PRECISIONS = ("fp32", "bf16")  # bf16: CPU autocast (mixed precision: bf16 compute, fp32 weights)
DATASETS = ("digits",)


@dataclass(frozen=True)
class TrainSetup:
    """Everything that decides a golden run. ``lr=None`` takes the optimizer's default
    (:data:`DEFAULT_LR`); sgd runs with momentum 0.9 so that it has an optimizer state to fault."""

    model: str = "digits_cnn"
    dataset: str = "digits"
    optimizer: str = "adam"
    lr: float | None = None
    batch_size: int = 64
    epochs: int = 8
    seed: int = 0
    precision: str = "fp32"
    eval_every: int = 5
    mitigation: str = "none"

    def __post_init__(self) -> None:
        resolve(self.optimizer, OPTIMIZERS, "optimizer", what="optimizer")
        resolve(self.dataset, DATASETS, "dataset", what="training dataset")
        resolve(self.precision, PRECISIONS, "precision", what="precision")
        for name in ("batch_size", "epochs", "eval_every"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1", field=name)
        if self.lr is None:
            object.__setattr__(self, "lr", DEFAULT_LR[self.optimizer])
        elif not self.lr > 0:
            raise InputError(f"learning rate must be > 0, got {self.lr}", field="learning_rate")

    def with_(self, **changes) -> TrainSetup:
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Data:
    """Train and test tensors (train kept whole: every batch is an index into it)."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_data(dataset: str) -> Data:
    from dse.problems.datasets import load_dataset

    if dataset not in DATASETS:
        raise InputError(f"unknown dataset {dataset!r}", field="dataset")
    train, test = (load_dataset(dataset, split=s) for s in ("train", "test"))
    return Data(train.images, train.labels, test.images, test.labels)


def build_model(setup: TrainSetup, seed: int | None = None) -> nn.Module:
    """The untrained model, its initial weights drawn under ``seed`` (default: the setup's)."""
    from dse.problems import zoo

    torch.manual_seed(setup.seed if seed is None else seed)
    return zoo.get_model(setup.model, num_classes=10, in_channels=1).train()


def build_optimizer(setup: TrainSetup, model: nn.Module) -> torch.optim.Optimizer:
    params, lr = model.parameters(), setup.lr
    return {"adam": lambda: torch.optim.Adam(params, lr=lr),
            "adamw": lambda: torch.optim.AdamW(params, lr=lr),
            "sgd": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9),
            "rmsprop": lambda: torch.optim.RMSprop(params, lr=lr),
            "adagrad": lambda: torch.optim.Adagrad(params, lr=lr)}[setup.optimizer]()


@contextmanager
def deterministic() -> Iterator[None]:
    """One thread and deterministic-only kernels while training (restored afterwards)."""
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(det)
        torch.set_num_threads(threads)


@dataclass
class StepRecord:
    """What one training step produced: batch loss and accuracy, total gradient norm, and whether
    all of them were finite."""

    loss: float
    acc: float
    grad_norm: float
    finite: bool


@dataclass
class Trainer:
    """Model + optimizer + data with a deterministic step function (module doc)."""

    setup: TrainSetup
    data: Data
    model: nn.Module = field(init=False)
    opt: torch.optim.Optimizer = field(init=False)

    def __post_init__(self) -> None:
        self.model = build_model(self.setup).train()
        self.opt = build_optimizer(self.setup, self.model)
        self._perms: dict[int, torch.Tensor] = {}

    @property
    def steps_per_epoch(self) -> int:
        n = len(self.data.x) // self.setup.batch_size
        if n < 1:
            raise InputError(f"batch size {self.setup.batch_size} exceeds the {len(self.data.x)} "
                             "training images", field="batch_size")
        return n

    @property
    def total_steps(self) -> int:
        return self.setup.epochs * self.steps_per_epoch

    def batch(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of global step ``g`` (a pure function of the setup and ``g``)."""
        epoch, step = divmod(g, self.steps_per_epoch)
        if epoch not in self._perms:
            gen = torch.Generator().manual_seed(self.setup.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(len(self.data.x), generator=gen)}
        b = self.setup.batch_size
        idx = self._perms[epoch][step * b:(step + 1) * b]
        return self.data.x[idx], self.data.y[idx]

    def forward_backward(self, g: int) -> StepRecord:
        """Forward and backward of step ``g``, gradients left in place for the optimizer."""
        x, y = self.batch(g)
        self.opt.zero_grad(set_to_none=True)
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if self.setup.precision == "bf16"
                    else nullcontext())
        with autocast:
            out = self.model(x)
        loss = nn.functional.cross_entropy(out.float(), y)
        loss.backward()
        return StepRecord(float(loss.detach()), float((out.argmax(1) == y).float().mean()),
                          self.grad_norm(), True)

    def grad_norm(self) -> float:
        # in float64: the norm of finite float32 gradients is always finite there
        grads = [p.grad.detach().double().reshape(-1) for p in self.model.parameters()
                 if p.grad is not None]
        return float(torch.linalg.vector_norm(torch.cat(grads))) if grads else 0.0

    def evaluate(self) -> float:
        """Test accuracy (fraction of the test set; batch-norm statistics are not touched)."""
        self.model.eval()
        with torch.no_grad():
            out = self.model(self.data.x_test)
        self.model.train()
        return float((out.argmax(1) == self.data.y_test).float().mean())

    def state(self) -> dict:
        """A deep copy of the model and optimizer state (a checkpoint)."""
        return {"model": copy.deepcopy(self.model.state_dict()),
                "opt": copy.deepcopy(self.opt.state_dict())}

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(copy.deepcopy(state["opt"]))

    def digest(self, extra: bytes = b"") -> bytes:
        """A hash of every model and optimizer tensor: equal digests mean the two runs continue
        identically (all later steps are a function of this state and the step number)."""
        h = hashlib.blake2b(extra, digest_size=16)
        for t in self.model.state_dict().values():
            h.update(_bytes(t))
        for st in self.opt.state.values():
            for key in sorted(st):
                h.update(_bytes(st[key]) if isinstance(st[key], torch.Tensor)
                         else repr(st[key]).encode())
        return h.digest()


def _bytes(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def finite(x: float) -> bool:
    return bool(np.isfinite(x))
