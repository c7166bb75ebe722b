"""``python -m softseg`` — see :mod:`softseg.cli`."""

from softseg.cli import main

raise SystemExit(main())
