"""Engine vs integer simulation, value by value (the check behind "engine == simulation").

Every intermediate value of a :class:`onebit.runtime.Session` run is compared with the
simulation's: bits and int8 with equality, float32 stage outputs with equality (same two
roundings), the float head (``dense_f32``) to float32 rounding of its dot products.
"""
from __future__ import annotations

import numpy as np
import torch

from onebit import bits as _bits


def engine_vs_simulation(session, sim, x) -> dict:
    """Run both on ``x``; returns ``{value name: max abs difference}`` (0 for exact values).

    Raises ``AssertionError`` naming the first value that differs where equality is required
    or where the float head differs by more than float32 rounding allows.
    """
    u = session.to_uint8(x if isinstance(x, np.ndarray) else x.numpy())
    eng = session.run_values(u)
    _, env = sim(torch.from_numpy(np.array(u)), return_values=True)
    diffs = {}
    mf = session.model
    for op in mf.ops:
        v = mf.values[op.output]
        e = eng[op.output]
        s = env[op.output]
        if s.dim() == 4:
            s = s.permute(0, 2, 3, 1)
        s = s.numpy()
        if v.kind == "bits":
            e = _bits.unpack(e, v.shape[-1]).astype(np.float64)
        diff = float(np.abs(e.astype(np.float64) - s.astype(np.float64)).max()) if e.size else 0.0
        diffs[op.output] = diff
        if op.type == "dense_f32":
            xin = env[op.inputs[0]].to(torch.float64).numpy()
            w = mf.tensors[op.tensors["weight"]].astype(np.float64)
            # float32 sums in any order differ by <= n * eps * sum|w*x| (Higham)
            bound = xin.shape[1] * 2.0**-23 * (np.abs(xin) @ np.abs(w).T) + 1e-6
            if not np.all(np.abs(e.astype(np.float64) - s) <= bound):
                raise AssertionError(f"value {op.output!r} ({op.type}): engine and simulation differ by "
                                     f"{diff:.3g}, more than float32 rounding")
        elif diff != 0.0:
            raise AssertionError(f"value {op.output!r} ({op.type}, {v.kind}): engine and simulation "
                                 f"differ (max |diff| = {diff})")
    return diffs
