"""The papers' claims that the book checks, and where: the rows of the reproduction-status page.

Two lists, both in the papers' own numbering:

- :data:`CLAIMS` — theorems, propositions, corollaries and stated properties. Each names the MyST
  label of the chapter section whose cells ``assert`` it. Every verification of the book is an
  ``assert`` in an executed cell and a failing cell fails the build, so a claim whose section is
  in the book is *verified by the build* that rendered the page.
- :data:`EXPERIMENTS` — the papers' tables and figures that a chapter reproduces numerically. Their
  numbers live in ``results/*.json`` (rows whose ``note`` is the entry's label are counted for it,
  see :func:`softseg.results.status_table`); the entry carries the section that explains the
  comparison.

:func:`book_labels` finds the ``(label)=`` targets of the chapters listed in ``_toc.yml``;
:func:`claim_status` gives each claim its verdict from them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PAPERS",
    "Claim",
    "CLAIMS",
    "EXPERIMENTS",
    "VERIFIED",
    "NOT_IN_BOOK",
    "toc_documents",
    "book_labels",
    "claim_status",
]

#: Citation key (``references.bib``) -> the short name shown on the status page.
PAPERS: Mapping[str, str] = {
    "nordstrom2023noisy": "Nordström et al. 2023",
    "wang2023dice": "Wang et al. 2023",
    "dang2024sauna": "Dang et al. 2024",
    "li2021margin": "Li et al. 2021",
}

#: Verdict of a claim whose section is in the book (its asserts ran in the build).
VERIFIED = "verified by the build"
#: Verdict of a claim whose section label is not (yet) in any chapter of ``_toc.yml``.
NOT_IN_BOOK = "not in the book yet"

_ROOT = Path(__file__).resolve().parent.parent
_LABEL_LINE = re.compile(r"^\(([A-Za-z0-9_.:-]+)\)=\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Claim:
    """One numbered statement of a paper and the section of the book that checks it.

    Attributes
    ----------
    key : str
        Citation key of the paper (a key of :data:`PAPERS`).
    item : str
        The paper's own name for it, e.g. ``"Theorem 1"`` or ``"Table 2"``.
    statement : str
        One line saying what is claimed (MyST Markdown; may hold ``$math$``).
    label : str
        MyST label of the chapter section that asserts it (a ``(label)=`` line).
    """

    key: str
    item: str
    statement: str
    label: str

    @property
    def paper(self) -> str:
        """Short name of the paper, e.g. ``"Wang et al. 2023"``."""
        return PAPERS[self.key]


#: Theorems, propositions and stated properties: each verified by the asserts of its section.
CLAIMS: tuple[Claim, ...] = (
    Claim("nordstrom2023noisy", "Theorem 1",
          r"the minimizers of soft-Dice are the sets $\{m > \sup_s \mathcal D_m(s)/2\}$, any value on the boundary (eq. (7))",
          "sd-thm1"),
    Claim("nordstrom2023noisy", "Theorem 2",
          r"optimal volumes lie in $[\lVert m \rVert_1^2, 1]$ and both bounds are sharp (eqs. (8)–(9))", "sd-thm2"),
    Claim("nordstrom2023noisy", "Theorem 3",
          r"thresholding a minimizing sequence at any $a \in (0, 1)$ reaches the optimal Dice (eqs. (10)–(11))",
          "sd-thm3"),
    Claim("nordstrom2023noisy", "Eq. (13), Figure 1",
          r"the 1/2-thresholded soft-Dice optimum is never smaller than the cross-entropy one $\{m \ge 1/2\}$",
          "sd-volume-bias"),
    Claim("wang2023dice", "Sect. 2",
          r"with soft labels SDL is not minimized at $x = y$ (for $y = 0.5$ its minimum is at $x = 1$)",
          "dml-sdl-failure"),
    Claim("wang2023dice", "Proposition 1, Theorem 1",
          r"the Dice loss is reflexive and positive exactly when the Jaccard loss is; "
          r"$\Delta_{\mathrm{DML},1}$ and $\Delta_{\mathrm{DML},2}$ are semimetrics on $[0, 1]^p$",
          "dml-thm1-semimetric"),
    Claim("wang2023dice", "Theorem 2",
          r"SDL $=$ DML1 $=$ DML2 when $x$ or $y$ is hard; they differ on some soft pairs", "dml-thm2-equality"),
    Claim("wang2023dice", "Theorem 3", r"$\Delta_{\mathrm{DML},1} \le \Delta_{\mathrm{DML},2}$ on $[0, 1]^p$",
          "dml-thm3-order"),
    Claim("dang2024sauna", "SAUNA transform (Sect. 3.2)",
          r"maps a 0-1 mask to a signed soft map in $[-1, 1]$ from boundary distance and vessel thickness "
          r"(eq. (2) read as max-pooling of the foreground distances, as in the released code; "
          r"a same-class reading is checked too)",
          "sauna-transform"),
    Claim("dang2024sauna", "Proposition 1", r"the Jaccard metric loss is a semimetric on any hypercube $[\alpha, \beta]^D$",
          "sauna-prop1"),
    Claim("dang2024sauna", "Sect. 3.4, Figure 4",
          r"Focal-L1 has a spurious local minimum for every $\tilde y_i \notin \{-1, 0, 1\}$ "
          r"(the paper says $\notin \{-1, 1\}$: false at $\tilde y_i = 0$, where the loss is $\lvert f\rvert^\gamma$)",
          "sauna-focal-spurious"),
    Claim("dang2024sauna", "Proposition 2",
          r"Stable Focal-L1 has one strict local and global minimum, at $x = y_0$ "
          r"(for every $\gamma > 0$; the supplement's proof assumes $\gamma \ge 1$)",
          "sauna-prop2"),
    Claim("dang2024sauna", "Proposition 3", r"Stable Focal-L1 $\le$ Focal-L1 on $[-1, 1]^D$", "sauna-prop3"),
    Claim("li2021margin", "Eqs. (5)–(8)",
          r"the $\rho$-margin losses bound the error rates, giving a lower bound of the empirical IoU",
          "margin-iou-bound"),
    Claim("li2021margin", "Theorem 1",
          r"the algebraic steps of the proof (eqs. (11)–(12), (15)→(16), (18)–(20)) and the behaviour of $\epsilon$ "
          r"for given counts, which is infinite at the chapter's sizes once $\sigma(1/\eta)$ is counted; the "
          r"probabilistic steps (eqs. (15)–(17)) and $p_k \approx n_k/n$ are taken as given, not checked",
          "margin-thm1"),
    Claim("li2021margin", "Corollary 1.1",
          r"at fixed $F$ (ignoring $\sigma(1/\eta)$'s dependence on $\rho_{\max}$), the margin offsets of eq. (23) "
          r"minimize the bound of Theorem 1 among offsets with a fixed sum; with $\sigma(1/\eta)$ counted they do "
          r"not (a lower bound is found, on a data set large enough for it to be finite)", "margin-cor11"),
    Claim("li2021margin", "Figure 1",
          r"the $\rho$-margin loss bounds the 0-1 loss and the $\rho$-calibrated log-loss bounds the $\rho$-margin loss",
          "margin-losses"),
)

#: Tables and figures reproduced numerically; their numbers come from ``results/*.json``.
EXPERIMENTS: tuple[Claim, ...] = (
    Claim("nordstrom2023noisy", "Table 1",
          "gradient descent on soft-Dice converges to the Theorem 1 optimum ($e_0$, $e_1$ per iterate)", "sd-table1"),
    Claim("wang2023dice", "Table 2, Sect. 3.4, 3.6",
          "soft labels (uniform/weighted rater mean) vs hard labels (majority, random), CE + DML and CE + SDL, "
          "on a synthetic stand-in (QUBIQ run owed): soft beats hard in BDice (reproduced), not in Dice or ECE "
          "against the majority vote (not reproduced); DML beats SDL in BDice with soft labels (Sect. 3.6, "
          "reproduced); the paper's LS is set beside boundary LS, the LS of the authors' code",
          "dml-training"),
    Claim("dang2024sauna", "Tables 1–2", "retinal vessel segmentation with SAUNA soft labels, GJML and Stable Focal-L1",
          "sauna-training"),
    Claim("dang2024sauna", "Table 3", "ablation of the SAUNA components and the losses", "sauna-ablation"),
    Claim("li2021margin", "Tables 2–4", "margin-calibrated training against other objectives", "margin-training"),
    Claim("li2021margin", "Table 1", r"sensitivity to the margin scale $\tau$ and $\nu$ (the paper's $v$)", "margin-tau"),
)


def toc_documents(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """The source files of every document in ``_toc.yml`` (root, chapters and sections).

    Raises
    ------
    ValueError
        If ``root`` holds no ``_toc.yml`` or the toc names a file that does not exist.
    """
    import yaml

    base = Path(root) if root is not None else _ROOT
    toc_path = base / "_toc.yml"
    if not toc_path.is_file():
        raise ValueError(f"root: expected a book folder holding _toc.yml, got {str(base)!r}")
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(entries: Iterable[Mapping] | None) -> None:
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("chapters"))
            walk(entry.get("sections"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    paths = []
    for name in names:
        candidates = [base / f"{name}{ext}" for ext in ("", ".md", ".ipynb", ".rst")]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise ValueError(f"_toc.yml: names {name!r} but none of {[c.name for c in candidates[1:]]} exists")
        paths.append(found)
    return paths


def book_labels(root: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Every ``(label)=`` target of the documents in ``_toc.yml``, mapped to its file.

    Raises
    ------
    ValueError
        If a label is defined twice (Sphinx would link only one of them).
    """
    labels: dict[str, Path] = {}
    for path in toc_documents(root):
        for label in _LABEL_LINE.findall(path.read_text(encoding="utf-8")):
            if label in labels:
                raise ValueError(f"label {label!r} is defined in both {labels[label]} and {path}")
            labels[label] = path
    return labels


def claim_status(claims: Iterable[Claim] = CLAIMS, labels: Mapping[str, object] | None = None) -> list[dict[str, str]]:
    """One row per claim: paper, item, statement, label, and the verdict.

    The verdict is :data:`VERIFIED` when the claim's label is a section of the book (its asserts
    are executed by every build, and a failing one fails it), else :data:`NOT_IN_BOOK`.
    """
    known = book_labels() if labels is None else labels
    return [
        {"paper": c.paper, "key": c.key, "item": c.item, "statement": c.statement, "label": c.label,
         "verdict": VERIFIED if c.label in known else NOT_IN_BOOK}
        for c in claims
    ]
