"""``python -m aebench``."""

import sys

from aebench.cli import main

sys.exit(main())
