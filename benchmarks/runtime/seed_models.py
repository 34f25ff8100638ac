"""Small valid .onebit files covering every op type and stored form, used as fuzz seeds
(benchmarks/runtime/fuzz_loader.py) and by the C tools' tests: binary and int8-clip MNIST nets,
the int8 -> bitpack path, weight- and word-pruned nets (weight_mask, weight_word_mask,
weight_kept) and a small residual net (add, conv2d_i8, avgpool, global_avgpool)."""
from __future__ import annotations

import sys
from pathlib import Path


def write_seeds(folder: Path) -> list[Path]:
    import torch

    import onebit.convert as cv
    import onebit.models as om
    from onebit.models import randomize_bn

    # the test suite's small models (tests/tiny_models.py) are the seeds' architectures
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
    from tiny_models import CIFAR_SPEC, MNIST_SPEC, RAW_SPEC, exact_model, pruned, tiny_model

    torch.set_num_threads(1)
    folder.mkdir(parents=True, exist_ok=True)
    small = dict(MNIST_SPEC, shape=[12, 12, 1])
    models = {
        "tiny_bits": (tiny_model(3, clip=False), MNIST_SPEC),
        "tiny_clip": (tiny_model(3, clip=True), MNIST_SPEC),
        "exact_bitpack": (exact_model(5, clip=True), RAW_SPEC),
        "pruned_weight": (pruned(tiny_model(0, clip=True, size=12), "weight", 0.4, input_size=(1, 12, 12)), small),
        "pruned_word": (pruned(tiny_model(0, clip=True, size=12), "word", 0.4, input_size=(1, 12, 12)), small),
    }
    torch.manual_seed(0)
    res = om.create("birealnet18", clip_block=True, stem="cifar", width=0.125, input_size=16)
    models["residual_int8"] = (randomize_bn(res, 0, input_shape=res.input_shape).eval(),
                               dict(CIFAR_SPEC, shape=[16, 16, 3]))
    paths = []
    for name, (model, spec) in models.items():
        p = folder / f"{name}.onebit"
        p.write_bytes(cv.to_bytes(model, input_spec=spec))
        paths.append(p)
    return paths


if __name__ == "__main__":
    import sys

    for p in write_seeds(Path(sys.argv[1] if len(sys.argv) > 1 else "out/seeds")):
        print(p)
