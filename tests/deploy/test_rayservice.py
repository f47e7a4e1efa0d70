"""deploy/ray/rayservice.yaml: the KubeRay RayService against a schema written from KubeRay's API types
(tests/deploy/schemas/README.md), its serveConfigV2 against Ray Serve's own config schema (when ray is
installed), and its application args through infercore's builder checks and CLI parser."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from infercore.cli.main import build_parser
from infercore.cli.serve_ray_opts import autoscaling_config, parse_autoscale

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "ray" / "rayservice.yaml"
SCHEMA = Path(__file__).resolve().parent / "schemas" / "kuberay-rayservice.schema.json"


def strict(schema):
    """Close every object that lists properties unless it says otherwise (misspelt fields fail)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load(MANIFEST.read_text())


@pytest.fixture(scope="module")
def validator():
    s = strict(json.loads(SCHEMA.read_text()))
    jsonschema.Draft7Validator.check_schema(s)
    return jsonschema.Draft7Validator(s)


def _serve_config(doc) -> dict:
    return yaml.safe_load(doc["spec"]["serveConfigV2"])


def test_manifest_matches_the_rayservice_schema(doc, validator):
    errors = sorted(validator.iter_errors(doc), key=str)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["spec"]["rayClusterConfig"].pop("headGroupSpec"), "headGroupSpec"),
    (lambda d: d["spec"]["rayClusterConfig"]["workerGroupSpecs"][0].pop("maxReplicas"), "maxReplicas"),
    (lambda d: d["spec"]["rayClusterConfig"].update(workerGroupSpec=[]), "workerGroupSpec"),
    (lambda d: d["spec"]["rayClusterConfig"]["autoscalerOptions"].update(upscalingMode="Fast"), "Fast"),
    (lambda d: d["spec"].update(serveConfigV2={"applications": []}), "string"),
    (lambda d: d.update(apiVersion="ray.io/v1alpha2"), "ray.io/v1"),
])  # fmt: skip
def test_the_schema_catches_broken_manifests(doc, validator, mutate, where):
    bad = copy.deepcopy(doc)
    mutate(bad)
    msgs = [e.message for e in validator.iter_errors(bad)]
    assert any(where in m for m in msgs), msgs


def test_serve_config_structure_and_args(doc):
    cfg = _serve_config(doc)
    (app,) = cfg["applications"]
    assert app["import_path"] == "infercore.serve.ray_app:app_builder" and app["route_prefix"] == "/"
    args = app["args"]
    assert set(args) <= {"serve_args", "replicas", "autoscale", "target_ongoing_requests", "max_ongoing_requests",
                         "replica_cpus"}  # fmt: skip
    a = build_parser().parse_args(["serve", *args["serve_args"]])  # the replica parses them the same way
    assert not a.ray and a.model == "smollm2"
    # the proxy never sends a replica more than its engine admits before answering 429
    assert args["max_ongoing_requests"] <= a.max_num_seqs + a.max_queue
    auto = autoscaling_config(args["replicas"], args["autoscale"], args["target_ongoing_requests"])
    lo, hi = parse_autoscale(args["autoscale"])
    workers = doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    # the cluster can hold the most replicas the Serve autoscaler may ask for
    cpus = int(workers["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"])
    assert workers["maxReplicas"] * (cpus // args["replica_cpus"]) >= hi
    assert auto["min_replicas"] == lo and auto["max_replicas"] == hi
    assert doc["spec"]["rayClusterConfig"]["rayVersion"] == "2.60.0"
    head = doc["spec"]["rayClusterConfig"]["headGroupSpec"]
    ports = {p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]}
    assert cfg["http_options"]["port"] in ports


def test_serve_config_against_ray_serve_schema(doc):
    schema = pytest.importorskip("ray.serve.schema")
    parsed = schema.ServeDeploySchema.model_validate(_serve_config(doc))
    assert parsed.applications[0].import_path == "infercore.serve.ray_app:app_builder"
    with pytest.raises(Exception, match="import_path"):
        schema.ServeDeploySchema.model_validate({"applications": [{"name": "x", "route_prefix": "/"}]})


def test_autoscale_parsing():
    assert parse_autoscale("1:4") == (1, 4) and parse_autoscale(" 0 : 2 ") == (0, 2) and parse_autoscale(None) is None
    for bad in ("4:1", "1-4", "a:b", "0:0", ":3"):
        with pytest.raises(ValueError, match="--autoscale"):
            parse_autoscale(bad)
    c = autoscaling_config(8, "1:4", 5)
    assert c["initial_replicas"] == 4 and c["target_ongoing_requests"] == 5.0
    assert autoscaling_config(2, None, 8) is None
    with pytest.raises(ValueError, match="--replicas"):
        autoscaling_config(0, None, 8)
    with pytest.raises(ValueError, match="--target-ongoing-requests"):
        autoscaling_config(1, "1:2", 0)
