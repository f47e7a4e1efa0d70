"""Benchmark suites, installed as infercore.benchmarks; `infercore bench` drives them."""
