"""Interactive figures of the book: one module per chapter.

Each module splits a widget into three layers so that the book and the tests can use it without
a browser: a pure function that computes the curves for given parameters (tested numerically),
a function that draws them on a Matplotlib figure (the book shows its default state as a static
figure; tests call it with non-default values), and a function that wires ipywidgets sliders to
the drawing function. ``ipywidgets`` is imported only inside the last, so ``softseg`` imports on
machines without it.
"""
