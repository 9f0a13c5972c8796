"""EncoderConfig: the validated encoder options shared by every backend, export and report."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from audiosep_kit.errors import AudioSepKitError, ConfigError
from audiosep_kit.model._config import (
    FILM_MODES,
    LAYERS,
    MIN_SAMPLES,
    POOLINGS,
    EncoderConfig,
    check_choice,
)


def _condition(seed: int = 0) -> np.ndarray:
    c = np.random.default_rng(seed).standard_normal(512)
    return (c / np.linalg.norm(c)).astype(np.float32)


def test_defaults_are_the_seed_setting():
    """Default: FiLM off, conv_block7a tap, mean pooling, time padded to a multiple of 32, 384-d."""
    config = EncoderConfig()
    assert (config.film, config.layer, config.pooling, config.pad_to_32) == ("none", "center", "mean", True)
    assert config.condition is None and config.condition_sha256 is None
    assert config.output_dim == 384
    assert MIN_SAMPLES == 1025


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [("film", "clap", FILM_MODES), ("layer", "block7", LAYERS), ("pooling", "median", POOLINGS)],
)
def test_unknown_name_lists_the_valid_ones(field, value, valid):
    """An unknown film / layer / pooling raises ConfigError naming the field, every valid value and the value got."""
    listed = ", ".join(repr(v) for v in valid)
    with pytest.raises(ConfigError, match=rf"`{field}` must be one of \{{{listed}\}}; got '{value}'") as info:
        EncoderConfig(**{field: value})
    assert isinstance(info.value, ValueError) and isinstance(info.value, AudioSepKitError)


def test_check_choice_returns_the_value():
    """check_choice passes a valid value through unchanged."""
    assert check_choice("pooling", "max", POOLINGS) == "max"


def test_query_without_condition_is_refused():
    """film='query' needs the 512-d condition; the message says how to pass it."""
    with pytest.raises(ConfigError, match=r"film='query' needs a 512-d condition vector.*--condition"):
        EncoderConfig(film="query")


@pytest.mark.parametrize("film", ["none", "zero"])
def test_condition_with_another_film_mode_is_refused(film):
    """A condition given with film none/zero would be reported but unused: refused."""
    with pytest.raises(ConfigError, match=rf"only used with film='query'; got film='{film}'"):
        EncoderConfig(film=film, condition=_condition())


@pytest.mark.parametrize("shape", [(511,), (513,), (2, 512), ()])
def test_wrong_condition_size_is_refused(shape):
    """A condition that is not 512 numbers raises ConfigError stating the expected size and the shape got."""
    condition = np.zeros(shape, dtype=np.float32)
    with pytest.raises(ConfigError, match=r"must be 512 finite numbers; got shape " + re.escape(str(shape))):
        EncoderConfig(film="query", condition=condition)


def test_non_finite_condition_is_refused():
    """A NaN in the condition is refused like a wrong size."""
    condition = _condition()
    condition[3] = np.nan
    with pytest.raises(ConfigError, match=r"must be 512 finite numbers"):
        EncoderConfig(film="query", condition=condition)


def test_query_condition_is_stored_as_float32_with_its_checksum():
    """A float64 (512,) or (1, 512) condition becomes a float32 (512,) vector; its sha256 is stable."""
    c64 = _condition().astype(np.float64)
    a = EncoderConfig(film="query", condition=c64)
    b = EncoderConfig(film="query", condition=c64[None].astype(np.float32))
    assert a.condition.dtype == np.float32 and a.condition.shape == (512,)
    assert a.condition_sha256 == b.condition_sha256 and len(a.condition_sha256) == 64
    assert a == b  # equality compares the checksum, not the array
    assert EncoderConfig(film="query", condition=_condition(1)).condition_sha256 != a.condition_sha256


@pytest.mark.parametrize("value", [1, "yes", None])
def test_pad_to_32_must_be_a_bool(value):
    """pad_to_32 is a bool (an int or string is refused, not coerced)."""
    with pytest.raises(ConfigError, match=r"`pad_to_32` must be a bool"):
        EncoderConfig(pad_to_32=value)


@pytest.mark.parametrize(
    ("layer", "pooling", "dim"),
    [
        ("center", "mean", 384),
        ("center", "max", 384),
        ("center", "meanstd", 768),
        ("center", "frames", 384),
        ("center", "none", None),
        ("block1", "mean", 32),
        ("block2", "meanstd", 128),
        ("block3", "max", 128),
        ("block4", "mean", 256),
        ("block5", "mean", 384),
        ("block6", "mean", 384),
    ],
)
def test_output_dim(layer, pooling, dim):
    """output_dim is the tap's channels (twice for meanstd) and None for the full map."""
    assert EncoderConfig(layer=layer, pooling=pooling).output_dim == dim


def test_config_is_frozen():
    """Options cannot change after validation."""
    config = EncoderConfig()
    with pytest.raises(dataclasses.FrozenInstanceError, match="film"):
        config.film = "zero"  # type: ignore[misc]


def test_to_dict_is_json_safe_and_omits_the_array():
    """to_dict() is JSON-serialisable; the condition appears only as its checksum."""
    config = EncoderConfig(film="query", condition=_condition(), layer="block4", pooling="meanstd", pad_to_32=False)
    out = json.loads(json.dumps(config.to_dict()))
    assert out == {
        "film": "query",
        "layer": "block4",
        "pooling": "meanstd",
        "pad_to_32": False,
        "condition_sha256": config.condition_sha256,
        "output_dim": 512,
    }
