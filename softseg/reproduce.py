"""Registry of the paper reproductions behind ``python -m softseg reproduce``.

A reproduction is a function ``run(preset, *, data, seed) -> rows`` that returns result rows in
the :mod:`softseg.results` format. Chapters register theirs with :func:`register` in a module
of the package :mod:`softseg.experiments` (every module there is imported by :func:`registry`,
so a new chapter adds a file and touches nothing shared); :func:`run_reproduction` runs one and writes
``results/<name>.json``. Long runs never happen inside the book build: the book runs the
``fast`` preset live and shows committed ``full`` results.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import results as _results
from ._checks import check_option

__all__ = ["Reproduction", "register", "registry", "run_reproduction", "describe_device"]


def _experiment_modules() -> list[str]:
    """Names of the modules of :mod:`softseg.experiments` (each registers its reproductions)."""
    from . import experiments

    return sorted(
        f"{experiments.__name__}.{info.name}"
        for info in pkgutil.iter_modules(experiments.__path__)
        if not info.name.startswith("_")
    )

RunFn = Callable[..., list[Mapping[str, Any]]]


@dataclass(frozen=True)
class Reproduction:
    """One registered reproduction: a name, the paper it reproduces and the function that runs it."""

    name: str
    paper: str
    description: str
    run: RunFn


_REGISTRY: dict[str, Reproduction] = {}


def register(name: str, *, paper: str, description: str) -> Callable[[RunFn], RunFn]:
    """Decorator that registers ``run(preset, *, data=None, seed=0) -> rows`` under ``name``."""

    def decorator(fn: RunFn) -> RunFn:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise ValueError(f"name: reproduction {name!r} is registered twice")
        _REGISTRY[name] = Reproduction(name=name, paper=paper, description=description, run=fn)
        return fn

    return decorator


def registry() -> dict[str, Reproduction]:
    """All registered reproductions, importing the experiment modules first."""
    for module in _experiment_modules():
        importlib.import_module(module)
    return dict(sorted(_REGISTRY.items()))


def describe_device() -> str:
    """A short description of where this process computes, for the ``device`` field."""
    import torch

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)}, torch {torch.__version__})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__})"


def run_reproduction(
    name: str,
    *,
    preset: str = "fast",
    data: str | os.PathLike[str] | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    command: str | None = None,
) -> Path:
    """Run the reproduction ``name`` in ``preset`` and write ``<out_dir>/<name>.json``.

    Raises
    ------
    ValueError
        If ``name`` is not registered or ``preset`` is not ``"fast"``/``"full"``.
    """
    check_option("preset", preset, _results.PRESETS)
    known = registry()
    if name not in known:
        raise ValueError(f"name: expected one of {sorted(known)}, got {name!r}")
    rows = known[name].run(preset, data=data, seed=seed)
    if command is None:
        command = "python -m softseg " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return _results.write_results(
        name, rows, preset=preset, device=describe_device(), command=command, directory=out_dir
    )
