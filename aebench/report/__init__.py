"""The report: tables (markdown, LaTeX, CSV) and seaborn figures rebuilt from results files, and the study's published numbers.

The package is also callable, so that ``aebench.report(results=[...], out=...)`` is the Python API's report
function even once ``aebench.report.build`` (which binds this package to the name) has been imported.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable
from pathlib import Path


class CallableReport(types.ModuleType):
    """This package, callable as :func:`aebench.report.make.make_report`."""

    def __call__(self, results: Iterable[str | Path] | None = None, out: str | Path = "report") -> Path:
        from aebench.report.make import make_report

        return make_report(results, out)


sys.modules[__name__].__class__ = CallableReport
