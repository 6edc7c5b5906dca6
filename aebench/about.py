"""The package's version and where it lies (read by rows and Ray workers without importing the package's face)."""

from pathlib import Path

__version__ = "0.1.0"
PACKAGE_DIR = Path(__file__).resolve().parent
