"""`infercore serve --embedding-model minilm --rag-store DIR` with SmolLM2 as a user runs it (a
subprocess): embeddings through the openai client equal the in-process Embedder's, and a RAG
query over the bundled documents answers with citations into them and feeds the quality
gauges."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import openai
import pytest

from infercore.monitor import parse_exposition, sample

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "python", "infercore", "rag", "data")


def test_parser_has_the_new_flags():
    from infercore.cli.main import build_parser

    a = build_parser().parse_args(["serve", "--embedding-model", "minilm", "--rag-store", "/x", "--rag-window", "7"])
    assert a.embedding_model == "minilm" and a.rag_store == "/x" and a.rag_window == 7


def test_missing_rag_store_is_a_clear_error(tmp_path, capsys):
    from infercore.cli.main import main

    assert main(["serve", "--model", "smollm2", "--rag-store", str(tmp_path / "nope")]) != 0
    assert "--rag-store" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()  # an existing directory without a store was served as an empty store
    assert main(["serve", "--model", "smollm2", "--rag-store", str(tmp_path / "empty")]) != 0
    assert "not a RAG store" in capsys.readouterr().err
    assert os.listdir(tmp_path / "empty") == []


@pytest.mark.slow
def test_serve_embeddings_and_rag_with_smollm2(llm, embedder, tmp_path):  # llm/embedder: skip when not installed
    from infercore.rag import RAG

    store = str(tmp_path / "store")
    RAG(store, embedder, llm=llm).ingest([DATA])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "infercore.cli.main", "serve", "--port", str(port), "--max-model-len", "2048",
           "--max-num-seqs", "4", "--log-level", "warning", "--embedding-model", "minilm", "--rag-store", store]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        with openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120) as c:
            assert {m.id for m in c.models.list().data} == {"smollm2", "minilm"}
            texts = ["KV cache blocks", "int8 quantization"]
            got = np.array([d.embedding for d in c.embeddings.create(model="minilm", input=texts).data])
            np.testing.assert_allclose(got, embedder.encode(texts), atol=1e-5)
        q = "How many tokens does a KV cache block hold?"
        r = httpx.post(url + "/v1/rag/query", json={"query": q, "k": 3}, timeout=120)
        assert r.status_code == 200, r.text
        a = r.json()
        assert not a["abstained"] and a["answer"] and len(a["contexts"]) == 3
        assert all(ctx["source"] for ctx in a["contexts"])
        valid = [cit for cit in a["citations"] if cit["valid"]]
        for cit in valid:
            assert cit["doc_id"] == a["contexts"][cit["marker"] - 1]["doc_id"]
        m = parse_exposition(httpx.get(url + "/metrics", timeout=10).text)
        assert sample(m, "infercore:citation_coverage", model_name="smollm2") == pytest.approx(
            a["metrics"]["citation_coverage"])
        assert sample(m, "infercore:hallucination_rate", model_name="smollm2") == pytest.approx(
            a["metrics"]["hallucination_rate"])
    finally:
        proc.terminate()
        proc.wait(60)
