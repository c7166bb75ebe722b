"""Paper reproductions, one module per chapter, registered with :mod:`softseg.reproduce`.

Each module registers its ``run(preset, *, data=None, seed=0) -> rows`` with
:func:`softseg.reproduce.register`; :func:`softseg.reproduce.registry` imports every module of
this package (names starting with ``_`` excepted), so adding a chapter touches no shared file.
"""
