"""Apple's Metal backend, which fastkern does not have: torch.backends.mps's checks, both False."""


def is_available():
    return False


def is_built():
    return False
