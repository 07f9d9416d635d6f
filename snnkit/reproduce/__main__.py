"""``python -m snnkit.reproduce ...`` is ``snnkit reproduce ...``."""
import sys

from .cli import main

sys.exit(main())
