r"""Segmentation networks: U-Net and UNet++, written from their papers.

- :class:`UNet` — Ronneberger, Fischer & Brox, *U-Net: Convolutional Networks for Biomedical
  Image Segmentation* (MICCAI 2015), Sect. 2 and Fig. 1.
- :class:`UNetPlusPlus` — Zhou, Siddiquee, Tajbakhsh & Liang, *UNet++: A Nested U-Net
  Architecture for Medical Image Segmentation* (DLMIA 2018) and *UNet++: Redesigning Skip
  Connections to Exploit Multiscale Features in Image Segmentation* (IEEE TMI 2019), Sect. II.

Both are built as ``Model(in_channels, out_channels, *, width, depth, ...)`` for 2-D
(``spatial_dims=2``, input ``(N, C, H, W)``) or 3-D (``spatial_dims=3``, ``(N, C, D, H, W)``)
images and return an output **at the input resolution**, ``(N, out_channels, *spatial)``.
They depend on :mod:`torch` only (no torchvision).

Where this code departs from the 2015 U-Net, and why:

* Convolutions are zero-padded ("same"), so no border is lost and the output has the input's
  size; the paper uses unpadded convolutions and an overlap-tile strategy instead.
* A normalization layer follows every 3×3 convolution (``norm="batch"`` by default, as in the
  UNet++ implementations and in the chapters' papers, which train with batch sizes 4 to 8);
  ``norm=None`` gives the paper's plain conv-ReLU blocks.
* Input sizes need not be multiples of :math:`2^{\mathrm{depth}}`: where a pooled axis was odd,
  the up-sampled map is zero-padded by one pixel at the end before the concatenation (the
  paper crops the encoder's map instead, because its maps shrink).
* The head is a 1×1 convolution to ``out_channels`` followed by an optional ``activation``
  (``None`` returns logits, which is what the losses' own ``activation=`` option expects).
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_int, check_option

__all__ = ["UNet", "UNetPlusPlus", "MODELS", "build_model", "count_parameters"]

Norm = Optional[Literal["batch", "group", "instance"]]
Activation = Optional[Literal["sigmoid", "softmax", "tanh"]]

_NORMS = (None, "batch", "group", "instance")
_ACTIVATIONS = (None, "sigmoid", "softmax", "tanh")
_UPSAMPLE = ("transpose", "interpolate")


# --------------------------------------------------------------------------- building blocks


def _layers(spatial_dims: int):
    """(Conv, ConvTranspose, MaxPool, BatchNorm, InstanceNorm, interpolation mode) for 2-D/3-D."""
    if spatial_dims == 2:
        return nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.BatchNorm2d, nn.InstanceNorm2d, "bilinear"
    return nn.Conv3d, nn.ConvTranspose3d, nn.MaxPool3d, nn.BatchNorm3d, nn.InstanceNorm3d, "trilinear"


def _norm_layer(norm: str | None, channels: int, spatial_dims: int) -> nn.Module:
    _, _, _, batch, instance, _ = _layers(spatial_dims)
    if norm == "batch":
        return batch(channels)
    if norm == "instance":
        return instance(channels, affine=True)
    if norm == "group":
        # 8 channels per group where possible (GroupNorm's default regime), at most 32 groups
        return nn.GroupNorm(math.gcd(channels, max(1, min(32, channels // 8))), channels)
    return nn.Identity()


class _ConvBlock(nn.Sequential):
    """Two (3×3 convolution → normalization → ReLU) layers: the unit of both networks."""

    def __init__(self, in_ch: int, out_ch: int, norm: str | None, spatial_dims: int) -> None:
        conv = _layers(spatial_dims)[0]
        bias = norm is None  # a bias before a normalization layer is redundant
        super().__init__(
            conv(in_ch, out_ch, 3, padding=1, bias=bias), _norm_layer(norm, out_ch, spatial_dims),
            nn.ReLU(inplace=True),
            conv(out_ch, out_ch, 3, padding=1, bias=bias), _norm_layer(norm, out_ch, spatial_dims),
            nn.ReLU(inplace=True),
        )


class _Up(nn.Module):
    """Up-sampling by 2 from ``in_ch`` to ``out_ch`` channels.

    ``"transpose"``: the paper's 2×2 "up-convolution"; ``"interpolate"``: (bi/tri)linear
    up-sampling followed by a 1×1 convolution (no checkerboard artefacts, slightly cheaper).
    """

    def __init__(self, in_ch: int, out_ch: int, mode: str, spatial_dims: int) -> None:
        super().__init__()
        conv, convt, _, _, _, interp = _layers(spatial_dims)
        if mode == "transpose":
            self.op = convt(in_ch, out_ch, 2, stride=2)
        else:
            self.op = nn.Sequential(nn.Upsample(scale_factor=2, mode=interp, align_corners=False),
                                    conv(in_ch, out_ch, 1))

    def forward(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        x = self.op(x)
        # an odd axis was floored by the pooling: pad the up-sampled map at the end to match
        pad = []
        for axis in range(x.ndim - 1, 1, -1):
            pad += [0, like.shape[axis] - x.shape[axis]]
        return F.pad(x, pad) if any(pad) else x


def _he_init(module: nn.Module) -> None:
    """He initialization of the convolutions (U-Net, Sect. 3: Gaussian, std sqrt(2/N))."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            mode = "fan_out" if isinstance(m, (nn.ConvTranspose2d, nn.ConvTranspose3d)) else "fan_in"
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class _SegmentationNet(nn.Module):
    """Argument checks, input checks and the output activation shared by both networks."""

    def __init__(self, in_channels: int, out_channels: int, width: int, depth: int, spatial_dims: int,
                 norm: str | None, upsample: str, activation: str | None) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.out_channels = check_int("out_channels", out_channels, 1)
        self.width = check_int("width", width, 1)
        self.depth = check_int("depth", depth, 1)
        self.spatial_dims = check_option("spatial_dims", spatial_dims, (2, 3))
        self.norm = check_option("norm", norm, _NORMS)
        self.upsample = check_option("upsample", upsample, _UPSAMPLE)
        self.activation = check_option("activation", activation, _ACTIVATIONS)
        if activation == "softmax" and out_channels == 1:
            raise ValueError("activation: expected 'sigmoid', 'tanh' or None for out_channels=1 "
                             "(a softmax over one channel is constant 1), got 'softmax'")
        #: channels of each level, doubling after every pooling (U-Net Fig. 1: 64, 128, ..., 1024)
        self.channels = [width * 2**i for i in range(depth + 1)]

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        layout = "(N, C, H, W)" if self.spatial_dims == 2 else "(N, C, D, H, W)"
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(f"x: expected shape {layout} ({self.spatial_dims + 2} dims), got {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels (in_channels), got shape {tuple(x.shape)}")
        smallest = 2**self.depth
        if min(x.shape[2:]) < smallest:
            raise ValueError(f"x: expected every spatial size >= 2**depth = {smallest} (depth={self.depth}), "
                             f"got shape {tuple(x.shape)}")

    def _activate(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation == "sigmoid":
            return torch.sigmoid(x)
        if self.activation == "softmax":
            return torch.softmax(x, dim=1)
        if self.activation == "tanh":
            return torch.tanh(x)
        return x

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, width={self.width}, "
                f"depth={self.depth}, spatial_dims={self.spatial_dims}, norm={self.norm!r}, "
                f"upsample={self.upsample!r}, activation={self.activation!r}")


# --------------------------------------------------------------------------- U-Net


class UNet(_SegmentationNet):
    r"""U-Net (Ronneberger et al. 2015): a contracting path, an expanding path and skip
    connections that concatenate the encoder's maps into the decoder.

    Parameters
    ----------
    in_channels : int
        Channels of the input image (3 for RGB fundus photographs, 1 for CT/MR).
    out_channels : int
        Channels of the output map: 1 for one sigmoid/tanh map, ``C`` for ``C`` classes.
    width : int, default 64
        Channels of the first level; level ``i`` has ``width * 2**i`` (the paper: 64).
    depth : int, default 4
        Number of 2×2 max-poolings (the paper: 4, i.e. 5 levels down to 1024 channels at 64).
        Every spatial size of the input must be at least ``2**depth``.
    spatial_dims : {2, 3}, default 2
        2-D images ``(N, C, H, W)`` or 3-D volumes ``(N, C, D, H, W)``.
    norm : {"batch", "group", "instance", None}, default "batch"
        Normalization after each 3×3 convolution; ``None`` is the paper's plain block.
    upsample : {"transpose", "interpolate"}, default "transpose"
        The paper's 2×2 up-convolution, or linear up-sampling followed by a 1×1 convolution.
    activation : {None, "sigmoid", "softmax", "tanh"}, default None
        Applied to the output; ``None`` returns logits (pass the losses ``activation=`` then).

    Raises
    ------
    TypeError, ValueError
        If a size is not a positive integer, an option is unknown, or ``activation="softmax"``
        with ``out_channels=1``. Calling the model raises ``ValueError`` for an input of the
        wrong number of dims or channels, or smaller than ``2**depth``.

    Notes
    -----
    With :math:`H` a block of two 3×3 convolutions (each followed by ``norm`` and a ReLU),
    :math:`D` a 2×2 max-pooling, :math:`U` an up-sampling by 2 that halves the channels and
    :math:`[\cdot,\cdot]` a concatenation along channels, the encoder and decoder maps are

    .. math::
        e_0 = H(x), \quad e_i = H(D(e_{i-1})) \; (1 \le i \le L), \qquad
        d_L = e_L, \quad d_i = H([e_i, U(d_{i+1})]) \; (i < L),

    and the output is :math:`a(W_{1\times 1} * d_0)` for the activation :math:`a`. Weights
    are initialized from a Gaussian of standard deviation :math:`\sqrt{2/N}`, :math:`N` the
    fan-in (Sect. 3 of the paper).

    References
    ----------
    O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image
    Segmentation", MICCAI 2015, Sect. 2 (architecture, Fig. 1) and Sect. 3 (initialization).

    Examples
    --------
    >>> import torch
    >>> net = UNet(in_channels=3, out_channels=2, width=8, depth=3)
    >>> net(torch.randn(2, 3, 40, 36)).shape
    torch.Size([2, 2, 40, 36])
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 2, *, width: int = 64, depth: int = 4,
                 spatial_dims: int = 2, norm: Norm = "batch", upsample: str = "transpose",
                 activation: Activation = None) -> None:
        super().__init__(in_channels, out_channels, width, depth, spatial_dims, norm, upsample, activation)
        ch = self.channels
        conv, _, pool, _, _, _ = _layers(spatial_dims)
        self.pool = pool(2)
        self.encoder = nn.ModuleList(
            [_ConvBlock(in_channels, ch[0], norm, spatial_dims)]
            + [_ConvBlock(ch[i - 1], ch[i], norm, spatial_dims) for i in range(1, depth + 1)]
        )
        self.ups = nn.ModuleList([_Up(ch[i + 1], ch[i], upsample, spatial_dims) for i in range(depth)])
        self.decoder = nn.ModuleList([_ConvBlock(2 * ch[i], ch[i], norm, spatial_dims) for i in range(depth)])
        self.head = conv(ch[0], out_channels, 1)
        _he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for i in reversed(range(self.depth)):
            x = self.decoder[i](torch.cat([skips[i], self.ups[i](x, skips[i])], dim=1))
        return self._activate(self.head(x))


# --------------------------------------------------------------------------- UNet++


class UNetPlusPlus(_SegmentationNet):
    r"""UNet++ (Zhou et al. 2018, 2019): U-Net with nested, dense skip pathways and optional
    deep supervision.

    Parameters
    ----------
    in_channels, out_channels, spatial_dims, norm, upsample, activation
        As in :class:`UNet`.
    width : int, default 32
        Channels of the first level, doubling per level (the papers: 32, 64, 128, 256, 512).
    depth : int, default 4
        Number of down-samplings :math:`L` (the papers: 4).
    deep_supervision : bool, default False
        Attach a 1×1 head to every top node :math:`X^{0,j}`, :math:`j = 1..L`. In training mode
        the model then returns a tuple of the :math:`L` outputs (the training loop averages the
        loss over them, as the papers do); in evaluation mode it returns their mean, the
        papers' "accurate mode". Without deep supervision the output is the head on
        :math:`X^{0,L}`.

    Raises
    ------
    TypeError, ValueError
        As in :class:`UNet`.

    Notes
    -----
    With :math:`H` the two-convolution block, :math:`D` down-sampling and :math:`U`
    up-sampling (eq. 1 of the 2019 paper),

    .. math::
        X^{i,j} = \begin{cases} H\bigl(D(X^{i-1,j})\bigr), & j = 0 \\
        H\bigl(\bigl[[X^{i,k}]_{k=0}^{j-1},\; U(X^{i+1,j-1})\bigr]\bigr), & j > 0 \end{cases}

    for :math:`0 \le i \le L`, :math:`0 \le j \le L - i` (with :math:`X^{0,0} = H(x)`). Each
    :math:`U` is its own 2×2 up-convolution to the channels of level :math:`i`, so the block
    :math:`X^{i,j}` receives :math:`(j + 1)` times the channels of level :math:`i`. In
    evaluation mode with deep supervision the output is
    :math:`\frac1L \sum_{j=1}^{L} a(W_j * X^{0,j})`; the mean is taken after the activation
    :math:`a` (of the logits when ``activation=None``).

    References
    ----------
    Z. Zhou, M. M. R. Siddiquee, N. Tajbakhsh, J. Liang, "UNet++: A Nested U-Net Architecture for
    Medical Image Segmentation", DLMIA 2018, Sect. 2 (eq. 1, deep supervision); "UNet++:
    Redesigning Skip Connections to Exploit Multiscale Features in Image Segmentation", IEEE TMI
    39(6), 2019, Sect. II (eq. 1, accurate and fast modes).

    Examples
    --------
    >>> import torch
    >>> net = UNetPlusPlus(in_channels=1, out_channels=1, width=4, depth=3, deep_supervision=True)
    >>> [o.shape[-1] for o in net(torch.randn(2, 1, 24, 24))]   # training mode: one per head
    [24, 24, 24]
    >>> net.eval()(torch.randn(2, 1, 24, 24)).shape
    torch.Size([2, 1, 24, 24])
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 2, *, width: int = 32, depth: int = 4,
                 spatial_dims: int = 2, norm: Norm = "batch", upsample: str = "transpose",
                 activation: Activation = None, deep_supervision: bool = False) -> None:
        super().__init__(in_channels, out_channels, width, depth, spatial_dims, norm, upsample, activation)
        if not isinstance(deep_supervision, bool):
            raise TypeError(f"deep_supervision: expected a bool, got {type(deep_supervision).__name__}")
        self.deep_supervision = deep_supervision
        ch = self.channels
        conv, _, pool, _, _, _ = _layers(spatial_dims)
        self.pool = pool(2)
        # nodes X^{i,j}, keyed "i_j"; ups "i_j" produce the U(X^{i+1,j-1}) input of X^{i,j}
        self.nodes = nn.ModuleDict()
        self.ups = nn.ModuleDict()
        for i in range(depth + 1):
            self.nodes[f"{i}_0"] = _ConvBlock(in_channels if i == 0 else ch[i - 1], ch[i], norm, spatial_dims)
        for j in range(1, depth + 1):
            for i in range(depth + 1 - j):
                self.ups[f"{i}_{j}"] = _Up(ch[i + 1], ch[i], upsample, spatial_dims)
                self.nodes[f"{i}_{j}"] = _ConvBlock((j + 1) * ch[i], ch[i], norm, spatial_dims)
        n_heads = depth if deep_supervision else 1
        self.heads = nn.ModuleList([conv(ch[0], out_channels, 1) for _ in range(n_heads)])
        _he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        self._check_input(x)
        L = self.depth
        X: dict[tuple[int, int], torch.Tensor] = {}
        for i in range(L + 1):
            X[i, 0] = self.nodes[f"{i}_0"](x if i == 0 else self.pool(X[i - 1, 0]))
        for j in range(1, L + 1):
            for i in range(L + 1 - j):
                up = self.ups[f"{i}_{j}"](X[i + 1, j - 1], X[i, 0])
                X[i, j] = self.nodes[f"{i}_{j}"](torch.cat([X[i, k] for k in range(j)] + [up], dim=1))
        if not self.deep_supervision:
            return self._activate(self.heads[0](X[0, L]))
        outs = tuple(self._activate(head(X[0, j + 1])) for j, head in enumerate(self.heads))
        if self.training:
            return outs
        return torch.stack(outs).mean(0)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", deep_supervision={self.deep_supervision}"


# --------------------------------------------------------------------------- registry

#: Model names accepted by :func:`build_model` (and the ``model.name`` of a training config).
MODELS: dict[str, type[nn.Module]] = {"unet": UNet, "unet++": UNetPlusPlus, "unetplusplus": UNetPlusPlus}


def build_model(name: str, **kwargs) -> nn.Module:
    """Construct a model of :data:`MODELS` by name (case-insensitive), e.g.
    ``build_model("unet", in_channels=3, out_channels=1, width=16)``.

    Raises
    ------
    ValueError
        If ``name`` is not a key of :data:`MODELS`.
    TypeError
        If a keyword is not an argument of the model (the message lists the accepted ones).

    Examples
    --------
    >>> build_model("UNet++", in_channels=1, out_channels=1, width=4, depth=2).depth
    2
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    cls = MODELS.get(name.lower())
    if cls is None:
        raise ValueError(f"model name: expected one of {sorted(MODELS)}, got {name!r}")
    import inspect

    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"model {name!r}: unexpected arguments {unknown}; expected some of {accepted}")
    return cls(**kwargs)


def count_parameters(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``.

    Examples
    --------
    >>> # encoder 188 + 880, up-convolution 132, decoder 440, head 5
    >>> count_parameters(UNet(1, 1, width=4, depth=1, norm=None))
    1645
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
