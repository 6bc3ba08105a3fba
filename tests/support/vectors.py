"""The signature vectors of Tencent's official SDKs, kept in the repository (``tests/data/vectors``).

``COSFS_VECTORS`` may point elsewhere (a newer capture). A missing file is an error, never an
empty list: a test that silently has no vectors proves nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

VECTORS = Path(os.environ.get("COSFS_VECTORS", Path(__file__).resolve().parents[1] / "data" / "vectors"
                              / "cos-signatures.json"))


def load_vectors() -> Dict[str, Any]:
    """Every section of ``cos-signatures.json``; raises if the file is missing."""
    if not VECTORS.is_file():
        raise FileNotFoundError(f"signature vectors not found at {VECTORS} (set COSFS_VECTORS)")
    return json.loads(VECTORS.read_text(encoding="utf-8"))
