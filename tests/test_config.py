"""ResNetConfig validation and serialization."""

import json

import pytest

from keras_resnet import ResNetConfig, get_variant
from keras_resnet.training import TrainConfig
from keras_resnet.variants import VARIANTS, Variant, register_variant


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_json_round_trip(name):
    config = VARIANTS[name].config
    assert ResNetConfig.from_dict(json.loads(config.to_json())) == config
    assert hash(config) == hash(ResNetConfig.from_dict(config.to_dict()))


def test_per_layer_fields_expand_from_one_value():
    config = ResNetConfig(blocks=(1, 2, 3), channels=(8, 16, 32), conv_kernels=5,
                          skip_kernels=[3], block_dropout=0.1)
    assert config.conv_kernels == (5, 5, 5)
    assert config.skip_kernels == (3, 3, 3)
    assert config.block_dropout == (0.1, 0.1, 0.1)
    assert config.final_size == (8, 8)


@pytest.mark.parametrize("kwargs, message", [
    (dict(blocks=()), r"`blocks` must be a non-empty list.*Received: blocks=\(\)"),
    (dict(blocks=(2, 0)), r"Received: blocks=\(2, 0\)"),
    (dict(blocks=(2, 2), channels=(8, 16, 32)), r"one per residual layer \(2\).*channels="),
    (dict(channels=(64, 0, 1, 2)), r"`channels` must be positive"),
    (dict(conv_kernels=(3, 3)), r"`conv_kernels` must have one value or one per residual"),
    (dict(skip_kernels=0), r"`skip_kernels` must be positive.*Received: skip_kernels=0"),
    (dict(pool_size=5), r"`pool_size` must be None or an integer in \[1, 4\].*pool_size=5"),
    (dict(pool_size=2.5), r"Received: pool_size=2.5"),
    (dict(head="max"), r"`head` must be one of avg, avg_max. Received: head='max'"),
    (dict(se="everywhere"), r"`se` must be one of none, stem, block.*se='everywhere'"),
    (dict(se_ratio=0), r"`se_ratio` must be a positive integer. Received: se_ratio=0"),
    (dict(dropout=1.0), r"`dropout` must be in \[0, 1\). Received: dropout=1.0"),
    (dict(block_dropout=-0.1), r"`block_dropout` must be in \[0, 1\)"),
    (dict(activation="sigmoidal"), r"`activation` must be one of .*activation='sigmoidal'"),
    (dict(kernel_initializer="ones"), r"kernel_initializer='ones'"),
    (dict(num_classes=1), r"`num_classes` must be an integer of at least 2.*num_classes=1"),
    (dict(input_shape=(32, 32)), r"`input_shape` must be \(height, width, channels\)"),
    (dict(blocks=(1,) * 7, channels=(8,) * 7), r"too many for input_shape=\(32, 32, 3\)"),
    (dict(std=(0.2, 0.0, 0.2)), r"`std` must be positive"),
    (dict(mean=(0.5, 0.5)), r"`mean` must have one value or one per residual layer \(3\)"),
    (dict(blocks="abc"), r"`blocks` must be one number or one per residual layer"),
])
def test_invalid_fields_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResNetConfig(**kwargs)


def test_from_dict_refuses_unknown_fields():
    with pytest.raises(ValueError, match=r"Unknown architecture field\(s\) width"):
        ResNetConfig.from_dict({"width": 3})


def test_get_variant_errors_name_the_choices():
    with pytest.raises(ValueError, match=r"expected one of resnet18, .*Received: variant='big'"):
        get_variant("big")
    with pytest.raises(ValueError, match=r"Unknown architecture field\(s\) depth; expected some of activation"):
        get_variant("tiny", depth=3)


def test_register_refuses_a_taken_name():
    with pytest.raises(ValueError, match="A variant named 'tiny' exists"):
        register_variant(Variant("tiny", ResNetConfig(), TrainConfig(), 1, "x", "0%"))
