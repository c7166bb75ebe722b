"""Registry of the paper reproductions behind ``python -m softseg reproduce``.

A reproduction is a function ``run(preset, *, data, seed) -> rows`` that returns result rows in
the :mod:`softseg.results` format. Chapters register theirs with :func:`register` in a module
of the package :mod:`softseg.experiments` (every module there is imported by :func:`registry`,
so a new chapter adds a file and touches nothing shared); :func:`run_reproduction` runs one and writes
``results/<name>.json``. Long runs never happen inside the book build: the book runs the
``fast`` preset live and shows committed ``full`` results.

A reproduction that trains networks registers with ``trains=True`` and takes two more keywords:
``epochs`` (a shorter training than the preset's, for a GPU lent for less time than the paper's
schedule needs; recorded in the results file) and ``store``, a :class:`RunStore` through which it
runs each training run. The store keeps every finished run as a small JSON file, so that a
``full`` reproduction too long for one sitting — hours of GPU time, on machines lent for minutes —
stops cleanly before a time budget runs out and continues, run by run, when the same command is
given again (``python -m softseg reproduce NAME --preset full --time-budget 8``).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import platform
import re
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import results as _results
from ._checks import check_int, check_option, check_positive

__all__ = ["Reproduction", "register", "registry", "run_reproduction", "describe_device", "RunStore",
           "BudgetExhausted"]


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
    """One registered reproduction: a name, the paper it reproduces and the function that runs it.

    ``trains``: whether it trains networks (then ``run`` also takes ``epochs`` and ``store``).
    """

    name: str
    paper: str
    description: str
    run: RunFn
    trains: bool = False


_REGISTRY: dict[str, Reproduction] = {}


def register(name: str, *, paper: str, description: str, trains: bool = False) -> Callable[[RunFn], RunFn]:
    """Decorator that registers ``run(preset, *, data=None, seed=0) -> rows`` under ``name``.

    With ``trains=True`` the function also takes ``epochs=None`` (override of the preset's
    training length) and ``store=None`` (a :class:`RunStore`).
    """

    def decorator(fn: RunFn) -> RunFn:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise ValueError(f"name: reproduction {name!r} is registered twice")
        _REGISTRY[name] = Reproduction(name=name, paper=paper, description=description, run=fn, trains=trains)
        return fn

    return decorator


def registry() -> dict[str, Reproduction]:
    """All registered reproductions, importing the experiment modules first."""
    for module in _experiment_modules():
        importlib.import_module(module)
    return dict(sorted(_REGISTRY.items()))


def describe_device() -> str:
    """A short description of where this process computes, for the ``device`` field.

    On the CPU it names the kernels PyTorch dispatches to (``AVX2``, ``AVX512``, ``DEFAULT``…,
    :func:`torch.backends.cpu.get_cpu_capability`) besides the thread count: both change the order
    of floating-point sums, so two runs of one training agree bit for bit only where the whole
    string does (a 16-epoch training moved by up to 0.3 IoU points between ``AVX2`` and
    ``DEFAULT`` kernels on one machine). A chapter compares a committed run with its live run
    exactly only then.
    """
    import torch

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)}, torch {torch.__version__})"
    capability = torch.backends.cpu.get_cpu_capability()
    return f"cpu ({platform.machine()}, {capability}, {torch.get_num_threads()} threads, torch {torch.__version__})"


class BudgetExhausted(RuntimeError):
    """Raised by :meth:`RunStore.run` when the next training run would overrun the time budget.

    Every run finished so far is on disk; giving the same command again continues with the next.
    """


def _jsonable(value: Any) -> Any:
    """``value`` with tensors and numpy arrays/scalars turned into lists and numbers (for JSON)."""
    if hasattr(value, "tolist") and callable(value.tolist):  # torch.Tensor, numpy array or scalar
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class RunStore:
    """The finished training runs of one reproduction, kept as one JSON file per run.

    A ``full`` reproduction trains several networks (one per method, label kind or loss) for
    hours; a GPU is lent for minutes at a time. Each training run therefore goes through
    :meth:`run`, which returns the run's stored result when a file with the same ``key`` and
    ``fingerprint`` exists, and otherwise computes it, writes it (atomically) and returns it.
    With a ``time_budget_s``, :meth:`run` refuses to *start* a computation that would, at the
    pace of the longest run seen so far, end after the budget: it raises
    :class:`BudgetExhausted` instead, and the same command given again continues.

    Parameters
    ----------
    directory : path, optional
        Folder of the run files (created when needed). ``None``: nothing is kept (every
        :meth:`run` computes); the default of every reproduction function.
    fingerprint : mapping
        Everything that decides a run's result besides its key — reproduction name, preset
        settings, seed, data path, epochs. A stored file with another fingerprint is ignored and
        overwritten, so a changed setting never mixes with old runs.
    time_budget_s : float, optional
        Seconds from the store's creation after which no new run is started.
    clock : callable, optional
        Clock in seconds; default :func:`time.monotonic` (a test double in the tests).

    Examples
    --------
    >>> store = RunStore(None, fingerprint={"name": "demo"})
    >>> store.run("a", lambda: {"iou": 0.5})
    {'iou': 0.5}
    >>> store.computed
    ['a']
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, fingerprint: Mapping[str, Any],
                 time_budget_s: float | None = None, clock: Callable[[], float] | None = None) -> None:
        if not isinstance(fingerprint, Mapping):
            raise TypeError(f"fingerprint: expected a mapping, got {type(fingerprint).__name__}")
        self.directory = None if directory is None else Path(directory)
        self.fingerprint = _jsonable(fingerprint)
        self.time_budget_s = None if time_budget_s is None else check_positive("time_budget_s", time_budget_s)
        self._clock = clock if clock is not None else time.monotonic
        self._start = self._clock()
        self._longest = 0.0     # seconds of the longest run computed or loaded so far (the pace)
        self.computed: list[str] = []
        self.loaded: list[str] = []

    def add_to_fingerprint(self, **items: Any) -> None:
        """Add what the reproduction itself decides (its preset's settings, say) to the fingerprint.

        Raises
        ------
        RuntimeError
            Once a run has gone through the store (its files carry the old fingerprint).
        """
        if self.computed or self.loaded:
            raise RuntimeError("add_to_fingerprint: expected before the first run of the store")
        self.fingerprint = {**self.fingerprint, **_jsonable(items)}

    def path(self, key: str, suffix: str = ".json") -> Path | None:
        """File of ``key`` (with ``suffix``) in :attr:`directory`, or ``None`` without one."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"key: expected a non-empty string, got {key!r}")
        if self.directory is None:
            return None
        return self.directory / (re.sub(r"[^A-Za-z0-9._-]+", "_", key) + suffix)

    def load(self, key: str) -> dict[str, Any] | None:
        """The stored result of ``key`` under this fingerprint, else ``None``."""
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # a torn or foreign file: compute the run again
        if not isinstance(record, dict) or record.get("key") != key or record.get("fingerprint") != self.fingerprint:
            return None
        self._longest = max(self._longest, float(record.get("seconds", 0.0)))
        return record["result"]

    @classmethod
    def transient(cls) -> "RunStore":
        """A store that keeps nothing: every :meth:`run` computes and returns ``compute()``'s own
        result. What a reproduction function uses when it is given no store."""
        return cls(None, fingerprint={})

    def run(self, key: str, compute: Callable[[], Mapping[str, Any]], *,
            keep: Sequence[str] | None = None) -> dict[str, Any]:
        """The result of run ``key``: stored, else ``compute()`` (then stored).

        With a :attr:`directory` the result is returned as it is stored — the ``keep`` keys of
        ``compute()``'s mapping (all by default), tensors and arrays as lists — so that a
        continued reproduction and an uninterrupted one build the same rows; without one,
        ``compute()``'s own result is returned whole (large outputs for figures included).

        Raises
        ------
        BudgetExhausted
            If ``compute`` would have to start and the time budget cannot hold another run.
        """
        stored = self.load(key)
        if stored is not None:
            self.loaded.append(key)
            return stored
        self.check_budget(key)
        t0 = self._clock()
        result = compute()
        seconds = self._clock() - t0
        self._longest = max(self._longest, seconds)
        self.computed.append(key)
        path = self.path(key)
        if path is None:
            return result
        from .train import _write_json  # the training loop's atomic writer (temp file + rename)

        result = _jsonable(result if keep is None else {k: result[k] for k in keep})
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(path, {"key": key, "fingerprint": self.fingerprint, "seconds": seconds, "result": result})
        return result

    def forget(self, key: str) -> None:
        """Remove the stored run ``key`` (the next :meth:`run` of it computes)."""
        path = self.path(key)
        if path is not None:
            path.unlink(missing_ok=True)
        self.loaded = [k for k in self.loaded if k != key]

    def save_tensors(self, key: str, tensors: Mapping[str, Any]) -> None:
        """Keep ``tensors`` (a ``state_dict``, say) as ``<key>.pt`` beside the runs (no-op without a
        directory): a shared starting point that later runs of a continued reproduction reuse."""
        from .train import save_atomic

        path = self.path(key, ".pt")
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        save_atomic({"fingerprint": json.dumps(self.fingerprint, sort_keys=True), "tensors": dict(tensors)}, path)

    def load_tensors(self, key: str) -> dict[str, Any] | None:
        """What :meth:`save_tensors` kept under ``key`` with this fingerprint, else ``None``."""
        import torch

        path = self.path(key, ".pt")
        if path is None or not path.is_file():
            return None
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a torn or foreign file: recompute
            return None
        if not isinstance(saved, dict) or saved.get("fingerprint") != json.dumps(self.fingerprint, sort_keys=True):
            return None
        return saved["tensors"]

    def check_budget(self, key: str) -> None:
        """Raise :class:`BudgetExhausted` if starting run ``key`` now would overrun the budget."""
        if self.time_budget_s is None:
            return
        elapsed = self._clock() - self._start
        if elapsed + self._longest > self.time_budget_s:
            where = f"; the {len(self.computed) + len(self.loaded)} finished runs are in {self.directory}" \
                if self.directory is not None else ""
            pace = f"the longest run took {self._longest / 60:.1f} min" if self._longest else "no run has finished yet"
            raise BudgetExhausted(
                f"stopped before run {key!r}: {elapsed / 60:.1f} min spent of a {self.time_budget_s / 60:.1f} min "
                f"budget and {pace}{where}; give the same command again to continue")

    def clear(self) -> None:
        """Remove every run file of this store (after the reproduction's results are written)."""
        if self.directory is None or not self.directory.is_dir():
            return
        for path in self.directory.iterdir():
            if path.is_file() and path.suffix in (".json", ".pt"):
                path.unlink()
        try:
            self.directory.rmdir()
        except OSError:
            pass  # something else lives there: leave the folder


def run_reproduction(
    name: str,
    *,
    preset: str = "fast",
    data: str | os.PathLike[str] | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    command: str | None = None,
    epochs: int | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    time_budget_min: float | None = None,
) -> Path:
    """Run the reproduction ``name`` in ``preset`` and write ``<out_dir>/<name>.json``.

    Parameters
    ----------
    name, preset, data, seed
        The reproduction, its preset, its real data set (where it takes one) and seed.
    out_dir : path, optional
        Folder of the results file (default ``results/``).
    command : str, optional
        The command line recorded in the file (default: this process's).
    epochs : int, optional
        Train every network for ``epochs`` epochs instead of the preset's (reproductions that
        train only); the file records it as ``"epochs"``.
    runs_dir : path, optional
        Folder of the :class:`RunStore` of finished training runs. Default: with
        ``preset="full"``, ``<out_dir>/runs/<name>``; with ``"fast"``, none (every run computes).
        Removed once the results file is written.
    time_budget_min : float, optional
        Minutes after which no new training run starts (:class:`BudgetExhausted`).

    Raises
    ------
    ValueError
        If ``name`` is not registered, ``preset`` is not ``"fast"``/``"full"``, or ``epochs`` /
        ``time_budget_min`` are given to a reproduction that trains nothing.
    BudgetExhausted
        If the time budget ran out before every training run finished (no results file then).
    """
    check_option("preset", preset, _results.PRESETS)
    known = registry()
    if name not in known:
        raise ValueError(f"name: expected one of {sorted(known)}, got {name!r}")
    rep = known[name]
    kwargs: dict[str, Any] = {}
    if rep.trains and preset == "full":
        import torch

        if not torch.cuda.is_available():
            warnings.warn(f"{name}: the full preset trains at the paper's sizes and no CUDA device is available, so "
                          f"it runs on the CPU, which takes days (benchmarks/full_presets.py estimates it); "
                          f"--epochs shortens it and --time-budget splits it", RuntimeWarning, stacklevel=2)
    if rep.trains:
        if epochs is not None:
            epochs = check_int("epochs", epochs, 1)
        if runs_dir is None and preset == "full":
            runs_dir = Path(out_dir if out_dir is not None else _results.RESULTS_DIR) / "runs" / name
        fingerprint = {"name": name, "preset": preset, "seed": seed, "epochs": epochs,
                       "data": None if data is None else str(Path(data).resolve())}
        store = RunStore(runs_dir, fingerprint=fingerprint,
                         time_budget_s=None if time_budget_min is None else 60 * check_positive(
                             "time_budget_min", time_budget_min))
        kwargs = {"epochs": epochs, "store": store}
    elif epochs is not None or time_budget_min is not None:
        raise ValueError(f"epochs, time_budget_min: {name!r} trains no network; expected neither")
    rows = rep.run(preset, data=data, seed=seed, **kwargs)
    if command is None:
        command = "python -m softseg " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path = _results.write_results(
        name, rows, preset=preset, device=describe_device(), command=command, directory=out_dir, epochs=epochs
    )
    if rep.trains:
        kwargs["store"].clear()
    return path
