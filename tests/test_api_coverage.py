"""API coverage: the PyTorch names tutorials use most, each checked to exist in fastkern and, with
PyTorch installed, to give PyTorch's values (and gradients, where there are any) on a sample
input. The share of names that pass is the coverage figure in README.md; the test fails if it
drops below RECORDED, and prints the names that fail."""

import math

import numpy as np
import pytest

import fastkern as fk
from helpers import torch

needs_torch = pytest.mark.skipif(torch is None, reason="compares with torch")

# ----------------------------------------------------------------------------- the names
# Grouped as in torch's docs; "Tensor.x" is a method, the rest resolve from the module root.
_TORCH = """
tensor as_tensor from_numpy zeros ones empty full arange linspace logspace eye rand randn randint randperm
zeros_like ones_like empty_like full_like rand_like randn_like randint_like manual_seed seed initial_seed
is_tensor is_floating_point numel get_default_dtype set_default_dtype no_grad enable_grad set_grad_enabled
is_grad_enabled inference_mode float32 float64 float int64 long int32 int bool uint8 float16 half bfloat16
device Size Tensor dtype
abs neg exp log log2 log10 log1p expm1 sqrt rsqrt sin cos tan asin acos atan atan2 sinh cosh tanh sigmoid
relu sign floor ceil round trunc frac erf erfinv reciprocal square pow clamp clip lerp lgamma digamma
add sub mul div true_divide floor_divide remainder fmod maximum minimum fmax fmin hypot logaddexp
sum mean prod max min amax amin argmax argmin all any var std var_mean std_mean logsumexp median mode
norm dist cumsum cumprod cummax cummin softmax log_softmax count_nonzero
eq ne lt le gt ge equal allclose isclose isnan isinf isfinite where logical_and logical_or logical_not logical_xor
bitwise_and bitwise_or bitwise_xor bitwise_not
cat concat stack hstack vstack dstack split chunk unbind reshape flatten squeeze unsqueeze transpose permute
movedim swapaxes t narrow select gather scatter scatter_add index_select masked_select masked_fill nonzero take
topk sort argsort unique flip roll rot90 tril triu diag diagonal trace outer einsum tensordot kron cross
repeat_interleave tile broadcast_to broadcast_tensors broadcast_shapes meshgrid cdist bucketize searchsorted
matmul mm bmm mv dot addmm baddbmm inverse det
clone save load
"""
_TENSOR = """
shape size dim ndim numel dtype device is_cuda requires_grad grad grad_fn is_leaf data T mT
item tolist numpy to cpu cuda float double long int bool half type type_as detach detach_ clone contiguous
backward requires_grad_ retain_grad zero_ fill_ copy_ add_ sub_ mul_ div_ clamp_ uniform_ normal_ pow_ exp_ abs_
view view_as reshape reshape_as flatten squeeze unsqueeze transpose permute expand expand_as repeat t
narrow select chunk split unbind gather scatter scatter_ index_select masked_fill masked_fill_ index_fill_
sum mean prod max min argmax argmin std var abs exp log sqrt sigmoid tanh relu softmax log_softmax clamp
pow matmul mm bmm dot eq ne lt gt le ge all any norm topk sort argsort flip roll cumsum unique
new_tensor new_zeros new_ones new_full new_empty is_contiguous is_floating_point element_size data_ptr
stride storage_offset nonzero apply_ map_ sign floor ceil round neg reciprocal square
masked_select tril triu diag fill_diagonal_ lerp float_power addmm tile repeat_interleave movedim amax amin
logsumexp nansum count_nonzero isnan allclose equal where
"""
_NN = """
Module Sequential ModuleList ModuleDict Parameter ParameterList Linear Bilinear Identity Flatten Unflatten
Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d MaxPool1d MaxPool2d AvgPool1d AvgPool2d
AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveMaxPool2d BatchNorm1d BatchNorm2d LayerNorm GroupNorm InstanceNorm2d
Dropout Dropout2d Embedding EmbeddingBag RNN LSTM GRU LSTMCell GRUCell RNNCell MultiheadAttention
TransformerEncoderLayer TransformerEncoder TransformerDecoderLayer Transformer Upsample PixelShuffle ZeroPad2d
ReLU ReLU6 LeakyReLU PReLU ELU SELU GELU SiLU Mish Sigmoid Tanh Softmax LogSoftmax Softplus Hardtanh
Hardswish Hardsigmoid Softsign Tanhshrink Threshold GLU
MSELoss L1Loss SmoothL1Loss HuberLoss CrossEntropyLoss NLLLoss BCELoss BCEWithLogitsLoss KLDivLoss
CosineEmbeddingLoss MarginRankingLoss TripletMarginLoss CTCLoss PoissonNLLLoss GaussianNLLLoss CosineSimilarity
PairwiseDistance
init.xavier_uniform_ init.xavier_normal_ init.kaiming_uniform_ init.kaiming_normal_ init.normal_ init.uniform_
init.zeros_ init.ones_ init.constant_ init.orthogonal_ init.trunc_normal_
utils.clip_grad_norm_ utils.clip_grad_value_ utils.parameters_to_vector
"""
_F = """
relu relu6 leaky_relu elu selu gelu silu mish sigmoid tanh softmax log_softmax softplus hardtanh hardswish
softsign glu logsigmoid
linear conv1d conv2d conv_transpose2d max_pool1d max_pool2d avg_pool1d avg_pool2d adaptive_avg_pool1d
adaptive_avg_pool2d adaptive_max_pool2d batch_norm layer_norm group_norm instance_norm dropout embedding
one_hot pad interpolate normalize cosine_similarity pairwise_distance pixel_shuffle unfold fold
scaled_dot_product_attention
mse_loss l1_loss smooth_l1_loss huber_loss cross_entropy nll_loss binary_cross_entropy
binary_cross_entropy_with_logits kl_div cosine_embedding_loss margin_ranking_loss triplet_margin_loss
"""
_OPTIM = """
SGD Adam AdamW RMSprop Adagrad Adadelta Adamax NAdam RAdam LBFGS Optimizer
lr_scheduler.StepLR lr_scheduler.MultiStepLR lr_scheduler.ExponentialLR lr_scheduler.CosineAnnealingLR
lr_scheduler.ReduceLROnPlateau lr_scheduler.OneCycleLR lr_scheduler.LambdaLR lr_scheduler.CyclicLR
lr_scheduler.CosineAnnealingWarmRestarts lr_scheduler.LinearLR
"""
_OTHER = """
autograd.grad autograd.backward autograd.Function autograd.gradcheck
utils.data.Dataset utils.data.DataLoader utils.data.TensorDataset utils.data.random_split utils.data.Subset
cuda.is_available cuda.device_count cuda.manual_seed cuda.synchronize accelerator.is_available
backends.mps.is_available linalg.norm linalg.vector_norm linalg.matrix_norm linalg.det linalg.inv
linalg.solve linalg.qr linalg.svd linalg.eigh linalg.cholesky
"""
NAMES = [
    prefix + name
    for prefix, block in [
        ("", _TORCH),
        ("Tensor.", _TENSOR),
        ("nn.", _NN),
        ("nn.functional.", _F),
        ("optim.", _OPTIM),
        ("", _OTHER),
    ]
    for name in block.split()
]

# The share of NAMES that exist and match torch on their samples (torch installed), as README says.
RECORDED = 0.986  # 565 of 573 (the test prints the rest; README.md quotes the figure)

# ----------------------------------------------------------------------------- samples
# A sample is f(m, x, y) for m = fastkern or torch, x and y float64 leaves of shape [3, 4] with
# values in (0.2, 0.9) (inside every function's domain); its result (tensors, numbers, tuples)
# must equal torch's, and so must the gradients of x and y. Random functions compare shapes.
_rng = np.random.default_rng(0)
X, Y = _rng.uniform(0.2, 0.9, (3, 4)), _rng.uniform(0.2, 0.9, (3, 4))
M45 = _rng.standard_normal((4, 5))
IDX = np.array([[0, 3], [2, 2], [1, 0]])
MASK = X > 0.5
VEC4 = _rng.standard_normal(4)


def c(m, a, **kw):
    """A constant (no gradient) of the sample's module."""
    return m.tensor(a, **kw)


def _leaf_unary(name):
    return lambda m, x, y: getattr(m, name)(x)


def _leaf_binary(name):
    return lambda m, x, y: getattr(m, name)(x, y)


def _method0(name):
    return lambda m, x, y: getattr(x, name)()


def _along1(name):
    return lambda m, x, y: getattr(m, name)(x, 1)


def _shape_of(f):
    return lambda m, x, y: tuple(f(m, x, y).shape)


SAMPLES = {}
for _n in """abs neg exp log log2 log10 log1p expm1 sqrt rsqrt sin cos tan asin acos atan sinh cosh tanh sigmoid
    relu sign floor ceil round trunc frac erf erfinv reciprocal square lgamma digamma isnan isinf isfinite
    count_nonzero clone t flatten squeeze nonzero trace det inverse is_floating_point numel logical_not
    sum mean prod max min amax amin argmax argmin all any var std median""".split():
    SAMPLES[_n] = _leaf_unary(_n)
for _n in """add sub mul div true_divide floor_divide remainder fmod maximum minimum fmax fmin hypot logaddexp
    atan2 pow eq ne lt le gt ge equal allclose isclose logical_and logical_or logical_xor dist kron""".split():
    SAMPLES[_n] = _leaf_binary(_n)
for _n in """sum mean prod amax amin argmax argmin all any var std logsumexp cumsum cumprod softmax log_softmax
    count_nonzero""".split():
    SAMPLES[_n + "@dim"] = _along1(_n)
for _n in """cummax cummin sort argsort median max min var_mean std_mean""".split():
    SAMPLES[_n] = _along1(_n)
for _n in """abs exp log sqrt sigmoid tanh relu sign floor ceil round neg reciprocal square t clone contiguous detach
    sum mean prod max min argmax argmin std var all any isnan nansum count_nonzero amax amin float double long
    bool numel dim tolist item@0 flatten squeeze nonzero tril triu diag""".split():
    SAMPLES["Tensor." + _n] = _method0(_n.split("@")[0]) if "@" not in _n else (lambda m, x, y: x[0, 0].item())

SAMPLES.update(
    {
        # creation
        "tensor": lambda m, x, y: m.tensor([[1, 2], [3, 4]]) * m.tensor(2.5),
        "as_tensor": lambda m, x, y: m.as_tensor(X) + x,
        "from_numpy": lambda m, x, y: m.from_numpy(X.copy()) * x,
        "zeros": lambda m, x, y: m.zeros(2, 3, dtype=m.int64),
        "ones": lambda m, x, y: m.ones((2, 3)),
        "empty": _shape_of(lambda m, x, y: m.empty(2, 0, 3)),
        "full": lambda m, x, y: m.full((2, 2), 7),
        "arange": lambda m, x, y: (m.arange(5), m.arange(1, 2, 0.25), m.arange(10, 0, -3)),
        "linspace": lambda m, x, y: m.linspace(-1, 1, 7),
        "logspace": lambda m, x, y: m.logspace(0, 2, 3),
        "eye": lambda m, x, y: m.eye(2, 3),
        "rand": _shape_of(lambda m, x, y: m.rand(2, 3)),
        "randn": _shape_of(lambda m, x, y: m.randn(4)),
        "randint": lambda m, x, y: (tuple(m.randint(0, 5, (2, 3)).shape), m.randint(3, (4,)).dtype == m.int64),
        "randperm": lambda m, x, y: sorted(m.randperm(6).tolist()),
        "zeros_like": lambda m, x, y: m.zeros_like(x),
        "ones_like": lambda m, x, y: m.ones_like(x),
        "empty_like": _shape_of(lambda m, x, y: m.empty_like(x)),
        "full_like": lambda m, x, y: m.full_like(x, 2.5),
        "rand_like": _shape_of(lambda m, x, y: m.rand_like(x)),
        "randn_like": _shape_of(lambda m, x, y: m.randn_like(x)),
        "randint_like": _shape_of(lambda m, x, y: m.randint_like(x, 10)),
        "seed": lambda m, x, y: isinstance(m.seed(), int),
        "initial_seed": lambda m, x, y: (m.manual_seed(7), m.initial_seed())[1],
        "manual_seed": lambda m, x, y: (m.manual_seed(3), m.initial_seed())[1],
        "is_tensor": lambda m, x, y: (m.is_tensor(x), m.is_tensor(X)),
        "get_default_dtype": lambda m, x, y: str(m.get_default_dtype()).split(".")[-1],
        "set_default_dtype": lambda m, x, y: _with_default_dtype(m),
        "no_grad": lambda m, x, y: _under(m.no_grad(), x),
        "enable_grad": lambda m, x, y: _under(m.enable_grad(), x),
        "set_grad_enabled": lambda m, x, y: _under(m.set_grad_enabled(False), x),
        "inference_mode": lambda m, x, y: _under(m.inference_mode(), x),
        "is_grad_enabled": lambda m, x, y: m.is_grad_enabled(),
        "device": lambda m, x, y: (str(m.device("cpu")), m.device("cuda:0").type),
        "Size": lambda m, x, y: (m.Size([2, 3]).numel(), tuple(m.Size([2, 3]) + (4,))),
        "Tensor": lambda m, x, y: (m.Tensor(2, 3).shape == (2, 3), m.Tensor([1, 2]).tolist()),
        "dtype": lambda m, x, y: isinstance(m.float32, m.dtype),
        # math with other arguments
        "clamp": lambda m, x, y: m.clamp(x, 0.3, 0.6),
        "clip": lambda m, x, y: m.clip(x, min=0.5),
        "lerp": lambda m, x, y: m.lerp(x, y, 0.3),
        "round": lambda m, x, y: m.round(x * 10),
        "pow": lambda m, x, y: (m.pow(x, 2), m.pow(x, y), m.pow(2, x)),
        "norm": lambda m, x, y: (m.norm(x), m.norm(x, dim=1), m.norm(x, p=1)),
        "logsumexp": lambda m, x, y: m.logsumexp(x, 1),
        "softmax": lambda m, x, y: m.softmax(x, 1),
        "log_softmax": lambda m, x, y: m.log_softmax(x, 0),
        "mode": lambda m, x, y: m.mode(c(m, [[1, 2, 2, 3], [4, 4, 5, 5]]), 1),
        "where": lambda m, x, y: (m.where(x > 0.5, x, y), m.where(x > 0.5, x, 0.0)),
        "bitwise_and": lambda m, x, y: m.bitwise_and(c(m, [12, 10]), c(m, [10, 6])),
        "bitwise_or": lambda m, x, y: m.bitwise_or(c(m, [12, 10]), c(m, [10, 6])),
        "bitwise_xor": lambda m, x, y: m.bitwise_xor(c(m, [12, 10]), c(m, [10, 6])),
        "bitwise_not": lambda m, x, y: m.bitwise_not(c(m, [12, -3])),
        # shapes and indexing
        "cat": lambda m, x, y: m.cat([x, y], 1),
        "concat": lambda m, x, y: m.concat([x, y]),
        "stack": lambda m, x, y: m.stack([x, y], 2),
        "hstack": lambda m, x, y: m.hstack([x, y]),
        "vstack": lambda m, x, y: m.vstack([x, y[0]]),
        "dstack": lambda m, x, y: m.dstack([x, y]),
        "split": lambda m, x, y: (m.split(x, 3, 1), m.split(x, [1, 2])),
        "chunk": lambda m, x, y: m.chunk(x, 3, 1),
        "unbind": lambda m, x, y: m.unbind(x, 1),
        "reshape": lambda m, x, y: m.reshape(x, (2, -1)),
        "unsqueeze": lambda m, x, y: m.unsqueeze(x, -1),
        "transpose": lambda m, x, y: m.transpose(x, 0, 1),
        "permute": lambda m, x, y: m.permute(x[None], (2, 0, 1)),
        "movedim": lambda m, x, y: m.movedim(x[None], 0, 2),
        "swapaxes": lambda m, x, y: m.swapaxes(x, 0, 1),
        "narrow": lambda m, x, y: m.narrow(x, 1, 1, 2),
        "select": lambda m, x, y: m.select(x, 1, 2),
        "gather": lambda m, x, y: m.gather(x, 1, c(m, IDX)),
        "scatter": lambda m, x, y: m.scatter(x, 1, c(m, IDX[:, :1]), y),
        "scatter_add": lambda m, x, y: m.scatter_add(x, 1, c(m, IDX), y),
        "index_select": lambda m, x, y: m.index_select(x, 1, c(m, [3, 0, 3])),
        "masked_select": lambda m, x, y: m.masked_select(x, c(m, MASK)),
        "masked_fill": lambda m, x, y: m.masked_fill(x, c(m, MASK), -1.0),
        "take": lambda m, x, y: m.take(x, c(m, [0, 5, 11])),
        "topk": lambda m, x, y: m.topk(x, 2),
        "unique": lambda m, x, y: m.unique(c(m, [3, 1, 3, 2, 1]), return_inverse=True, return_counts=True),
        "flip": lambda m, x, y: m.flip(x, [0, 1]),
        "roll": lambda m, x, y: (m.roll(x, 1, 1), m.roll(x, 2)),
        "rot90": lambda m, x, y: m.rot90(x, 1, (0, 1)),
        "tril": lambda m, x, y: m.tril(x, -1),
        "triu": lambda m, x, y: m.triu(x, 1),
        "diag": lambda m, x, y: (m.diag(x[0]), m.diag(x, 1)),
        "diagonal": lambda m, x, y: m.diagonal(x, -1),
        "outer": lambda m, x, y: m.outer(x[0], y[1]),
        "einsum": lambda m, x, y: (m.einsum("ij,kj->ik", x, y), m.einsum("ij->j", x), m.einsum("ij,ij", x, y)),
        "tensordot": lambda m, x, y: m.tensordot(x, y.t(), 1),
        "cross": lambda m, x, y: m.cross(x[:, :3], y[:, :3], dim=1),
        "repeat_interleave": lambda m, x, y: (m.repeat_interleave(x, 2, 0), m.repeat_interleave(x, c(m, [1, 0, 2]), 0)),
        "tile": lambda m, x, y: m.tile(x, (2, 1, 2)),
        "broadcast_to": lambda m, x, y: m.broadcast_to(x[0], (2, 4)),
        "broadcast_tensors": lambda m, x, y: m.broadcast_tensors(x[:, :1], y[0]),
        "broadcast_shapes": lambda m, x, y: tuple(m.broadcast_shapes((3, 1), (1, 4), (4,))),
        "meshgrid": lambda m, x, y: (
            m.meshgrid(x[0], y[:, 0], indexing="ij"),
            m.meshgrid(x[0], y[:, 0], indexing="xy"),
        ),
        "cdist": lambda m, x, y: m.cdist(x, y[:2]),
        "bucketize": lambda m, x, y: m.bucketize(x, c(m, [0.3, 0.5, 0.7])),
        "searchsorted": lambda m, x, y: m.searchsorted(c(m, [0.3, 0.5, 0.7]), x),
        "matmul": lambda m, x, y: m.matmul(x, y.t()),
        "mm": lambda m, x, y: m.mm(x, y.t()),
        "bmm": lambda m, x, y: m.bmm(x[None], y.t()[None]),
        "mv": lambda m, x, y: m.mv(x, y[0]),
        "dot": lambda m, x, y: m.dot(x[0], y[1]),
        "addmm": lambda m, x, y: m.addmm(y[0, :3], x, y.t()),
        "baddbmm": lambda m, x, y: m.baddbmm(y[None, :, :3], x[None], y.t()[None], beta=0.5, alpha=2),
        "det": lambda m, x, y: m.det(x[:, :3]),
        "inverse": lambda m, x, y: m.inverse(x[:, :3]),
        "save": lambda m, x, y: _save_load(m, x),
        "load": lambda m, x, y: _save_load(m, x),
    }
)


def _with_default_dtype(m):
    m.set_default_dtype(m.float64)
    try:
        return str(m.zeros(1).dtype).split(".")[-1], str(m.tensor([1.5]).dtype).split(".")[-1]
    finally:
        m.set_default_dtype(m.float32)


def _under(mode, x):
    with mode:
        return (x * 2).requires_grad


def _save_load(m, x):
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "w.pt")
        m.save({"w": x.detach()}, path)
        return m.load(path)["w"] * x


def _inplace(f):
    """f applied to a copy of x that records (x * 1): in-place methods cannot change a leaf."""
    return lambda m, x, y: f(m, x * 1, y)


SAMPLES.update(
    {
        "Tensor.shape": lambda m, x, y: tuple(x.shape),
        "Tensor.size": lambda m, x, y: (tuple(x.size()), x.size(1), x.size(-1)),
        "Tensor.ndim": lambda m, x, y: x.ndim,
        "Tensor.dtype": lambda m, x, y: str(x.dtype).split(".")[-1],
        "Tensor.device": lambda m, x, y: str(x.device),
        "Tensor.is_cuda": lambda m, x, y: x.is_cuda,
        "Tensor.requires_grad": lambda m, x, y: (x.requires_grad, (x * 2).requires_grad, X.shape),
        "Tensor.grad": lambda m, x, y: _grad_after(x),
        "Tensor.grad_fn": lambda m, x, y: ((x * y).grad_fn.name(), x.grad_fn),
        "Tensor.is_leaf": lambda m, x, y: (x.is_leaf, (x * 2).is_leaf),
        "Tensor.data": lambda m, x, y: x.data * 2,
        "Tensor.T": lambda m, x, y: x.T,
        "Tensor.mT": lambda m, x, y: x[None].mT,
        "Tensor.numpy": lambda m, x, y: x.detach().numpy().sum(),
        "Tensor.to": lambda m, x, y: (x.to(m.float32), x.to("cpu"), x.to(y)),
        "Tensor.cpu": lambda m, x, y: x.cpu(),
        "Tensor.int": lambda m, x, y: (x * 10).int(),
        "Tensor.half": lambda m, x, y: x.half().float(),
        "Tensor.type": lambda m, x, y: x.type().split(".")[-1],
        "Tensor.type_as": lambda m, x, y: x.type_as(c(m, [1])),
        "Tensor.detach_": lambda m, x, y: (x * 2).detach_().requires_grad,
        "Tensor.backward": lambda m, x, y: _grad_after(x),
        "Tensor.requires_grad_": lambda m, x, y: x.detach().requires_grad_().requires_grad,
        "Tensor.retain_grad": lambda m, x, y: x.retain_grad(),
        "Tensor.zero_": _inplace(lambda m, x, y: x.zero_()),
        "Tensor.fill_": _inplace(lambda m, x, y: x.fill_(2.0)),
        "Tensor.copy_": _inplace(lambda m, x, y: x.copy_(y)),
        "Tensor.add_": _inplace(lambda m, x, y: x.add_(y, alpha=2)),
        "Tensor.sub_": _inplace(lambda m, x, y: x.sub_(y)),
        "Tensor.mul_": _inplace(lambda m, x, y: x.mul_(y)),
        "Tensor.div_": _inplace(lambda m, x, y: x.div_(y)),
        "Tensor.clamp_": _inplace(lambda m, x, y: x.clamp_(0.4, 0.6)),
        "Tensor.uniform_": lambda m, x, y: bool(((m.empty(100).uniform_(2, 3) - 2.5).abs() <= 0.5).all()),
        "Tensor.normal_": lambda m, x, y: tuple(m.empty(3, 2).normal_().shape),
        "Tensor.pow_": _inplace(lambda m, x, y: x.pow_(2)),
        "Tensor.exp_": _inplace(lambda m, x, y: x.exp_()),
        "Tensor.abs_": _inplace(lambda m, x, y: x.abs_()),
        "Tensor.view": lambda m, x, y: (x.view(2, 6), x.view(-1)),
        "Tensor.view_as": lambda m, x, y: x.view_as(y.t()),
        "Tensor.reshape": lambda m, x, y: x.t().reshape(12),
        "Tensor.reshape_as": lambda m, x, y: x.reshape_as(y.t()),
        "Tensor.unsqueeze": lambda m, x, y: x.unsqueeze(1),
        "Tensor.transpose": lambda m, x, y: x.transpose(1, 0),
        "Tensor.permute": lambda m, x, y: x.permute(1, 0),
        "Tensor.expand": lambda m, x, y: x[:, :1].expand(3, 5),
        "Tensor.expand_as": lambda m, x, y: x[:1].expand_as(y),
        "Tensor.repeat": lambda m, x, y: x.repeat(2, 1),
        "Tensor.narrow": lambda m, x, y: x.narrow(0, 1, 2),
        "Tensor.select": lambda m, x, y: x.select(0, -1),
        "Tensor.chunk": lambda m, x, y: x.chunk(2, 1),
        "Tensor.split": lambda m, x, y: x.split(2),
        "Tensor.unbind": lambda m, x, y: x.unbind(),
        "Tensor.gather": lambda m, x, y: x.gather(1, c(m, IDX)),
        "Tensor.scatter": lambda m, x, y: x.scatter(1, c(m, IDX[:, :1]), 0.0),
        "Tensor.scatter_": _inplace(lambda m, x, y: x.scatter_(1, c(m, IDX[:, :1]), y)),
        "Tensor.index_select": lambda m, x, y: x.index_select(0, c(m, [2, 0])),
        "Tensor.masked_fill": lambda m, x, y: x.masked_fill(c(m, MASK), 0.0),
        "Tensor.masked_fill_": _inplace(lambda m, x, y: x.masked_fill_(c(m, MASK), 0.0)),
        "Tensor.index_fill_": _inplace(lambda m, x, y: x.index_fill_(1, c(m, [0, 2]), -1.0)),
        "Tensor.softmax": lambda m, x, y: x.softmax(0),
        "Tensor.log_softmax": lambda m, x, y: x.log_softmax(1),
        "Tensor.clamp": lambda m, x, y: x.clamp(max=0.5),
        "Tensor.pow": lambda m, x, y: x.pow(3),
        "Tensor.matmul": lambda m, x, y: x.matmul(y.t()),
        "Tensor.mm": lambda m, x, y: x.mm(y.t()),
        "Tensor.bmm": lambda m, x, y: x[None].bmm(y.t()[None]),
        "Tensor.dot": lambda m, x, y: x[0].dot(y[0]),
        "Tensor.eq": lambda m, x, y: x.eq(y),
        "Tensor.ne": lambda m, x, y: x.ne(0.5),
        "Tensor.lt": lambda m, x, y: x.lt(y),
        "Tensor.gt": lambda m, x, y: x.gt(y),
        "Tensor.le": lambda m, x, y: x.le(0.5),
        "Tensor.ge": lambda m, x, y: x.ge(y),
        "Tensor.norm": lambda m, x, y: (x.norm(), x.norm(dim=0), x.norm(p=1, dim=1)),
        "Tensor.topk": lambda m, x, y: x.topk(3, dim=0, largest=False),
        "Tensor.sort": lambda m, x, y: x.sort(0, descending=True),
        "Tensor.argsort": lambda m, x, y: x.argsort(1),
        "Tensor.flip": lambda m, x, y: x.flip(1),
        "Tensor.roll": lambda m, x, y: x.roll(-1, 0),
        "Tensor.cumsum": lambda m, x, y: x.cumsum(0),
        "Tensor.unique": lambda m, x, y: c(m, [2, 2, 1]).unique(),
        "Tensor.new_tensor": lambda m, x, y: x.new_tensor([1, 2]),
        "Tensor.new_zeros": lambda m, x, y: x.new_zeros(2, 3),
        "Tensor.new_ones": lambda m, x, y: x.new_ones((2,)),
        "Tensor.new_full": lambda m, x, y: x.new_full((2,), 3.0),
        "Tensor.new_empty": lambda m, x, y: tuple(x.new_empty(2, 2).shape),
        "Tensor.is_contiguous": lambda m, x, y: (x.is_contiguous(), x.t().is_contiguous()),
        "Tensor.is_floating_point": lambda m, x, y: (x.is_floating_point(), c(m, [1]).is_floating_point()),
        "Tensor.element_size": lambda m, x, y: x.element_size(),
        "Tensor.data_ptr": lambda m, x, y: x.data_ptr() == x.view(-1).data_ptr(),
        "Tensor.stride": lambda m, x, y: (x.stride(), x.t().stride(1)),
        "Tensor.storage_offset": lambda m, x, y: x[1:, 2:].storage_offset(),
        "Tensor.apply_": lambda m, x, y: c(m, [1.0, 2.0]).apply_(lambda v: v * 3),
        "Tensor.map_": lambda m, x, y: c(m, [1.0, 2.0]).map_(c(m, [3.0, 4.0]), lambda a, b: a * b),
        "Tensor.masked_select": lambda m, x, y: x.masked_select(c(m, MASK)),
        "Tensor.fill_diagonal_": _inplace(lambda m, x, y: x.fill_diagonal_(0.0)),
        "Tensor.lerp": lambda m, x, y: x.lerp(y, 0.25),
        "Tensor.float_power": lambda m, x, y: x.float_power(2),
        "Tensor.addmm": lambda m, x, y: y[0, :3].addmm(x, y.t()),
        "Tensor.tile": lambda m, x, y: x.tile((2,)),
        "Tensor.repeat_interleave": lambda m, x, y: x.repeat_interleave(2),
        "Tensor.movedim": lambda m, x, y: x.movedim(1, 0),
        "Tensor.logsumexp": lambda m, x, y: x.logsumexp(0),
        "Tensor.allclose": lambda m, x, y: (x.allclose(x + 1e-9), x.allclose(y)),
        "Tensor.equal": lambda m, x, y: (x.equal(x), x.equal(y)),
        "Tensor.where": lambda m, x, y: x.where(x > 0.5, y),
        "Tensor.tolist": lambda m, x, y: x.tolist(),
        "Tensor.item": lambda m, x, y: x[1, 2].item(),
    }
)


def _grad_after(x):
    (x * x).sum().backward()
    g = x.grad.clone()
    x.grad = None
    return g


# ---- nn: modules get torch's weights (made under a fixed seed) so that outputs can match
def _module(ctor, inputs, train=False):
    """ctor(m) builds the module; inputs(m, x, y) its arguments. Returns its outputs and the
    gradients of its parameters (of the sum of its floating outputs)."""

    def sample(m, x, y):
        torch.manual_seed(0)
        ref = ctor(torch).double()
        mod = ref if m is torch else ctor(fk).double()
        if m is fk:
            mod.load_state_dict({k: fk.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
        mod.train(train)
        out = mod(*inputs(m, x, y))
        params = [p for p in mod.parameters()]
        floats = [o for o in _flatten(out) if isinstance(o, m.Tensor) and o.requires_grad]
        grads = (
            m.autograd.grad(sum(o.sum() for o in floats), params, allow_unused=True, retain_graph=True)
            if params
            else ()
        )
        return out, grads

    return sample


def _x(m, x, y):
    return (x,)


def _xy(m, x, y):
    return (x, y)


def _signed(m, x, y):
    return ((x - 0.55) * 6,)


def _img(m, x, y):
    return (x[None, None],)


def _seq(m, x, y):
    return (x[None],)


TARGET = np.array([0, 3, 1])

for _n, _args in {
    "ReLU": (),
    "ReLU6": (),
    "LeakyReLU": (0.2,),
    "PReLU": (),
    "ELU": (),
    "SELU": (),
    "GELU": (),
    "SiLU": (),
    "Mish": (),
    "Sigmoid": (),
    "Tanh": (),
    "Softmax": (1,),
    "LogSoftmax": (1,),
    "Softplus": (),
    "Hardtanh": (),
    "Hardswish": (),
    "Hardsigmoid": (),
    "Softsign": (),
    "Tanhshrink": (),
    "Threshold": (0.5, 0.0),
    "GLU": (),
    "Identity": (),
    "Flatten": (0,),
}.items():
    SAMPLES["nn." + _n] = _module(lambda m, n=_n, a=_args: getattr(m.nn, n)(*a), _signed)
for _n, _args in {
    "MSELoss": (),
    "L1Loss": (),
    "SmoothL1Loss": (),
    "HuberLoss": (),
    "BCELoss": (),
    "BCEWithLogitsLoss": (),
    "PoissonNLLLoss": (),
    "CosineSimilarity": (),
    "PairwiseDistance": (),
}.items():
    SAMPLES["nn." + _n] = _module(lambda m, n=_n, a=_args: getattr(m.nn, n)(*a), _xy)

SAMPLES.update(
    {
        "nn.Module": lambda m, x, y: sum(p.numel() for p in _Net(m)().parameters()),
        "nn.Sequential": _module(lambda m: m.nn.Sequential(m.nn.Linear(4, 3), m.nn.ReLU(), m.nn.Linear(3, 2)), _x),
        "nn.ModuleList": lambda m, x, y: len(m.nn.ModuleList([m.nn.ReLU(), m.nn.Tanh()])),
        "nn.ModuleDict": lambda m, x, y: sorted(m.nn.ModuleDict({"a": m.nn.ReLU(), "b": m.nn.Tanh()}).keys()),
        "nn.Parameter": lambda m, x, y: (m.nn.Parameter(m.ones(2)).requires_grad, m.nn.Parameter(m.ones(2)) * x[0, :2]),
        "nn.ParameterList": lambda m, x, y: len(m.nn.ParameterList([m.nn.Parameter(m.ones(2))] * 3)),
        "nn.Linear": _module(lambda m: m.nn.Linear(4, 2), _x),
        "nn.Bilinear": _module(lambda m: m.nn.Bilinear(4, 4, 2), _xy),
        "nn.Unflatten": _module(lambda m: m.nn.Unflatten(1, (2, 2)), _x),
        "nn.Conv1d": _module(lambda m: m.nn.Conv1d(3, 2, 2, padding=1), _seq),
        "nn.Conv2d": _module(lambda m: m.nn.Conv2d(1, 2, 2, stride=1, padding=1), _img),
        "nn.Conv3d": _module(lambda m: m.nn.Conv3d(1, 2, 2), lambda m, x, y: (x.reshape(1, 1, 2, 2, 3),)),
        "nn.ConvTranspose1d": _module(lambda m: m.nn.ConvTranspose1d(3, 2, 2, stride=2), _seq),
        "nn.ConvTranspose2d": _module(
            lambda m: m.nn.ConvTranspose2d(1, 2, 3, stride=2, padding=1, output_padding=1), _img
        ),
        "nn.MaxPool1d": _module(lambda m: m.nn.MaxPool1d(2), _seq),
        "nn.MaxPool2d": _module(lambda m: m.nn.MaxPool2d(2), _img),
        "nn.AvgPool1d": _module(lambda m: m.nn.AvgPool1d(2), _seq),
        "nn.AvgPool2d": _module(lambda m: m.nn.AvgPool2d(2, 1), _img),
        "nn.AdaptiveAvgPool1d": _module(lambda m: m.nn.AdaptiveAvgPool1d(2), _seq),
        "nn.AdaptiveAvgPool2d": _module(lambda m: m.nn.AdaptiveAvgPool2d((1, 2)), _img),
        "nn.AdaptiveMaxPool2d": _module(lambda m: m.nn.AdaptiveMaxPool2d(2), _img),
        "nn.BatchNorm1d": _module(lambda m: m.nn.BatchNorm1d(4), _x, train=True),
        "nn.BatchNorm2d": _module(lambda m: m.nn.BatchNorm2d(3), lambda m, x, y: (x.reshape(1, 3, 2, 2),), train=True),
        "nn.LayerNorm": _module(lambda m: m.nn.LayerNorm(4), _x),
        "nn.GroupNorm": _module(lambda m: m.nn.GroupNorm(1, 3), _seq),
        "nn.InstanceNorm2d": _module(lambda m: m.nn.InstanceNorm2d(3), lambda m, x, y: (x.reshape(1, 3, 2, 2),)),
        "nn.Dropout": _module(lambda m: m.nn.Dropout(0.3), _x),
        "nn.Dropout2d": _module(lambda m: m.nn.Dropout2d(0.3), _img),
        "nn.Embedding": _module(lambda m: m.nn.Embedding(5, 3), lambda m, x, y: (c(m, [[0, 4], [2, 2]]),)),
        "nn.EmbeddingBag": _module(lambda m: m.nn.EmbeddingBag(5, 3), lambda m, x, y: (c(m, [[0, 4], [2, 2]]),)),
        "nn.RNN": _module(lambda m: m.nn.RNN(4, 3), lambda m, x, y: (x[:, None],)),
        "nn.LSTM": _module(lambda m: m.nn.LSTM(4, 3, num_layers=2, batch_first=True), _seq),
        "nn.GRU": _module(lambda m: m.nn.GRU(4, 3, bidirectional=True), lambda m, x, y: (x[:, None],)),
        "nn.LSTMCell": _module(lambda m: m.nn.LSTMCell(4, 3), _x),
        "nn.GRUCell": _module(lambda m: m.nn.GRUCell(4, 3), _x),
        "nn.RNNCell": _module(lambda m: m.nn.RNNCell(4, 3), _x),
        "nn.MultiheadAttention": _module(
            lambda m: m.nn.MultiheadAttention(4, 2, batch_first=True), lambda m, x, y: (x[None], y[None], y[None])
        ),
        "nn.TransformerEncoderLayer": _module(
            lambda m: m.nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0, batch_first=True), _seq
        ),
        "nn.TransformerEncoder": _module(
            lambda m: m.nn.TransformerEncoder(
                m.nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0, batch_first=True, norm_first=True),
                2,
                enable_nested_tensor=False,
            ),
            _seq,
        ),
        "nn.TransformerDecoderLayer": _module(
            lambda m: m.nn.TransformerDecoderLayer(4, 2, 8, 0.0), lambda m, x, y: (x[:, None], y[:, None])
        ),
        "nn.Transformer": _module(
            lambda m: m.nn.Transformer(4, 2, 1, 1, 8, 0.0, batch_first=True), lambda m, x, y: (x[None], y[None])
        ),
        "nn.Upsample": _module(lambda m: m.nn.Upsample(scale_factor=2), _img),
        "nn.PixelShuffle": _module(lambda m: m.nn.PixelShuffle(2), lambda m, x, y: (x.reshape(1, 4, 3, 1),)),
        "nn.ZeroPad2d": _module(lambda m: m.nn.ZeroPad2d((1, 0, 2, 1)), _img),
        "nn.CrossEntropyLoss": _module(
            lambda m: m.nn.CrossEntropyLoss(label_smoothing=0.1), lambda m, x, y: (x, c(m, TARGET))
        ),
        "nn.NLLLoss": _module(lambda m: m.nn.NLLLoss(), lambda m, x, y: (x.log_softmax(1), c(m, TARGET))),
        "nn.KLDivLoss": _module(
            lambda m: m.nn.KLDivLoss(reduction="batchmean"), lambda m, x, y: (x.log_softmax(1), y.softmax(1))
        ),
        "nn.CosineEmbeddingLoss": _module(
            lambda m: m.nn.CosineEmbeddingLoss(0.1), lambda m, x, y: (x, y, c(m, [1, -1, 1]))
        ),
        "nn.MarginRankingLoss": _module(
            lambda m: m.nn.MarginRankingLoss(0.1), lambda m, x, y: (x[0], y[0], c(m, [1.0, -1, 1, -1]))
        ),
        "nn.TripletMarginLoss": _module(lambda m: m.nn.TripletMarginLoss(), lambda m, x, y: (x, y, x * y)),
        "nn.CTCLoss": _module(
            lambda m: m.nn.CTCLoss(), lambda m, x, y: (x[:, None].log_softmax(2), c(m, [[1, 2]]), c(m, [3]), c(m, [2]))
        ),
        "nn.GaussianNLLLoss": _module(lambda m: m.nn.GaussianNLLLoss(), lambda m, x, y: (x, y, x * y)),
        "nn.init.xavier_uniform_": lambda m, x, y: _init_bound(m, m.nn.init.xavier_uniform_, math.sqrt(6 / 110)),
        "nn.init.xavier_normal_": lambda m, x, y: tuple(m.nn.init.xavier_normal_(m.empty(5, 6)).shape),
        "nn.init.kaiming_uniform_": lambda m, x, y: _init_bound(m, m.nn.init.kaiming_uniform_, math.sqrt(6 / 60)),
        "nn.init.kaiming_normal_": lambda m, x, y: tuple(m.nn.init.kaiming_normal_(m.empty(5, 6)).shape),
        "nn.init.normal_": lambda m, x, y: tuple(m.nn.init.normal_(m.empty(5, 6), 0, 2).shape),
        "nn.init.uniform_": lambda m, x, y: _init_bound(m, lambda w: m.nn.init.uniform_(w, -0.1, 0.1), 0.1),
        "nn.init.zeros_": lambda m, x, y: m.nn.init.zeros_(m.empty(2, 2)),
        "nn.init.ones_": lambda m, x, y: m.nn.init.ones_(m.empty(2, 2)),
        "nn.init.constant_": lambda m, x, y: m.nn.init.constant_(m.empty(2, 2), 0.5),
        "nn.init.orthogonal_": lambda m, x, y: _orthonormal_rows(m, m.nn.init.orthogonal_(m.empty(3, 5))),
        "nn.init.trunc_normal_": lambda m, x, y: bool(
            m.nn.init.trunc_normal_(m.empty(100), 0, 1, -0.5, 0.5).abs().max() <= 0.5
        ),
        "nn.utils.clip_grad_norm_": lambda m, x, y: _clip(m, lambda ps: m.nn.utils.clip_grad_norm_(ps, 0.5)),
        "nn.utils.clip_grad_value_": lambda m, x, y: _clip(m, lambda ps: m.nn.utils.clip_grad_value_(ps, 0.5)),
        "nn.utils.parameters_to_vector": lambda m, x, y: m.nn.utils.parameters_to_vector([x, y[0]]),
    }
)


def _Net(m):
    class Net(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = m.nn.Linear(4, 3)
            self.out = m.nn.Linear(3, 1, bias=False)

        def forward(self, x):
            return self.out(self.fc(x).relu())

    return Net


def _init_bound(m, fn, bound):
    w = fn(m.empty(50, 60))
    return tuple(w.shape), bool(w.abs().max() <= bound)


def _orthonormal_rows(m, w):
    return bool(((w @ w.t()) - m.eye(3)).abs().max() < 1e-5)


def _clip(m, fn):
    p = m.nn.Parameter(m.tensor(X))
    (p * p * 3).sum().backward()
    total = fn([p])
    return total, p.grad


def _f(name, inputs, *args, **kwargs):
    return lambda m, x, y: getattr(m.nn.functional, name)(*inputs(m, x, y), *args, **kwargs)


for _n in (
    "relu relu6 leaky_relu elu selu gelu silu mish sigmoid tanh softplus hardtanh hardswish softsign logsigmoid".split()
):
    SAMPLES["nn.functional." + _n] = _f(_n, _signed)
SAMPLES.update(
    {
        "nn.functional.softmax": _f("softmax", _x, dim=0),
        "nn.functional.log_softmax": _f("log_softmax", _x, dim=1),
        "nn.functional.glu": _f("glu", _signed, dim=1),
        "nn.functional.linear": lambda m, x, y: m.nn.functional.linear(x, y[:2], y[2, :2]),
        "nn.functional.conv1d": lambda m, x, y: m.nn.functional.conv1d(x[None], y.reshape(2, 3, 2), stride=2),
        "nn.functional.conv2d": lambda m, x, y: m.nn.functional.conv2d(x[None, None], y[None, None, :2, :2], padding=1),
        "nn.functional.conv_transpose2d": lambda m, x, y: m.nn.functional.conv_transpose2d(
            x[None, None], y[None, None, :2, :3], stride=2
        ),
        "nn.functional.max_pool1d": _f("max_pool1d", _seq, 2),
        "nn.functional.max_pool2d": _f("max_pool2d", _img, 2, 1),
        "nn.functional.avg_pool1d": _f("avg_pool1d", _seq, 3, 1),
        "nn.functional.avg_pool2d": _f("avg_pool2d", _img, 2),
        "nn.functional.adaptive_avg_pool1d": _f("adaptive_avg_pool1d", _seq, 1),
        "nn.functional.adaptive_avg_pool2d": _f("adaptive_avg_pool2d", _img, 2),
        "nn.functional.adaptive_max_pool2d": _f("adaptive_max_pool2d", _img, (1, 2)),
        "nn.functional.batch_norm": lambda m, x, y: m.nn.functional.batch_norm(
            x, None, None, y[0], y[1], training=True
        ),
        "nn.functional.layer_norm": lambda m, x, y: m.nn.functional.layer_norm(x, (4,), y[0], y[1]),
        "nn.functional.group_norm": lambda m, x, y: m.nn.functional.group_norm(x.reshape(1, 4, 3), 2, y[0], y[1]),
        "nn.functional.instance_norm": lambda m, x, y: m.nn.functional.instance_norm(x[None]),
        "nn.functional.dropout": lambda m, x, y: (
            m.nn.functional.dropout(x, 0.5, training=False),
            tuple(m.nn.functional.dropout(x).shape),
        ),
        "nn.functional.embedding": lambda m, x, y: m.nn.functional.embedding(c(m, [2, 0, 2]), x),
        "nn.functional.one_hot": lambda m, x, y: m.nn.functional.one_hot(c(m, [2, 0, 1]), 4),
        "nn.functional.pad": lambda m, x, y: m.nn.functional.pad(x, (1, 2), value=0.5),
        "nn.functional.interpolate": lambda m, x, y: m.nn.functional.interpolate(x[None, None], scale_factor=2),
        "nn.functional.normalize": _f("normalize", _x, dim=0),
        "nn.functional.cosine_similarity": _f("cosine_similarity", _xy),
        "nn.functional.pairwise_distance": _f("pairwise_distance", _xy),
        "nn.functional.pixel_shuffle": lambda m, x, y: m.nn.functional.pixel_shuffle(x.reshape(1, 4, 3, 1), 2),
        "nn.functional.unfold": lambda m, x, y: m.nn.functional.unfold(x[None, None], 2),
        "nn.functional.fold": lambda m, x, y: m.nn.functional.fold(x.reshape(1, 4, 3), (2, 4), 2),
        "nn.functional.scaled_dot_product_attention": lambda m, x, y: (
            m.nn.functional.scaled_dot_product_attention(x[None], y[None], y[None]),
            m.nn.functional.scaled_dot_product_attention(x[None], y[None], x[None], is_causal=True),
        ),
        "nn.functional.mse_loss": _f("mse_loss", _xy),
        "nn.functional.l1_loss": _f("l1_loss", _xy, reduction="sum"),
        "nn.functional.smooth_l1_loss": lambda m, x, y: m.nn.functional.smooth_l1_loss(x * 4, y, beta=0.5),
        "nn.functional.huber_loss": lambda m, x, y: m.nn.functional.huber_loss(x * 4, y, reduction="none"),
        "nn.functional.cross_entropy": lambda m, x, y: m.nn.functional.cross_entropy(x, c(m, TARGET)),
        "nn.functional.nll_loss": lambda m, x, y: m.nn.functional.nll_loss(x.log_softmax(1), c(m, TARGET)),
        "nn.functional.binary_cross_entropy": _f("binary_cross_entropy", _xy),
        "nn.functional.binary_cross_entropy_with_logits": _f("binary_cross_entropy_with_logits", _xy),
        "nn.functional.kl_div": lambda m, x, y: m.nn.functional.kl_div(
            x.log_softmax(1), y.softmax(1), reduction="batchmean"
        ),
        "nn.functional.cosine_embedding_loss": lambda m, x, y: m.nn.functional.cosine_embedding_loss(
            x, y, c(m, [1, -1, -1])
        ),
        "nn.functional.margin_ranking_loss": lambda m, x, y: m.nn.functional.margin_ranking_loss(
            x[0], y[0], c(m, [1.0, -1, 1, 1])
        ),
        "nn.functional.triplet_margin_loss": lambda m, x, y: m.nn.functional.triplet_margin_loss(
            x, y, x * y, swap=True
        ),
    }
)


# ---- optimisers and schedules
def _optim(make, steps=3, closure=False):
    def sample(m, x, y):
        p = m.nn.Parameter(m.tensor(X))
        opt = make(m, [p])
        for _ in range(steps):

            def loss_fn():
                opt.zero_grad()
                loss = ((p - 0.3) ** 2 * m.tensor(Y)).sum()
                loss.backward()
                return loss

            opt.step(loss_fn) if closure else (loss_fn(), opt.step())
        return p.detach()

    return sample


def _sched(make, metric=False):
    def sample(m, x, y):
        opt = m.optim.SGD([m.nn.Parameter(m.ones(2))], lr=0.1, momentum=0.9)
        sched, lrs = make(m, opt), []
        for i in range(8):
            opt.step()
            sched.step(1.0) if metric else sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        return lrs

    return sample


SAMPLES.update(
    {
        "optim.SGD": _optim(lambda m, ps: m.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        "optim.Adam": _optim(lambda m, ps: m.optim.Adam(ps, lr=0.1, weight_decay=0.01)),
        "optim.AdamW": _optim(lambda m, ps: m.optim.AdamW(ps, lr=0.1)),
        "optim.RMSprop": _optim(lambda m, ps: m.optim.RMSprop(ps, lr=0.01, momentum=0.5)),
        "optim.Adagrad": _optim(lambda m, ps: m.optim.Adagrad(ps, lr=0.1)),
        "optim.Adadelta": _optim(lambda m, ps: m.optim.Adadelta(ps)),
        "optim.Adamax": _optim(lambda m, ps: m.optim.Adamax(ps, lr=0.1)),
        "optim.NAdam": _optim(lambda m, ps: m.optim.NAdam(ps, lr=0.1)),
        "optim.RAdam": _optim(lambda m, ps: m.optim.RAdam(ps, lr=0.1), steps=7),
        "optim.LBFGS": _optim(lambda m, ps: m.optim.LBFGS(ps, lr=0.5, max_iter=5), steps=2, closure=True),
        "optim.Optimizer": lambda m, x, y: isinstance(m.optim.SGD([x], lr=0.1), m.optim.Optimizer),
        "optim.lr_scheduler.StepLR": _sched(lambda m, o: m.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        "optim.lr_scheduler.MultiStepLR": _sched(lambda m, o: m.optim.lr_scheduler.MultiStepLR(o, [2, 5])),
        "optim.lr_scheduler.ExponentialLR": _sched(lambda m, o: m.optim.lr_scheduler.ExponentialLR(o, 0.9)),
        "optim.lr_scheduler.CosineAnnealingLR": _sched(lambda m, o: m.optim.lr_scheduler.CosineAnnealingLR(o, 6)),
        "optim.lr_scheduler.ReduceLROnPlateau": _sched(
            lambda m, o: m.optim.lr_scheduler.ReduceLROnPlateau(o, patience=1), True
        ),
        "optim.lr_scheduler.OneCycleLR": _sched(lambda m, o: m.optim.lr_scheduler.OneCycleLR(o, 1.0, total_steps=10)),
        "optim.lr_scheduler.LambdaLR": _sched(lambda m, o: m.optim.lr_scheduler.LambdaLR(o, lambda e: 1 / (e + 1))),
        "optim.lr_scheduler.CyclicLR": _sched(lambda m, o: m.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=2)),
        "optim.lr_scheduler.CosineAnnealingWarmRestarts": _sched(
            lambda m, o: m.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 3, 2)
        ),
        "optim.lr_scheduler.LinearLR": _sched(lambda m, o: m.optim.lr_scheduler.LinearLR(o, 0.2, total_iters=4)),
    }
)


# ---- the rest
class _DS:
    def __init__(self, m):
        self.ds = m.utils.data.TensorDataset(m.tensor(X), m.tensor(Y))


SAMPLES.update(
    {
        "autograd.grad": lambda m, x, y: m.autograd.grad((x * y).sum() ** 2, [x, y], create_graph=True),
        "autograd.backward": lambda m, x, y: _backward(m, x),
        "autograd.Function": lambda m, x, y: _Cube(m).apply(x),
        "autograd.gradcheck": lambda m, x, y: m.autograd.gradcheck(
            lambda a: (a * a).sum(1), (x[:2, :2].detach().requires_grad_(),)
        ),
        "utils.data.Dataset": lambda m, x, y: issubclass(m.utils.data.TensorDataset, m.utils.data.Dataset),
        "utils.data.TensorDataset": lambda m, x, y: (len(_DS(m).ds), _DS(m).ds[1]),
        "utils.data.DataLoader": lambda m, x, y: [
            b[0].shape[0] for b in m.utils.data.DataLoader(_DS(m).ds, batch_size=2)
        ],
        "utils.data.random_split": lambda m, x, y: [len(s) for s in m.utils.data.random_split(range(10), [7, 3])],
        "utils.data.Subset": lambda m, x, y: m.utils.data.Subset(_DS(m).ds, [0, 2])[1],
        "cuda.is_available": lambda m, x, y: m.cuda.is_available() is False or fk.cuda.is_available(),
        "accelerator.is_available": lambda m, x, y: isinstance(m.accelerator.is_available(), bool),
        "backends.mps.is_available": lambda m, x, y: m.backends.mps.is_available(),
        "linalg.norm": lambda m, x, y: (m.linalg.norm(x), m.linalg.norm(x, 1), m.linalg.norm(x, dim=0)),
        "linalg.vector_norm": lambda m, x, y: m.linalg.vector_norm(x, 3, dim=1),
        "linalg.matrix_norm": lambda m, x, y: (m.linalg.matrix_norm(x), m.linalg.matrix_norm(x, 1)),
        "linalg.det": lambda m, x, y: m.linalg.det(x[:, :3] + m.eye(3, dtype=m.float64)),
        "linalg.inv": lambda m, x, y: m.linalg.inv(x[:, :3] + m.eye(3, dtype=m.float64)),
        "linalg.solve": lambda m, x, y: m.linalg.solve(x[:, :3] + m.eye(3, dtype=m.float64), y),
        "linalg.qr": lambda m, x, y: m.linalg.qr(x.t()),
        "linalg.svd": lambda m, x, y: m.linalg.svd(x, full_matrices=False).S,
        "linalg.eigh": lambda m, x, y: m.linalg.eigh(x[:, :3] @ x[:, :3].t()).eigenvalues,
        "linalg.cholesky": lambda m, x, y: m.linalg.cholesky(x @ x.t() + m.eye(3, dtype=m.float64)),
    }
)


def _backward(m, x):
    m.autograd.backward([(x * x).sum()], [m.tensor(2.0, dtype=m.float64)])
    g = x.grad.clone()
    x.grad = None
    return g


def _Cube(m):
    class Cube(m.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a**3

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return 3 * g * a * a

    return Cube


# ----------------------------------------------------------------------------- the harness
def _flatten(v):
    if isinstance(v, (tuple, list)):
        for item in v:
            yield from _flatten(item)
    elif isinstance(v, dict):
        for key in sorted(v):
            yield from _flatten(v[key])
    else:
        yield v


def _plain(m, v):
    """A comparable form: arrays with their dtype's name for tensors, the value otherwise."""
    if isinstance(v, m.Tensor):
        return str(v.dtype).split(".")[-1], np.asarray(v.detach().cpu().numpy(), dtype=np.float64)
    if isinstance(v, (m.dtype, m.device)):
        return str(v).split(".")[-1]
    return v


def _run(m, sample):
    """The sample's results and the gradients of x and y (of a weighted sum of its floating results
    that require grad), or None for those when m's autograd has no derivative there."""
    x, y = (m.tensor(a, dtype=m.float64, requires_grad=True) for a in (X, Y))
    flat = list(_flatten(sample(m, x, y)))
    tracked = [t for t in flat if isinstance(t, m.Tensor) and t.requires_grad and t.is_floating_point()]
    grads = []
    if tracked:
        w = [
            m.tensor(np.random.default_rng(i).standard_normal(tuple(t.shape))).to(t.dtype)
            for i, t in enumerate(tracked)
        ]
        try:
            grads = m.autograd.grad(sum((t * wi).sum() for t, wi in zip(tracked, w)), [x, y], allow_unused=True)
        except RuntimeError:  # torch: "derivative for ... is not implemented"
            grads = None
    return [_plain(m, v) for v in flat], grads and [_plain(m, g) for g in grads]


def _same(a, b):
    if isinstance(a, tuple) and len(a) == 2 and isinstance(a[1], np.ndarray):
        return (
            isinstance(b, tuple)
            and len(b) == 2
            and a[0] == b[0]
            and a[1].shape == b[1].shape
            and np.allclose(a[1], b[1], rtol=1e-5, atol=1e-7, equal_nan=True)
        )
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return a == b


def _resolve(root, name):
    obj = root
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def check(name):
    """'ok', 'missing' or 'differs: why' for one name, against torch."""
    try:
        _resolve(fk, name)
    except AttributeError:
        return "missing"
    for key in [k for k in SAMPLES if k == name or k.startswith(name + "@")]:
        try:
            torch.manual_seed(0)
            want = _run(torch, SAMPLES[key])
        except Exception as e:
            return f"broken sample: torch raises {e!r}"[:300]
        try:
            fk.manual_seed(0)
            got = _run(fk, SAMPLES[key])
        except Exception as e:
            return f"differs: {type(e).__name__}: {e}"[:200]
        for part, g, w in (("values", got[0], want[0]), ("gradients", got[1], want[1])):
            if part == "gradients" and w is None:
                continue  # torch has no derivative here: values only
            if g is None or len(g) != len(w) or not all(_same(a, b) for a, b in zip(g, w)):
                return f"differs: {key} ({part})"
    return "ok"


@needs_torch
def test_every_name_and_sample_is_torchs():
    for name in NAMES:
        _resolve(torch, name)
    assert len(set(NAMES)) == len(NAMES) and len(NAMES) >= 500
    orphans = {k.split("@")[0] for k in SAMPLES} - set(NAMES)
    assert not orphans, f"samples for names not in the list: {sorted(orphans)}"


@needs_torch
def test_coverage_does_not_drop(capsys):
    results = {name: check(name) for name in NAMES}
    ok = [n for n, r in results.items() if r == "ok"]
    compared = [n for n in ok if any(k == n or k.startswith(n + "@") for k in SAMPLES)]
    share = len(ok) / len(NAMES)
    with capsys.disabled():
        print(
            f"\nAPI coverage: {len(ok)} of {len(NAMES)} names ({share:.1%}); {len(compared)} of them compared "
            f"with torch on samples, {len(ok) - len(compared)} checked to exist"
        )
        for name, r in results.items():
            if r != "ok":
                print(f"  {name}: {r}")
    broken = [n for n, r in results.items() if r.startswith("broken")]
    assert not broken, f"samples that fail in torch itself: {broken}"
    assert share >= RECORDED, f"API coverage fell to {share:.3f} (recorded {RECORDED})"


def test_names_exist_without_torch():
    present = [n for n in NAMES if _exists(n)]
    assert len(present) / len(NAMES) >= RECORDED


def _exists(name):
    try:
        _resolve(fk, name)
        return True
    except AttributeError:
        return False
