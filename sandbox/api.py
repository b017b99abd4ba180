"""The allow-listed tensor API that stands in for `torch`, `torch.nn.functional` and `math`.

Candidate code never receives a library module. `import torch` binds the
read-only Namespace TORCH built here; every member is either a plain
constant or a wrapper that refuses `out=`, `inplace=True`, non-CPU devices
and pinned memory however they are passed (arguments.py), and every source of randomness draws from the seeded
generator of the current call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as torch_F

from sandbox.arguments import checked, tensor_to, vet_kwargs
from sandbox.runtime import Namespace, current, deny


def _plain(fn: Callable[..., Any], qualname: str) -> Callable[..., Any]:
    return checked(fn, qualname)


def _seeded(fn: Callable[..., Any], qualname: str) -> Callable[..., Any]:
    return checked(fn, qualname, seeded=True)


# --------------------------------------------------------------------------- #
# torch

_TORCH_FUNCTIONS = """
abs absolute acos acosh add addcdiv addcmul all allclose amax amin aminmax any arange
argmax argmin argsort argwhere asin asinh atan atan2 atanh bincount broadcast_tensors
broadcast_to bucketize cat cdist ceil chunk clamp clamp_max clamp_min clip clone
column_stack concat concatenate corrcoef cos cosh cosine_similarity count_nonzero cov
cross cummax cummin cumprod cumsum deg2rad det diag diag_embed diagflat diagonal diff
dist div divide dot dstack einsum eq equal erf erfc erfinv exp exp2 expm1 eye flatten
flip fliplr flipud float_power floor floor_divide fmax fmin fmod frac full full_like
gather gcd ge gt heaviside histc hstack hypot index_select inner inverse is_complex
is_floating_point is_nonzero is_tensor isclose isfinite isin isinf isnan isneginf
isposinf kron kthvalue lcm ldexp le lerp lgamma linspace log log10 log1p log2
log_softmax logaddexp logcumsumexp logdet logical_and logical_not logical_or
logical_xor logit logspace logsumexp lt masked_fill masked_select matmul max maximum
mean median min minimum mm mode moveaxis movedim msort mul multiply mv nan_to_num
nanmean nanmedian nanquantile nansum narrow ne neg negative nonzero norm numel ones
ones_like outer pairwise_distance permute pinverse pow prod promote_types qr quantile
rad2deg ravel reciprocal relu remainder renorm repeat_interleave reshape result_type
roll rot90 round rsqrt scatter scatter_add scatter_reduce searchsorted select sgn
sigmoid sign signbit sin sinh slogdet softmax sort split sqrt square squeeze stack std
std_mean sub subtract sum svd swapaxes t take take_along_dim tan tanh tensor
tensor_split tensordot threshold tile topk trace transpose trapezoid tril triu
true_divide trunc unbind unique unique_consecutive unsqueeze var var_mean vdot vstack
where xlogy zeros zeros_like
""".split()

_TORCH_RANDOM = """
bernoulli multinomial normal poisson rand rand_like randint randint_like randn randn_like randperm
""".split()

_DTYPES = {
    name: getattr(torch, name)
    for name in """
    float32 float float64 double float16 half bfloat16 complex64 cfloat complex128 cdouble
    int8 int16 short int32 int int64 long uint8 bool
    """.split()
}


def _zeros_for_empty(*args: Any, **kwargs: Any) -> torch.Tensor:
    # Uninitialised memory would make results depend on what the worker
    # freed last, so `empty` is `zeros`.
    vet_kwargs("torch.empty", kwargs)
    return torch.zeros(*args, **kwargs)


def _zeros_like_for_empty_like(input: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    vet_kwargs("torch.empty_like", kwargs)
    return torch.zeros_like(input, **kwargs)


def _manual_seed(seed: int) -> torch.Generator:
    generator = current().generator
    generator.manual_seed(int(seed))
    # The CPU generator only, as Candidate._guarded does (no stack-formatting lazy device seeding).
    torch.default_generator.manual_seed(int(seed))
    return generator


def _generator(device: Any = "cpu") -> torch.Generator:
    if torch.device(device).type != "cpu":
        raise deny("torch.Generator(device=...) must be the CPU")
    return torch.Generator().manual_seed(current().seed)


def _dropout(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> torch.Tensor:
    if inplace:
        raise deny("dropout(inplace=True) is not allowed")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return torch.zeros_like(input)
    keep = torch.bernoulli(torch.full_like(input, 1.0 - p), generator=current().generator)
    return input * keep / (1.0 - p)


class _TensorType(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, torch.Tensor)

    def __subclasscheck__(cls, kind: type) -> bool:
        return isinstance(kind, type) and issubclass(kind, torch.Tensor)


class Tensor(metaclass=_TensorType):
    """`torch.Tensor` for isinstance checks; calling the real class would hand out uninitialised memory."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        raise deny("torch.Tensor(...) is not allowed; use torch.tensor, torch.zeros or torch.full")


# Functions that take a list as it is: a sequence of tensors (cat, stack, einsum's operands, ...), or data to
# copy (torch.tensor reads a list of one-element tensors as numbers, and warns when handed a tensor).
_NOT_STACKED = frozenset(
    "cat column_stack concat concatenate dstack einsum hstack multi_dot stack tensor vstack".split()
)


def _as_tensor(value: Any) -> Any:
    """A list or tuple of equally shaped tensors as one stacked tensor; anything else unchanged."""
    if type(value) not in (list, tuple) or not value or not all(type(t) is torch.Tensor for t in value):
        return value
    shape = value[0].shape
    if any(t.shape != shape for t in value):
        return value  # left for the function to refuse in its own words
    return torch.stack(value)


def _stacking_lists(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` that takes a list of equally shaped tensors wherever it takes a tensor, and stacks it first.

    numpy's rule for array-likes (np.sum(arrays, axis=0) sums a list of arrays). The task vectors arrive as a
    list, and `torch.sum(task_vectors, dim=0)` was the seed's most common runtime failure (7 of 72 replies in
    benchmarks/bench_generator.py, 3 of 7 failures at T 0.8 in run 6). Only positional arguments and `input`.
    """

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if "input" in kwargs:
            kwargs["input"] = _as_tensor(kwargs["input"])
        return fn(*(_as_tensor(a) for a in args), **kwargs)

    return call


def _members(module: Any, names: list[str], prefix: str) -> dict[str, Any]:
    return {
        n: _plain(getattr(module, n) if n in _NOT_STACKED else _stacking_lists(getattr(module, n)), f"{prefix}.{n}")
        for n in names
        if hasattr(module, n)
    }


_F_PLAIN = """
normalize cosine_similarity pairwise_distance softmax log_softmax softmin gelu silu mish sigmoid
tanh softplus softsign hardshrink softshrink tanhshrink logsigmoid linear pad one_hot mse_loss
l1_loss smooth_l1_loss huber_loss
""".split()
_F_INPLACE_FLAG = "relu relu6 leaky_relu elu selu celu hardtanh threshold".split()

FUNCTIONAL = Namespace(
    "torch.nn.functional",
    {
        **_members(torch_F, _F_PLAIN, "torch.nn.functional"),
        **{n: _plain(getattr(torch_F, n), f"torch.nn.functional.{n}") for n in _F_INPLACE_FLAG},
        "dropout": _dropout,
    },
)

NN = Namespace("torch.nn", {"functional": FUNCTIONAL})

_LINALG_FUNCTIONS = """
norm vector_norm matrix_norm svd svdvals qr eigh eigvalsh eig eigvals det slogdet inv pinv solve
lstsq matrix_rank cholesky cross matmul vecdot multi_dot diagonal matrix_power matrix_exp
""".split()

LINALG = Namespace("torch.linalg", _members(torch.linalg, _LINALG_FUNCTIONS, "torch.linalg"))

TORCH = Namespace(
    "torch",
    {
        **_members(torch, _TORCH_FUNCTIONS, "torch"),
        **{n: _seeded(getattr(torch, n), f"torch.{n}") for n in _TORCH_RANDOM},
        **_DTYPES,
        "empty": _zeros_for_empty,
        "empty_like": _zeros_like_for_empty_like,
        "dropout": _dropout,
        "manual_seed": _manual_seed,
        "Generator": _generator,
        "finfo": torch.finfo,
        "iinfo": torch.iinfo,
        "no_grad": torch.no_grad,
        # Classes for isinstance checks; the guards expose none of their attributes.
        "Tensor": Tensor,
        "Size": torch.Size,
        "dtype": torch.dtype,
        "pi": math.pi,
        "e": math.e,
        "inf": math.inf,
        "nan": math.nan,
        "nn": NN,
        "linalg": LINALG,
    },
)

_MATH_NAMES = """
acos acosh asin asinh atan atan2 atanh ceil comb copysign cos cosh degrees dist erf erfc exp exp2
expm1 fabs factorial floor fmod frexp fsum gamma gcd hypot isclose isfinite isinf isnan isqrt lcm
ldexp lgamma log log10 log1p log2 modf nextafter perm pow prod radians remainder sin sinh sqrt tan
tanh trunc ulp pi e tau inf nan
""".split()

MATH = Namespace("math", {n: getattr(math, n) for n in _MATH_NAMES if hasattr(math, n)})


class _TypingName:
    """Inert stand-in for typing names: annotations are stripped before compiling."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label

    def __getitem__(self, item: Any) -> _TypingName:
        return self

    def __or__(self, other: Any) -> _TypingName:
        return self

    __ror__ = __or__

    def __repr__(self) -> str:
        return f"typing.{self.label}"


def _cast(kind: Any, value: Any) -> Any:
    return value


_TYPING_NAMES = "Any Callable Dict Iterable List Mapping Optional Sequence Tuple Union".split()

TYPING = Namespace("typing", {**{n: _TypingName(n) for n in _TYPING_NAMES}, "cast": _cast})

IMPORTABLE = "torch, torch.nn, torch.nn.functional, torch.linalg, math, typing"

# Module names that `import` statements in candidate code may name.
MODULES: dict[str, Namespace] = {
    "torch": TORCH,
    "torch.nn": NN,
    "torch.nn.functional": FUNCTIONAL,
    "torch.linalg": LINALG,
    "math": MATH,
    "typing": TYPING,
}

# --------------------------------------------------------------------------- #
# attributes of objects candidate code can hold

_TENSOR_READ = """
shape dtype ndim T mT H mH device layout is_cuda requires_grad data real imag
abs absolute acos acosh add addcdiv addcmul all allclose amax amin aminmax any argmax argmin
argsort argwhere asin asinh atan atan2 atanh bernoulli bfloat16 bincount bool broadcast_to
byte ceil char chunk clamp clamp_max clamp_min clip clone contiguous cos cosh count_nonzero
cov cpu cross cummax cummin cumprod cumsum deg2rad det detach diag diag_embed diagonal diff
dim dist div divide dot double element_size eq equal erf erfc erfinv exp exp2 expand
expand_as expm1 flatten flip fliplr flipud float float_power floor floor_divide fmax fmin
fmod frac gather gcd ge gt half heaviside histc hypot index_add index_copy index_fill
index_put index_select inner int inverse is_complex is_contiguous is_floating_point
is_nonzero isclose isfinite isinf isnan isneginf isposinf item kron kthvalue lcm ldexp le
lerp lgamma log log10 log1p log2 log_softmax logaddexp logcumsumexp logdet logical_and
logical_not logical_or logical_xor logit logsumexp long lt masked_fill masked_scatter
masked_select matmul max maximum mean median min minimum mm mode moveaxis movedim msort mul
multinomial multiply mv nan_to_num nanmean nanmedian nanquantile nansum narrow ndimension ne
neg negative nelement new_full new_ones new_tensor new_zeros nonzero norm numel outer
permute pinverse pow prod quantile rad2deg ravel reciprocal relu remainder renorm repeat
repeat_interleave reshape reshape_as roll rot90 round rsqrt scatter scatter_add
scatter_reduce select sgn short sigmoid sign signbit sin sinh size slogdet softmax sort
split sqrt square squeeze std stride sub subtract sum sum_to_size svd swapaxes t take
take_along_dim tan tanh tensor_split tile to tolist topk trace transpose tril triu
true_divide trunc type_as unbind unflatten unique unique_consecutive unsqueeze var vdot
view view_as where xlogy
""".split()

_TENSOR_INPLACE = """
abs_ absolute_ add_ addcdiv_ addcmul_ bernoulli_ cauchy_ ceil_ clamp_ clamp_max_ clamp_min_
clip_ copy_ cos_ cumsum_ div_ divide_ exp_ exponential_ expm1_ fill_ fill_diagonal_ floor_
floor_divide_ fmod_ frac_ geometric_ index_add_ index_copy_ index_fill_ index_put_ lerp_
log1p_ log_ log_normal_ masked_fill_ masked_scatter_ mul_ multiply_ nan_to_num_ neg_
negative_ normal_ pow_ random_ reciprocal_ relu_ remainder_ renorm_ round_ rsqrt_
scatter_ scatter_add_ scatter_reduce_ sgn_ sigmoid_ sign_ sin_ sqrt_ square_ squeeze_ sub_
subtract_ t_ tanh_ transpose_ tril_ triu_ true_divide_ trunc_ uniform_ unsqueeze_ zero_
""".split()

# Tensor methods drawing random numbers: bound to the call's generator.
_TENSOR_RANDOM = frozenset(
    "bernoulli bernoulli_ cauchy_ exponential_ geometric_ log_normal_ multinomial normal_ random_ uniform_".split()
)

TENSOR_INPLACE = frozenset(n for n in _TENSOR_INPLACE if hasattr(torch.Tensor, n))
TENSOR_ATTRS = frozenset(n for n in _TENSOR_READ if hasattr(torch.Tensor, n)) | TENSOR_INPLACE


def _tensor_seeded(method: Callable[..., Any], name: str) -> Callable[..., Any]:
    return checked(method, f"Tensor.{name}", seeded=True)


def _tensor_vetted(method: Callable[..., Any], name: str) -> Callable[..., Any]:
    return checked(method, f"Tensor.{name}")


# Attributes whose bound value needs a wrapper, by name.
TENSOR_SPECIAL: dict[str, Callable[[torch.Tensor], Any]] = {
    "to": tensor_to,
    **{n: (lambda t, n=n: _tensor_seeded(getattr(t, n), n)) for n in _TENSOR_RANDOM if n in TENSOR_ATTRS},
    # new_* take device/pin_memory like the factories do.
    **{n: (lambda t, n=n: _tensor_vetted(getattr(t, n), n)) for n in ("new_full", "new_ones", "new_tensor", "new_zeros")},
}

_STR_ATTRS = """
capitalize center count endswith find index isalnum isalpha isdigit islower isspace isupper
join ljust lower lstrip partition replace rfind rindex rjust rpartition rsplit rstrip split
splitlines startswith strip swapcase title upper zfill
""".split()

# Attributes of plain values, by exact type. `str.format` and `format_map` are
# absent on purpose: format fields walk attributes past every guard.
SIMPLE_ATTRS: dict[type, frozenset[str]] = {
    list: frozenset("append clear copy count extend index insert pop remove reverse sort".split()),
    dict: frozenset("clear copy get items keys pop popitem setdefault update values".split()),
    set: frozenset(
        "add clear copy difference discard intersection isdisjoint issubset issuperset pop remove "
        "symmetric_difference union update".split()
    ),
    frozenset: frozenset("copy difference intersection isdisjoint issubset issuperset symmetric_difference union".split()),
    tuple: frozenset({"count", "index"}),
    str: frozenset(_STR_ATTRS),
    int: frozenset({"bit_length", "real", "imag", "numerator", "denominator", "conjugate"}),
    bool: frozenset({"real", "imag", "conjugate"}),
    float: frozenset({"is_integer", "real", "imag", "as_integer_ratio", "conjugate"}),
    complex: frozenset({"real", "imag", "conjugate"}),
    range: frozenset({"start", "stop", "step", "count", "index"}),
    slice: frozenset({"start", "stop", "step"}),
    torch.Size: frozenset({"numel", "count", "index"}),
    torch.dtype: frozenset({"is_floating_point", "is_complex", "is_signed", "itemsize"}),
    torch.finfo: frozenset({"bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"}),
    torch.iinfo: frozenset({"bits", "max", "min", "dtype"}),
    torch.device: frozenset({"type", "index"}),
    torch.Generator: frozenset({"manual_seed", "initial_seed"}),
}


def return_type_fields(kind: type) -> frozenset[str] | None:
    """Field names of torch.return_types.* results (topk, sort, svd, ...), else None."""
    if getattr(kind, "__module__", None) != "torch.return_types":
        return None
    return frozenset(getattr(kind, "__match_args__", ()))
