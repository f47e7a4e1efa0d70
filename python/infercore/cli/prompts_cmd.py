"""`infercore prompts register|list|show|diff|alias|history|render` over a Git prompt registry."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _registry(args: argparse.Namespace, create: bool = False) -> Any:
    from infercore.prompts import PromptRegistry

    return PromptRegistry(args.registry, create=create)


def _json_arg(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what}: not valid JSON: {e}") from None


def _parse_var_decl(items: list[str] | None) -> dict[str, Any] | None:
    """--var name:type[=default] (default parsed as JSON, else taken as a string)."""
    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        decl, has_default, default = item.partition("=")
        name, _, typ = decl.partition(":")
        spec: dict[str, Any] = {"type": typ or "any"}
        if has_default:
            try:
                spec["default"] = json.loads(default)
            except json.JSONDecodeError:
                spec["default"] = default
        out[name] = spec
    return out


def cmd_register(args: argparse.Namespace) -> int:
    if (args.template is None) == (args.template_file is None):
        raise ValueError("template: give exactly one of --template or --template-file")
    text = args.template
    if args.template_file is not None:
        with open(args.template_file, encoding="utf-8") as fh:
            text = fh.read()
    template: Any = text
    if args.chat:
        template = _json_arg(text, "template")
    reg = _registry(args, create=True)
    pv = reg.register(args.name, template, variables=_parse_var_decl(args.var),
                      model_config=_json_arg(args.model_config, "--model-config"),
                      metadata=_json_arg(args.metadata, "--metadata"), message=args.message,
                      alias=args.alias)  # fmt: skip
    print(f"registered {pv.ref}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = _registry(args).list()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        aliases = " ".join(f"{a}=v{v}" for a, v in sorted(r["aliases"].items()))
        print(f"{r['name']}  latest v{r['latest']}  ({r['versions']} versions)  {aliases}".rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    pv = _registry(args).resolve(args.name, args.ref)
    if args.json:
        print(json.dumps(pv.to_dict(), indent=1, ensure_ascii=False))
        return 0
    print(f"{pv.ref}  {pv.created_at}  {pv.message}")
    print(f"variables: {json.dumps(pv.variables)}")
    print(f"model_config: {json.dumps(pv.model_config)}")
    if pv.metadata:
        print(f"metadata: {json.dumps(pv.metadata)}")
    print("---")
    if isinstance(pv.template, str):
        print(pv.template)
    else:
        for m in pv.template:
            print(f"[{m['role']}]\n{m['content']}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    sys.stdout.write(_registry(args).diff(args.name, args.a, args.b))
    return 0


def cmd_alias(args: argparse.Namespace) -> int:
    reg = _registry(args)
    if args.delete:
        reg.delete_alias(args.name, args.alias)
        print(f"removed {args.name} alias {args.alias}")
        return 0
    if args.version is None:
        raise ValueError("version: give the version to point the alias at (or --delete)")
    reg.set_alias(args.name, args.alias, args.version)
    print(f"{args.name}: {args.alias} -> v{reg.get(args.name, alias=args.alias).version}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    for e in _registry(args).history(args.name):
        print(f"{e['commit'][:10]}  {e['date']}  {e['action']:<8}  {e['message']}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    pv = _registry(args).resolve(args.name, args.ref)
    values: dict[str, Any] = dict(_json_arg(args.vars_json, "--vars") or {})
    for item in args.set or []:
        k, eq, v = item.partition("=")
        if not eq:
            raise ValueError(f"--set: expected NAME=VALUE, got {item!r}")
        typ = pv.variables.get(k, {}).get("type", "str")
        values[k] = v if typ == "str" else _json_arg(v, f"--set {k}")
    if args.messages:
        print(json.dumps(pv.render_messages(values), indent=1, ensure_ascii=False))
    else:
        print(pv.render(values))
    return 0


def _guard(fn: Any) -> Any:
    """Registry errors that are not argument errors (missing prompt, git failure, corruption) -> exit 1."""

    def run(args: argparse.Namespace) -> int:
        from infercore.prompts import RegistryCorruptionError, RegistryError

        try:
            return fn(args)
        except (LookupError, RegistryError, RegistryCorruptionError, OSError) as e:
            msg = e.args[0] if isinstance(e, LookupError) and e.args else e
            print(f"infercore prompts: {msg}", file=sys.stderr)
            return 1

    return run


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("prompts", help="Git-backed prompt registry: versions, aliases, diffs, rendering")
    p.add_argument("--registry", default=os.environ.get("INFERCORE_PROMPTS", "prompts"),
                   help="registry directory (a git repo; default $INFERCORE_PROMPTS or ./prompts)")  # fmt: skip
    sub = p.add_subparsers(dest="prompts_command", required=True)
    pr = sub.add_parser("register", help="add a new immutable version of a prompt")
    pr.add_argument("name")
    pr.add_argument("--template", help="template text (Jinja2)")
    pr.add_argument("--template-file", help="read the template from this file")
    pr.add_argument("--chat", action="store_true", help="the template is a JSON list of {role, content}")
    pr.add_argument("--var", action="append", metavar="NAME:TYPE[=DEFAULT]", help="declare a variable (repeatable)")
    pr.add_argument("--model-config", metavar="JSON", help='e.g. \'{"temperature": 0.2, "max_tokens": 64}\'')
    pr.add_argument("--metadata", metavar="JSON")
    pr.add_argument("-m", "--message", help="commit message")
    pr.add_argument("--alias", help="point this alias at the new version")
    pr.set_defaults(func=_guard(cmd_register))
    pl = sub.add_parser("list", help="prompts with their latest version and aliases")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=_guard(cmd_list))
    ps = sub.add_parser("show", help="one version (default: latest)")
    ps.add_argument("name")
    ps.add_argument("ref", nargs="?", help="version (3 or v3) or alias")
    ps.add_argument("--json", action="store_true")
    ps.set_defaults(func=_guard(cmd_show))
    pd = sub.add_parser("diff", help="unified diff between two versions or aliases")
    pd.add_argument("name")
    pd.add_argument("a")
    pd.add_argument("b")
    pd.set_defaults(func=_guard(cmd_diff))
    pa = sub.add_parser("alias", help="point an alias (production, staging, ...) at a version")
    pa.add_argument("name")
    pa.add_argument("alias")
    pa.add_argument("version", nargs="?")
    pa.add_argument("--delete", action="store_true")
    pa.set_defaults(func=_guard(cmd_alias))
    ph = sub.add_parser("history", help="registrations and alias moves, newest first")
    ph.add_argument("name")
    ph.set_defaults(func=_guard(cmd_history))
    pn = sub.add_parser("render", help="render a version with variables")
    pn.add_argument("name")
    pn.add_argument("ref", nargs="?")
    pn.add_argument("--set", action="append", metavar="NAME=VALUE", help="a variable (JSON unless its type is str)")
    pn.add_argument("--vars", dest="vars_json", metavar="JSON", help="variables as a JSON object")
    pn.add_argument("--messages", action="store_true", help="print chat messages as JSON")
    pn.set_defaults(func=_guard(cmd_render))
