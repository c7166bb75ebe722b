"""The ``results/<name>.json`` format that every reproduction writes and the book reads.

One file per reproduction run::

    {
      "name": "soft-dice-table1",          # file stem, a registered reproduction
      "preset": "full",                    # "fast" | "full"
      "device": "cpu (2 threads)",         # where it ran, free text
      "created": "2026-11-23T10:00:00+00:00",  # ISO 8601 with time zone
      "command": "python -m softseg reproduce soft-dice-table1 --preset full",
      "rows": [
        {"table": "Table 1", "row": "S rho=0.01", "column": "e0 l=10", "ours": 0.021, "paper": 0.022},
        ...
      ]
    }

A run that trained its networks for fewer epochs than its preset says (a GPU lent for less time
than the paper's schedule needs: ``reproduce NAME --preset full --epochs 20``) also has a
top-level ``"epochs": 20``; the book shows it beside the preset.

``paper`` is ``null`` where the paper gives no value; ``ours`` is ``null`` only where a run could
not produce a number (the status page shows it as missing). Two optional row keys feed the
status page's verdict: ``tolerance`` (a number ≥ 0: the row *matches* when
``|ours - paper| <= tolerance``; the chapter says why that tolerance) and ``note`` (a MyST
label of the chapter section that explains the comparison, e.g. ``"sauna-training"``). :func:`write_results` is the one
writer; :func:`validate_results` is what the tests run on every committed file.

Where the files are: ``results/<name>.json`` is a reproduction's committed run — ``full`` where it
has been run, else the ``fast`` smoke run. A reproduction whose committed run is ``full`` may
keep a ``fast`` run beside it in ``results/fast/<name>.json`` (``python -m softseg reproduce NAME
--preset fast --out results/fast``); :func:`load_status_records` reads both, and the status page
shows the two presets side by side with a verdict (:func:`verdict`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "PRESETS",
    "RESULTS_DIR",
    "write_results",
    "validate_results",
    "load_results",
    "load_status_records",
    "VERDICTS",
    "verdict",
    "status_table",
    "status_heading",
    "verdict_markdown",
    "format_markdown_table",
    "preset_label",
]

PRESETS = ("fast", "full")
#: Default folder of committed results, relative to the repository root.
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"

_TOP_KEYS = {"name": str, "preset": str, "device": str, "created": str, "command": str, "rows": list}
_TOP_OPTIONAL_KEYS = ("epochs",)
_ROW_TEXT_KEYS = ("table", "row", "column")
_ROW_NUMBER_KEYS = ("ours", "paper")
_ROW_OPTIONAL_KEYS = ("tolerance", "note")


def _is_number_or_null(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_results(record: Mapping[str, Any], *, source: str = "results") -> None:
    """Check one results record against the schema.

    Parameters
    ----------
    record : mapping
        A parsed ``results/<name>.json``.
    source : str
        Name used in error messages (a file path, say).

    Raises
    ------
    ValueError
        Naming the first key or row that breaks the schema.
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"{source}: expected a JSON object, got {type(record).__name__}")
    missing = sorted(set(_TOP_KEYS) - set(record))
    if missing:
        raise ValueError(f"{source}: missing keys {missing}; expected keys {sorted(_TOP_KEYS)}")
    extra = sorted(set(record) - set(_TOP_KEYS) - set(_TOP_OPTIONAL_KEYS))
    if extra:
        raise ValueError(f"{source}: unexpected keys {extra}; expected keys {sorted(_TOP_KEYS)} "
                         f"(optionally {list(_TOP_OPTIONAL_KEYS)})")
    epochs = record.get("epochs")
    if "epochs" in record and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"{source}: key 'epochs': expected an integer >= 1, got {epochs!r}")
    for key, kind in _TOP_KEYS.items():
        if not isinstance(record[key], kind):
            raise ValueError(f"{source}: key {key!r}: expected {kind.__name__}, got {type(record[key]).__name__}")
    if record["preset"] not in PRESETS:
        raise ValueError(f"{source}: key 'preset': expected one of {PRESETS}, got {record['preset']!r}")
    if not record["name"]:
        raise ValueError(f"{source}: key 'name': expected a non-empty string")
    try:
        created = _dt.datetime.fromisoformat(record["created"])
    except ValueError as err:
        raise ValueError(f"{source}: key 'created': expected an ISO 8601 time, got {record['created']!r}") from err
    if created.tzinfo is None:
        raise ValueError(f"{source}: key 'created': expected a time zone, got {record['created']!r}")
    seen = set()
    for i, row in enumerate(record["rows"]):
        where = f"{source}: rows[{i}]"
        if not isinstance(row, Mapping):
            raise ValueError(f"{where}: expected an object, got {type(row).__name__}")
        keys = set(row)
        expected = set(_ROW_TEXT_KEYS) | set(_ROW_NUMBER_KEYS)
        if not expected <= keys <= expected | set(_ROW_OPTIONAL_KEYS):
            raise ValueError(
                f"{where}: expected keys {sorted(expected)} (optionally {list(_ROW_OPTIONAL_KEYS)}), "
                f"got {sorted(keys)}"
            )
        tolerance = row.get("tolerance")
        if tolerance is not None and not (_is_number_or_null(tolerance) and tolerance >= 0):
            raise ValueError(f"{where}: key 'tolerance': expected a finite number >= 0 or null, got {tolerance!r}")
        note = row.get("note")
        if note is not None and (not isinstance(note, str) or not note):
            raise ValueError(f"{where}: key 'note': expected a non-empty string (a MyST label) or null, got {note!r}")
        for key in _ROW_TEXT_KEYS:
            if not isinstance(row[key], str) or not row[key]:
                raise ValueError(f"{where}: key {key!r}: expected a non-empty string, got {row[key]!r}")
        for key in _ROW_NUMBER_KEYS:
            if not _is_number_or_null(row[key]):
                raise ValueError(f"{where}: key {key!r}: expected a finite number or null, got {row[key]!r}")
        ident = tuple(row[k] for k in _ROW_TEXT_KEYS)
        if ident in seen:
            raise ValueError(f"{where}: duplicate cell {ident}")
        seen.add(ident)


def write_results(
    name: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    preset: str,
    device: str,
    command: str,
    directory: str | os.PathLike[str] | None = None,
    created: _dt.datetime | None = None,
    epochs: int | None = None,
) -> Path:
    """Validate and write ``<directory>/<name>.json`` atomically (temp file + rename).

    Parameters
    ----------
    name : str
        Reproduction name; also the file stem.
    rows : iterable of mappings
        Each with keys ``table``, ``row``, ``column``, ``ours``, ``paper``. Numbers may be
        numpy or torch scalars; they are converted to Python floats.
    preset : {"fast", "full"}
    device : str
        Where the run happened, e.g. ``"cuda (NVIDIA H100)"`` or ``"cpu (2 threads)"``.
    command : str
        The command line that reproduces the file.
    directory : path, optional
        Defaults to the repository's ``results/``.
    created : datetime, optional
        Defaults to now (UTC).
    epochs : int, optional
        The training length when it overrode the preset's (written as ``"epochs"``).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    clean_rows = []
    for row in rows:
        clean = dict(row)
        for key in (*_ROW_NUMBER_KEYS, "tolerance"):
            if key == "tolerance" and key not in clean:
                continue
            value = clean.get(key)
            if value is not None and not isinstance(value, (int, float)):
                value = float(value)  # numpy / torch scalars
            clean[key] = value
        clean_rows.append(clean)
    record = {
        "name": name,
        "preset": preset,
        "device": device,
        "created": (created or _dt.datetime.now(_dt.timezone.utc)).isoformat(timespec="seconds"),
        "command": command,
        "rows": clean_rows,
    }
    if epochs is not None:
        record["epochs"] = epochs
    validate_results(record, source=f"write_results({name!r})")
    out_dir = Path(directory) if directory is not None else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".json.tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def preset_label(record: Mapping[str, Any]) -> str:
    """The preset of a results record as the book shows it: ``"full"``, or ``"full (shortened: 20
    epochs)"`` for a run whose networks trained fewer epochs than the preset says.

    Examples
    --------
    >>> preset_label({"preset": "full", "epochs": 20})
    'full (shortened: 20 epochs)'
    """
    label = str(record["preset"])
    return f"{label} (shortened: {record['epochs']} epochs)" if record.get("epochs") is not None else label


def load_results(directory: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Read and validate every ``*.json`` in ``directory`` (default ``results/``), sorted by name.

    A missing folder gives an empty list; an invalid file raises ``ValueError`` naming it.
    """
    folder = Path(directory) if directory is not None else RESULTS_DIR
    if not folder.is_dir():
        return []
    records = []
    for path in sorted(folder.glob("*.json")):
        with path.open(encoding="utf-8") as fh:
            try:
                record = json.load(fh)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: not valid JSON ({err})") from err
        validate_results(record, source=str(path))
        if record["name"] != path.stem:
            raise ValueError(f"{path}: key 'name' is {record['name']!r}, expected the file stem {path.stem!r}")
        records.append(record)
    return records


def load_status_records(directory: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every committed run: ``<directory>/*.json`` and ``<directory>/<preset>/*.json``.

    ``directory`` defaults to ``results/``. A file under ``<directory>/<preset>/`` must be of that
    preset; a reproduction may have at most one run per preset.

    Raises
    ------
    ValueError
        On an invalid file, a file in ``fast/`` or ``full/`` of another preset, or two runs of the
        same reproduction and preset.
    """
    folder = Path(directory) if directory is not None else RESULTS_DIR
    records = load_results(folder)
    for preset in PRESETS:
        for record in load_results(folder / preset):
            if record["preset"] != preset:
                raise ValueError(f"{folder / preset / (record['name'] + '.json')}: key 'preset' is "
                                 f"{record['preset']!r}, expected {preset!r} (the folder's name)")
            records.append(record)
    seen: set[tuple[str, str]] = set()
    for record in records:
        key = (record["name"], record["preset"])
        if key in seen:
            raise ValueError(f"{folder}: two {record['preset']!r} runs of {record['name']!r}; expected one per preset")
        seen.add(key)
    return records


#: The verdicts of :func:`verdict`, in the order the status page counts them.
VERDICTS = ("matches", "differs", "not compared", "missing")


def verdict(ours: float | None, paper: float | None, tolerance: float | None) -> str:
    """Compare one of our numbers with the paper's.

    Returns
    -------
    str
        ``"not compared"`` when the paper gives no value or the row sets no tolerance (a
        comparison is only made where the chapter justifies one); ``"missing"`` when it does but
        no run produced a number; else ``"matches"`` when :math:`|\\text{ours} - \\text{paper}|
        \\le \\text{tolerance}` and ``"differs"`` otherwise. The comparison forgives only the
        floating-point error of the subtraction (``1e-12`` relative to the numbers compared).
    """
    if paper is None or tolerance is None:
        return "not compared"
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"tolerance: expected a finite number >= 0, got {tolerance!r}")
    if ours is None:
        return "missing"
    rounding = 1e-12 * max(abs(ours), abs(paper), tolerance)
    return "matches" if abs(ours - paper) <= tolerance + rounding else "differs"


def status_table(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flatten records into one row per paper cell: ``paper`` beside ``ours`` for each preset.

    Returns a list of dicts with keys ``source`` (reproduction name), ``table``, ``row``,
    ``column``, ``paper``, ``fast``, ``full``, ``tolerance``, ``note``, ``compared`` and
    ``verdict``, in first-seen order. The verdict (:func:`verdict`) compares the ``full`` value
    when there is one, else the ``fast`` value (``compared`` names which), each with the
    ``tolerance`` of its own run: a tolerance derived from a run's sample size belongs to that run.
    ``note`` is the first non-null note of the cell's rows.
    """
    merged: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    tolerances: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for record in records:
        for row in record["rows"]:
            key = (record["name"], row["table"], row["row"], row["column"])
            entry = merged.setdefault(
                key,
                {"source": key[0], "table": key[1], "row": key[2], "column": key[3],
                 "paper": None, "fast": None, "full": None, "tolerance": None, "note": None},
            )
            entry[record["preset"]] = row["ours"]
            tolerances.setdefault(key, {})[record["preset"]] = row.get("tolerance")
            if entry["note"] is None and row.get("note") is not None:
                entry["note"] = row["note"]
            if row["paper"] is not None:
                entry["paper"] = row["paper"]
    cells = []
    for key, entry in merged.items():
        presets = tolerances[key]
        compared = "full" if entry["full"] is not None else "fast" if entry["fast"] is not None else None
        if compared is None:  # no number from any run: judge the most complete run that has the row
            compared = "full" if "full" in presets else "fast"
        entry["tolerance"] = presets.get(compared)
        entry["compared"] = compared
        entry["verdict"] = verdict(entry[compared], entry["paper"], entry["tolerance"])
        cells.append(entry)
    return cells


def status_heading(source: str, table: str) -> str:
    """The status page's section title of one table of one reproduction, e.g. ``Table 1 — soft-dice-table1``."""
    return f"{table} — {source}"


def verdict_markdown(cell: Mapping[str, Any], labels: Iterable[str] = ()) -> str:
    """A cell's verdict as MyST Markdown: a link to the chapter section of its ``note`` when that
    label is in ``labels`` (the book's labels), else the plain word."""
    word = cell["verdict"]
    note = cell.get("note")
    if word != "not compared" and cell.get("tolerance") is not None:
        word = f"{word} (±{cell['tolerance']:.2g})"
    if note and note in set(labels):
        return f"{{ref}}`{word} <{note}>`"
    return word


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def format_markdown_table(rows: Iterable[Mapping[str, Any]], columns: Iterable[str],
                          headers: Iterable[str] | None = None, digits: int = 4) -> str:
    """Render dict rows as a GitHub/MyST Markdown table; ``None`` shows as an em dash."""
    columns = list(columns)
    headers = list(headers) if headers is not None else columns
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c), digits) for c in columns) + " |")
    return "\n".join(lines)
