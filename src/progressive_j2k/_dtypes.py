"""The format's sample dtypes, numbered as pj2k_dtype numbers them
(csrc/include/progressive_j2k.h): one table for the codec and the rate
search."""
import numpy as np

DTYPES = tuple(np.dtype(t) for t in ("u1", "i1", "u2", "i2", "u4", "i4", "f4", "f8"))
#: dtype (native byte order) -> its pj2k_dtype code
DTYPE_CODES = {dt: code for code, dt in enumerate(DTYPES)}
