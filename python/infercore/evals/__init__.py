"""Evaluation for LLMOps pipelines.

`infercore eval run suite.yaml --out results.json` runs an `EvalSuite` (suite.py) in four stages:
regression (regression.py: option log-likelihoods via loglik.py, exact match, code run in sandbox.py),
quality (judge.py / quality.py: LLM-as-judge with position swap and Cohen's kappa, plus the RAG
metrics of rag.py), safety (safety.py: guardrail eval sets through Guard) and performance
(performance.py: a load run through AsyncLLM). runner.py writes `results.EvalResults`, the file
`infercore gate` reads; report.py renders it as Markdown/HTML with plots.
"""
