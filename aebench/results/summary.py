"""The finished rows of a frame: what every mean over seeds is taken over (the report's statistics frame)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aebench.results.schema import QUALITY


def finished(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``ok`` rows whose quality metrics are all finite numbers (older files may hold NaN or null)."""
    ok = frame[frame["status"] == "ok"]
    quality = ok[list(QUALITY)].apply(pd.to_numeric, errors="coerce")
    return ok[np.isfinite(quality.to_numpy(dtype=float)).all(axis=1)]
