"""Architectures by name, so that an exported Learner can be rebuilt without pickle.

``create_model(name, **kwargs)`` builds a registered architecture and remembers
(name, kwargs) on the model; ``Learner.export`` writes them next to the weights.
Register your own with ``@register``.
"""

from . import nn

_ARCHS = {}


def register(fn):
    _ARCHS[fn.__name__] = fn
    return fn


def create_model(name, **kwargs):
    if name not in _ARCHS:
        raise ValueError(f"unknown architecture {name!r} (registered: {sorted(_ARCHS)})")
    model = _ARCHS[name](**kwargs)
    # pretrained/weights choose initial weights, not the architecture: a model rebuilt from an export
    # gets the exported weights, and must not look for (or download) the pretrained ones first
    arch_kwargs = {k: v for k, v in kwargs.items() if k not in ("pretrained", "weights")}
    object.__setattr__(model, "_fk_arch", (name, arch_kwargs))
    return model


def arch_of(model):
    """(name, kwargs) for a model built by create_model, else None."""
    return model.__dict__.get("_fk_arch")


def conv_block(ni, nf, ks=3, stride=2, act=True):
    """fastbook's ``conv``: a stride-2 convolution halving the image, batch norm, ReLU."""
    layers = [nn.Conv2d(ni, nf, ks, stride=stride, padding=ks // 2, bias=False), nn.BatchNorm2d(nf)]
    return layers + [nn.ReLU()] if act else layers


@register
def simple_cnn(n_out=10, in_channels=1, widths=(8, 16, 32, 64)):
    """fastbook chapter 13's CNN: stride-2 conv blocks (28 -> 14 -> 7 -> 4 -> 2 -> 1 for MNIST),
    a final conv to n_out channels, and an average pool so other image sizes work too."""
    chans = [in_channels] + list(widths)
    layers = conv_block(chans[0], chans[1], ks=5)
    for a, b in zip(chans[1:-1], chans[2:]):
        layers += conv_block(a, b)
    layers += conv_block(chans[-1], n_out, act=False)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


@register
def mlp(n_in=784, hidden=(30,), n_out=1):
    """Linear layers with ReLU between them; fastbook's simple_net is mlp(784, (30,), 1)."""
    sizes = [n_in] + list(hidden)
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], n_out))


@register
def simple_net(n_in=784, n_hidden=30, n_out=1):
    """fastbook chapter 4: Linear(784, 30), ReLU, Linear(30, 1)."""
    return mlp(n_in, (n_hidden,), n_out)


@register
def linear(n_in=784, n_out=1):
    return nn.Linear(n_in, n_out)
