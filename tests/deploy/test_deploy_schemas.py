"""deploy/ pipeline definitions: validated against the published schemas (GitHub workflow schema from
check-jsonschema, Argo WorkflowTemplate and Argo CD Application schemas vendored in schemas/), plus the
cross-references a schema cannot see (step -> template, parameters, labels) and every `infercore`
command line in them parsed by the real CLI parser."""

from __future__ import annotations

import copy
import json
import re
import shlex
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from infercore.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
WORKFLOW = DEPLOY / "argo" / "eval-gate-workflowtemplate.yaml"
APPLICATION = DEPLOY / "argo" / "application.yaml"
GITHUB = DEPLOY / "github" / "eval-gate.yml"


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans (only true/false): `on:` in a GitHub workflow stays the string "on"."""


_Yaml12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))  # fmt: skip


def load(path: Path):
    return yaml.load(path.read_text(), Loader=_Yaml12Loader)  # a SafeLoader subclass


def strict(schema):
    """Close every object that lists its properties (kubeconform -strict): misspelt fields fail."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def validator(name: str):
    schema = strict(json.loads((SCHEMAS / name).read_text()))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def github_validator():
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("github-workflows.json").read_text()
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def errors(v, doc) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]


# ----------------------------------------------------------------------------------------------- GitHub
def test_github_workflow_matches_the_published_schema():
    v = github_validator()
    doc = load(GITHUB)
    assert errors(v, doc) == []
    bad = copy.deepcopy(doc)
    bad["jobs"]["eval-gate"]["run-on"] = bad["jobs"]["eval-gate"].pop("runs-on")
    assert errors(v, bad)
    bad = copy.deepcopy(doc)
    bad["on"]["push"]["branch"] = ["main"]
    assert errors(v, bad)


def test_github_workflow_is_a_template_not_this_repos_ci():
    assert not (ROOT / ".github" / "workflows" / "eval-gate.yml").exists()
    steps = [s.get("name", s.get("uses")) for s in load(GITHUB)["jobs"]["eval-gate"]["steps"]]
    order = [steps.index(n) for n in ("Evaluate", "Gate", "Promote or roll back", "Notify")]
    assert order == sorted(order)


# ----------------------------------------------------------------------------------------------- Argo
def test_argo_workflowtemplate_matches_the_schema():
    v = validator("argo-workflowtemplate.schema.json")
    doc = load(WORKFLOW)
    assert errors(v, doc) == []
    bad = copy.deepcopy(doc)
    bad["spec"]["entryPoint"] = bad["spec"].pop("entrypoint")
    assert any("entryPoint" in e for e in errors(v, bad))
    bad = copy.deepcopy(doc)
    bad["spec"]["templates"][0]["steps"][2][0]["when"] = ["deploy"]
    assert errors(v, bad)
    bad = copy.deepcopy(doc)
    del bad["spec"]["templates"][1]["script"]["image"]
    assert any("'image' is a required property" in e for e in errors(v, bad))
    bad = copy.deepcopy(doc)
    bad["kind"] = "Workflow"
    assert errors(v, bad)


def test_argo_workflowtemplate_references_resolve():
    doc = load(WORKFLOW)
    spec = doc["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    assert spec["entrypoint"] in templates
    params = {p["name"] for p in spec["arguments"]["parameters"]}
    text = WORKFLOW.read_text()
    used = set(re.findall(r"\{\{workflow\.parameters\.([\w-]+)\}\}", text))
    assert used and used <= params, used - params
    steps = [s for group in templates[spec["entrypoint"]]["steps"] for s in group]
    assert [s["name"] for s in steps] == ["evaluate", "gate", "promote", "roll-back", "notify"]
    for s in steps:
        t = templates[s["template"]]
        declared = {p["name"] for p in t.get("inputs", {}).get("parameters", [])}
        given = {p["name"] for p in s.get("arguments", {}).get("parameters", [])}
        assert declared == given, s["name"]
        for ref in re.findall(r"\{\{inputs\.parameters\.([\w-]+)\}\}", json.dumps(t)):
            assert ref in declared, (t["name"], ref)
    outputs = {p["name"] for p in templates["gate"]["outputs"]["parameters"]}
    for ref in re.findall(r"\{\{steps\.gate\.outputs\.parameters\.([\w-]+)\}\}", text):
        assert ref in outputs
    whens = {s["name"]: s.get("when") for s in steps}
    assert whens["promote"].endswith("== deploy") and whens["roll-back"].endswith("== rollback")
    mounts = {m["name"] for t in templates.values() if "script" in t for m in t["script"].get("volumeMounts", [])}
    assert mounts == {c["metadata"]["name"] for c in spec["volumeClaimTemplates"]}


def test_argocd_application_matches_the_schema_and_points_at_the_serving_config():
    v = validator("argocd-application.schema.json")
    doc = load(APPLICATION)
    assert doc["apiVersion"] == "argoproj.io/v1alpha1" and doc["kind"] == "Application"
    assert errors(v, doc) == []
    bad = copy.deepcopy(doc)
    bad["spec"]["syncPolicy"]["automated"]["selfheal"] = True
    assert any("selfheal" in e for e in errors(v, bad))
    bad = copy.deepcopy(doc)
    del bad["spec"]["source"]["repoURL"]
    assert errors(v, bad)
    assert (ROOT / doc["spec"]["source"]["path"]).is_dir()


def test_serving_manifests_are_consistent():
    docs = {}
    for f in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            docs[d["kind"]] = d
    assert set(docs) == {"Deployment", "Service"}
    dep, svc = docs["Deployment"], docs["Service"]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    serve = pod["spec"]["containers"][0]
    port_names = {p["name"] for p in serve["ports"]}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= port_names
    parser = build_parser()
    for c in [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]:
        assert c["command"] == ["infercore"]
        parser.parse_args(c["args"])  # exits (SystemExit 2) on an unknown flag
    args = parser.parse_args(serve["args"])
    assert args.host == "0.0.0.0" and args.port == serve["ports"][0]["containerPort"]
    assert serve["readinessProbe"]["httpGet"]["path"] == "/ready"


# ----------------------------------------------------------------------------------------------- commands
def _infercore_commands(text: str) -> list[list[str]]:
    """Every `infercore ...` command line in shell snippets (continuations joined, placeholders filled)."""
    text = text.replace("\\\n", " ")
    text = re.sub(r"\{\{[^}]+\}\}", "X", text)
    text = re.sub(r"\$\{\{[^}]+\}\}", "X", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("infercore "):
            continue
        line = re.split(r"\s(?:>|\||&&|\|\|)\s", line)[0]
        argv = [a for a in shlex.split(line)[1:] if a != "${args[@]}"]
        out.append([re.sub(r"^\$\{?\w+\}?$", "X", a) for a in argv])
    return out


def _shell_texts() -> list[str]:
    wf = load(WORKFLOW)
    texts = [t["script"]["source"] for t in wf["spec"]["templates"] if "script" in t]
    gh = load(GITHUB)
    texts += [s["run"] for s in gh["jobs"]["eval-gate"]["steps"] if "run" in s]
    return texts


def test_every_infercore_command_parses():
    parser = build_parser()
    subcommands = set(parser._subparsers._group_actions[0].choices)
    cmds = [c for t in _shell_texts() for c in _infercore_commands(t)]
    gates = [c for c in cmds if c[0] == "gate"]
    assert len(gates) == 4  # gate + apply, in Argo and in GitHub Actions
    assert any(c[:2] == ["eval", "run"] for c in cmds)
    for argv in cmds:
        if argv[0] == "eval" and "eval" not in subcommands:
            continue  # `infercore eval` comes with the evaluator; checked once it is registered
        parser.parse_args(argv)
    for argv in gates:
        args = parser.parse_args(argv)
        assert args.candidate and args.policy and (args.baseline or args.no_baseline)
    applied = [parser.parse_args(a) for a in gates if "--apply" in a]
    assert len(applied) == 2 and all(a.registry for a in applied)


def test_run_local_script_runs_the_same_steps():
    text = (DEPLOY / "run_local.sh").read_text()
    cmds = [ln.strip() for ln in text.splitlines() if '"${IC[@]}"' in ln and not ln.strip().startswith("#")]
    kinds = [re.search(r'"\$\{IC\[@\]\}" (\w+)', c).group(1) for c in cmds]
    assert kinds == ["eval", "gate", "gate"]
    assert "--apply" in text.split("# 3 promote or roll back", 1)[1]
