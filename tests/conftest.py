import os
from pathlib import Path

import numpy as np
import pytest

DATA_DIR = Path(os.environ.get("PJ2K_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# Real images by class (see ../shared/data/SOURCES.md).
GRAY8 = ["camera", "moon", "coins"]
RGB8 = ["astronaut", "immunohistochemistry", "us1_rgb8", "chelsea", "coffee", "hubble_deep_field"]
GRAY16 = ["mr2_uint16", "ct693_int16", "nm_int16", "ect_uint16_2x512x512"]
VOLUMES = ["anatomical_int16_3d", "mni152_t1_uint8_3d"]
FLOATS = ["tlrc_float32_3d"]


def load(name: str) -> np.ndarray:
    path = DATA_DIR / f"{name}.npy"
    if not path.exists():
        pytest.fail(f"real test data missing: {path} (set PJ2K_DATA to the corpus folder)")
    return np.load(path)


@pytest.fixture(scope="session")
def real():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load(name)
        return cache[name]

    return get
