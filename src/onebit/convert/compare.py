"""Engine vs integer simulation, value by value (the check behind "engine == simulation").

Every intermediate value of a :class:`onebit.runtime.Session` run is compared with the
simulation's, with equality: bits and int8 are integers, and every float32 value (output
stages, float 1x1 convs, float pooling, adds, the float head) is computed by the simulation in
the engine's documented operation order (:mod:`onebit.convert.simulate`), so it is bit-exact too.
"""
from __future__ import annotations

import numpy as np
import torch

from onebit import bits as _bits


def engine_vs_simulation(session, sim, x) -> dict:
    """Run both on ``x``; returns ``{value name: max abs difference}`` (all 0 when they agree).

    Raises ``AssertionError`` naming the first value (in execution order) that differs.
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
        if e.shape != s.shape:
            raise AssertionError(f"value {op.output!r} ({op.type}): engine shape {e.shape} != "
                                 f"simulation shape {s.shape}")
        diff = float(np.abs(e.astype(np.float64) - s.astype(np.float64)).max()) if e.size else 0.0
        diffs[op.output] = diff
        if diff != 0.0:
            raise AssertionError(f"value {op.output!r} ({op.type}, {v.kind}): engine and simulation "
                                 f"differ (max |diff| = {diff})")
    return diffs
