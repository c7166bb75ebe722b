"""Data: synthetic generators and loaders of the papers' data sets in their distributed layouts.

Loaders read local paths only (no network at run time) and raise a ``ValueError`` that names the
files they expected when a layout is wrong. Every synthetic stand-in says so in its docstring and
in the figures of the chapter that uses it. Submodules are imported explicitly, e.g.
``from softseg.data import blobs``.
"""
