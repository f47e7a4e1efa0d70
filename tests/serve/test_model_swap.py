"""Hot swap of the served model (serve/model_swap.py) through the `served-model` playbook: moving
the alias loads the recorded model and serves it at once, a request streaming at the swap finishes
on the old weights with its tokens intact, the old engine stops once drained, and a model with
another vocabulary or one that fails to load leaves the old model serving."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import httpx
import pytest

from infercore.prompts.registry import PromptRegistry

from ._util import running

pytest.importorskip("safetensors")

KW = {"kv_cache_dtype": "float32", "kv_cache_bytes": 1 << 22, "max_num_seqs": 8}
PROMPT = "Hello there, general"
LONG = 1500  # tokens of the stream that is running at the swap: ~1 s on the tiny model


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    root = tmp_path_factory.mktemp("swap")
    return tiny_llama_dir(str(root / "a"), seed=0), tiny_llama_dir(str(root / "b"), seed=1)


def _greedy(llm, n: int) -> str:
    from infercore import SamplingParams

    return llm.generate(PROMPT, SamplingParams(max_tokens=n, temperature=0.0, ignore_eos=True))[0].outputs[0].text


def _complete(url: str, n: int) -> str:
    r = httpx.post(f"{url}/v1/completions", json={"model": "tiny", "prompt": PROMPT, "max_tokens": n,
                                                   "temperature": 0, "ignore_eos": True}, timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["text"]


def _serving(dirs, tmp_path, loader):
    from infercore import LLM
    from infercore.evals.gate_apply import SERVED_MODEL, model_version
    from infercore.serve import build_app
    from infercore.serve.admin import install_playbooks

    reg = PromptRegistry(tmp_path / "reg")
    reg.set_alias(SERVED_MODEL, "production", model_version(reg, dirs[0]))
    llm = LLM(dirs[0], **KW)
    app = build_app(llm, model_name="tiny")
    pb = install_playbooks(app, registry=reg, served_prompt=SERVED_MODEL, poll_s=0, model_loader=loader)
    return reg, llm, app, pb


def test_alias_move_swaps_weights_and_in_flight_stream_finishes_on_the_old(dirs, tmp_path):
    from infercore import LLM
    from infercore.evals.gate_apply import SERVED_MODEL, model_version

    a, b = LLM(dirs[0], **KW), LLM(dirs[1], **KW)
    want_a, want_b, want_long = _greedy(a, 48), _greedy(b, 48), _greedy(a, LONG)
    assert want_a != want_b  # the two random models answer differently
    del a, b
    loads = []

    def loader(config):
        loads.append(config)
        return LLM(config["model"], **KW)

    reg, old_llm, app, pb = _serving(dirs, tmp_path, loader)
    with running(app) as url:
        assert _complete(url, 48) == want_a
        # a stream that is mid-answer when the alias moves
        got, started = [], threading.Event()

        def stream():
            body = {"model": "tiny", "prompt": PROMPT, "max_tokens": LONG, "temperature": 0, "ignore_eos": True,
                    "stream": True}  # fmt: skip
            with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as r:
                for line in r.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        got.append(json.loads(line[6:])["choices"][0]["text"])
                        started.set()

        t = threading.Thread(target=stream)
        t.start()
        assert started.wait(30)
        reg.set_alias(SERVED_MODEL, "production", model_version(reg, dirs[1]))
        ev = pb.reload()
        assert ev is not None and ev["kind"] == "model_swapped", ev
        assert (ev["from_version"], ev["to_version"], ev["model"]) == (1, 2, dirs[1])
        assert ev["in_flight_at_swap"] == 1  # the stream (~1 s of tokens) was still running
        assert loads == [{"model": dirs[1]}]
        # new requests run on the new weights while the old stream is still going
        assert _complete(url, 48) == want_b
        t.join(60)
        assert "".join(got) == want_long  # finished on the weights it started with, nothing lost
        deadline = time.monotonic() + 10
        while not pb.events.events("model_drained") and time.monotonic() < deadline:
            time.sleep(0.02)
        drained = pb.events.events("model_drained")
        assert len(drained) == 1 and drained[0]["to_version"] == 2
        assert getattr(old_llm.engine, "_async_driver", None) is None  # the old engine thread stopped
        served = httpx.get(f"{url}/v1/admin/served", timeout=10).json()["prompt"]
        assert served["version"] == served["loaded_version"] == 2
        models = httpx.get(f"{url}/v1/models", timeout=10).json()["data"]
        assert models[0]["id"] == "tiny"
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert "infercore:num_requests_running" in metrics
    assert app.state.infercore.llm.engine._infercore_server is None  # the server released the new engine


def test_failed_load_keeps_the_old_model_serving(dirs, tmp_path):
    from infercore.evals.gate_apply import SERVED_MODEL, model_version

    def loader(config):
        raise FileNotFoundError(f"no model at {config['model']}")

    reg, llm, app, pb = _serving(dirs, tmp_path, loader)
    with running(app) as url:
        before = _complete(url, 8)
        reg.set_alias(SERVED_MODEL, "production", model_version(reg, "/nowhere/model"))
        ev = pb.reload()
        assert ev["kind"] == "model_swap_failed" and "FileNotFoundError: no model at /nowhere/model" in ev["error"]
        assert ev["loaded_version"] == 1
        assert app.state.infercore.llm is llm and _complete(url, 8) == before
        served = httpx.get(f"{url}/v1/admin/served", timeout=10).json()["prompt"]
        assert (served["version"], served["loaded_version"]) == (2, 1)


def test_a_model_with_another_vocabulary_is_refused(dirs, tmp_path):
    from infercore import LLM
    from infercore.evals.gate_apply import SERVED_MODEL, model_version

    other = LLM(dirs[1], **KW)
    other.tokenizer.bos_token_id = 7  # a tokenizer that disagrees with the served one

    reg, llm, app, pb = _serving(dirs, tmp_path, lambda config: other)
    with running(app) as url:
        before = _complete(url, 8)
        reg.set_alias(SERVED_MODEL, "production", model_version(reg, dirs[1]))
        ev = pb.reload()
        assert ev["kind"] == "model_swap_failed" and "bos_token_id 7 differs" in ev["error"], ev
        assert app.state.infercore.llm is llm and _complete(url, 8) == before


def test_without_a_loader_the_move_is_only_recorded(dirs, tmp_path):
    from infercore.evals.gate_apply import SERVED_MODEL, model_version

    reg, llm, app, pb = _serving(dirs, tmp_path, None)
    with running(app):
        reg.set_alias(SERVED_MODEL, "production", model_version(reg, dirs[1]))
        ev = pb.reload()
        assert ev["kind"] == "model_alias_moved" and "no model loader" in ev["note"]
        assert app.state.infercore.llm is llm


def test_vocabulary_mismatch_reasons():
    from infercore.serve.model_swap import vocabulary_mismatch

    def tok(n=10, bos=1, eos=2, off=0):
        return SimpleNamespace(tokenizer=SimpleNamespace(vocab_size=n, bos_token_id=bos, eos_token_id=eos,
                                                         id_to_token=lambda i: f"t{i + off}"))  # fmt: skip

    assert vocabulary_mismatch(tok(), tok()) is None
    assert "vocabulary size 11" in vocabulary_mismatch(tok(), tok(n=11))
    assert "eos_token_id 3" in vocabulary_mismatch(tok(), tok(eos=3))
    assert "token 0 is 't1'" in vocabulary_mismatch(tok(), tok(off=1))
    assert "no tokenizer" in vocabulary_mismatch(tok(), SimpleNamespace(tokenizer=None))


def test_install_playbooks_rejects_a_non_callable_loader(dirs, tmp_path):
    from infercore import LLM
    from infercore.evals.gate_apply import SERVED_MODEL, model_version
    from infercore.serve import build_app
    from infercore.serve.admin import install_playbooks

    reg = PromptRegistry(tmp_path / "reg")
    reg.set_alias(SERVED_MODEL, "production", model_version(reg, dirs[0]))
    app = build_app(LLM(dirs[0], **KW), model_name="tiny")
    with pytest.raises(TypeError, match="model_loader: expected a callable"):
        install_playbooks(app, registry=reg, served_prompt=SERVED_MODEL, poll_s=0, model_loader="not callable")


def test_cli_served_model_gets_a_loader_with_the_command_line_engine_options(dirs, tmp_path):
    from infercore.cli.main import build_parser
    from infercore.cli.serve_cmd import build_app_from_args
    from infercore.evals.gate_apply import SERVED_MODEL, model_version

    reg = PromptRegistry(tmp_path / "reg")
    reg.set_alias(SERVED_MODEL, "production", model_version(reg, dirs[0]))
    args = build_parser().parse_args(["serve", "--model", dirs[0], "--registry", str(reg.path), "--served-prompt",
                                      SERVED_MODEL, "--registry-poll-s", "0", "--max-num-seqs", "3",
                                      "--max-model-len", "256"])  # fmt: skip
    pb = build_app_from_args(args).state.playbooks
    llm = pb.model_loader({"model": dirs[1]})
    assert (llm.engine.scheduler.max_num_seqs, llm.max_model_len) == (3, 256)
    with pytest.raises(ValueError, match=r"model_config\.model: expected a model name or path"):
        pb.model_loader({"quantization": "int8"})
    # a served registry prompt (not the model alias) gets no loader
    reg.register("rag-answer", "Answer from {{ sources }}: {{ question }}", message="p", alias="production")
    args = build_parser().parse_args(["serve", "--model", dirs[0], "--registry", str(reg.path), "--served-prompt",
                                      "rag-answer", "--registry-poll-s", "0"])  # fmt: skip
    assert build_app_from_args(args).state.playbooks.model_loader is None


def test_rollback_of_the_model_alias_swaps_the_previous_weights_back(dirs, tmp_path):
    """The degradation playbook: a rollback moves the served-model alias back one version (a commit)
    and the server answers with that version's weights from then on."""
    from infercore import LLM
    from infercore.evals.gate_apply import SERVED_MODEL, model_version, served_model
    from infercore.serve import build_app
    from infercore.serve.admin import install_playbooks

    want_a = _greedy(LLM(dirs[0], **KW), 24)
    reg = PromptRegistry(tmp_path / "reg")
    reg.set_alias(SERVED_MODEL, "production", model_version(reg, dirs[0]))
    reg.set_alias(SERVED_MODEL, "production", model_version(reg, dirs[1]))  # v2 serving
    app = build_app(LLM(dirs[1], **KW), model_name="tiny")
    pb = install_playbooks(app, registry=reg, served_prompt=SERVED_MODEL, poll_s=0,
                           model_loader=lambda config: LLM(config["model"], **KW))  # fmt: skip
    with running(app) as url:
        assert _complete(url, 24) != want_a
        r = httpx.post(f"{url}/v1/admin/rollback", json={"reason": "hallucination rate over 0.05"}, timeout=60)
        assert r.status_code == 200 and (r.json()["from_version"], r.json()["to_version"]) == (2, 1)
        assert served_model(reg, "production") == dirs[0]
        swapped = pb.events.events("model_swapped")
        assert len(swapped) == 1 and swapped[0]["source"] == "rollback" and swapped[0]["model"] == dirs[0]
        assert _complete(url, 24) == want_a
