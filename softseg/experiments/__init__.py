"""Paper reproductions, one module per chapter, registered with :mod:`softseg.reproduce`.

Each module registers its ``run(preset, *, data=None, seed=0) -> rows`` with
:func:`softseg.reproduce.register` and is listed in ``softseg.reproduce._EXPERIMENT_MODULES``.
"""
