import json
import struct

import numpy as np
import pytest

from infercore.models.hf import load_hf_model
from infercore.models.safetensors import SafetensorsFile

_DT = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int8"): "I8"}


def _save(arrays: dict, path) -> None:
    """Our own tiny safetensors writer, so the corruption tests need no peer package."""
    header, blobs, off = {}, [], 0
    for k, a in arrays.items():
        b = np.ascontiguousarray(a).tobytes()
        header[k] = {"dtype": _DT[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def _raw(tmp_path, header: dict, data: bytes, name="raw.safetensors"):
    h = json.dumps(header).encode()
    p = tmp_path / name
    p.write_bytes(struct.pack("<Q", len(h)) + h + data)
    return p


def test_matches_safetensors_package(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(0)
    arrays = {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "f16": rng.standard_normal((7,)).astype(np.float16),
        "i8": rng.integers(-128, 127, (2, 2, 3), dtype=np.int8),
        "i64": np.arange(5, dtype=np.int64),
        "b": np.array([True, False, True]),
        "empty": np.zeros((0, 4), np.float32),
        "scalar": np.array(3.5, dtype=np.float64),
    }
    p = tmp_path / "m.safetensors"
    st_numpy.save_file(arrays, str(p), metadata={"format": "np"})
    f = SafetensorsFile(p)
    assert f.metadata == {"format": "np"} and set(f) == set(arrays) and len(f) == len(arrays)
    for k, v in arrays.items():
        assert f[k].dtype == v.dtype and f[k].shape == v.shape
        np.testing.assert_array_equal(f[k], v)
    assert np.shares_memory(f["f32"], f._mm)
    with pytest.raises(KeyError, match="nope"):
        f["nope"]


def test_bf16_and_fp8_via_torch(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = torch.randn(4, 6)
    p = tmp_path / "bf.safetensors"
    st_torch.save_file({"bf": x.to(torch.bfloat16), "f8": x.to(torch.float8_e4m3fn)}, str(p))
    f = SafetensorsFile(p)
    assert f.tensors["bf"].dtype_name == "BF16" and f["bf"].dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(f["bf"].astype(np.float32), x.to(torch.bfloat16).float().numpy())
    np.testing.assert_array_equal(f["f8"].astype(np.float32), x.to(torch.float8_e4m3fn).float().numpy())


@pytest.mark.parametrize(
    ("header", "data", "msg"),
    [
        ({"a": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "unknown dtype 'F33'"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "do not hold 2 elements"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "run past the end"),
        ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "non-negative ints"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4]}}, b"\0" * 4, "begin, end"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
            },
            b"\0" * 8,
            "'b': data overlaps tensor 'a'",
        ),
        ({"__metadata__": {"k": 1}}, b"", "__metadata__"),
        ({"a": 3}, b"", "'a': entry must be an object"),
        ({"a": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "unknown dtype"),
        ({"a": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}, b"\0" * 4, "non-negative ints"),
    ],
)
def test_corrupt_headers(tmp_path, header, data, msg):
    with pytest.raises(ValueError, match=msg):
        SafetensorsFile(_raw(tmp_path, header, data))


def test_truncated_and_garbage(tmp_path):
    p = tmp_path / "t.safetensors"
    _save({"a": np.ones((4, 4), np.float32)}, p)
    data = p.read_bytes()
    q = tmp_path / "cut.safetensors"
    for n in list(range(0, 40)) + [len(data) - 1]:
        q.write_bytes(data[:n])
        with pytest.raises(ValueError, match=r"cut\.safetensors"):
            SafetensorsFile(q)
    q.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(ValueError, match="header length"):
        SafetensorsFile(q)
    q.write_bytes(struct.pack("<Q", 4) + b"\xff{}}")
    with pytest.raises(ValueError, match="not valid UTF-8 JSON"):
        SafetensorsFile(q)
    q.write_bytes(struct.pack("<Q", 2) + b"[]")
    with pytest.raises(ValueError, match="JSON object"):
        SafetensorsFile(q)
    with pytest.raises(ValueError, match="cannot open"):
        SafetensorsFile(tmp_path / "missing.safetensors")


def _tiny_llama_config():
    return {
        "model_type": "llama",
        "vocab_size": 16,
        "hidden_size": 8,
        "intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
    }


def test_sharded_hf_dir(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(_tiny_llama_config()))
    a, b = np.ones((16, 8), np.float32), np.full((8,), 2.0, np.float32)
    _save({"embed": a}, tmp_path / "model-00001-of-00002.safetensors")
    _save({"norm": b}, tmp_path / "model-00002-of-00002.safetensors")
    index = {
        "metadata": {},
        "weight_map": {"embed": "model-00001-of-00002.safetensors", "norm": "model-00002-of-00002.safetensors"},
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    m = load_hf_model(tmp_path, skip_tokenizer_init=True)
    assert m.model_config.num_kv_heads == 1 and m.tokenizer is None and len(m.files) == 2
    w = m.weights()
    np.testing.assert_array_equal(w["embed"], a)
    np.testing.assert_array_equal(m["norm"], b)
    with pytest.raises(ValueError, match=r"no tokenizer.json"):
        load_hf_model(tmp_path)
    index["weight_map"]["norm"] = "../outside.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"not a plain file name"):
        load_hf_model(tmp_path, skip_tokenizer_init=True)
    index["weight_map"]["norm"] = "model-00001-of-00002.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"'norm' is mapped to .* which does not contain it"):
        load_hf_model(tmp_path, skip_tokenizer_init=True)


def test_unsharded_duplicates_and_missing(tmp_path):
    with pytest.raises(ValueError, match=r"not a directory"):
        load_hf_model(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"cannot read config"):
        load_hf_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(_tiny_llama_config()))
    with pytest.raises(ValueError, match=r"no \*\.safetensors"):
        load_hf_model(tmp_path, skip_tokenizer_init=True)
    _save({"x": np.ones(2, np.float32)}, tmp_path / "a.safetensors")
    _save({"x": np.ones(2, np.float32)}, tmp_path / "b.safetensors")
    with pytest.raises(ValueError, match=r"'x' also appears"):
        load_hf_model(tmp_path, skip_tokenizer_init=True)


def test_minilm_dir(minilm_dir):
    safe_open = pytest.importorskip("safetensors").safe_open
    m = load_hf_model(minilm_dir)
    assert m.model_config is None and m.config["model_type"] == "bert" and m.config["hidden_size"] == 384
    assert m.tokenizer is not None and m.tokenizer.vocab_size == 30522
    with safe_open(f"{minilm_dir}/model.safetensors", "np") as ref:
        names = list(ref.keys())
        assert set(names) == set(m.tensor_files)
        for name in names:
            np.testing.assert_array_equal(m[name], ref.get_tensor(name))
