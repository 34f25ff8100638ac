import pytest

from onebit.errors import OnebitError
from onebit.train import TrainConfig, TrainConfigError


@pytest.mark.parametrize("field,value", [
    ("epochs", 0), ("batch_size", -1), ("lr", 0.0), ("width", -0.5), ("device", "tpu"),
    ("warmup", 1.0), ("label_smoothing", 1.5), ("seed", -3), ("limit_train", 0), ("threads", 0),
    ("stop_after", 0), ("weight_decay", -1.0),
], ids=lambda v: str(v))
def test_config_rejects_bad_value_naming_the_option(field, value):
    with pytest.raises(TrainConfigError, match=field):
        TrainConfig(model="mnist-small", dataset="mnist", **{field: value})


def test_config_error_is_onebit_and_value_error():
    assert issubclass(TrainConfigError, OnebitError) and issubclass(TrainConfigError, ValueError)


def test_config_dict_roundtrip():
    c = TrainConfig(model="cifar-binarynet", dataset="cifar10", epochs=3, width=0.25, clip_block=True)
    assert TrainConfig.from_dict(c.to_dict()) == c


def test_config_from_dict_rejects_unknown_key():
    with pytest.raises(TrainConfigError, match="bogus"):
        TrainConfig.from_dict({"model": "mnist-small", "dataset": "mnist", "bogus": 1})
