"""On-disk cache of arrays computed from a dataset (features, resized images).

One .npz per key, written atomically; a missing, stale-format or unwritable cache only costs time.
"""
import os
import zipfile
from pathlib import Path

import numpy as np


def cached_array(path, compute, enabled=True):
    """compute(), or the array stored at `path` by an earlier call."""
    path = Path(path)
    if enabled and path.is_file():
        try:
            with np.load(path) as z:
                return z["array"]
        except (KeyError, ValueError, OSError, zipfile.BadZipFile):
            pass  # an older or damaged cache file: compute again
    array = compute()
    if enabled:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, array=array)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only dataset still works, only slower
    return array
