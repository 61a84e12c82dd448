"""Profile an ``nn.Module`` into a :class:`Workload` with one traced forward pass.

Two observers run together during that pass:

- forward hooks on every module of the model see Conv1d / Conv2d / Linear / MultiheadAttention with
  their real input and output shapes and their hyper-parameters (stride, padding, dilation, groups);
- a ``TorchFunctionMode`` sees the functions called *outside* those modules (``x @ w``, ``torch.bmm``,
  ``F.linear``, ``F.conv2d``, ``F.scaled_dot_product_attention``, residual adds, ``F.interpolate``...).

While a library module (anything from ``torch.nn`` that we map or that has no children) runs, the
function observer is muted, so ``nn.Linear`` is one layer and not also an ``F.linear``. Attention is
counted analytically from shapes (in-projection, QKᵀ, AV, out-projection) because the fused kernels
are invisible to op-level counters such as ``FlopCounterMode``.

Mapping onto Timeloop's conv-with-groups shape follows the reference problem files: R (filter width)
and P (output width) pair with ``Wstride`` / ``Wdilation``; S and Q with the H coefficients. Linear and
matmul layers use ``C`` = reduction, ``M`` = outputs, ``P`` = rows, with leading (batch) dims in ``N``.

Spiking models (snntorch neurons; input time first) call each synaptic layer once per time step:
those calls are folded into one problem with the steps in ``N`` (:func:`fold_time_steps`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from dse.errors import InputError
from dse.problems.problem import Layer, NonMacOp, Problem, Workload, conv_problem
from dse.problems.snn_models import is_spiking

# ------------------------------------------------------------------------------ shape -> Problem


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return (int(value[0]), int(value[-1]))


def conv_layer_problem(in_shape: Sequence[int], weight_shape: Sequence[int],
                       out_shape: Sequence[int], stride: Any, dilation: Any,
                       groups: int) -> Problem:
    """Conv1d / Conv2d as ``conv2D_grouped``; depthwise is ``G = channels, C = M = 1`` (per group).

    1-D convs run along the width (R, P, ``W*`` coefficients); unbatched inputs have ``N = 1``.
    """
    spatial = len(weight_shape) - 2
    batched = len(in_shape) == spatial + 2
    n = int(in_shape[0]) if batched else 1
    m_total, c_per_group = int(weight_shape[0]), int(weight_shape[1])
    if spatial == 1:
        (r,), (p,) = weight_shape[2:], out_shape[-1:]
        s = q = 1
        (ws,), (wd,) = _tuple1(stride), _tuple1(dilation)
        hs = hd = 1
    else:
        s, r = int(weight_shape[2]), int(weight_shape[3])
        q, p = int(out_shape[-2]), int(out_shape[-1])
        hs, ws = _pair(stride)
        hd, wd = _pair(dilation)
    return conv_problem(N=n, C=c_per_group, M=m_total // groups, R=int(r), S=s, P=int(p), Q=q,
                        G=groups, Wstride=ws, Hstride=hs, Wdilation=wd, Hdilation=hd)


def _tuple1(value: int | Sequence[int]) -> tuple[int]:
    return (int(value),) if isinstance(value, int) else (int(value[0]),)


def linear_problem(in_shape: Sequence[int], in_features: int, out_features: int) -> Problem:
    """Linear over any leading dims: the first is the batch (``N``), the rest are tokens (``P``)."""
    lead = [int(d) for d in in_shape[:-1]]
    n = lead[0] if lead else 1
    p = math.prod(lead[1:])
    return conv_problem(N=n, C=in_features, M=out_features, P=p)


def matmul_problem(a_shape: Sequence[int], b_shape: Sequence[int]) -> Problem:
    """``A[..., P, C] @ B[..., C, M]``; broadcast batch dims multiply ``N``; 1-D operands as torch."""
    a, b = list(a_shape), list(b_shape)
    if len(a) == 1:
        a = [1, a[0]]
    if len(b) == 1:
        b = [b[0], 1]
    batch = torch.broadcast_shapes(torch.Size(a[:-2]), torch.Size(b[:-2]))
    return conv_problem(N=math.prod(batch), C=int(a[-1]), M=int(b[-1]), P=int(a[-2]))


def attention_problems(batch: int, heads: int, q_len: int, k_len: int, qk_dim: int,
                       v_dim: int) -> tuple[Problem, Problem]:
    """QKᵀ and AV of one attention call, one group per head (each head has its own "weights")."""
    qk = conv_problem(N=batch, G=heads, P=q_len, C=qk_dim, M=k_len)
    av = conv_problem(N=batch, G=heads, P=q_len, C=k_len, M=v_dim)
    return qk, av


def mha_layers(mha: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor,
               value: torch.Tensor) -> list[tuple[str, str, Problem]]:
    """(suffix, op, problem) for each MAC stage of one ``nn.MultiheadAttention`` call.

    Self-attention (query is key is value) uses one fused in-projection of ``3·E`` outputs, as torch
    does; otherwise q, k and v are projected separately. ``bias_k`` and ``add_zero_attn`` each add one
    key position.
    """
    batched = query.dim() == 3
    if batched and not mha.batch_first:
        q_len, batch = query.shape[0], query.shape[1]
        k_len = key.shape[0]
    elif batched:
        batch, q_len = query.shape[0], query.shape[1]
        k_len = key.shape[1]
    else:
        batch, q_len, k_len = 1, query.shape[0], key.shape[0]
    embed, heads = mha.embed_dim, mha.num_heads
    head_dim = embed // heads
    out: list[tuple[str, str, Problem]] = []
    if query is key and key is value:
        out.append(("in_proj", "linear", conv_problem(N=batch, C=embed, M=3 * embed, P=q_len)))
    else:
        out.append(("q_proj", "linear", conv_problem(N=batch, C=embed, M=embed, P=q_len)))
        out.append(("k_proj", "linear", conv_problem(N=batch, C=mha.kdim, M=embed, P=k_len)))
        out.append(("v_proj", "linear", conv_problem(N=batch, C=mha.vdim, M=embed, P=k_len)))
    k_len += int(mha.bias_k is not None) + int(mha.add_zero_attn)
    qk, av = attention_problems(batch, heads, q_len, k_len, head_dim, head_dim)
    out.append(("qk", "attn_qk", qk))
    out.append(("av", "attn_av", av))
    out.append(("out_proj", "linear", conv_problem(N=batch, C=embed, M=embed, P=q_len)))
    return out


def sdpa_layers(query: torch.Tensor, key: torch.Tensor,
                value: torch.Tensor) -> list[tuple[str, str, Problem]]:
    """``F.scaled_dot_product_attention(q[N, heads.., L, E], k[.., S, E], v[.., S, Ev])``."""
    lead = list(query.shape[:-2])
    batch = int(lead[0]) if lead else 1
    heads = math.prod(int(d) for d in lead[1:])
    qk, av = attention_problems(batch, heads, query.shape[-2], key.shape[-2], query.shape[-1],
                                value.shape[-1])
    return [("qk", "attn_qk", qk), ("av", "attn_av", av)]


# ---------------------------------------------------------------------------- the traced pass

_CONV_FUNCS = {F.conv1d: 1, F.conv2d: 2}
_MATMUL_FUNCS: dict[Callable, tuple[int, int]] = {
    torch.matmul: (0, 1), torch.Tensor.matmul: (0, 1), torch.Tensor.__matmul__: (0, 1),
    torch.Tensor.__rmatmul__: (1, 0), torch.bmm: (0, 1), torch.Tensor.bmm: (0, 1),
    torch.mm: (0, 1), torch.Tensor.mm: (0, 1), torch.mv: (0, 1), torch.Tensor.mv: (0, 1),
    torch.addmm: (1, 2), torch.Tensor.addmm: (1, 2), torch.baddbmm: (1, 2),
    torch.Tensor.baddbmm: (1, 2),
}
_UNMAPPED_FUNCS = {
    F.conv3d: "conv3d", F.conv_transpose1d: "conv_transpose1d",
    F.conv_transpose2d: "conv_transpose2d", F.conv_transpose3d: "conv_transpose3d",
    torch.einsum: "einsum", torch.tensordot: "tensordot", F.bilinear: "bilinear",
    torch.addbmm: "addbmm", torch.Tensor.addbmm: "addbmm", torch.addmv: "addmv",
    F.multi_head_attention_forward: "multi_head_attention_forward",
}
# Library modules whose MACs we cannot map onto the conv-with-groups shape.
_UNMAPPED_MODULES = (nn.modules.conv._ConvTransposeNd, nn.Conv3d, nn.RNNBase, nn.RNNCellBase,
                     nn.Bilinear)
# Functions that return tensors but do no arithmetic (pure views and attribute access).
_NOT_WORK = {"__get__", "__set__", "detach", "requires_grad_", "dim", "size"}
_ARITH = {"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "matmul"}


def _op_name(func: Callable) -> str:
    """``Tensor.__iadd__`` -> ``add``; ``relu_`` -> ``relu``: the arithmetic, not the spelling."""
    name = getattr(func, "__name__", type(func).__name__)
    if name.startswith("__") and name.endswith("__"):
        core = name.strip("_")
        if core[:1] in ("i", "r") and core[1:] in _ARITH:
            core = core[1:]
        return core
    return name.rstrip("_") or name


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


@dataclass
class _Trace:
    """What the pass saw, in call order; folded into a Workload by :func:`_fold`."""

    paths: dict[int, str]
    layers: list[tuple[str, str, str, Problem]] = field(default_factory=list)
    non_mac: dict[str, list] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)
    muted: int = 0

    @property
    def where(self) -> str:
        return self.stack[-1] if self.stack else ""

    def add_layer(self, name: str, path: str, op: str, problem: Problem) -> None:
        self.layers.append((name, path, op, problem))

    def add_non_mac(self, op: str, name: str, output: Any) -> None:
        out = _first_tensor(output)
        entry = self.non_mac.setdefault(op, [name, 0, 0])
        entry[1] += 1
        entry[2] += int(out.numel()) if out is not None else 0

    def add_unmapped(self, what: str) -> None:
        if what not in self.unmapped:
            self.unmapped.append(what)


def _is_muting(module: nn.Module) -> bool:
    """Library modules are observed whole; custom leaf modules expose their functions."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear, nn.MultiheadAttention,
                           *_UNMAPPED_MODULES)):
        return True
    library = type(module).__module__.startswith("torch.nn.")
    return library and next(module.children(), None) is None


def _module_pre(trace: _Trace, module: nn.Module) -> None:
    trace.stack.append(trace.paths.get(id(module), type(module).__name__))
    trace.muted += _is_muting(module)


def _module_post(trace: _Trace, module: nn.Module, args: tuple, kwargs: dict,
                 output: Any) -> None:
    path = trace.stack.pop()
    muting = _is_muting(module)
    trace.muted -= muting
    if trace.muted or not muting:
        return
    label = path or type(module).__name__.lower()
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        x = _arg(args, kwargs, 0, "input")
        problem = conv_layer_problem(x.shape, module.weight.shape, output.shape, module.stride,
                                     module.dilation, module.groups)
        trace.add_layer(label, path, "conv1d" if isinstance(module, nn.Conv1d) else "conv2d",
                        problem)
    elif isinstance(module, nn.Linear):
        x = _arg(args, kwargs, 0, "input")
        trace.add_layer(label, path, "linear",
                        linear_problem(x.shape, module.in_features, module.out_features))
    elif isinstance(module, nn.MultiheadAttention):
        q = _arg(args, kwargs, 0, "query")
        k = _arg(args, kwargs, 1, "key")
        v = _arg(args, kwargs, 2, "value")
        for suffix, op, problem in mha_layers(module, q, k, v):
            trace.add_layer(f"{label}.{suffix}", path, op, problem)
    elif isinstance(module, _UNMAPPED_MODULES):
        trace.add_unmapped(f"{label} ({type(module).__name__})")
    elif not isinstance(module, nn.Identity):
        trace.add_non_mac(type(module).__name__, label, output)


class _FunctionObserver(TorchFunctionMode):
    """Records functions called outside observed modules (matmuls, adds, interpolation...)."""

    def __init__(self, trace: _Trace):
        super().__init__()
        self.trace = trace

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not self.trace.muted:
            self._record(func, args, kwargs, out)
        return out

    def _record(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        trace, where = self.trace, self.trace.where
        op = _op_name(func)
        label = f"{where}.{op}" if where else op
        if func in _MATMUL_FUNCS:
            i, j = _MATMUL_FUNCS[func]
            problem = matmul_problem(args[i].shape, args[j].shape)
            trace.add_layer(label, where, "matmul", problem)
        elif func is F.linear:
            weight = _arg(args, kwargs, 1, "weight")
            x = _arg(args, kwargs, 0, "input")
            trace.add_layer(label, where, "linear",
                            linear_problem(x.shape, weight.shape[-1], weight.shape[0]))
        elif func in _CONV_FUNCS:
            x, weight = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
            problem = conv_layer_problem(
                x.shape, weight.shape, out.shape, _arg(args, kwargs, 3, "stride", 1),
                _arg(args, kwargs, 5, "dilation", 1), int(_arg(args, kwargs, 6, "groups", 1)))
            trace.add_layer(label, where, op, problem)
        elif func is F.scaled_dot_product_attention:
            q, k, v = (_arg(args, kwargs, i, n) for i, n in enumerate(("query", "key", "value")))
            for suffix, kind, problem in sdpa_layers(q, k, v):
                trace.add_layer(f"{label}.{suffix}", where, kind, problem)
        elif func in _UNMAPPED_FUNCS:
            trace.add_unmapped(f"{label} ({_UNMAPPED_FUNCS[func]})")
        elif op not in _NOT_WORK and _first_tensor(out) is not None:
            trace.add_non_mac(op, label, out)


def _fold(trace: _Trace, model_name: str, input_shape: tuple[int, ...]) -> Workload:
    """Deduplicate identical (op, problem) pairs, keeping first-occurrence order and names."""
    layers: list[Layer] = []
    index: dict[Any, Layer] = {}
    names: set[str] = set()
    for name, path, op, problem in trace.layers:
        key = (op, problem.shape_name, problem.dimensions, tuple(problem.instance.items()),
               tuple(sorted(problem.coefficients.items())))
        if key in index:
            index[key].count += 1
            index[key].paths.append(path)
            continue
        unique, k = name, 2
        while unique in names:
            unique, k = f"{name}_{k}", k + 1
        names.add(unique)
        index[key] = Layer(unique, path, op, problem, paths=[path])
        layers.append(index[key])
    non_mac = [NonMacOp(name, op, count, elements)
               for op, (name, count, elements) in trace.non_mac.items()]
    return Workload(model_name, input_shape, layers, non_mac, list(trace.unmapped))


def profile(model: nn.Module, input_shape: Sequence[int], name: str | None = None,
            dtype: torch.dtype | None = None) -> Workload:
    """Run ``model`` once on zeros of ``input_shape`` (eval mode, no grad) and list its layers.

    The input takes the dtype of the model's parameters unless ``dtype`` says otherwise (token ids
    for an embedding: ``torch.long``). The model's train/eval mode is restored afterwards. A forward
    pass that raises (wrong input shape for the model, say) becomes an :class:`InputError` naming
    the model and the reason.
    """
    shape = tuple(int(d) for d in input_shape)
    model_name = name or type(model).__name__
    param = next(model.parameters(), None)
    if dtype is None:
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    try:
        x = torch.zeros(shape, dtype=dtype, device=device)
    except (RuntimeError, MemoryError) as exc:
        raise InputError(f"cannot allocate an input of {'x'.join(map(str, shape))}: "
                         f"{str(exc).splitlines()[0][:200]}", field="input") from None
    trace = _Trace({id(m): p for p, m in model.named_modules()})
    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(
            lambda m, a, k: _module_pre(trace, m), with_kwargs=True))
        handles.append(module.register_forward_hook(
            lambda m, a, k, o: _module_post(trace, m, a, k, o), with_kwargs=True))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _FunctionObserver(trace):
            model(x)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's forward is bad input
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"forward pass on input {'x'.join(map(str, shape))} failed: {reason}",
                         field=model_name) from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    workload = _fold(trace, model_name, shape)
    return fold_time_steps(workload, shape[0]) if is_spiking(model) else workload


def fold_time_steps(workload: Workload, steps: int) -> Workload:
    """A spiking model runs each synaptic layer once per time step on the same shapes; Timeloop
    has no time dimension, so the ``steps`` calls become one problem with ``N`` = steps x batch
    (dense: every step does all its MACs whatever the spikes, as Timeloop models a layer)."""
    for layer in workload.layers:
        if layer.count % steps == 0:
            layer.problem.instance["N"] *= steps
            layer.count //= steps
    workload.notes.append(f"spiking model: its {steps} time steps are folded into the batch "
                          f"dimension N (dense MACs, whatever the spikes)")
    return workload
