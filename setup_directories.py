"""Seed-compatible: `python setup_directories.py` == `synclip setup`."""

import sys

from synclip.cli import main

if __name__ == "__main__":
    sys.exit(main(["setup", *sys.argv[1:]]))
