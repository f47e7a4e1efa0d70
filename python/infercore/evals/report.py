"""Markdown and HTML report of an eval results file, optionally against a baseline, with plots.

    write_report(results, "report.md", baseline=None)  # also report.html and report-*.png

Plots (matplotlib, optional): `<stem>-scores.png`, one panel per stage with every metric in [0, 1]
(scores and rates) as bars, candidate beside baseline; `<stem>-latency.png`, the distribution of
TTFT, ITL and e2e latencies (ECDF, candidate and baseline). Without matplotlib the report is still
written and says how to get the plots.
"""

from __future__ import annotations

import html
import math
import os
from typing import Any

from .._fileio import check_path
from .results import STAGES, EvalResults, Metric

PLOTS_MISSING = "plots skipped: matplotlib is not installed (pip install matplotlib, or infercore[bench])"


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if abs(v) >= 100:
        return f"{v:.1f}"
    return f"{v:.4g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"


def _delta(m: Metric, b: Metric | None) -> tuple[str, str]:
    if b is None or not math.isfinite(m.value) or not math.isfinite(b.value):
        return "", ""
    d = m.value - b.value
    if d == 0:
        return "+0", "same"
    better = (d > 0) == m.higher_is_better
    return f"{d:+.4g}", "better" if better else "worse"


def _versions_rows(res: EvalResults) -> list[tuple[str, str]]:
    v = res.versions
    rows = [("suite", f"{res.suite_name} v{res.suite_version}"), ("created", res.created),
            ("infercore", res.infercore_version)]
    model = v.get("model")
    if isinstance(model, dict):
        rows.append(("model", f"{model.get('name')} ({str(model.get('sha256', ''))[:12] or 'no hash'})"))
    judge = v.get("judge")
    if judge is not None:
        rows.append(("judge", judge if isinstance(judge, str) else f"{judge.get('name')} "
                     f"({str(judge.get('sha256', ''))[:12]})"))
    for name, p in (v.get("prompts") or {}).items():
        rows.append((f"prompt {name}", p.get("ref", str(p)) if isinstance(p, dict) else str(p)))
    g = v.get("guardrails")
    if isinstance(g, dict):
        rows.append(("guardrails", f"{g.get('config')}" + (f" ({g['sha256'][:12]})" if g.get("sha256") else "")))
    return rows


def _stage_tables(res: EvalResults, base: EvalResults | None) -> list[dict[str, Any]]:
    out = []
    for sname in [s for s in STAGES if s in res.stages] + [s for s in res.stages if s not in STAGES]:
        st = res.stages[sname]
        checks = st.details.get("checks", {})
        rows = []
        for mname, m in st.metrics.items():
            b = base.metric(sname, mname) if base is not None else None
            d, verdict = _delta(m, b)
            rows.append([mname, _fmt(m.value), "" if b is None else _fmt(b.value), d, verdict,
                         "" if m.samples is None else str(len(m.samples)), checks.get(mname, "")])
        cost = st.details.get("cost", {})
        bwall = base.stages[sname].wall_s if base is not None and sname in base.stages else None
        out.append({"stage": sname, "wall_s": st.wall_s, "base_wall_s": bwall, "cost": cost, "rows": rows})
    return out


HEAD = ["metric", "value", "baseline", "delta", "", "n", "threshold"]


def render_markdown(res: EvalResults, base: EvalResults | None = None, images: list[str] | None = None,
                    notes: list[str] | None = None) -> str:
    lines = [f"# Evaluation report: {res.suite_name} v{res.suite_version}", ""]
    if base is not None:
        lines += [f"Baseline: {base.suite_name} v{base.suite_version}, created {base.created}.", ""]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in _versions_rows(res)] + [""]
    for t in _stage_tables(res, base):
        wall = f"{t['wall_s']:.1f} s"
        if t["base_wall_s"] is not None:
            wall += f" (baseline {t['base_wall_s']:.1f} s)"
        lines += [f"## {t['stage']}", "", f"Wall time {wall}. Cost: "
                  + (", ".join(f"{k} {v}" for k, v in t["cost"].items()) or "n/a") + ".", ""]
        head = HEAD if base is not None else [h for i, h in enumerate(HEAD) if i not in (2, 3, 4)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in t["rows"]:
            cells = r if base is not None else [c for i, c in enumerate(r) if i not in (2, 3, 4)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    for n in notes or []:
        lines += [f"> {n}", ""]
    for img in images or []:
        lines += [f"![{os.path.splitext(os.path.basename(img))[0]}]({os.path.basename(img)})", ""]
    return "\n".join(lines)


def render_html(res: EvalResults, base: EvalResults | None = None, images: list[str] | None = None,
                notes: list[str] | None = None) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>Evaluation report: {e(res.suite_name)}</title>",
             "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .6em}td.better{color:#070}td.worse{color:#a00}"
             "td.fail{color:#a00;font-weight:bold}</style></head><body>",
             f"<h1>Evaluation report: {e(res.suite_name)} v{e(res.suite_version)}</h1>"]
    if base is not None:
        parts.append(f"<p>Baseline: {e(base.suite_name)} v{e(base.suite_version)}, created {e(base.created)}.</p>")
    parts.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in _versions_rows(res))
                 + "</table>")
    for t in _stage_tables(res, base):
        parts.append(f"<h2>{e(t['stage'])}</h2><p>Wall time {t['wall_s']:.1f} s. Cost: "
                     + e(", ".join(f"{k} {v}" for k, v in t["cost"].items()) or "n/a") + ".</p>")
        keep = [i for i in range(len(HEAD)) if base is not None or i not in (2, 3, 4)]
        parts.append("<table><tr>" + "".join(f"<th>{e(HEAD[i])}</th>" for i in keep) + "</tr>")
        for r in t["rows"]:
            cls = {4: r[4], 6: r[6]}
            parts.append("<tr>" + "".join(f"<td class='{e(cls.get(i, ''))}'>{e(r[i])}</td>" for i in keep) + "</tr>")
        parts.append("</table>")
    for n in notes or []:
        parts.append(f"<p><em>{e(n)}</em></p>")
    for img in images or []:
        parts.append(f"<p><img src='{e(os.path.basename(img))}' alt='{e(os.path.basename(img))}'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _unit_metrics(res: EvalResults, stage: str) -> dict[str, float]:
    st = res.stages.get(stage)
    if st is None:
        return {}
    return {k: m.value for k, m in st.metrics.items()
            if math.isfinite(m.value) and 0.0 <= m.value <= 1.0 and not k.endswith("_s")}


def plot_scores(res: EvalResults, base: EvalResults | None, path: str) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in STAGES if _unit_metrics(res, s)]
    if not stages:
        return False
    fig, axes = plt.subplots(len(stages), 1, figsize=(9, 2.6 * len(stages)), squeeze=False)
    for ax, s in zip(axes[:, 0], stages, strict=True):
        cand = _unit_metrics(res, s)
        bvals = _unit_metrics(base, s) if base is not None else {}
        names = list(cand)
        x = range(len(names))
        w = 0.4 if base is not None else 0.7
        ax.bar([i - (w / 2 if base is not None else 0) for i in x], [cand[n] for n in names], w, label="candidate")
        if base is not None:
            ax.bar([i + w / 2 for i in x], [bvals.get(n, float("nan")) for n in names], w, label="baseline")
            ax.legend(fontsize=7)
        ax.set_xticks(list(x))
        ax.set_xticklabels(names, rotation=20, ha="right", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_title(s, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_latency(res: EvalResults, base: EvalResults | None, path: str) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    def samples(r: EvalResults | None, kind: str) -> list[float]:
        m = r.metric("performance", f"{kind}_p50_s") if r is not None else None
        return [x for x in (m.samples or []) if math.isfinite(x)] if m is not None else []

    kinds = [k for k in ("ttft", "itl", "e2e") if samples(res, k)]
    if not kinds:
        return False
    fig, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 3), squeeze=False)
    for ax, k in zip(axes[0], kinds, strict=True):
        for label, r in (("candidate", res), ("baseline", base)):
            xs = np.sort(np.asarray(samples(r, k))) * 1000.0
            if xs.size:
                ax.step(xs, np.arange(1, xs.size + 1) / xs.size, where="post", label=label)
        ax.set_xlabel(f"{k} (ms)")
        ax.set_ylabel("fraction of samples")
        ax.set_title(f"{k} distribution", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write_report(res: EvalResults, out_md: str, baseline: EvalResults | None = None, *, html_out: bool = True,
                 plots: bool = True) -> dict[str, Any]:
    """Write the Markdown report (and HTML beside it, and PNG plots); returns the paths and notes."""
    out_md = check_path(out_md, "out_md")
    stem = os.path.splitext(out_md)[0]
    os.makedirs(os.path.dirname(os.path.abspath(out_md)), exist_ok=True)
    images, notes = [], []
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            notes.append(PLOTS_MISSING)
        else:
            for name, fn in (("scores", plot_scores), ("latency", plot_latency)):
                p = f"{stem}-{name}.png"
                if fn(res, baseline, p):
                    images.append(p)
    with open(out_md, "w", encoding="utf-8") as f:
        f.write(render_markdown(res, baseline, images, notes))
    written = {"markdown": out_md, "images": images, "notes": notes}
    if html_out:
        with open(stem + ".html", "w", encoding="utf-8") as f:
            f.write(render_html(res, baseline, images, notes))
        written["html"] = stem + ".html"
    return written
