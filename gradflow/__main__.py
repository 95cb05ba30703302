"""``python -m gradflow`` is the ``gradflow`` command."""

import sys

from .cli import main

sys.exit(main())
