"""`python -m synclip ...` == `synclip ...`."""

import sys

from .cli import main

sys.exit(main())
