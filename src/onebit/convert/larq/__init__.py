"""Import Keras 2 / Larq models (``.h5``) as PyTorch modules made of ``onebit.nn`` layers.

``from_larq(path)`` reads the file with h5py alone (no TensorFlow, no Larq): the architecture
from the ``model_config`` attribute and the weights by layer name, and returns a
:class:`KerasGraph` (NCHW input) that computes Larq's forward. Weights-only files
(``model.save_weights``, as Larq Zoo publishes them) need the architecture by name:
``from_larq(path, larq_zoo="QuickNetSmall")`` (:mod:`onebit.convert.larq.zoo`).
:func:`onebit.convert.larq.check.exportable` says whether the converter can export the module.
"""
from __future__ import annotations

from onebit.convert.larq.h5file import KerasFile, LarqImportError, read
from onebit.convert.larq.modules import KerasGraph

__all__ = ["KerasGraph", "LarqImportError", "from_larq", "read"]


def from_larq(path, *, larq_zoo: str | None = None, match: str = "name", input_shape=None,
              identity_lambdas=()) -> KerasGraph:
    """Rebuild the Keras / Larq model saved in ``path`` as a torch module (eval mode).

    ``larq_zoo``: Larq Zoo architecture of a weights-only file (:func:`onebit.convert.larq.zoo.names`),
    its weights matched by layer name (``match="name"``) or by order (``match="order"``).
    ``identity_lambdas``: names or ``fnmatch`` patterns of ``Lambda`` layers that return their input
    (a Lambda's Python bytecode is never executed; other Lambdas are refused; a ``larq_zoo``
    architecture declares its own, :func:`onebit.convert.larq.zoo.identity_lambdas`). ``input_shape``: (H, W, C) where the saved model's input
    shape has undefined sizes. Raises :class:`LarqImportError` naming the layer on anything that
    cannot be imported exactly.
    """
    from onebit.convert.larq.build import build

    kf = read(path)
    if larq_zoo is not None:
        from onebit.convert.larq import zoo

        kf = zoo.with_architecture(kf, larq_zoo, match)
        identity_lambdas = tuple(identity_lambdas) + zoo.identity_lambdas(larq_zoo)
    return build(kf, input_shape, identity_lambdas)
