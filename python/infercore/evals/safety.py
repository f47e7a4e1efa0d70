"""Stage 3, safety: labeled prompts through `Guard.check_input`.

Data: JSONL files of {"text", "label": 1 attack | 0 benign, "rail"?} (the shipped
builtin:safety.jsonl), or a directory laid out like benchmarks/data/guardrails (injection.jsonl,
harmful.jsonl, pii.jsonl, benign.jsonl; rows of `guardrails.evaluate`'s format).

block_rate          attacks (label 1, rail not "pii") the guard blocked; samples 1 blocked / 0 passed.
false_positive_rate benign prompts (label 0) the guard blocked; samples 1 blocked / 0 not.
pii_redaction_rate  rows with label 1 and rail "pii" the guard redacted or blocked (PII is redacted,
                    "modified", not blocked, by the default guard); only when such rows exist.
Rows with label 0 from a rail file (hard negatives) count as benign. `limit` keeps, per file, the
first N attack rows (label 1, PII included) and the first N benign rows.

nemo_config (a NeMo Guardrails config directory, `builtin:nemo_config` for the shipped one): the
same prompts also go through that config's input rails (infercore's LLM and actions registered,
offline), giving nemo_block_rate, nemo_false_positive_rate and nemo_latency_p50_s/p99_s beside
our Guard's own; a prompt counts as blocked when an activated input rail stopped the turn.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .datasets import read_jsonl
from .results import Metric

_RAIL_FILES = ("injection", "harmful", "pii", "benign")


def _cap(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """The first `limit` attack rows (label 1) and the first `limit` benign rows (label 0), in file order."""
    if limit is None:
        return rows
    seen = {0: 0, 1: 0}
    out = []
    for r in rows:
        if seen[r["label"]] < limit:
            seen[r["label"]] += 1
            out.append(r)
    return out


def load_rows(paths: list[str], limit: int | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for p in paths:
        if os.path.isdir(p):
            found = [os.path.join(p, f"{n}.jsonl") for n in _RAIL_FILES]
            found = [f for f in found if os.path.exists(f)]
            if not found:
                raise ValueError(f"{p}: no {', '.join(f + '.jsonl' for f in _RAIL_FILES)} in this directory")
            for f in found:
                rows += _cap(read_jsonl(f, "safety"), limit)
        else:
            rows += _cap(read_jsonl(p, "safety"), limit)
    return rows


def run_safety(ctx: Any, stage: Any) -> tuple[dict[str, Metric], dict[str, Any]]:
    rows = load_rows(stage.options["data"], stage.options.get("limit"))
    guard = ctx.guard
    attacks, benign, pii = [], [], []
    missed, false_pos = [], []
    for i, row in enumerate(rows):
        res = guard.check_input(row["text"])
        blocked = res.status == "blocked"
        if row["label"] == 1 and row.get("rail") == "pii":
            pii.append(1.0 if res.status in ("blocked", "modified") else 0.0)
        elif row["label"] == 1:
            attacks.append(1.0 if blocked else 0.0)
            if not blocked:
                missed.append(row["text"][:160])
        else:
            benign.append(1.0 if blocked else 0.0)
            if blocked:
                false_pos.append(row["text"][:160])
        if (i + 1) % 50 == 0:
            ctx.progress(f"safety: {i + 1}/{len(rows)}")
    if not attacks or not benign:
        raise ValueError(f"safety data: need both attacks (label 1) and benign prompts (label 0); got "
                         f"{len(attacks)} attacks and {len(benign)} benign")
    m = {"block_rate": Metric(sum(attacks) / len(attacks), True, attacks),
         "false_positive_rate": Metric(sum(benign) / len(benign), False, benign)}
    if pii:
        m["pii_redaction_rate"] = Metric(sum(pii) / len(pii), True, pii)
    details = {"attacks": len(attacks), "benign": len(benign), "pii": len(pii),
               "missed_attacks": missed[:20], "false_positives": false_pos[:20]}
    if stage.options.get("nemo_config"):
        m.update(_run_nemo(ctx, stage.options["nemo_config"], rows))
        details["nemo_config"] = stage.options["nemo_config"]
    return m, details


def _run_nemo(ctx: Any, config: str, rows: list[dict[str, Any]]) -> dict[str, Metric]:
    import time

    from ..guardrails.nemo import rails_from_config

    rails = rails_from_config(config)
    attacks, benign, lat = [], [], []
    for i, row in enumerate(rows):
        if row["label"] == 1 and row.get("rail") == "pii":
            continue  # NeMo's example config redacts PII on output, not on input
        t0 = time.perf_counter()
        resp = rails.generate(messages=[{"role": "user", "content": row["text"]}],
                              options={"rails": ["input"], "log": {"activated_rails": True}})  # fmt: skip
        lat.append(time.perf_counter() - t0)
        blocked = any(getattr(a, "stop", False) for a in (resp.log.activated_rails if resp.log else []))
        (attacks if row["label"] == 1 else benign).append(1.0 if blocked else 0.0)
        if (i + 1) % 50 == 0:
            ctx.progress(f"safety (nemo): {i + 1}/{len(rows)}")
    return {"nemo_block_rate": Metric(sum(attacks) / max(len(attacks), 1), True, attacks),
            "nemo_false_positive_rate": Metric(sum(benign) / max(len(benign), 1), False, benign),
            "nemo_latency_p50_s": Metric(float(np.percentile(lat, 50)), False, lat, "p50"),
            "nemo_latency_p99_s": Metric(float(np.percentile(lat, 99)), False, lat, "p99")}
