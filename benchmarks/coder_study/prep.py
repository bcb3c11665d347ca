"""Real images -> out/data/*.raw (int32 with an (h, w) header) for bench.c."""
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out" / "data"


def save(name, a):
    a = np.ascontiguousarray(a.astype(np.int32))
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{name}.raw", "wb") as f:
        f.write(np.array(a.shape, dtype=np.int32).tobytes())
        f.write(a.tobytes())
    print(name, a.shape, a.min(), a.max())


save("camera", np.load(DATA / "camera.npy"))
save("moon", np.load(DATA / "moon.npy"))
save("astronaut_g", np.load(DATA / "astronaut.npy")[:, :, 1])
save("mr2", np.load(DATA / "mr2_uint16.npy"))
save("ct693", np.load(DATA / "ct693_int16.npy"))
save("coins", np.load(DATA / "coins.npy"))
save("hubble_g", np.load(DATA / "hubble_deep_field.npy")[:, :, 1])
