"""The model zoo: reference binary networks (DESIGN §3) behind one registry.

``onebit.models.create(name, *, width=1.0, num_classes=None, clip_block=False,
float_twin=False, input_size=None, stem=None)`` builds one; ``list_models()`` names them:
``mnist-small``, ``cifar-binarynet``, ``cifar-nin``, ``cifar-alexnet``, ``imagenette-small``,
``birealnet18``, ``quicknet-small``.

Conversion-friendly layer order (the converter relies on it): the first layer is a float
``nn.Conv2d`` + ``BatchNorm2d``; every binary layer (no bias) is followed by a BatchNorm; max
pooling comes after the BN (it commutes with sign); the last layer is a float ``nn.Linear``
producing logits. Plain networks are flat ``nn.Sequential`` with stable names (``conv0``,
``bn0``, ``conv1``, ``bn1``, ``pool1``, ..., ``flatten``, ``fc1``, ``bn_fc1``, ``fc``); the float
twin has the same names plus ``act*`` (ReLU) where the binary model binarizes. Residual networks
are :class:`onebit.models.blocks.ResidualNet` (dataflow documented in ``blocks.py``).

BNN-Clip (``clip_block=True``): every real-valued tensor crossing a layer boundary goes through a
:class:`onebit.nn.ClipBlock` (int8): in plain networks the input of the float classifier
(``clip_out``); in residual networks the stem output, each block's branch, shortcut and output.
Binary activations are 1 bit anyway; the network input is the uint8 image.

``randomize_bn(model, seed, input_shape=(C, H, W))`` gives a random-weight model realistic
BatchNorm statistics (benchmarks and tests run such models through the engine).
"""
from onebit.models import alexnet, binarynet, imagenette, mnist, nin, residual  # noqa: F401  (register)
from onebit.models.random_bn import randomize_bn
from onebit.models.registry import UnknownModelError, create, get_builder, list_models, register

__all__ = ["create", "list_models", "register", "get_builder", "UnknownModelError", "randomize_bn"]
