"""onebit.summary: golden table, hand-checked MAC counts, weight_mask, JSON (the CLI: tests/cli)."""
import json

import pytest
import torch
from torch import nn

import onebit
import onebit.models as zoo
from onebit.nn import BinaryConv2d, BinaryLinear

# Regenerate deliberately (after checking every number changed on purpose) with:
#   .venv/bin/python -c "import onebit, onebit.models as m; print(onebit.summary(m.create('mnist-small')).table())"
GOLDEN_MNIST_SMALL = """\
Model: mnist-small (width=1.0, num_classes=10)  input 1x28x28 (CxHxW, batch 1)

layer   type          output     1-bit  8-bit  32-bit  memory B  binary MACs  float MACs
------  ------------  --------  ------  -----  ------  --------  -----------  ----------
conv0   Conv2d        32x28x28       0      0     288      1152            0      225792
bn0     BatchNorm2d   32x28x28       0      0      64       256            0           0
pool0   MaxPool2d     32x14x14       0      0       0         0            0           0
conv1   BinaryConv2d  64x14x14   18432      0       0      4608      3612672           0
bn1     BatchNorm2d   64x14x14       0      0     128       512            0           0
pool1   MaxPool2d     64x7x7         0      0       0         0            0           0
conv2   BinaryConv2d  64x7x7     36864      0       0      4608      1806336           0
bn2     BatchNorm2d   64x7x7         0      0     128       512            0           0
fc1     BinaryLinear  128       401408      0       0     50176       401408           0
bn_fc1  BatchNorm1d   128            0      0     256      1024            0           0
fc      Linear        10             0      0    1290      5160            0        1280
total                           456704      0    2154     68008      5820416      227072

Params: 458,858 (456,704 1-bit, 0 8-bit, 2,154 32-bit)
Model size: 66.41 KiB (68,008 B) packed; float-32 equivalent 1.75 MiB (1,835,432 B); compression 26.99x
Binary MACs: 5.820 M  Float MACs: 227.072 k  OPs (BOPs/64 + FLOPs): 318.016 k
Convention: bit-MAC = 1 BOP; float MACs include the first conv (float/int8) and the last FC; see onebit.summarize."""


def test_summary_golden_table_mnist_small():
    assert onebit.summary(zoo.create("mnist-small")).table() == GOLDEN_MNIST_SMALL


def test_summary_mnist_small_hand_counts():
    t = onebit.summary(zoo.create("mnist-small")).totals
    # conv1 14*14*64*(32*9) + conv2 7*7*64*(64*9) + fc1 3136*128
    assert t["binary_macs"] == 14 * 14 * 64 * 288 + 7 * 7 * 64 * 576 + 3136 * 128
    # first conv 28*28*32*9 + last FC 128*10
    assert t["float_macs"] == 28 * 28 * 32 * 9 + 128 * 10
    assert t["params_1bit"] == 32 * 64 * 9 + 64 * 64 * 9 + 3136 * 128


def test_summary_cifar_binarynet_width1_hand_check():
    """BinaryNet VGG-small: binary conv work ~0.60 G bit-MACs, binary dense ~9.4 M.

    Convention: conv0 (float/int8) and the last FC (float) are float MACs.
    """
    s = onebit.summary(zoo.create("cifar-binarynet"))
    conv = sum(r["binary_macs"] for r in s.rows if r["type"] == "BinaryConv2d")
    dense = sum(r["binary_macs"] for r in s.rows if r["type"] == "BinaryLinear")
    by_hand_conv = (32 * 32 * 128 * 128 * 9 + 16 * 16 * 128 * 256 * 9 + 16 * 16 * 256 * 256 * 9
                    + 8 * 8 * 256 * 512 * 9 + 8 * 8 * 512 * 512 * 9)
    assert conv == by_hand_conv == 603_979_776  # 0.60 G
    assert dense == 8192 * 1024 + 1024 * 1024 == 9_437_184  # 9.4 M
    t = s.totals
    assert t["binary_macs"] == conv + dense
    assert t["float_macs"] == 32 * 32 * 128 * 27 + 1024 * 10
    assert t["ops"] == t["binary_macs"] / 64 + t["float_macs"]
    assert t["compression_ratio"] == t["float32_size_bytes"] / t["size_bytes"]


def test_summary_float_twin_has_no_binary_work():
    t = onebit.summary(zoo.create("cifar-binarynet", width=0.25, float_twin=True)).totals
    assert t["binary_macs"] == 0 and t["params_1bit"] == 0
    assert t["compression_ratio"] == 1.0


def test_summary_weight_mask_excludes_pruned_weights():
    torch.manual_seed(0)
    model = nn.Sequential(BinaryConv2d(64, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
    full = onebit.summary(model, input_size=(64, 5, 5)).totals
    mask = (torch.rand(8, 64, 3, 3) > 0.25).float()
    model[0].set_weight_mask(mask)
    pruned = onebit.summary(model, input_size=(64, 5, 5)).totals
    kept = int(mask.sum())
    assert full["binary_macs"] == 25 * 8 * 576
    assert pruned["binary_macs"] == 25 * kept
    assert pruned["params_1bit"] == kept
    assert pruned["pruned_weights"] == 8 * 576 - kept
    assert pruned["size_bytes"] == full["size_bytes"]  # packed storage unchanged by a mask
    assert "Pruned binary weights" in onebit.summary(model, input_size=(64, 5, 5)).table()


def test_summary_packed_memory_pads_to_64_bit_words():
    model = nn.Sequential(BinaryLinear(65, 3, bias=False))
    rows = onebit.summary(model, input_size=(65,)).rows
    assert rows[0]["memory_bytes"] == 3 * 2 * 8  # ceil(65/64) = 2 words per output
    assert rows[0]["params_1bit"] == 195


def test_summary_to_json_has_rows_and_totals():
    s = onebit.summary(zoo.create("mnist-small", width=0.25))
    d = json.loads(json.dumps(s.to_json()))
    for key in ("binary_macs", "float_macs", "params_1bit", "params_8bit", "params_32bit",
                "size_bytes"):
        assert key in d["totals"]
    assert [r["name"] for r in d["rows"]][:4] == ["conv0", "bn0", "pool0", "conv1"]
    assert d["rows"][3]["output_shape"] == [16, 14, 14]
    assert d["config"]["width"] == 0.25


def test_summary_restores_training_mode_and_rejects_bad_input():
    model = zoo.create("mnist-small", width=0.25)
    model.train()
    onebit.summary(model)
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="input_size"):
        onebit.summary(nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(ValueError, match="forward pass"):
        onebit.summary(model, input_size=(3, 28, 28))
    with pytest.raises(TypeError):
        onebit.summary("mnist-small")
