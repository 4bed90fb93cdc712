"""fastai's vision_learner: a pretrained body cut from an architecture, a new head, layer groups
for discriminative learning rates, and a body frozen at first (batch norm still training).

    learn = vision_learner(dls, resnet34, metrics=error_rate)
    learn.fine_tune(2)
"""

from .. import nn
from ..data.transforms import Normalize, Pipeline, imagenet_stats
from ..learner import Learner, trainable_params
from ..nn import init


class AdaptiveConcatPool2d(nn.Module):
    """Average and max pooling side by side: twice the channels, as fastai's head starts."""

    def __init__(self, size=None):
        super().__init__()
        self.size = size or 1
        self.ap, self.mp = nn.AdaptiveAvgPool2d(self.size), nn.AdaptiveMaxPool2d(self.size)

    def forward(self, x):
        from .._C import cat

        return cat([self.mp(x), self.ap(x)], 1)


def _resnet_split(m):
    """Stem and layers 1-2, layers 3-4, head: fastai's three groups for a ResNet."""
    return [trainable_params(m[0][:6]), trainable_params(m[0][6:]), trainable_params(m[1:])]


def _body_head_split(m):
    return [trainable_params(m[0]), trainable_params(m[1:])]


def _efficientnet_body(m):
    """EfficientNet-Lite's features as a Sequential. Its children in order are not its forward
    (ReLU6 after the stem too, the blocks in a ModuleList), so cutting them would drop a ReLU6 and
    leave a ModuleList that cannot be called."""
    return nn.Sequential(m._conv_stem, m._bn0, nn.ReLU6(), nn.Sequential(*m._blocks), m._conv_head, m._bn1, nn.ReLU6())


# By architecture name: where to cut the classifier off, the layer groups, the input statistics.
_RESNET = dict(cut=-2, split=_resnet_split, stats=imagenet_stats)
model_meta = {
    "resnet18": _RESNET,
    "resnet34": _RESNET,
    "resnet50": _RESNET,
    "efficientnet_lite0": dict(cut=_efficientnet_body, split=_body_head_split, stats=([0.5] * 3, [0.5] * 3)),
}


def _is_pool(m):
    return "Pool" in type(m).__name__


def create_body(model, cut=None):
    """The model's children up to ``cut`` (an index or a function of the model), by default up to
    the last pooling child, as a Sequential."""
    if callable(cut):
        return cut(model)
    children = list(model.children())
    if cut is None:
        pools = [i for i, c in enumerate(children) if _is_pool(c)]
        if not pools:
            raise ValueError(f"create_body: {type(model).__name__} has no pooling child to cut at; pass cut=")
        cut = pools[-1]
    return nn.Sequential(*children[:cut])


def _num_features(body):
    """Channels the body outputs: those of its last layer that declares them."""
    for m in reversed(list(body.modules())):
        for attr in ("out_channels", "num_features", "out_features"):
            if hasattr(m, attr):
                return getattr(m, attr)
    raise ValueError("cannot tell how many features the body gives: pass a custom_head")


def create_head(nf, n_out, lin_ftrs=None, ps=0.5, pool=True, concat_pool=True, first_bn=True, bn_final=False):
    """fastai's head: concat pooling, flatten, then BatchNorm-Dropout-Linear blocks (ReLU between)."""
    if concat_pool and pool:
        nf *= 2
    ftrs = [nf] + (lin_ftrs if lin_ftrs is not None else [512]) + [n_out]
    ps = list(ps) if isinstance(ps, (list, tuple)) else [ps / 2] * (len(ftrs) - 2) + [ps]
    layers = [AdaptiveConcatPool2d() if concat_pool else nn.AdaptiveAvgPool2d(1), nn.Flatten()] if pool else []
    layers = layers or [nn.Flatten()]
    for i, (ni, no, p) in enumerate(zip(ftrs[:-1], ftrs[1:], ps)):
        last = i == len(ftrs) - 2
        if i > 0 or first_bn:
            layers.append(nn.BatchNorm1d(ni))
        if p:
            layers.append(nn.Dropout(p))
        layers.append(nn.Linear(ni, no, bias=not (i > 0 or first_bn)))
        if not last:
            layers.append(nn.ReLU(inplace=True))
    if bn_final:
        layers.append(nn.BatchNorm1d(ftrs[-1], momentum=0.01))
    return nn.Sequential(*layers)


def _init_head(m):
    for layer in m.modules():
        if isinstance(layer, nn.Linear):
            init.kaiming_normal_(layer.weight)
            if layer.bias is not None:
                init.zeros_(layer.bias)


def _add_normalize(dls, stats):
    """Appends Normalize(stats) to each loader's batch transforms, unless one is there."""
    for dl in dls.loaders:
        tfms = Pipeline(dl.after_batch).tfms if dl.after_batch is not None else []
        if not any(isinstance(t, Normalize) for t in tfms):
            dl.after_batch = Pipeline(tfms + [Normalize(*stats)])


def vision_learner(
    dls,
    arch,
    normalize=True,
    n_out=None,
    pretrained=True,
    cut=None,
    splitter=None,
    custom_head=None,
    concat_pool=True,
    lin_ftrs=None,
    ps=0.5,
    first_bn=True,
    bn_final=False,
    **kwargs,
):
    """A Learner over ``arch`` (a function such as resnet34) with its classifier replaced by
    fastai's head for ``n_out`` classes (default: the loaders' vocab), frozen to the head."""
    meta = model_meta.get(getattr(arch, "__name__", ""), {})
    if n_out is None:
        if dls.vocab is None:
            raise ValueError("vision_learner: n_out is not given and the loaders have no vocab")
        n_out = len(dls.vocab)
    if normalize and pretrained and "stats" in meta:
        _add_normalize(dls, meta["stats"])
    body = create_body(arch(pretrained=pretrained), meta.get("cut") if cut is None else cut)
    head = custom_head
    if head is None:
        head = create_head(_num_features(body), n_out, lin_ftrs, ps, True, concat_pool, first_bn, bn_final)
        _init_head(head)
    model = nn.Sequential(body, head)
    learn = Learner(dls, model, splitter=splitter or meta.get("split", _body_head_split), **kwargs)
    if pretrained:
        learn.freeze()
    return learn


cnn_learner = vision_learner  # fastai's former name
