import struct

import numpy as np
import pytest

from infercore.models.gguf import GGMLType, GGUFFile, GGUFValue, GGUFValueType, ggml_nbytes, write_gguf


def _s(x: str) -> bytes:
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def _raw_file(tmp_path, infos, data: bytes, kv: bytes = b"", n_kv: int = 0, version: int = 3, name="raw.gguf"):
    """Hand-built GGUF: infos = [(name, ne, type, offset)], data appended after 32-byte alignment."""
    body = b"GGUF" + struct.pack("<IQQ", version, len(infos), n_kv) + kv
    for n, ne, t, off in infos:
        body += _s(n) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<IQ", t, off)
    body += b"\0" * (-len(body) % 32) + data
    p = tmp_path / name
    p.write_bytes(body)
    return p


def _meta():
    return {
        "general.architecture": "llama",
        "u8": GGUFValue(GGUFValueType.UINT8, 200),
        "i8": GGUFValue(GGUFValueType.INT8, -5),
        "u16": GGUFValue(GGUFValueType.UINT16, 60000),
        "i16": GGUFValue(GGUFValueType.INT16, -30000),
        "u32": 4_000_000_000,
        "i32": -7,
        "f32": 0.5,
        "b": True,
        "u64": GGUFValue(GGUFValueType.UINT64, 2**63 + 5),
        "i64": GGUFValue(GGUFValueType.INT64, -(2**40)),
        "f64": GGUFValue(GGUFValueType.FLOAT64, 1e-300),
        "s": "héllo ✓ 日本",
        "arr_i": GGUFValue(GGUFValueType.INT32, [1, -2, 3], is_array=True),
        "arr_s": ["a", "", "ü"],
        "arr_f": GGUFValue(GGUFValueType.FLOAT32, [0.25, -1.5], is_array=True),
        "arr_b": [True, False],
        "nested": [[1, 2], [3], []],
        "nested_s": [["x", "y"], ["z"]],
        "empty": GGUFValue(GGUFValueType.UINT32, [], is_array=True),
    }


def test_roundtrip_all_value_types_and_tensors(tmp_path):
    rng = np.random.default_rng(0)
    f32 = rng.standard_normal((3, 5)).astype(np.float32)
    f16 = rng.standard_normal((2, 7)).astype(np.float16)
    i32 = np.arange(6, dtype=np.int32).reshape(6)
    q8 = rng.integers(0, 255, size=2 * 34, dtype=np.uint8)  # 2 rows of one Q8_0 block
    p = tmp_path / "t.gguf"
    meta = _meta()
    write_gguf(p, meta, {"a": f32, "b": f16, "c": i32, "q": (q8, GGMLType.Q8_0, (2, 32))})
    f = GGUFFile(p)
    assert f.version == 3 and f.architecture == "llama" and f.alignment == 32
    want = {k: (v.value if isinstance(v, GGUFValue) else v) for k, v in meta.items()}
    assert f.metadata == want
    assert f.metadata_types["u8"] == GGUFValueType.UINT8 and f.metadata_types["nested"] == GGUFValueType.ARRAY
    np.testing.assert_array_equal(f.tensors["a"].numpy(), f32)
    np.testing.assert_array_equal(f.tensors["b"].numpy(), f16)
    np.testing.assert_array_equal(f.tensors["c"].numpy(), i32)
    q = f.tensors["q"]
    assert q.shape == (2, 32) and q.nbytes == 68 and q.type_name == "Q8_0"
    np.testing.assert_array_equal(q.data, q8)
    assert np.shares_memory(q.data, f._mm)  # zero-copy
    with pytest.raises(ValueError, match="dequantize"):
        q.numpy()
    # the gguf package (peer) agrees on offsets and bytes
    gguf = pytest.importorskip("gguf")
    r = gguf.GGUFReader(str(p))
    for t in r.tensors:
        assert f.tensors[t.name].offset == t.data_offset
        assert f.tensors[t.name].nbytes == t.n_bytes
    assert r.fields["s"].contents() == want["s"]
    assert r.fields["arr_s"].contents() == want["arr_s"]  # (its contents() flattens nested arrays)


def test_reads_file_written_by_gguf_package(tmp_path):
    gguf = pytest.importorskip("gguf")
    p = tmp_path / "peer.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_uint32("llama.block_count", 2)
    w.add_float32("llama.rope.freq_base", 10000.0)
    w.add_array("tokenizer.ggml.tokens", ["<s>", "a", "b"])
    w.add_custom_alignment(64)
    x = np.arange(64 * 3, dtype=np.float32).reshape(3, 64)
    w.add_tensor("w", x)
    w.add_tensor("v", np.ones(5, dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    f = GGUFFile(p)
    assert f.alignment == 64
    assert f.metadata["llama.block_count"] == 2 and f.metadata["tokenizer.ggml.tokens"] == ["<s>", "a", "b"]
    np.testing.assert_array_equal(f.tensors["w"].numpy(), x)
    assert f.tensors["w"].offset % 64 == 0
    np.testing.assert_array_equal(f.tensors["v"].numpy(), np.ones(5, np.float16))


def test_every_truncation_is_a_value_error(tmp_path):
    p = tmp_path / "t.gguf"
    write_gguf(p, _meta(), {"a": np.ones((2, 3), np.float32)})
    t = GGUFFile(p).tensors["a"]
    data = p.read_bytes()[: t.offset + t.nbytes]  # drop the writer's trailing padding
    q = tmp_path / "cut.gguf"
    for n in range(len(data)):
        q.write_bytes(data[:n])
        with pytest.raises(ValueError, match=r"cut\.gguf"):
            GGUFFile(q)


@pytest.mark.parametrize(
    ("mutate", "msg"),
    [
        (lambda b: b"GGUX" + b[4:], "bad magic"),
        (lambda b: b[:4] + struct.pack("<I", 1) + b[8:], "version 1"),
        (lambda b: b[:4] + struct.pack(">I", 3) + b[8:], "big-endian"),
        (lambda b: b[:8] + struct.pack("<Q", 2**60) + b[16:], "tensor infos|truncated"),
        (lambda b: b[:16] + struct.pack("<Q", 2**60) + b[24:], "metadata entries"),
    ],
)
def test_corrupt_header(tmp_path, mutate, msg):
    p = tmp_path / "t.gguf"
    write_gguf(p, {"general.architecture": "llama"}, {"a": np.ones(4, np.float32)})
    p.write_bytes(mutate(p.read_bytes()))
    with pytest.raises(ValueError, match=msg):
        GGUFFile(p)


def test_huge_array_count_is_rejected_without_allocating(tmp_path):
    kv = _s("k") + struct.pack("<IIQ", GGUFValueType.ARRAY, GGUFValueType.UINT64, 2**61)
    p = _raw_file(tmp_path, [], b"", kv=kv, n_kv=1)
    with pytest.raises(ValueError, match=r"'k'.*truncated"):
        GGUFFile(p)
    kv = _s("k") + struct.pack("<IIQ", GGUFValueType.ARRAY, GGUFValueType.STRING, 2**61)
    with pytest.raises(ValueError, match="'k'"):
        GGUFFile(_raw_file(tmp_path, [], b"", kv=kv, n_kv=1))


@pytest.mark.parametrize(
    ("infos", "msg"),
    [
        ([("a", [4], 0, 0), ("a", [4], 0, 32)], "'a': duplicate tensor name"),
        ([("a", [4], 99, 0)], "'a': unknown or unsupported ggml type 99"),
        ([("a", [4], 0, 8)], "'a': offset 8 is not a multiple of the alignment 32"),
        ([("a", [16], 0, 0), ("b", [4], 0, 32)], "'b': data overlaps tensor 'a'"),
        ([("a", [4], 0, 64)], "'a': data .* runs past the end"),
        ([("a", [2**62, 8], 0, 0)], "'a': data .* runs past the end"),
        ([("a", [33], GGMLType.Q8_0, 0)], "'a': .*not a multiple of the Q8_0 block"),
        ([("a", [1, 1, 1, 1, 1], 0, 0)], "'a': 5 dimensions"),
    ],
)
def test_bad_tensor_infos(tmp_path, infos, msg):
    p = _raw_file(tmp_path, infos, b"\0" * 64)
    with pytest.raises(ValueError, match=msg):
        GGUFFile(p)


def test_bad_metadata(tmp_path):
    kv = _s("k") + struct.pack("<I", 77)
    with pytest.raises(ValueError, match="'k': unknown value type 77"):
        GGUFFile(_raw_file(tmp_path, [], b"", kv=kv + b"\0" * 8, n_kv=1))
    kv = _s("k") + struct.pack("<I", GGUFValueType.STRING) + struct.pack("<Q", 2) + b"\xff\xfe"
    with pytest.raises(ValueError, match=r"'k'.*UTF-8"):
        GGUFFile(_raw_file(tmp_path, [], b"", kv=kv, n_kv=1))
    kv = (_s("k") + struct.pack("<IB", GGUFValueType.UINT8, 1)) * 2
    with pytest.raises(ValueError, match=r"'k'.*duplicate metadata key"):
        GGUFFile(_raw_file(tmp_path, [], b"", kv=kv, n_kv=2))
    kv = _s("general.alignment") + struct.pack("<II", GGUFValueType.UINT32, 48)
    with pytest.raises(ValueError, match="power of two"):
        GGUFFile(_raw_file(tmp_path, [], b"", kv=kv, n_kv=1))
    with pytest.raises(ValueError, match="too small"):
        GGUFFile(_empty(tmp_path))
    with pytest.raises(ValueError, match="cannot open"):
        GGUFFile(tmp_path / "missing.gguf")
    with pytest.raises(TypeError, match="path"):
        GGUFFile(3)


def _empty(tmp_path):
    p = tmp_path / "empty.gguf"
    p.write_bytes(b"")
    return p


def test_bf16_tensor_view(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.array([[1.5, -2.0, 3.25]], dtype=ml_dtypes.bfloat16)
    write_gguf(tmp_path / "b.gguf", {}, {"b": (x.view(np.uint8), GGMLType.BF16, (1, 3))})
    t = GGUFFile(tmp_path / "b.gguf").tensors["b"]
    assert t.type_name == "BF16" and t.nbytes == 6
    np.testing.assert_array_equal(t.numpy().astype(np.float32), [[1.5, -2.0, 3.25]])


def test_ggml_nbytes():
    assert ggml_nbytes(GGMLType.Q4_1, (576, 1536)) == 576 * 1536 // 32 * 20
    assert ggml_nbytes(GGMLType.Q6_K, (2, 256)) == 2 * 210
    assert ggml_nbytes(GGMLType.BF16, (3, 3)) == 18
    with pytest.raises(ValueError, match="unknown"):
        ggml_nbytes(1000, (1,))


def test_smollm2_matches_gguf_package(smollm2_gguf):
    gguf = pytest.importorskip("gguf")
    f = GGUFFile(smollm2_gguf)
    r = gguf.GGUFReader(smollm2_gguf)
    assert len(f.tensors) == len(r.tensors) == 272
    for t in r.tensors:
        m = f.tensors[t.name]
        assert (m.offset, m.nbytes, m.ggml_type) == (int(t.data_offset), int(t.n_bytes), int(t.tensor_type))
        assert m.shape == tuple(int(x) for x in reversed(t.shape))
    for k in ("llama.block_count", "llama.rope.freq_base", "tokenizer.chat_template", "general.languages"):
        assert f.metadata[k] == r.fields[k].contents()
    assert f.metadata["tokenizer.ggml.token_type"] == r.fields["tokenizer.ggml.token_type"].contents()
    merges = r.fields["tokenizer.ggml.merges"]
    assert len(f.metadata["tokenizer.ggml.merges"]) == len(merges.data) == 48900
    for i in (0, 1234, 48899):  # contents() of all 48900 strings is slow in the peer
        assert f.metadata["tokenizer.ggml.merges"][i] == bytes(merges.parts[merges.data[i]]).decode()
    emb = f.tensors["token_embd.weight"]
    assert emb.shape == (49152, 576) and emb.type_name == "Q8_0"
    np.testing.assert_array_equal(emb.data[:4096], np.asarray(r.get_tensor(0).data).reshape(-1).view(np.uint8)[:4096])


def test_random_corruption_raises_value_error_or_parses(tmp_path):
    """Byte flips anywhere in the header: the reader either parses or raises ValueError, nothing else."""
    p = tmp_path / "t.gguf"
    write_gguf(p, _meta(), {"a": np.ones((2, 32), np.float32), "q": (np.zeros(34, np.uint8), GGMLType.Q8_0, (1, 32))})
    f = GGUFFile(p)
    data = bytearray(p.read_bytes())
    head = f.data_offset
    rng = np.random.default_rng(7)
    q = tmp_path / "fuzz.gguf"
    outcomes = {"parsed": 0, "rejected": 0}
    for _ in range(400):
        b = bytearray(data)
        for pos in rng.integers(0, head, size=int(rng.integers(1, 4))):
            b[pos] = int(rng.integers(0, 256))
        q.write_bytes(bytes(b))
        try:
            g = GGUFFile(q)
            for t in g.tensors.values():
                assert t.offset + t.nbytes <= g.file_size
            outcomes["parsed"] += 1
        except ValueError:
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 50 and outcomes["parsed"] > 0
