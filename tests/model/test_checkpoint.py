"""Strict checkpoint loading: formats, prefixes, refusals, weights identity, random weights, lookup."""

from __future__ import annotations

import csv
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from audiosep_kit.errors import CheckpointError
from audiosep_kit.model._checkpoint import (
    CHECKPOINT_ENV,
    build_encoder,
    load_weights,
    read_state_dict,
    resolve_checkpoint,
    select_encoder_state,
    weights_sha256,
)
from audiosep_kit.model._encoder import AudioSepEncoder
from audiosep_kit.model._stft_kernels import dft_kernels

#: weights_sha256 of the golden checkpoint's encoder subset. A change here means every feature store,
#: export and report made so far names its weights differently: change the scheme deliberately only.
GOLDEN_SHA256 = "8cef3f72bee92569c3c7914e1ce0783f2be8005704fa7834eb2504d481837f76"


@dataclass
class _CallbackState:
    """Stands in for the custom objects a real Lightning checkpoint pickles (callbacks, loops)."""

    every_n_steps: int = 10_000


@pytest.fixture(scope="module")
def expected():
    return AudioSepEncoder().state_dict()


@pytest.fixture(scope="module")
def full_layout_state(shared_dir, golden_raw_state_dict) -> dict[str, torch.Tensor]:
    """All 332 ``ss_model.*`` keys of full_ss_model_keys.tsv (golden tensors for the encoder subset,
    zeros elsewhere, stored as 1-element expanded views to keep files small) plus ``query_encoder.*`` keys."""
    with open(shared_dir / "audiosep" / "full_ss_model_keys.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 332
    state: dict[str, torch.Tensor] = {}
    for row in rows:
        if row["in_encoder_subset"] == "yes":
            state[row["key"]] = golden_raw_state_dict[row["key"]]
        else:
            shape = () if row["shape"] == "scalar" else tuple(int(d) for d in row["shape"].split("x"))
            state[row["key"]] = torch.zeros((), dtype=getattr(torch, row["dtype"])).expand(shape)
    state["query_encoder.model.logit_scale_a"] = torch.tensor(2.0)
    state["query_encoder.model.text_branch.embeddings.position_ids"] = torch.arange(514)[None]
    state["query_encoder.model.audio_projection.0.weight"] = torch.zeros(()).expand(512, 768)
    return state


def _without(state: dict, key: str) -> dict:
    return {k: v for k, v in state.items() if k != key}


def _assert_golden_subset(selected: dict, golden_weights) -> None:
    assert list(selected) == list(golden_weights.state_dict)
    assert all(torch.equal(selected[k], golden_weights.state_dict[k]) for k in selected)


# --- formats and layouts ------------------------------------------------------------------------


def test_golden_checkpoint_loads_strictly(golden_weights, golden_checkpoint):
    """checkpoint.ckpt: 129 tensors, prefix 'ss_model.', resolved source path, pinned sha256, not random."""
    assert len(golden_weights.state_dict) == 129
    assert golden_weights.prefix == "ss_model."
    assert golden_weights.source == str(golden_checkpoint.resolve())
    assert golden_weights.sha256 == GOLDEN_SHA256
    assert golden_weights.is_random is False
    assert golden_weights.describe() == {
        "source": str(golden_checkpoint.resolve()),
        "sha256": GOLDEN_SHA256,
        "prefix": "ss_model.",
        "random_weights": False,
    }
    model = build_encoder(golden_weights)
    assert torch.equal(model.base.pre_conv.bias, golden_weights.state_dict["base.pre_conv.bias"])


def test_full_ss_model_lightning_checkpoint_loads_its_encoder_subset(full_layout_state, golden_weights, tmp_path):
    """A Lightning .ckpt with all 332 ss_model keys, query_encoder keys and the usual extras
    (loops, callbacks, optimizer_states, lr_schedulers) loads exactly the 129 golden tensors."""
    path = tmp_path / "audiosep_base_4M_steps.ckpt"
    torch.save(
        {
            "epoch": 3,
            "global_step": 4_000_000,
            "pytorch-lightning_version": "2.0.0",
            "state_dict": full_layout_state,
            "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"current": {"completed": 3}}}},
            "callbacks": {"CheckpointEveryNSteps": {}},
            "optimizer_states": [
                {
                    "state": {0: {"step": torch.tensor(4.0), "exp_avg": torch.zeros(3)}},
                    "param_groups": [{"lr": 1e-4, "amsgrad": True, "params": [0]}],
                }
            ],
            "lr_schedulers": [{"last_epoch": 3}],
        },
        path,
    )
    weights = load_weights(path)
    _assert_golden_subset(weights.state_dict, golden_weights)
    assert weights.sha256 == GOLDEN_SHA256 and weights.prefix == "ss_model."


def test_flat_hub_file_with_query_encoder_keys_loads(full_layout_state, golden_weights, tmp_path):
    """A flat pytorch_model.bin (no wrapper) with ss_model.* and query_encoder.* keys loads the subset."""
    path = tmp_path / "pytorch_model.bin"
    torch.save(OrderedDict(full_layout_state), path)
    _assert_golden_subset(load_weights(path).state_dict, golden_weights)


@pytest.mark.parametrize("prefix", ["ss_model.", "", "model.ss_model.", "module.", "module.ss_model."])
def test_key_prefixes(prefix, golden_weights, expected):
    """'ss_model.', no prefix, and a wrapper in front ('model.ss_model.', 'module.') all select the same tensors."""
    raw = {prefix + k: v for k, v in golden_weights.state_dict.items()}
    selected, found = select_encoder_state(raw, expected)
    assert found == prefix
    _assert_golden_subset(selected, golden_weights)


def test_wrapper_prefix_from_a_file(golden_weights, tmp_path):
    """A file saved from a wrapper module ('model.ss_model.' keys under 'model') loads and records the prefix."""
    path = tmp_path / "wrapped.pt"
    torch.save({"model": {"model.ss_model." + k: v for k, v in golden_weights.state_dict.items()}}, path)
    weights = load_weights(path)
    assert weights.prefix == "model.ss_model." and weights.sha256 == GOLDEN_SHA256


def test_safetensors_and_flat_files_load(golden_flat_checkpoint, golden_safetensors_checkpoint, golden_weights):
    """The flat .bin and .safetensors versions of the golden checkpoint load the same tensors."""
    for path in (golden_flat_checkpoint, golden_safetensors_checkpoint):
        weights = load_weights(path)
        assert set(weights.state_dict) == set(golden_weights.state_dict)
        assert all(torch.equal(weights.state_dict[k], golden_weights.state_dict[k]) for k in weights.state_dict)


# --- refusals ---------------------------------------------------------------------------------


def test_missing_key_is_named(golden_raw_state_dict, expected):
    """A missing tensor raises CheckpointError naming it."""
    key = "ss_model.base.encoder_block3.conv_block1.conv2.weight"
    with pytest.raises(CheckpointError, match=r"missing 1 key\(s\): " + re.escape(key)):
        select_encoder_state(_without(golden_raw_state_dict, key), expected)


def test_missing_num_batches_tracked_is_named(golden_raw_state_dict, expected):
    """A missing num_batches_tracked (which torch's BatchNorm would fill silently) is reported by name."""
    key = "ss_model.base.encoder_block5.conv_block1.bn2.num_batches_tracked"
    with pytest.raises(CheckpointError, match=r"missing 1 key\(s\): " + re.escape(key)):
        select_encoder_state(_without(golden_raw_state_dict, key), expected)


def test_missing_key_in_a_file_names_file_and_key(golden_raw_state_dict, tmp_path):
    """load_weights on a file lacking bn0.num_batches_tracked names the file and the key."""
    path = tmp_path / "incomplete.ckpt"
    key = "ss_model.base.bn0.num_batches_tracked"
    torch.save({"state_dict": _without(golden_raw_state_dict, key)}, path)
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + r".*missing 1 key\(s\): " + re.escape(key)):
        load_weights(path)


@pytest.mark.parametrize(
    "key",
    [
        "ss_model.base.encoder_block1.conv_block1.bn1.extra",
        "ss_model.film.encoder_block1->conv_block1->beta3.weight",
        "ss_model.base.encoder_block7.conv_block1.bn1.weight",
        "ss_model.unknown_head.weight",
    ],
)
def test_unexpected_key_is_named(key, golden_raw_state_dict, expected):
    """An extra key inside the encoder's namespaces, or an unknown part of ss_model, is refused by name."""
    raw = {**golden_raw_state_dict, key: torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"unexpected 1 key\(s\): " + re.escape(key)):
        select_encoder_state(raw, expected)


def test_wrong_shape_is_named(golden_raw_state_dict, expected):
    """A tensor of the wrong shape is refused with its name, the expected and the actual shape."""
    key = "ss_model.base.pre_conv.weight"
    raw = {**golden_raw_state_dict, key: torch.zeros(32, 1, 3, 3)}
    with pytest.raises(
        CheckpointError, match=re.escape(f"{key}: expected (32, 1, 1, 1) torch.float32, got (32, 1, 3, 3)")
    ):
        select_encoder_state(raw, expected)


def test_wrong_dtype_is_named(golden_raw_state_dict, expected):
    """A float64 tensor where float32 is expected is refused by name."""
    key = "ss_model.base.bn0.running_var"
    raw = {**golden_raw_state_dict, key: golden_raw_state_dict[key].double()}
    message = f"{key}: expected (1025,) torch.float32, got (1025,) torch.float64"
    with pytest.raises(CheckpointError, match=re.escape(message)):
        select_encoder_state(raw, expected)


def test_several_problems_are_all_reported(golden_raw_state_dict, expected):
    """Missing, unexpected and mis-shaped keys are reported together, not one at a time."""
    raw = _without(golden_raw_state_dict, "ss_model.base.bn0.weight")
    raw["ss_model.base.bn0.extra"] = torch.zeros(1)
    raw["ss_model.base.pre_conv.bias"] = torch.zeros(16)
    pattern = r"missing 1 .*bn0\.weight \| unexpected 1 .*bn0\.extra \| 1 key\(s\) with wrong shape.*pre_conv\.bias"
    with pytest.raises(CheckpointError, match=pattern):
        select_encoder_state(raw, expected)


def test_not_an_audiosep_checkpoint(expected):
    """A state dict without any '...base.bn0.running_mean' key is refused with an example of the expected key."""
    with pytest.raises(
        CheckpointError, match=r"resnet\.pt is not an AudioSep checkpoint.*'ss_model\.base\.bn0\.running_mean'"
    ):
        select_encoder_state({"fc.weight": torch.zeros(2, 2)}, expected, source="resnet.pt")


def test_two_networks_are_ambiguous(golden_raw_state_dict, expected):
    """Two AudioSep networks under different prefixes cannot be chosen between."""
    raw = {**golden_raw_state_dict, **{"ema." + k: v for k, v in golden_raw_state_dict.items()}}
    with pytest.raises(CheckpointError, match=r"several AudioSep networks.*'ema\.ss_model\.'"):
        select_encoder_state(raw, expected)


def test_missing_file_names_path_and_how_to_change_it(tmp_path):
    """A missing checkpoint file names the path, --checkpoint and AUDIOSEP_CHECKPOINT."""
    path = tmp_path / "nowhere.ckpt"
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + r".*--checkpoint.*" + CHECKPOINT_ENV):
        load_weights(path)


@pytest.mark.parametrize("trust_pickle", [False, True])
@pytest.mark.parametrize("content", [bytes(range(256)) * 16, b"PK\x03\x04" + bytes(3000)], ids=["bytes", "zip"])
def test_corrupt_file(content, trust_pickle, tmp_path):
    """Garbage named .ckpt is refused as unreadable, naming the file, and never with advice to trust it."""
    path = tmp_path / "corrupt.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"^cannot read checkpoint .*corrupt\.ckpt") as info:
        load_weights(path, trust_pickle=trust_pickle)
    assert "trust" not in str(info.value)


class _RunsCode:
    """What a malicious checkpoint pickles: an object whose unpickling calls a function (a harmless one here)."""

    def __reduce__(self):
        import os

        return (os.getcwd, ())


def test_pickle_needing_unsafe_globals_is_refused_by_name_not_called_corrupt(golden_raw_state_dict, tmp_path):
    path = tmp_path / "malicious.ckpt"
    torch.save({"state_dict": golden_raw_state_dict, "payload": _RunsCode(), "cb": _CallbackState()}, path)
    pattern = (
        r"malicious\.ckpt was refused by safe loading .*needs the pickle global\(s\) "
        r"(?=.*(posix|nt)\.getcwd)(?=.*_CallbackState).*can run code\. If you trust this file, load it with "
        r"trust_pickle=True \(CLI: --trust-checkpoint\)"
    )
    with pytest.raises(CheckpointError, match=pattern) as info:
        load_weights(path)
    assert "corrupt" not in str(info.value)


@pytest.mark.parametrize(
    "content, found",
    [
        (b"hello world\nthis is a text file\n", r"not a PyTorch or safetensors checkpoint: it starts with b'hello wor"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\n", r"it is a Git LFS pointer.*git lfs pull"),
    ],
    ids=["text", "lfs-pointer"],
)
def test_text_file_says_what_it_is(content, found, tmp_path):
    """Not torch's bare ': 101' (a KeyError from the first byte read as a pickle opcode)."""
    path = tmp_path / "notes.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"^cannot read checkpoint .*notes\.ckpt: " + found) as info:
        load_weights(path)
    assert not str(info.value).endswith(": 101")


@pytest.mark.parametrize("name", ["empty.ckpt", "empty.safetensors"])
def test_empty_file_says_zero_bytes(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.\w+: it is an empty file \(0 bytes\).*Fetch it again"):
        load_weights(path)


def test_truncated_torch_file_says_damaged(golden_flat_checkpoint, tmp_path):
    path = tmp_path / "truncated.bin"
    path.write_bytes(golden_flat_checkpoint.read_bytes()[:4096])
    with pytest.raises(CheckpointError, match=r"starts like a torch\.save file .*damaged or truncated.*download"):
        load_weights(path)


def test_unreadable_file_says_permission_denied(tmp_path):
    path = tmp_path / "locked.ckpt"
    path.write_bytes(b"PK\x03\x04")
    path.chmod(0)
    try:
        try:
            path.open("rb").close()
        except PermissionError:
            pass
        else:
            pytest.skip("this user reads a mode-000 file (root, or CAP_DAC_OVERRIDE): no permission error to test")
        with pytest.raises(CheckpointError, match=r"permission denied reading .*locked\.ckpt.*chmod u\+r"):
            load_weights(path)
    finally:
        path.chmod(0o600)


def test_corrupt_safetensors(tmp_path):
    """A broken .safetensors file is refused, naming the file."""
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(CheckpointError, match=r"cannot read safetensors file .*broken\.safetensors"):
        load_weights(path)


def test_file_without_a_state_dict(tmp_path):
    """A file holding a bare tensor, or a dict without tensors, is refused."""
    bare = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), bare)
    with pytest.raises(CheckpointError, match=r"tensor\.pt does not hold a state dict \(got Tensor\)"):
        read_state_dict(bare)
    empty = tmp_path / "empty.pt"
    torch.save({"epoch": 1}, empty)
    with pytest.raises(CheckpointError, match=r"empty\.pt holds no tensors"):
        read_state_dict(empty)


def test_pickled_objects_need_trust_pickle(golden_raw_state_dict, golden_weights, tmp_path):
    """A Lightning ckpt holding a custom object is refused under weights_only with a message naming
    trust_pickle / --trust-checkpoint, and loads with trust_pickle=True."""
    path = tmp_path / "lightning_full.ckpt"
    torch.save({"state_dict": golden_raw_state_dict, "callbacks": {"every_n": _CallbackState()}}, path)
    pattern = (
        r"lightning_full\.ckpt was refused by safe loading \(torch\.load weights_only=True\): unpickling it needs "
        r"the pickle global\(s\) \S*_CallbackState, which safe loading does not allow"
    )
    with pytest.raises(CheckpointError, match=pattern + r".*trust_pickle=True \(CLI: --trust-checkpoint\)"):
        load_weights(path)
    weights = load_weights(path, trust_pickle=True)
    assert weights.sha256 == GOLDEN_SHA256


# --- weights identity -------------------------------------------------------------------------


def test_sha256_is_the_same_for_every_file_format(
    golden_checkpoint, golden_flat_checkpoint, golden_safetensors_checkpoint
):
    """The weights checksum is identical for .ckpt, flat .bin and .safetensors."""
    sums = {load_weights(p).sha256 for p in (golden_checkpoint, golden_flat_checkpoint, golden_safetensors_checkpoint)}
    assert sums == {GOLDEN_SHA256}


def test_sha256_ignores_key_order_and_sees_one_changed_value(golden_weights):
    """Reversing the key order keeps the checksum; nudging one value by one ulp changes it."""
    state = golden_weights.state_dict
    assert weights_sha256(OrderedDict(reversed(list(state.items())))) == GOLDEN_SHA256
    nudged = dict(state)
    value = state["base.conv_block7a.conv_block1.bn2.bias"].clone()
    value[0] = torch.nextafter(value[0], torch.tensor(float("inf")))
    nudged["base.conv_block7a.conv_block1.bn2.bias"] = value
    assert weights_sha256(nudged) != GOLDEN_SHA256


def test_sha256_sees_dtype_and_name(golden_weights):
    """Renaming a key changes the checksum, even with the same bytes."""
    state = dict(golden_weights.state_dict)
    state["base.bn0.weight_renamed"] = state.pop("base.bn0.weight")
    assert weights_sha256(state) != GOLDEN_SHA256


# --- random weights -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_zero():
    return load_weights("random:0")


def test_random_weights_are_deterministic_and_labelled(random_zero):
    """random:SEED gives the same tensors every time, source 'random:SEED', is_random, strict-loadable layout."""
    a, b, c = random_zero, load_weights("random:0"), load_weights("random:1")
    assert a.is_random and a.source == "random:0" and a.describe()["random_weights"] is True
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.sha256 == b.sha256 != c.sha256
    assert not torch.equal(a.state_dict["base.pre_conv.weight"], c.state_dict["base.pre_conv.weight"])
    select_encoder_state({"ss_model." + k: v for k, v in a.state_dict.items()}, AudioSepEncoder().state_dict())
    build_encoder(a)  # strict=True


def test_random_weights_have_the_true_dft_kernels(random_zero, golden_weights):
    """random:SEED carries the real STFT kernels, bit-equal to the golden (official torchlibrosa) ones."""
    state = random_zero.state_dict
    real, imag = dft_kernels()
    for name, kernel in (("base.stft.conv_real.weight", real), ("base.stft.conv_imag.weight", imag)):
        assert torch.equal(state[name], kernel)
        assert torch.equal(state[name], golden_weights.state_dict[name])


@pytest.mark.parametrize("spec", ["random:99999999999999999999", "random:18446744073709551616", "random:-1"])
def test_random_seed_out_of_range(spec):
    """Not torch's 'Overflow when unpacking long': the range and an example are given."""
    with pytest.raises(
        CheckpointError, match=r"seed of 'random:SEED' must be an integer from 0 to 18446744073709551615 .*got "
    ):
        load_weights(spec)


def test_largest_random_seed_loads():
    assert load_weights("random:18446744073709551615").source == "random:18446744073709551615"


@pytest.mark.parametrize("spec", ["random:x", "random:", "random:1.5"])
def test_bad_random_spec(spec):
    """A non-integer seed raises CheckpointError showing the expected form."""
    with pytest.raises(CheckpointError, match=r"'random:SEED' with an integer seed; got " + re.escape(repr(spec))):
        load_weights(spec)


# --- where the checkpoint comes from --------------------------------------------------------------


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_resolve_checkpoint_order(tmp_path, monkeypatch):
    """Explicit value > $AUDIOSEP_CHECKPOINT > pretrained_models/AudioSep/ under root (.ckpt before .bin) > None."""
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    assert resolve_checkpoint(None, root=tmp_path) is None
    hub = _touch(tmp_path / "pretrained_models" / "AudioSep" / "pytorch_model.bin")
    assert resolve_checkpoint(None, root=tmp_path) == str(hub)
    ckpt = _touch(tmp_path / "pretrained_models" / "AudioSep" / "audiosep_base_4M_steps.ckpt")
    assert resolve_checkpoint(None, root=tmp_path) == str(ckpt)
    monkeypatch.setenv(CHECKPOINT_ENV, "/from/env.ckpt")
    assert resolve_checkpoint(None, root=tmp_path) == "/from/env.ckpt"
    assert resolve_checkpoint("random:3", root=tmp_path) == "random:3"


def test_resolve_checkpoint_defaults_to_cwd(tmp_path, monkeypatch):
    """Without root, pretrained_models/ is looked up in the current directory."""
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    ckpt = _touch(tmp_path / "pretrained_models" / "AudioSep" / "audiosep_base_4M_steps.ckpt")
    assert Path(resolve_checkpoint(None)).resolve() == ckpt.resolve()
