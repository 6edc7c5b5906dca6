"""aebench: compare autoencoder training techniques side by side, honestly and fast.

``aebench.run(experiment, ...)``, ``aebench.report(results=[...], out=...)``, ``aebench.load_results(folder)`` and
``aebench.statistics(folder)`` are the Python API (``aebench.api``); they load on first use, so ``import aebench`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from aebench.about import __version__

__all__ = ["__version__", "load_results", "report", "run", "statistics"]


def __getattr__(name: str) -> Any:
    """The API's functions, imported when first asked for."""
    if name in ("load_results", "report", "run", "statistics"):
        from aebench import api

        return getattr(api, name)
    raise AttributeError(f"module 'aebench' has no attribute '{name}'")
