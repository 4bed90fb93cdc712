"""PyTorch's legacy API in fastkern: legacy tensor types, Tensor.type(), torch.Size and printing.

Old PyTorch scripts (and tutorials) write torch.FloatTensor(2, 3), x.type(torch.LongTensor) and
x.type() == 'torch.FloatTensor'; with `import fastkern as torch` these run unchanged.
"""

import fastkern as torch


def main():
    x = torch.FloatTensor([[1.5, -2.25, 3.0], [0.0, 4.125, -0.397]])
    print(x)  # printed as PyTorch prints: tensor([[ 1.5000, -2.2500,  3.0000], ...
    print(x.shape, x.size(0), x.shape.numel())  # fastkern.Size([2, 3]) 2 6
    print(x.type())  # fastkern.FloatTensor
    print(x.type(torch.LongTensor))  # truncated to integers
    print(x.type("torch.DoubleTensor"))  # a type name from a PyTorch script works too
    print(isinstance(x, torch.FloatTensor), isinstance(x, torch.LongTensor))  # True False

    buf = torch.FloatTensor(2, 3)  # uninitialised memory, then filled
    buf.fill_(0.5)
    print(buf * x)

    torch.set_printoptions(precision=2)
    print(torch.arange(2000) / 3)  # summarised with "..."
    torch.set_printoptions(profile="default")
    w = torch.nn.Parameter(torch.ones(2))
    print(w)  # Parameter containing: tensor([1., 1.], requires_grad=True)
    print((w * 2).sum())  # tensor(4., grad_fn=<SumBackward...>)


if __name__ == "__main__":
    main()
