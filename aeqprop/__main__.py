"""``python -m aeqprop`` is the ``aeqprop`` command."""

import sys

from .cli import main

sys.exit(main())
