"""The training loop shared by the chapters: one model, one loss, one data set, many devices.

:func:`train` runs a configuration (see :mod:`softseg.config`) or objects passed to it:

* **device** — ``"auto"`` takes CUDA when present, else the CPU; asking for ``"cuda"`` where
  there is none is an error, not a silent fallback;
* **speed on CUDA** — mixed precision (bfloat16 where the GPU supports it, else float16 with
  a gradient scaler), channels-last memory layout, cuDNN autotuning, TF32 matmuls, fused Adam,
  and optionally ``torch.compile``; the loss is always computed in float32;
* **reproducibility** — the model is built after seeding, and every epoch reseeds ``random``,
  NumPy and torch from ``(seed, epoch, rank)`` and shuffles with ``DistributedSampler(seed)``, so
  an epoch's randomness does not depend on what ran before it. On the CPU a resumed run ends
  with the very same weights as an uninterrupted one (``deterministic: true`` asks for
  deterministic kernels on CUDA too);
* **multi-GPU** — under ``torchrun --nproc_per_node=N -m softseg train ...`` each process
  trains on its shard of every epoch (``DistributedSampler``) with
  ``DistributedDataParallel`` (NCCL on CUDA, gloo on the CPU); ``batch_size`` is per process;
* **files** (rank 0 writes, into ``out``, default ``runs/<name>``; never into ``results/``):
  ``checkpoint_last.pt`` after every epoch and ``checkpoint_best.pt`` (best value of the first
  validation metric), each written to a temporary file and renamed into place, so a crash never
  leaves a torn checkpoint; ``metrics.jsonl``, one JSON object per epoch; ``summary.json`` at
  the end. ``resume=True`` continues from ``checkpoint_last.pt``;
* **errors** — a missing data path or a wrong folder layout, a CUDA request without CUDA, an
  unknown key in the configuration, and a non-finite loss (training stops, the last good
  checkpoint stays, the message names the epoch and step) raise :class:`ValueError` with one
  clear line, which ``python -m softseg train`` prints without a traceback.

Metrics are those of :mod:`softseg.metrics`, computed per sample and class and averaged over
the validation set. Outputs become masks according to ``metric_mode`` (see :func:`evaluate`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from . import config as _config
from . import metrics as _metrics
from ._checks import check_option

__all__ = [
    "train",
    "evaluate",
    "predict",
    "load_checkpoint",
    "select_device",
    "seed_everything",
    "save_atomic",
    "NonFiniteLossError",
    "CHECKPOINT_LAST",
    "CHECKPOINT_BEST",
    "METRICS_LOG",
    "SUMMARY",
]

CHECKPOINT_LAST = "checkpoint_last.pt"
CHECKPOINT_BEST = "checkpoint_best.pt"
METRICS_LOG = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT_FORMAT = "softseg-checkpoint/1"
#: Configuration keys that must not change between a run and its resumption.
RESUME_KEYS = ("model", "loss", "data", "optimizer", "scheduler", "batch_size", "seed", "drop_last")


class _NonFiniteOutput(ValueError):
    """The network's output held NaN or inf during an evaluation."""


class NonFiniteLossError(ValueError):
    """The loss (or the network's output) became NaN or infinite; training stopped.

    Attributes ``epoch`` (1-based), ``step`` (1-based, within the epoch), ``global_step`` and
    ``checkpoint`` (the last good checkpoint, or ``None``) say where.
    """

    def __init__(self, message: str, *, epoch: int, step: int | None, global_step: int | None,
                 checkpoint: Path | None) -> None:
        super().__init__(message)
        self.epoch, self.step, self.global_step, self.checkpoint = epoch, step, global_step, checkpoint


# --------------------------------------------------------------------------- small utilities


def select_device(requested: str | torch.device = "auto", *, local_rank: int | None = None) -> torch.device:
    """The device to compute on.

    Parameters
    ----------
    requested : {"auto", "cpu", "cuda", "cuda:N"}
        ``"auto"``: CUDA if available, else the CPU.
    local_rank : int or None
        Under ``torchrun``: this process's GPU index (``"auto"``/``"cuda"`` become ``cuda:local_rank``).

    Raises
    ------
    ValueError
        If CUDA is asked for but not available, or the GPU index does not exist.

    Examples
    --------
    >>> select_device("cpu")
    device(type='cpu')
    """
    text = str(requested)
    if text not in ("auto", "cpu") and not (text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit())):
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {text!r}")
    if text == "cpu" or (text == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ValueError(f"device: expected 'cpu' or 'auto' on this machine, got {text!r} (CUDA is not "
                         f"available: torch.cuda.is_available() is False; torch {torch.__version__} is {build})")
    count = torch.cuda.device_count()
    if text.startswith("cuda:"):
        if local_rank is not None:
            raise ValueError(f"device: expected 'cuda' or 'auto' under torchrun (each process takes "
                             f"cuda:LOCAL_RANK), got {text!r}")
        index = int(text[5:])
    else:
        index = 0 if local_rank is None else local_rank
    if index >= count:
        raise ValueError(f"device: expected a GPU index below {count} (GPUs visible), got cuda:{index}"
                         + (" — run at most one process per GPU" if local_rank is not None else ""))
    return torch.device("cuda", index)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _stream_seed(*keys: int) -> int:
    """A seed for the stream named by ``keys`` (independent streams for distinct keys)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint32)[0])


def _seed_worker(worker_id: int) -> None:  # DataLoader workers: NumPy and random from torch's seed
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically: write a temporary file in the same folder,
    flush it to disk, then rename it over ``path``. Readers see the old file or the new one,
    never a partial write; on failure the temporary file is removed and ``path`` is untouched.
    """
    return _write_atomic(path, lambda f: torch.save(obj, f), binary=True)


def _write_atomic(path: str | Path, write: Callable[[Any], None], *, binary: bool) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _write_json(path: Path, obj: Any) -> Path:
    return _write_atomic(path, lambda f: f.write(json.dumps(obj, indent=2) + "\n"), binary=False)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _describe(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        what = f"cuda ({torch.cuda.get_device_name(device)}, torch {torch.__version__})"
    else:
        what = f"cpu ({platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__})"
    return what if world == 1 else f"{what} x {world} processes"


# --------------------------------------------------------------------------- outputs -> metrics


def _resolve_mode(mode: str, model: nn.Module | None, loss_fn: nn.Module | None, channels: int) -> str:
    """How to read the network's outputs (see :func:`evaluate`)."""
    if mode != "auto":
        if mode == "softmax" and channels == 1:
            raise ValueError("metric_mode: expected 'sigmoid', 'tanh' or 'probabilities' for one output "
                             "channel, got 'softmax'")
        return mode
    act = getattr(model, "activation", None)
    if act == "tanh":
        return "signed"
    if act in ("sigmoid", "softmax"):
        return "probabilities"
    act = getattr(loss_fn, "activation", None)
    if act in ("sigmoid", "tanh") or (act == "softmax" and channels > 1):
        return act
    return "softmax" if channels > 1 else "sigmoid"


def _one_hot(index: torch.Tensor, channels: int) -> torch.Tensor:
    shape = (1, channels) + (1,) * (index.ndim - 1)
    return index.unsqueeze(1) == torch.arange(channels, device=index.device).view(shape)


def _masks(out: torch.Tensor, y: torch.Tensor, mode: str, background: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean prediction and target masks ``(N, C', *spatial)`` for the overlap metrics."""
    C = out.shape[1]
    signed = mode in ("tanh", "signed")
    if not y.is_floating_point():  # integer labels (N, *spatial)
        if y.ndim != out.ndim - 1 or y.shape[0] != out.shape[0] or y.shape[1:] != out.shape[2:]:
            raise ValueError(f"target: expected integer labels of shape (N, *spatial) = "
                             f"{(out.shape[0], *out.shape[2:])} for outputs {tuple(out.shape)}, got {tuple(y.shape)}")
        tgt = (y == 1).unsqueeze(1) if C == 1 else _one_hot(y.long(), C)
    elif C > 1 and mode in ("softmax", "probabilities"):
        tgt = _one_hot(y.argmax(1), C)  # the majority class of a soft one-hot target
    else:
        tgt = y >= (0.0 if signed else 0.5)
    if C > 1 and mode in ("softmax", "probabilities"):
        pred = _one_hot(out.argmax(1), C)
    elif mode == "probabilities":
        pred = out >= 0.5
    else:  # logits (sigmoid) and tanh/signed maps: the decision boundary is 0
        pred = out >= 0
    if C > 1 and not background:
        pred, tgt = pred[:, 1:], tgt[:, 1:]
    return pred, tgt


def _soft(out: torch.Tensor, y: torch.Tensor, mode: str, background: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and soft targets in [0, 1] for ``soft_dice`` (NaN outputs read as 0.5:
    the loss check reports them)."""
    C = out.shape[1]
    if mode == "sigmoid":
        p = torch.sigmoid(out)
    elif mode == "softmax":
        p = torch.softmax(out, 1)
    elif mode == "tanh":
        p = (torch.tanh(out) + 1) / 2
    elif mode == "signed":
        p = (out + 1) / 2
    else:
        p = out
    p = torch.nan_to_num(p, nan=0.5).clamp(0, 1)
    if not y.is_floating_point():
        t = (y == 1).unsqueeze(1).to(p.dtype) if C == 1 else _one_hot(y.long(), C).to(p.dtype)
    else:
        t = ((y + 1) / 2 if mode in ("tanh", "signed") else y).to(p.dtype).clamp(0, 1)
    if C > 1 and not background:
        p, t = p[:, 1:], t[:, 1:]
    return p, t


def _metric_values(name: str, out: torch.Tensor, y: torch.Tensor, mode: str, background: bool) -> torch.Tensor:
    """Per-(sample, class) values of metric ``name``, a float64 tensor ``(N, C')`` on the device."""
    if name == "soft_dice":
        return _metrics.soft_dice(*_soft(out, y, mode, background), reduction="none")
    pred, tgt = _masks(out, y, mode, background)
    return getattr(_metrics, name)(pred, tgt, threshold=None, reduction="none")


def _main_output(out: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Deep supervision returns one output per head: average them (UNet++'s accurate mode)."""
    return torch.stack(list(out)).mean(0) if isinstance(out, (tuple, list)) else out


def _apply_loss(loss_fn: nn.Module, out, y: torch.Tensor) -> torch.Tensor:
    """The loss in float32; averaged over the heads of a deep-supervised output."""
    if isinstance(out, (tuple, list)):
        return sum(loss_fn(o.float(), y) for o in out) / len(out)
    return loss_fn(out.float(), y)


# --------------------------------------------------------------------------- data plumbing


class _Shard(Sampler):
    """Indices ``rank, rank + world, ...`` of ``0..n-1``: a process's share of an evaluation set,
    without the padding of ``DistributedSampler`` (so every sample counts exactly once)."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.n, self.rank, self.world = n, rank, world

    def __iter__(self):
        return iter(range(self.rank, self.n, self.world))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))


def _batches(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"data: expected the dataset to yield (image, target) pairs, got a batch of "
                         f"{type(batch).__name__}{f' of length {len(batch)}' if hasattr(batch, '__len__') else ''}")
    x, y = batch
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"data: expected floating-point image tensors, got "
                         f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"data: expected target tensors, got {type(y).__name__}")
    return x, y


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, fmt) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.to(device, non_blocking=True)
    if fmt is not None and x.ndim == (4 if fmt == torch.channels_last else 5):
        x = x.contiguous(memory_format=fmt)
    return x, y.to(device, non_blocking=True)


def _loader(dataset: Dataset, *, batch_size: int, sampler: Sampler, num_workers: int, drop_last: bool,
            device: torch.device, seed: int | None = None) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=drop_last,
        pin_memory=device.type == "cuda", worker_init_fn=_seed_worker if num_workers else None,
        generator=torch.Generator().manual_seed(seed) if seed is not None else None,
    )


def _amp_dtype(setting: Any, device: torch.device) -> torch.dtype | None:
    if setting is False:
        return None
    if device.type != "cuda":
        if setting == "fp16":
            raise ValueError("amp: expected 'bf16', 'auto' or false on the CPU, got 'fp16'")
        return torch.bfloat16 if setting == "bf16" else None  # "auto"/true: full precision on the CPU
    if setting in ("auto", True):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[setting]


def _memory_format(setting: Any, device: torch.device, model: nn.Module):
    use = device.type == "cuda" if setting == "auto" else bool(setting)
    if not use:
        return None
    return torch.channels_last_3d if getattr(model, "spatial_dims", 2) == 3 else torch.channels_last


def _configure_backends(device: torch.device, deterministic: bool) -> None:
    # Both branches set every flag: a deterministic run must not leave the next run of the same
    # process (a reproduction trains several) on the slower deterministic kernels.
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def _evaluate_loop(model: nn.Module, loader: Iterable, loss_fn: nn.Module | None, metric_names: Sequence[str],
                   mode: str, background: bool, device: torch.device, amp_dtype, fmt,
                   distributed: bool, owner: nn.Module | None = None) -> tuple[dict[str, float], float]:
    """Sums of the loss and the metrics over ``loader``, reduced over processes, as means.
    Returns the means and the loss sum (for the non-finite check). ``owner``: the uncompiled
    model, whose ``activation`` decides the metric mode."""
    was_training = model.training
    model.eval()
    # loss * n, n, (metric sum, metric count) per metric, count of non-finite output values
    stats = torch.zeros(3 + 2 * len(metric_names), dtype=torch.float64, device=device)
    resolved = None
    try:
        for batch in loader:
            x, y = _to_device(*_batches(batch), device, fmt)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                out = _main_output(model(x))
            out = out.float()
            n = x.shape[0]
            stats[-1] += (~torch.isfinite(out)).sum()
            if loss_fn is not None:
                try:
                    stats[0] += loss_fn(out, y).detach().double() * n
                except ValueError:
                    if not bool(torch.isfinite(out).all()):  # a checking loss rejected NaN outputs
                        raise _NonFiniteOutput("model output: expected finite values, got NaN or inf") from None
                    raise
            stats[1] += n
            resolved = resolved or _resolve_mode(mode, owner if owner is not None else model, loss_fn, out.shape[1])
            for k, name in enumerate(metric_names):
                v = _metric_values(name, out, y, resolved, background)
                stats[2 + 2 * k] += v.sum()
                stats[3 + 2 * k] += v.numel()
    finally:
        model.train(was_training)
    if distributed:
        dist.all_reduce(stats)
    s = stats.tolist()
    if s[-1]:
        raise _NonFiniteOutput(f"model output: expected finite values, got {int(s[-1])} NaN or inf values")
    res = {"loss": s[0] / s[1] if loss_fn is not None and s[1] else None}
    for k, name in enumerate(metric_names):
        res[name] = s[2 + 2 * k] / s[3 + 2 * k] if s[3 + 2 * k] else None
    return res, s[0]


def evaluate(model: nn.Module, data: Dataset, *, loss: nn.Module | None = None,
             metrics: Sequence[str] = ("dice", "iou"), batch_size: int = 8, device: str = "auto",
             metric_mode: str = "auto", metric_background: bool = False, amp: Any = "auto",
             num_workers: int = 0) -> dict[str, float | None]:
    """Mean loss and metrics of ``model`` over ``data`` (evaluation mode, no gradients).

    Parameters
    ----------
    model : nn.Module
        Maps images ``(N, C_in, *spatial)`` to outputs ``(N, C, *spatial)``.
    data : Dataset
        Yields ``(image, target)``; the target is a float map ``(C, *spatial)`` (soft or hard)
        or integer labels ``(*spatial)``.
    loss : nn.Module, optional
        If given, its mean over the samples is reported as ``"loss"``.
    metrics : sequence of str
        Names among :data:`softseg.config.METRICS`; each is averaged over samples and classes.
    metric_mode : {"auto", "sigmoid", "softmax", "tanh", "probabilities", "signed"}
        How outputs and targets become masks: ``sigmoid`` logits are foreground where
        ``> = 0``; ``softmax`` logits (and multi-channel ``probabilities``) give the arg-max
        class, and a soft target its arg-max class; ``tanh``/``signed`` maps (SAUNA) are
        foreground where ``>= 0``, as are their targets; ``probabilities`` and soft targets
        are thresholded at 0.5. ``auto``: from the model's ``activation`` (``tanh`` →
        ``signed``, sigmoid/softmax → ``probabilities``), else the loss's ``activation``, else
        ``softmax`` for several channels and ``sigmoid`` for one.
    metric_background : bool
        Include channel 0 of a multi-channel output (the background) in the metrics.

    Returns
    -------
    dict
        ``{"loss": float | None, <metric>: float, ..., "n": number of samples}``.

    Examples
    --------
    >>> from softseg.models import UNet
    >>> from softseg.data.shapes import ShapesDataset
    >>> res = evaluate(UNet(3, 1, width=4, depth=2), ShapesDataset(4, size=16), metrics=["dice"])
    >>> sorted(res)
    ['dice', 'loss', 'n']
    """
    for m in metrics:
        check_option("metrics", m, _config.METRICS)
    check_option("metric_mode", metric_mode, _config.METRIC_MODES)
    dev = select_device(device)
    amp_dtype = _amp_dtype(amp, dev)
    fmt = _memory_format("auto", dev, model)
    model.to(dev)
    if loss is not None:
        loss.to(dev)
    loader = _loader(data, batch_size=batch_size, sampler=_Shard(len(data), 0, 1), num_workers=num_workers,
                     drop_last=False, device=dev)
    res, _ = _evaluate_loop(model, loader, loss, list(metrics), metric_mode, metric_background, dev, amp_dtype,
                            fmt, distributed=False)
    res["n"] = len(data)
    return res


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor | Dataset, *, batch_size: int = 8, device: str = "auto",
            amp: Any = "auto") -> torch.Tensor:
    """Outputs of ``model`` (evaluation mode) for a batch of images or a dataset's images, as a
    float32 CPU tensor ``(N, C, *spatial)`` (the mean of the heads under deep supervision).

    Examples
    --------
    >>> from softseg.models import UNet
    >>> predict(UNet(1, 2, width=4, depth=1), torch.randn(3, 1, 8, 8), batch_size=2).shape
    torch.Size([3, 2, 8, 8])
    """
    dev = select_device(device)
    amp_dtype = _amp_dtype(amp, dev)
    fmt = _memory_format("auto", dev, model)
    was_training = model.training
    model.to(dev).eval()
    n = images.shape[0] if isinstance(images, torch.Tensor) else len(images)
    outs = []
    try:
        for start in range(0, n, batch_size):
            if isinstance(images, torch.Tensor):
                x = images[start:start + batch_size]
            else:
                x = torch.stack([images[i][0] for i in range(start, min(n, start + batch_size))])
            x, _ = _to_device(x, x[:0], dev, fmt)
            with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                outs.append(_main_output(model(x)).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs)


def load_checkpoint(path: str | Path, *, model: nn.Module | None = None,
                    map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint written by :func:`train`: the model (rebuilt from the checkpoint's
    configuration unless ``model`` is given), in evaluation mode, and the checkpoint itself
    (``epoch``, ``config``, ``history``, ``best``, ...).

    Raises
    ------
    ValueError
        If ``path`` is missing or not a softseg checkpoint, or the model must be given (the run
        was started with a model object rather than a configuration).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint: expected an existing file, got {str(path)!r} (not found)")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {str(path)!r}: expected a {CHECKPOINT_FORMAT} file written by softseg.train")
    if model is None:
        section = ckpt["config"]["model"]
        if section.get("name") == "<object>":
            raise ValueError(f"checkpoint {str(path)!r}: the run trained a model object ({section.get('class')}); "
                             "pass model= to load its weights")
        model = _config.build_model(section)
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


# --------------------------------------------------------------------------- training


def _resolve_out_dir(out_dir: str | Path | None, name: str) -> Path:
    from .results import RESULTS_DIR

    out = Path(out_dir) if out_dir is not None else Path("runs") / name
    resolved, results = out.resolve(), RESULTS_DIR.resolve()
    if resolved == results or results in resolved.parents:
        raise ValueError(f"out: expected a folder outside {results} (reproductions write results/ through "
                         f"softseg.results.write_results), got {str(out)!r}")
    return out


def _setup_distributed(device_request: str) -> tuple[torch.device, int, int, bool]:
    """(device, rank, world size, whether this call initialized the process group)."""
    initialized = dist.is_available() and dist.is_initialized()
    world = dist.get_world_size() if initialized else int(os.environ.get("WORLD_SIZE", "1"))
    rank = dist.get_rank() if initialized else int(os.environ.get("RANK", "0"))
    if world == 1:
        return select_device(device_request), 0, 1, False
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = select_device(device_request, local_rank=local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if initialized:
        return device, rank, world, False
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 but torch.distributed is not available in this torch build")
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device, rank, world, True


def _objects_in_config(cfg: dict[str, Any], model, loss, train_data, val_data) -> None:
    """Record objects passed to :func:`train` in the configuration (for the summary and resume)."""
    if model is not None:
        cfg["model"] = {"name": "<object>", "class": type(model).__qualname__}
    if loss is not None:
        cfg["loss"] = {"name": "<object>", "class": type(loss).__qualname__, "repr": repr(loss)}
    if train_data is not None:
        cfg["data"] = {"name": "<object>", "train": {"class": type(train_data).__qualname__, "n": len(train_data)},
                       "val": None if val_data is None else {"class": type(val_data).__qualname__, "n": len(val_data)}}


def _differing(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [k for k in RESUME_KEYS if json.dumps(a.get(k), sort_keys=True) != json.dumps(b.get(k), sort_keys=True)]


def train(config: str | Path | Mapping[str, Any], *, out_dir: str | Path | None = None, resume: bool = False,
          device: str | None = None, preset: str | None = None, model: nn.Module | None = None,
          loss: nn.Module | None = None, train_data: Dataset | None = None, val_data: Dataset | None = None,
          overwrite: bool = False, progress: bool | None = None, verbose: bool = True,
          on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train a segmentation model and return the run's summary.

    Parameters
    ----------
    config : str, Path or mapping
        A YAML/TOML file or a configuration mapping (keys in :mod:`softseg.config`).
    out_dir : str or Path, optional
        Folder for checkpoints, ``metrics.jsonl`` and ``summary.json``; default
        ``runs/<name>`` (relative to the working directory). Never inside ``results/``.
    resume : bool
        Continue from ``out_dir/checkpoint_last.pt`` (starts afresh, with a note, if there is
        none). The configuration must match the checkpoint's in :data:`RESUME_KEYS`; ``epochs``
        may grow.
    device : {"auto", "cpu", "cuda", "cuda:N"}, optional
        Overrides the configuration's ``device``.
    preset : {"fast", "full"}, optional
        Overrides the configuration's ``preset``.
    model, loss : nn.Module, optional
        Objects to use instead of the configuration's ``model``/``loss`` sections.
    train_data, val_data : Dataset, optional
        Datasets to use instead of the ``data`` section (``val_data=None``: no validation).
    overwrite : bool
        Start afresh even if ``out_dir`` holds a checkpoint (its files are replaced).
    progress : bool or None
        Show a tqdm bar (rank 0); ``None``: only on a terminal.
    verbose : bool
        Print one line per epoch (rank 0).
    on_epoch_end : callable, optional
        Called on every process with the epoch's record, after its checkpoint is written.

    Returns
    -------
    dict
        The summary also written to ``out_dir/summary.json``: ``name``, ``status``,
        ``device``, ``world_size``, ``epochs_completed``, ``global_step``, ``final`` (the last
        epoch's record), ``best`` (epoch and value of the first validation metric),
        ``train_images_per_s``, ``files``, ``config``, ...

    Raises
    ------
    ValueError
        For a configuration error, a missing data path or a wrong layout, CUDA asked for but
        absent, an ``out_dir`` that holds a checkpoint while neither ``resume`` nor
        ``overwrite`` is set, or a checkpoint whose configuration differs.
    NonFiniteLossError
        (a ``ValueError``) when the loss becomes NaN or infinite; the last good checkpoint is
        kept and named in the message.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = train("configs/shapes-tiny.yaml", out_dir=tmp, verbose=False)
    >>> summary["status"], summary["epochs_completed"]
    ('completed', 2)
    """
    raw = _config.load_config(config) if isinstance(config, (str, Path)) else dict(config)
    require = [k for k, obj in (("data", train_data), ("loss", loss)) if obj is None]
    cfg = _config.resolve_config(raw, preset=preset, require=require)
    if device is not None:
        cfg["device"] = str(device)
    _objects_in_config(cfg, model, loss, train_data, val_data)
    out = _resolve_out_dir(out_dir, cfg["name"])
    dev, rank, world, owned = _setup_distributed(cfg["device"])
    try:
        return _train(cfg, out, dev, rank, world, resume=resume, overwrite=overwrite, model=model, loss=loss,
                      train_data=train_data, val_data=val_data, progress=progress, verbose=verbose,
                      on_epoch_end=on_epoch_end)
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: dict[str, Any], out: Path, dev: torch.device, rank: int, world: int, *, resume: bool,
           overwrite: bool, model, loss, train_data, val_data, progress, verbose, on_epoch_end) -> dict[str, Any]:
    from tqdm import tqdm

    t_start = time.perf_counter()
    main = rank == 0
    distributed = world > 1
    say = (lambda msg: print(msg, flush=True)) if (main and verbose) else (lambda msg: None)
    _configure_backends(dev, cfg["deterministic"])
    seed = cfg["seed"]

    # ---- components (data first: a missing path is the commonest mistake)
    if train_data is None:
        train_data, val_data = _config.build_datasets(cfg["data"])
    seed_everything(seed)
    net = model if model is not None else _config.build_model(cfg["model"])
    crit = loss if loss is not None else _config.build_loss(cfg["loss"])
    amp_dtype = _amp_dtype(cfg["amp"], dev)
    fmt = _memory_format(cfg["channels_last"], dev, net)
    net.to(dev)
    if fmt is not None:
        net.to(memory_format=fmt)
    crit.to(dev)
    train_model: nn.Module = net
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    eval_model: nn.Module = net
    if cfg["compile"]:
        train_model, eval_model = torch.compile(train_model), torch.compile(net)
    optimizer = _config.build_optimizer(cfg["optimizer"], net.parameters(), device=dev)
    sampler = DistributedSampler(train_data, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    per_rank = len(sampler)
    steps_per_epoch = per_rank // cfg["batch_size"] if cfg["drop_last"] else math.ceil(per_rank / cfg["batch_size"])
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size: expected at most {per_rank} (samples per process) with drop_last, "
                         f"got {cfg['batch_size']}")
    total_steps = cfg["epochs"] * steps_per_epoch
    scheduler = _config.build_scheduler(cfg["scheduler"], optimizer, total_steps)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp_dtype == torch.float16)
    metric_names = list(cfg["metrics"])
    main_metric = metric_names[0]

    # ---- files, resume
    last_path, best_path = out / CHECKPOINT_LAST, out / CHECKPOINT_BEST
    log_path, summary_path = out / METRICS_LOG, out / SUMMARY
    out.mkdir(parents=True, exist_ok=True)
    start_epoch, global_step, history, best, resumed_from = 0, 0, [], None, None
    if last_path.exists() and not (resume or overwrite):
        raise ValueError(f"out: {str(out)!r} already holds a checkpoint ({CHECKPOINT_LAST}); pass --resume "
                         "(resume=True) to continue it, or choose another --out")
    if resume and last_path.exists():
        ckpt = torch.load(last_path, map_location=dev, weights_only=True)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"resume: expected a {CHECKPOINT_FORMAT} checkpoint in {str(last_path)!r}")
        diff = _differing(ckpt["config"], cfg)
        if diff:
            raise ValueError(f"resume: expected the checkpoint's configuration, got changes in {diff} "
                             f"(only epochs, device, num_workers, amp, compile and metrics may change)")
        if ckpt["world_size"] != world:
            say(f"note: the checkpoint was written with {ckpt['world_size']} process(es), resuming with {world}: "
                "the remaining epochs are split differently")
        net.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        for fn in scheduler.lr_lambdas:  # the schedule's length follows the (possibly longer) run
            fn.total = total_steps
        if ckpt["scaler"]:
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, global_step = ckpt["epoch"], ckpt["global_step"]
        history, best, resumed_from = list(ckpt["history"]), ckpt["best"], ckpt["epoch"]
        say(f"resuming {cfg['name']} from {last_path} (epoch {start_epoch}, step {global_step})")
    elif resume:
        say(f"note: no {CHECKPOINT_LAST} in {out}; starting from scratch")
    if main:  # the log holds exactly the checkpoint's epochs; a fresh start drops stale files
        _write_atomic(log_path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in history)), binary=False)
        for stale in (last_path, best_path, summary_path) if start_epoch == 0 else (summary_path,):
            if stale.exists():
                stale.unlink()
    say(f"softseg train: {cfg['name']} (preset {cfg['preset']}) on {_describe(dev, world)}; "
        f"{len(train_data)} training / {len(val_data) if val_data is not None else 0} validation samples; "
        f"out {out}")

    val_loader = None
    if val_data is not None:
        val_loader = _loader(val_data, batch_size=cfg["val_batch_size"] or cfg["batch_size"],
                             sampler=_Shard(len(val_data), rank, world), num_workers=cfg["num_workers"],
                             drop_last=False, device=dev)

    def fail(what: str, value: Any, epoch: int, step: int | None, gstep: int | None) -> NonFiniteLossError:
        where = f"epoch {epoch + 1}" + (f", step {step} of the epoch (global step {gstep})" if step else ", validation")
        keep = (f"the last good checkpoint is {last_path} (epoch {start_epoch_ckpt[0]})" if start_epoch_ckpt[0]
                else "no checkpoint was written before it")
        return NonFiniteLossError(
            f"{what}: expected a finite value, got {value} at {where}; training stopped and {keep}. "
            "Lower the learning rate, clip gradients (grad_clip) or check the data and the loss.",
            epoch=epoch + 1, step=step, global_step=gstep, checkpoint=last_path if start_epoch_ckpt[0] else None)

    start_epoch_ckpt = [start_epoch]  # epoch of the last checkpoint written (0: none)
    epochs_run, images_per_s = 0, []
    for epoch in range(start_epoch, cfg["epochs"]):
        t0 = time.perf_counter()
        s = _stream_seed(seed, epoch, rank)
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)
        sampler.set_epoch(epoch)
        loader = _loader(train_data, batch_size=cfg["batch_size"], sampler=sampler, num_workers=cfg["num_workers"],
                         drop_last=cfg["drop_last"], device=dev, seed=_stream_seed(seed, epoch, rank, 1))
        train_model.train()
        totals = [0.0, 0.0, 0.0, 0.0]  # loss * n, metric sum, metric count, n (all processes)
        resolved = None
        pending = None

        def consume(item) -> None:
            stats, step_in_epoch, gstep = item
            values = stats.tolist()
            if not math.isfinite(values[0]):
                raise fail("loss", values[0] / max(values[3], 1), epoch, step_in_epoch, gstep)
            for k in range(4):
                totals[k] += values[k]
            bar.set_postfix({"loss": f"{totals[0] / totals[3]:.4f}",
                             main_metric: f"{totals[1] / max(totals[2], 1):.4f}"}, refresh=False)

        with tqdm(loader, desc=f"epoch {epoch + 1}/{cfg['epochs']}", total=steps_per_epoch, leave=False,
                  disable=True if (not main or progress is False) else (None if progress is None else False),
                  dynamic_ncols=True, file=sys.stderr) as bar:
            for i, batch in enumerate(bar, start=1):
                x, y = _to_device(*_batches(batch), dev, fmt)
                with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    outputs = train_model(x)
                try:
                    loss_t = _apply_loss(crit, outputs, y)
                except ValueError:
                    if not bool(torch.isfinite(_main_output(outputs).detach()).all()):
                        if pending is not None:  # a NaN loss one step earlier is the first failure
                            consume(pending)
                        raise fail("model output", "NaN or inf", epoch, i, global_step + 1) from None
                    raise
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss_t).backward()
                if cfg["grad_clip"] is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(net.parameters(), cfg["grad_clip"])
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                global_step += 1
                with torch.no_grad():
                    out = _main_output(outputs).detach().float()
                    resolved = resolved or _resolve_mode(cfg["metric_mode"], net, crit, out.shape[1])
                    mv = _metric_values(main_metric, out, y, resolved, cfg["metric_background"])
                    n = float(x.shape[0])
                    # torch.full launches a fill kernel; torch.tensor(..., device=cuda) would copy
                    # from pageable memory and wait for the queued step
                    stats = torch.stack([loss_t.detach().double() * n, mv.sum(),
                                         torch.full((), float(mv.numel()), dtype=torch.float64, device=dev),
                                         torch.full((), n, dtype=torch.float64, device=dev)])
                    if distributed:
                        dist.all_reduce(stats)
                # read the previous step's numbers now that this step is queued (no GPU stall)
                if pending is not None:
                    consume(pending)
                pending = (stats, i, global_step)
            if pending is not None:
                consume(pending)
        train_time = time.perf_counter() - t0
        record: dict[str, Any] = {
            "epoch": epoch + 1, "step": global_step, "lr": optimizer.param_groups[0]["lr"],
            "train_loss": totals[0] / totals[3], f"train_{main_metric}": totals[1] / max(totals[2], 1),
        }
        if val_loader is not None:
            try:
                val, val_loss_sum = _evaluate_loop(eval_model, val_loader, crit, metric_names, cfg["metric_mode"],
                                                   cfg["metric_background"], dev, amp_dtype, fmt, distributed, net)
            except _NonFiniteOutput:
                raise fail("model output", "NaN or inf", epoch, None, None) from None
            if not math.isfinite(val_loss_sum):
                raise fail("validation loss", val["loss"], epoch, None, None)
            record.update({f"val_{k}": v for k, v in val.items()})
        record.update({"epoch_time_s": round(time.perf_counter() - t0, 3),
                       "train_images_per_s": round(totals[3] / train_time, 2), "time": _now()})
        history.append(record)
        images_per_s.append(totals[3] / train_time)
        is_best = False
        if val_loader is not None and record.get(f"val_{main_metric}") is not None:
            value = record[f"val_{main_metric}"]
            if best is None or value > best["value"]:
                best = {"metric": f"val_{main_metric}", "value": value, "epoch": epoch + 1}
                is_best = True
        if main:
            ckpt = {"format": CHECKPOINT_FORMAT, "epoch": epoch + 1, "global_step": global_step,
                    "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "config": cfg,
                    "history": history, "best": best, "world_size": world, "torch": str(torch.__version__)}
            save_atomic(ckpt, last_path)
            if is_best:
                save_atomic(ckpt, best_path)
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        start_epoch_ckpt[0] = epoch + 1
        epochs_run += 1
        say("  ".join([f"epoch {epoch + 1}/{cfg['epochs']}"]
                      + [f"{k} {v:.4f}" for k, v in record.items() if k.startswith(("train_", "val_"))
                         and k != "train_images_per_s" and v is not None]
                      + [f"{record['train_images_per_s']:.1f} img/s"]))
        if on_epoch_end is not None:
            on_epoch_end(dict(record))

    summary = {
        "name": cfg["name"], "status": "completed", "preset": cfg["preset"], "device": _describe(dev, world),
        "world_size": world, "epochs": cfg["epochs"], "epochs_completed": len(history),
        "global_step": global_step, "resumed_from_epoch": resumed_from,
        "parameters": sum(p.numel() for p in net.parameters()),
        "train_images_per_s": round(sum(images_per_s) / len(images_per_s), 2) if images_per_s else None,
        "wall_time_s": round(time.perf_counter() - t_start, 3),
        "final": history[-1] if history else None, "best": best,
        "files": {"checkpoint_last": str(last_path), "checkpoint_best": str(best_path) if best else None,
                  "metrics_log": str(log_path), "summary": str(summary_path)},
        "config": cfg, "torch": str(torch.__version__), "created": _now(),
    }
    if main:
        _write_json(summary_path, summary)
    if distributed:
        dist.barrier()
    return summary
