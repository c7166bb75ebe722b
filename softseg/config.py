"""Training configurations: read YAML/TOML files, apply a preset, build the run's components.

A configuration is a mapping (a YAML or TOML file, or a ``dict``) with these keys; only
``data`` and ``loss`` are required (unless the objects are passed to :func:`softseg.train.train`
directly), everything else has the default of :data:`DEFAULTS`::

    name: shapes-tiny              # run name; default: the file's stem
    seed: 0
    preset: fast                   # "fast" | "full": which entry of `presets` is merged in
    epochs: 2
    batch_size: 8                  # per process (torchrun: global batch = batch_size * N)
    model: {name: unet, in_channels: 3, out_channels: 1, width: 8, depth: 2}
    loss: {name: DiceSemimetricLoss, activation: sigmoid}
    data:
      name: shapes                 # "shapes", "folder" or "package.module:callable"
      size: 32                     # keywords shared by both splits ...
      train: {n: 32, seed: 0}      # ... and per split (`val` is optional)
      val: {n: 8, seed: 1}
    optimizer: {name: adam, lr: 1.0e-3}
    scheduler: {name: poly, power: 0.9}
    metrics: [dice, iou]           # the first one picks the best checkpoint
    presets:
      full: {epochs: 300, batch_size: 4, model: {width: 64, depth: 4}, data: {size: 512}}

* ``model.name`` is a key of :data:`softseg.models.MODELS`; the other keys are its arguments.
* ``loss.name`` is a public name of :mod:`softseg.losses`, a loss of :mod:`torch.nn`
  (``CrossEntropyLoss``, ``BCEWithLogitsLoss``, ...) or ``"package.module:Class"``; the other
  keys are its arguments. A list of such mappings, each with a ``weight``, is their weighted
  sum (:class:`WeightedLoss`).
* ``data.name`` is ``shapes`` (:class:`softseg.data.shapes.ShapesDataset`), ``folder``
  (:class:`FolderDataset`) or ``"package.module:callable"``; a split's dataset is
  ``callable(**common, **split)``. Keywords named ``root``/``path`` or ending in ``_dir``/
  ``_path``/``_file`` must name existing paths (checked before the loader runs).
* ``presets.<preset>`` is merged into the configuration recursively (mappings are merged,
  anything else replaced).

YAML 1.1 reads ``1e-4`` as a string; :func:`load_config` turns such strings into floats.
"""

from __future__ import annotations

import copy
import importlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ._checks import check_option

__all__ = [
    "PRESETS",
    "DEFAULTS",
    "METRICS",
    "METRIC_MODES",
    "load_config",
    "resolve_config",
    "build_model",
    "build_loss",
    "build_datasets",
    "build_optimizer",
    "build_scheduler",
    "WeightedLoss",
    "FolderDataset",
]

PRESETS = ("fast", "full")
#: Metrics the training loop computes (names of :mod:`softseg.metrics`).
METRICS = ("dice", "iou", "sensitivity", "specificity", "balanced_accuracy", "soft_dice")
#: How network outputs become masks for the metrics (see :func:`softseg.train.evaluate`).
METRIC_MODES = ("auto", "sigmoid", "softmax", "tanh", "probabilities", "signed")

#: Defaults of every key (``None`` where a section must be given).
DEFAULTS: dict[str, Any] = {
    "name": None,
    "description": "",
    "seed": 0,
    "preset": "fast",
    "device": "auto",          # "auto" | "cpu" | "cuda" | "cuda:N"
    "epochs": 1,
    "batch_size": 4,           # per process
    "val_batch_size": None,    # default: batch_size
    "num_workers": 0,
    "drop_last": False,
    "model": {"name": "unet"},
    "loss": None,
    "data": None,
    "optimizer": {"name": "adam", "lr": 1e-4},
    "scheduler": {"name": "none"},
    "metrics": ["dice", "iou"],
    "metric_mode": "auto",
    "metric_background": False,  # include channel 0 of a multi-channel output in the metrics
    "amp": "auto",             # "auto" (bf16/fp16 on CUDA, off on CPU) | "bf16" | "fp16" | false
    "channels_last": "auto",   # "auto" (on CUDA) | true | false
    "compile": False,          # torch.compile the model
    "deterministic": False,    # deterministic kernels (slower on CUDA); seeding is always done
    "grad_clip": None,         # max gradient norm, or null
    "presets": {},
}

_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}
_SCHEDULERS = ("none", "poly", "cosine")
_FLOAT_STRING = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
_PATH_KEYS = re.compile(r"^(root|path)$|_(dir|path|file)$")


# --------------------------------------------------------------------------- reading


def _fix_yaml_floats(value: Any) -> Any:
    if isinstance(value, str) and _FLOAT_STRING.match(value):
        return float(value)
    if isinstance(value, Mapping):
        return {k: _fix_yaml_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fix_yaml_floats(v) for v in value]
    return value


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) configuration file.

    The result is the file's mapping, with ``name`` defaulting to the file's stem; nothing is
    validated yet (see :func:`resolve_config`).

    Raises
    ------
    ValueError
        If the file does not exist, has another suffix, does not parse or is not a mapping.

    Examples
    --------
    >>> cfg = load_config("configs/shapes-tiny.yaml")
    >>> cfg["name"], cfg["model"]["name"]
    ('shapes-tiny', 'unet')
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config: expected an existing .yaml/.yml/.toml file, got {str(path)!r} (not found)")
    suffix = path.suffix.lower()
    check_option("config suffix", suffix, (".yaml", ".yml", ".toml"))
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError as err:  # Python 3.10
                raise ValueError("config: TOML needs Python >= 3.11 (tomllib); use a YAML file") from err
            raw = tomllib.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except ValueError as err:
        if str(err).startswith("config:"):
            raise
        raise ValueError(f"config {str(path)!r}: could not parse: {err}") from err
    except Exception as err:  # yaml.YAMLError
        raise ValueError(f"config {str(path)!r}: could not parse: {err}") from err
    if not isinstance(raw, Mapping):
        raise ValueError(f"config {str(path)!r}: expected a mapping at the top level, got {type(raw).__name__}")
    raw = _fix_yaml_floats(dict(raw))
    raw.setdefault("name", path.stem)
    return raw


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge: mappings are merged key by key, anything else is replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _int(cfg: Mapping, key: str, low: int) -> int:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"config {key}: expected an integer >= {low}, got {value!r}")
    return int(value)


def _section(cfg: Mapping, key: str, *, required_name: bool = True) -> None:
    value = cfg[key]
    if not isinstance(value, Mapping):
        raise ValueError(f"config {key}: expected a mapping with a 'name', got {type(value).__name__}")
    if required_name and not isinstance(value.get("name"), str):
        raise ValueError(f"config {key}: expected a 'name' (a string), got keys {sorted(value)}")


def resolve_config(raw: Mapping[str, Any], *, preset: str | None = None,
                   require: Sequence[str] = ("data", "loss")) -> dict[str, Any]:
    """Fill in :data:`DEFAULTS`, merge ``presets[preset]`` and check every key.

    Parameters
    ----------
    raw : mapping
        A configuration, e.g. from :func:`load_config`.
    preset : {"fast", "full"} or None
        Overrides ``raw["preset"]``.
    require : sequence of str
        Sections that must be present (the training loop drops those it was given as objects).

    Returns
    -------
    dict
        A new, JSON-serializable configuration; ``presets`` is kept for the record.

    Raises
    ------
    ValueError
        Naming the first unknown key, missing section or value of the wrong kind.
    """
    if not isinstance(raw, Mapping):
        raise ValueError(f"config: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"config: unknown keys {unknown}; expected keys among {sorted(DEFAULTS)}")
    given = {k: v for k, v in raw.items() if v is not None or DEFAULTS.get(k) is None}
    # a section given in full replaces the default one (no stray default `lr` under another optimizer)
    cfg = _merge({k: v for k, v in DEFAULTS.items() if not (isinstance(v, Mapping) and k in given)}, given)
    cfg["preset"] = check_option("preset", cfg["preset"] if preset is None else preset, PRESETS)
    presets = cfg["presets"]
    if not isinstance(presets, Mapping) or not set(presets) <= set(PRESETS):
        raise ValueError(f"config presets: expected a mapping with keys among {PRESETS}, got {presets!r}")
    chosen = presets.get(cfg["preset"]) or {}
    if not isinstance(chosen, Mapping):
        raise ValueError(f"config presets.{cfg['preset']}: expected a mapping, got {type(chosen).__name__}")
    bad = sorted(set(chosen) - set(DEFAULTS) | ({"preset", "presets"} & set(chosen)))
    if bad:
        raise ValueError(f"config presets.{cfg['preset']}: unexpected keys {bad}")
    cfg = _merge(cfg, chosen)

    for key in require:
        if cfg.get(key) is None:
            raise ValueError(f"config: missing section {key!r}")
    if cfg["name"] is None:
        cfg["name"] = "run"
    if not isinstance(cfg["name"], str) or not re.fullmatch(r"[\w.+-]+", cfg["name"]):
        raise ValueError(f"config name: expected letters, digits, '.', '_', '+' or '-', got {cfg['name']!r}")
    _int(cfg, "seed", 0)
    _int(cfg, "epochs", 1)
    _int(cfg, "batch_size", 1)
    _int(cfg, "num_workers", 0)
    if cfg["val_batch_size"] is not None:
        _int(cfg, "val_batch_size", 1)
    for key in ("drop_last", "compile", "deterministic", "metric_background"):
        if not isinstance(cfg[key], bool):
            raise ValueError(f"config {key}: expected true or false, got {cfg[key]!r}")
    check_option("config amp", cfg["amp"], ("auto", "bf16", "fp16", True, False))
    check_option("config channels_last", cfg["channels_last"], ("auto", True, False))
    check_option("config metric_mode", cfg["metric_mode"], METRIC_MODES)
    if not isinstance(cfg["device"], str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", cfg["device"]):
        raise ValueError(f"config device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {cfg['device']!r}")
    if cfg["grad_clip"] is not None and not (isinstance(cfg["grad_clip"], (int, float))
                                             and not isinstance(cfg["grad_clip"], bool)
                                             and math.isfinite(cfg["grad_clip"]) and cfg["grad_clip"] > 0):
        raise ValueError(f"config grad_clip: expected a positive number or null, got {cfg['grad_clip']!r}")
    metrics = cfg["metrics"]
    if isinstance(metrics, str):
        metrics = cfg["metrics"] = [metrics]
    if not isinstance(metrics, list) or not metrics:
        raise ValueError(f"config metrics: expected a non-empty list of names among {METRICS}, got {metrics!r}")
    for m in metrics:
        check_option("config metrics", m, METRICS)
    _section(cfg, "model")
    _section(cfg, "optimizer")
    _section(cfg, "scheduler")
    check_option("config optimizer.name", cfg["optimizer"]["name"].lower(), tuple(_OPTIMIZERS))
    check_option("config scheduler.name", cfg["scheduler"]["name"].lower(), _SCHEDULERS)
    if cfg["loss"] is not None:
        terms = cfg["loss"] if isinstance(cfg["loss"], list) else [cfg["loss"]]
        for i, term in enumerate(terms):
            if not isinstance(term, Mapping) or not isinstance(term.get("name"), str):
                raise ValueError(f"config loss{f'[{i}]' if isinstance(cfg['loss'], list) else ''}: expected a "
                                 f"mapping with a 'name', got {term!r}")
    if cfg["data"] is not None:
        _section(cfg, "data")
        if not isinstance(cfg["data"].get("train"), Mapping):
            raise ValueError("config data: expected a 'train' mapping (keywords of the training split), "
                             f"got keys {sorted(cfg['data'])}")
        if cfg["data"].get("val") is not None and not isinstance(cfg["data"]["val"], Mapping):
            raise ValueError(f"config data.val: expected a mapping or null, got {cfg['data']['val']!r}")
    try:
        json.dumps(cfg)
    except TypeError as err:
        raise ValueError(f"config: expected plain values (numbers, strings, lists, mappings): {err}") from err
    return cfg


# --------------------------------------------------------------------------- building


def _import(spec: str, what: str) -> Any:
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"{what}: expected a known name or 'package.module:attribute', got {spec!r}")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{what}: could not import {spec!r}: {err}") from err
    return obj


def _kwargs(section: Mapping[str, Any], *drop: str) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k not in ("name", *drop)}


def build_model(section: Mapping[str, Any]) -> nn.Module:
    """The model of a configuration's ``model`` section (see :func:`softseg.models.build_model`).

    Examples
    --------
    >>> build_model({"name": "unet", "in_channels": 1, "out_channels": 1, "width": 4, "depth": 2}).width
    4
    """
    from .models import build_model as _build

    name = section["name"]
    if ":" in name:
        return _import(name, "config model.name")(**_kwargs(section))
    try:
        return _build(name, **_kwargs(section))
    except TypeError as err:
        raise ValueError(f"config model: {err}") from err


class WeightedLoss(nn.Module):
    r"""Weighted sum of losses, :math:`\sum_i w_i \, \ell_i(x, y)` (a training loss made of terms,
    e.g. SAUNA's GJML + Stable Focal-L1).

    Parameters
    ----------
    losses : sequence of nn.Module
        The terms, each called as ``loss(x, y)``.
    weights : sequence of float
        One non-negative weight per term.

    Examples
    --------
    >>> import torch
    >>> from softseg.losses import SoftDiceLoss
    >>> loss = WeightedLoss([nn.BCEWithLogitsLoss(), SoftDiceLoss(activation="sigmoid")], [0.5, 0.5])
    >>> loss(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)).item() > 0
    True
    """

    def __init__(self, losses: Sequence[nn.Module], weights: Sequence[float]) -> None:
        super().__init__()
        if len(losses) != len(weights) or not losses:
            raise ValueError(f"weights: expected one weight per loss ({len(losses)}), got {len(weights)}")
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ValueError(f"weights: expected finite numbers >= 0, got {list(weights)!r}")
        self.terms = nn.ModuleList(losses)
        self.weights = [float(w) for w in weights]

    @property
    def activation(self) -> str | None:
        """The first term's ``activation`` (how the training loop reads network outputs)."""
        return next((t.activation for t in self.terms if getattr(t, "activation", None)), None)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sum(w * term(x, y) for w, term in zip(self.weights, self.terms))

    def extra_repr(self) -> str:
        return f"weights={self.weights}"


def _loss_class(name: str) -> Any:
    if ":" in name:
        return _import(name, "config loss.name")
    import softseg.losses as losses

    if name in getattr(losses, "__all__", ()):
        return getattr(losses, name)
    candidate = getattr(nn, name, None)
    if isinstance(candidate, type) and issubclass(candidate, nn.modules.loss._Loss):
        return candidate
    known = sorted(n for n in getattr(losses, "__all__", ()) if n[:1].isupper())
    raise ValueError(f"config loss.name: expected a loss of softseg.losses {known}, a torch.nn loss "
                     f"(e.g. 'CrossEntropyLoss') or 'package.module:Class', got {name!r}")


def build_loss(section: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> nn.Module:
    """The loss module of a configuration's ``loss`` section (a mapping, or a list of weighted
    mappings for a :class:`WeightedLoss`).

    Examples
    --------
    >>> build_loss({"name": "DiceSemimetricLoss", "activation": "sigmoid"})
    DiceSemimetricLoss(variant=1, eps=0.0, reduction='mean', activation='sigmoid')
    >>> build_loss([{"name": "CrossEntropyLoss", "weight": 0.25},
    ...             {"name": "DiceSemimetricLoss", "activation": "softmax", "weight": 0.75}]).weights
    [0.25, 0.75]
    """
    if isinstance(section, Mapping):
        cls = _loss_class(section["name"])
        try:
            return cls(**_kwargs(section))
        except TypeError as err:
            raise ValueError(f"config loss ({section['name']}): {err}") from err
    terms, weights = [], []
    for i, term in enumerate(section):
        if "weight" not in term:
            raise ValueError(f"config loss[{i}]: expected a 'weight' for each term of a list, got keys {sorted(term)}")
        terms.append(build_loss(_kwargs(term, "weight") | {"name": term["name"]}))
        weights.append(term["weight"])
    return WeightedLoss(terms, weights)


def _check_paths(where: str, kwargs: Mapping[str, Any]) -> None:
    for key, value in kwargs.items():
        if _PATH_KEYS.search(key) and isinstance(value, (str, Path)) and not Path(value).exists():
            raise ValueError(f"{where}.{key}: expected an existing path, got {str(value)!r} (not found)")


def _dataset_factory(name: str) -> Any:
    if name == "shapes":
        from .data.shapes import ShapesDataset

        return ShapesDataset
    if name == "folder":
        return FolderDataset
    if ":" in name:
        return _import(name, "config data.name")
    raise ValueError(f"config data.name: expected 'shapes', 'folder' or 'package.module:callable', got {name!r}")


def build_datasets(section: Mapping[str, Any]) -> tuple[Dataset, Dataset | None]:
    """The training and validation datasets of a configuration's ``data`` section.

    Raises
    ------
    ValueError
        If a path keyword names a missing path, the loader rejects the layout, or a split is empty.

    Examples
    --------
    >>> train, val = build_datasets({"name": "shapes", "size": 16, "train": {"n": 4}, "val": {"n": 2}})
    >>> len(train), len(val)
    (4, 2)
    """
    factory = _dataset_factory(section["name"])
    common = _kwargs(section, "train", "val")
    out = []
    for split in ("train", "val"):
        extra = section.get(split)
        if extra is None:
            out.append(None)
            continue
        kwargs = {**common, **extra}
        _check_paths(f"config data.{split}", kwargs)
        try:
            ds = factory(**kwargs)
        except TypeError as err:
            raise ValueError(f"config data.{split} ({section['name']}): {err}") from err
        if len(ds) == 0:
            raise ValueError(f"config data.{split}: expected at least one sample, got an empty dataset")
        out.append(ds)
    return out[0], out[1]


def build_optimizer(section: Mapping[str, Any], params, *, device: torch.device | None = None) -> torch.optim.Optimizer:
    """The optimizer of a configuration's ``optimizer`` section: ``adam`` (SAUNA: lr 1e-4),
    ``adamw`` (margin calibration: lr 1e-4), ``sgd`` (Dice semimetric: lr 0.01, momentum 0.9,
    weight decay 5e-4) or ``rmsprop``; other keys are the optimizer's arguments. On CUDA, Adam
    and AdamW use the fused implementation unless ``fused`` is given.

    Examples
    --------
    >>> opt = build_optimizer({"name": "sgd", "lr": 0.01, "momentum": 0.9}, [nn.Parameter(torch.zeros(2))])
    >>> type(opt).__name__, opt.param_groups[0]["momentum"]
    ('SGD', 0.9)
    """
    name = check_option("config optimizer.name", section["name"].lower(), tuple(_OPTIMIZERS))
    kwargs = _kwargs(section)
    if "betas" in kwargs and isinstance(kwargs["betas"], list):
        kwargs["betas"] = tuple(kwargs["betas"])
    if device is not None and device.type == "cuda" and name in ("adam", "adamw"):
        kwargs.setdefault("fused", True)
    try:
        return getattr(torch.optim, _OPTIMIZERS[name])(params, **kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"config optimizer ({name}): {err}") from err


class _Schedule:
    """Multiplier of the base learning rate at step ``t`` of ``total`` (picklable)."""

    def __init__(self, name: str, total: int, power: float, min_factor: float, warmup: int) -> None:
        self.name, self.total, self.power, self.min_factor, self.warmup = name, total, power, min_factor, warmup

    def __call__(self, t: int) -> float:
        if t < self.warmup:
            return (t + 1) / self.warmup
        frac = min(1.0, (t - self.warmup) / max(1, self.total - self.warmup))
        if self.name == "poly":
            return max(self.min_factor, (1.0 - frac) ** self.power)
        if self.name == "cosine":
            return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * frac))
        return 1.0


def build_scheduler(section: Mapping[str, Any], optimizer: torch.optim.Optimizer,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step learning-rate schedule: ``none``; ``poly`` — :math:`(1 - t/T)^{p}` with
    ``power`` :math:`p` (default 0.9, the Dice-semimetric paper's "poly policy"); ``cosine``.
    Both take ``min_factor`` (floor, as a fraction of the base rate; default 0) and
    ``warmup_steps`` (linear warm-up; default 0).

    Examples
    --------
    >>> opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> sched = build_scheduler({"name": "poly", "power": 1.0}, opt, total_steps=4)
    >>> [round(sched.lr_lambdas[0](t), 2) for t in range(5)]
    [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    name = check_option("config scheduler.name", section["name"].lower(), _SCHEDULERS)
    kwargs = _kwargs(section)
    allowed = {"none": set(), "poly": {"power", "min_factor", "warmup_steps"},
               "cosine": {"min_factor", "warmup_steps"}}[name]
    if set(kwargs) - allowed:
        raise ValueError(f"config scheduler ({name}): unexpected keys {sorted(set(kwargs) - allowed)}; "
                         f"expected some of {sorted(allowed)}")
    schedule = _Schedule(name, total_steps, float(kwargs.get("power", 0.9)), float(kwargs.get("min_factor", 0.0)),
                         int(kwargs.get("warmup_steps", 0)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


# --------------------------------------------------------------------------- a generic folder layout


class FolderDataset(Dataset):
    """Images and targets stored as files with matching names::

        root/images/<name>.npy|.png     image, (C, H, W) float array or an 8/16-bit PNG
        root/targets/<name>.npy|.png    target with the same <name>

    Parameters
    ----------
    root : str or Path
        The folder holding ``images/`` and ``targets/``.
    target : {"soft", "labels"}, default "soft"
        ``"soft"``: float32 maps; an ``.npy`` of shape ``(H, W)`` gets a channel axis, a PNG is
        scaled to [0, 1]. ``"labels"``: int64 class indices of shape ``(H, W)``, values as stored.
    images, targets : str
        Names of the two sub-folders.

    Raises
    ------
    ValueError
        If ``root`` or a sub-folder is missing, no image is found, or an image has no target
        (the message lists the files it expected).
    """

    SUFFIXES = (".npy", ".png")

    def __init__(self, root: str | Path, *, target: str = "soft", images: str = "images",
                 targets: str = "targets") -> None:
        self.root = Path(root)
        self.target = check_option("target", target, ("soft", "labels"))
        layout = (f"{self.root}/{images}/<name>.npy|.png and {self.root}/{targets}/<name>.npy|.png")
        if not self.root.is_dir():
            raise ValueError(f"data root: expected an existing folder with the layout {layout}, "
                             f"got {str(self.root)!r} (not found)")
        img_dir, tgt_dir = self.root / images, self.root / targets
        for d in (img_dir, tgt_dir):
            if not d.is_dir():
                raise ValueError(f"data root {str(self.root)!r}: expected the layout {layout}, "
                                 f"got no folder {d.name!r} (found: {sorted(p.name for p in self.root.iterdir())[:10]})")
        self.images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in self.SUFFIXES)
        if not self.images:
            raise ValueError(f"data root {str(self.root)!r}: expected image files {img_dir}/<name>.npy|.png, found none")
        targets_by_stem = {p.stem: p for p in tgt_dir.iterdir() if p.suffix.lower() in self.SUFFIXES}
        missing = [p.stem for p in self.images if p.stem not in targets_by_stem]
        if missing:
            expected = ", ".join(f"{tgt_dir}/{m}.npy|.png" for m in missing[:3])
            raise ValueError(f"data root {str(self.root)!r}: expected a target for every image, "
                             f"missing {len(missing)}: {expected}{' ...' if len(missing) > 3 else ''}")
        self.targets = [targets_by_stem[p.stem] for p in self.images]

    def __len__(self) -> int:
        return len(self.images)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        if path.suffix.lower() == ".npy":
            return np.load(path)
        try:
            from PIL import Image
        except ModuleNotFoundError as err:
            raise ValueError(f"{path}: reading PNG files needs Pillow (pip install pillow), or store .npy") from err
        with Image.open(path) as im:
            arr = np.asarray(im)
        return arr

    @staticmethod
    def _channels_first(arr: np.ndarray, path: Path) -> np.ndarray:
        """``(C, H, W)`` float32; PNG pixels scaled to [0, 1] by their bit depth, (H, W, C) moved."""
        if path.suffix.lower() == ".png":
            scale = 65535.0 if arr.dtype == np.uint16 else 255.0
            arr = arr.astype(np.float32) / scale
            arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
        elif arr.ndim == 2:
            arr = arr[None]
        return np.ascontiguousarray(arr, dtype=np.float32)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        ipath, tpath = self.images[index], self.targets[index]
        image = self._channels_first(self._read(ipath), ipath)
        target = self._read(tpath)
        if self.target == "labels":
            t = torch.from_numpy(np.ascontiguousarray(target).astype(np.int64))
        else:
            t = torch.from_numpy(self._channels_first(target, tpath))
        return torch.from_numpy(image), t
