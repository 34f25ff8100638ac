"""Import Keras 2 / Larq models (``.h5``) as PyTorch modules made of ``onebit.nn`` layers.

``from_larq(path)`` reads the file with h5py alone (no TensorFlow, no Larq): the architecture
from the ``model_config`` attribute and the weights by layer name, and returns a
:class:`KerasGraph` (NCHW input) that computes Larq's forward. Weights-only files
(``model.save_weights``, as Larq Zoo publishes them) hold no architecture and are refused with
that reason.
:func:`onebit.convert.larq.check.exportable` says whether the converter can export the module.
"""
from __future__ import annotations

from onebit.convert.larq.h5file import KerasFile, LarqImportError, read
from onebit.convert.larq.modules import KerasGraph

__all__ = ["KerasGraph", "LarqImportError", "from_larq", "read"]


def from_larq(path, *, input_shape=None) -> KerasGraph:
    """Rebuild the Keras / Larq model saved in ``path`` as a torch module (eval mode).

    ``input_shape``: (H, W, C) where the saved model's input
    shape has undefined sizes. Raises :class:`LarqImportError` naming the layer on anything that
    cannot be imported exactly.
    """
    from onebit.convert.larq.build import build

    return build(read(path), input_shape)
