"""The backend registry (``runtime/backends/__init__.py``): options a backend does not take are refused clearly."""

from __future__ import annotations

import pytest

from audiosep_kit.errors import ConfigError
from audiosep_kit.model import EncoderConfig
from audiosep_kit.runtime.backends import BACKENDS, BackendEntry, backend_options, backends_taking, make_backend
from audiosep_kit.runtime.backends._eager import make_eager


def test_options_are_read_from_the_factories():
    assert backends_taking("model_path") == ("onnx", "aoti")
    assert backend_options("eager") == ("precision", "tf32")
    assert "stft" in backend_options("fast") and "model_path" not in backend_options("compile")


@pytest.mark.parametrize("name", ["eager", "compile", "fast"])
def test_model_path_for_a_backend_without_artifacts_is_a_config_error(name, random_weights, tmp_path):
    """Not the factory's TypeError: the message names the backends that take model_path."""
    pattern = (
        rf"backend '{name}' takes no option 'model_path' \(it takes \[.*\]\); "
        r"'model_path' is an option of the backends \['onnx', 'aoti'\]"
    )
    with pytest.raises(ConfigError, match=pattern):
        make_backend(name, random_weights, EncoderConfig(), "cpu", model_path=tmp_path / "m.onnx")


def test_a_misspelt_option_says_no_backend_takes_it(random_weights):
    with pytest.raises(ConfigError, match=r"no registered backend takes 'model_paht' \(check its spelling\)"):
        make_backend("onnx", random_weights, EncoderConfig(), "cpu", model_paht="m.onnx")


def test_a_factory_taking_any_option_gets_them_all(random_weights, monkeypatch):
    seen = {}

    def factory(weights, config, device, **options):
        seen.update(options)
        return make_eager(weights, config, device)

    monkeypatch.setitem(BACKENDS, "anything", BackendEntry(factory))
    assert backend_options("anything") is None and "anything" in backends_taking("model_path")
    make_backend("anything", random_weights, EncoderConfig(), "cpu", model_path="m.onnx", whatever=1)
    assert seen == {"model_path": "m.onnx", "whatever": 1}
