"""``python -m openai_compat``: the same as the ``openai-compat`` command."""

import sys

from ._cli import main

sys.exit(main())
