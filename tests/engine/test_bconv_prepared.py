"""Prepared weights (re-laid out once per ISA) give exactly the results of plain packed weights."""
from __future__ import annotations

import numpy as np
import pytest

from onebit.runtime import kernels

from _bconv_cases import OUTPUTS, packed, stage_params


@pytest.mark.parametrize("shape", [(1, 7, 9, 65, 17, 3, 1), (2, 8, 8, 513, 9, 5, 2), (1, 7, 7, 512, 64, 3, 1),
                                   (1, 3, 3, 1, 1, 1, 1)], ids=lambda s: "n{}_{}x{}x{}-{}_k{}_s{}".format(*s))
def test_bconv_prepared_equals_plain(isa, shape):
    n, h, w, cin, cout, k, stride = shape
    rng = np.random.default_rng(list(shape))
    x, wt = packed(rng, (n, h, w, cin)), packed(rng, (cout, k, k, cin))
    prep = kernels.prepare_weights(wt, in_channels=cin, isa=isa)
    assert prep.isa == isa and prep.shape == wt.shape and prep.in_channels == cin
    for output in OUTPUTS:
        params = stage_params(rng, cout, k * k * cin, output)
        plain = kernels.bconv2d(x, wt, in_channels=cin, stride=stride, padding=k // 2, output=output, isa=isa,
                                **params)
        got = kernels.bconv2d(x, prep, in_channels=cin, stride=stride, padding=k // 2, output=output, isa=isa,
                              threads=3, **params)
        np.testing.assert_array_equal(got, plain, err_msg=output)


def test_bdense_prepared_equals_plain(isa):
    rng = np.random.default_rng(9)
    x, wt = packed(rng, (3, 1000)), packed(rng, (70, 1000))
    prep = kernels.prepare_weights(wt, in_channels=1000, isa=isa)
    np.testing.assert_array_equal(kernels.bdense(x, prep, in_features=1000, isa=isa),
                                  kernels.bdense(x, wt, in_features=1000, isa="scalar"))


def test_bconv_prepared_mismatch_raises():
    rng = np.random.default_rng(1)
    x, wt = packed(rng, (1, 5, 5, 70)), packed(rng, (8, 3, 3, 70))
    prep = kernels.prepare_weights(wt, in_channels=70, isa="scalar")
    other = [i for i in kernels.engine.supported_isas() if i != "scalar"]
    if other:
        with pytest.raises(ValueError, match="prepared for ISA 'scalar'"):
            kernels.bconv2d(x, prep, in_channels=70, padding=1, isa=other[0])
    with pytest.raises(ValueError, match="in_channels=70, not 64"):
        kernels.bconv2d(packed(rng, (1, 5, 5, 64)), prep, in_channels=64, padding=1, isa="scalar")
    with pytest.raises(ValueError, match="need 2-D"):
        kernels.bdense(packed(rng, (1, 70)), prep, in_features=70, isa="scalar")
    with pytest.raises(ValueError, match="4-D .* or 2-D"):
        kernels.prepare_weights(wt[0], in_channels=70)
    with pytest.raises(ValueError, match="nonzero padding bits"):
        bad = wt.copy()
        bad[0, 0, 0, 1] |= np.uint64(1) << np.uint64(63)
        kernels.prepare_weights(bad, in_channels=70)
