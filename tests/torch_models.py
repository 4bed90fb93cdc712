"""Reference models in plain torch.nn (no torchvision) with the module names of fastkern's
vision models, for the tests and for bench/resnet.py. torch is imported when a model is built."""


def torch_resnet(bottleneck, layers):
    """torchvision's ResNet rebuilt in plain torch.nn (no torchvision), with its module names."""
    import torch

    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, cin, width, stride, down):
            super().__init__()
            cout = width * (4 if bottleneck else 1)
            if bottleneck:
                self.conv1, self.bn1 = tnn.Conv2d(cin, width, 1, bias=False), tnn.BatchNorm2d(width)
                self.conv2 = tnn.Conv2d(width, width, 3, stride, 1, bias=False)
                self.bn2 = tnn.BatchNorm2d(width)
                self.conv3, self.bn3 = tnn.Conv2d(width, cout, 1, bias=False), tnn.BatchNorm2d(cout)
            else:
                self.conv1, self.bn1 = tnn.Conv2d(cin, width, 3, stride, 1, bias=False), tnn.BatchNorm2d(width)
                self.conv2, self.bn2 = tnn.Conv2d(width, width, 3, 1, 1, bias=False), tnn.BatchNorm2d(width)
            self.relu = tnn.ReLU(inplace=True)
            self.downsample = (
                tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout)) if down else None
            )

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            if bottleneck:
                y = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(y)))))
            else:
                y = self.bn2(self.conv2(y))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False), tnn.BatchNorm2d(64)
            self.relu, self.maxpool = tnn.ReLU(inplace=True), tnn.MaxPool2d(3, 2, 1)
            cin, exp = 64, 4 if bottleneck else 1
            for i, (width, n) in enumerate(zip((64, 128, 256, 512), layers)):
                stride = 1 if i == 0 else 2
                blocks = []
                for j in range(n):
                    blocks.append(
                        Block(cin, width, stride if j == 0 else 1, j == 0 and (stride > 1 or cin != width * exp))
                    )
                    cin = width * exp
                setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
            self.avgpool, self.fc = tnn.AdaptiveAvgPool2d(1), tnn.Linear(cin, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return Net()


# EfficientNet-Lite0's blocks in TensorFlow's own notation: repeats, kernel, strides, expansion, in, out
LITE0_BLOCKS = ["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24", "r2_k5_s22_e6_i24_o40", "r3_k3_s22_e6_i40_o80"]
LITE0_BLOCKS += ["r3_k5_s11_e6_i80_o112", "r4_k5_s22_e6_i112_o192", "r1_k3_s11_e6_i192_o320"]


def torch_lite0(drop_connect_rate=0.0):
    """EfficientNet-Lite0 in plain torch.nn with TF 'SAME' padding, keyed as the checkpoint;
    ``drop_connect_rate`` is stochastic depth on the shortcut blocks as fastkern's (its 0.2 there)."""
    import torch

    tnn, tF = torch.nn, torch.nn.functional

    class SameConv(tnn.Conv2d):
        def forward(self, x):
            pads = []
            for n, k, s in zip(x.shape[:1:-1], self.kernel_size[::-1], self.stride[::-1]):  # W, then H
                total = max((-(-n // s) - 1) * s + k - n, 0)
                pads += [total // 2, total - total // 2]
            return tF.conv2d(tF.pad(x, pads), self.weight, None, self.stride, 0, 1, self.groups)

    def bn(c):
        return tnn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    class Block(tnn.Module):
        def __init__(self, k, s, e, cin, cout, drop):
            super().__init__()
            mid = cin * e
            if e != 1:
                self._expand_conv, self._bn0 = SameConv(cin, mid, 1, bias=False), bn(mid)
            self._depthwise_conv, self._bn1 = SameConv(mid, mid, k, s, groups=mid, bias=False), bn(mid)
            self._project_conv, self._bn2 = SameConv(mid, cout, 1, bias=False), bn(cout)
            self.residual, self.drop = s == 1 and cin == cout, drop

        def forward(self, x):
            y = tF.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
            y = self._bn2(self._project_conv(tF.relu6(self._bn1(self._depthwise_conv(y)))))
            if not self.residual:
                return y
            if self.training and self.drop:  # whole samples' branches dropped, the kept ones rescaled
                y = y * (torch.rand(len(y), 1, 1, 1) >= self.drop).to(y.dtype) / (1 - self.drop)
            return y + x

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self._conv_stem, self._bn0 = SameConv(3, 32, 3, 2, bias=False), bn(32)
            args = []
            for spec in LITE0_BLOCKS:
                f = {p[0]: p[1:] for p in spec.split("_")}
                for i in range(int(f["r"])):
                    cin = int(f["i"]) if i == 0 else int(f["o"])
                    args.append((int(f["k"]), int(f["s"][0]) if i == 0 else 1, int(f["e"]), cin, int(f["o"])))
            # the rate grows linearly with depth, as fastkern's
            self._blocks = tnn.ModuleList(Block(*a, drop_connect_rate * i / len(args)) for i, a in enumerate(args))
            self._conv_head, self._bn1 = SameConv(320, 1280, 1, bias=False), bn(1280)
            self._fc = tnn.Linear(1280, 1000)

        def forward(self, x):
            x = tF.relu6(self._bn0(self._conv_stem(x)))
            for b in self._blocks:
                x = b(x)
            return self._fc(tF.relu6(self._bn1(self._conv_head(x))).mean((2, 3)))

    return Net()
