"""PromptRegistry: prompts versioned in a plain Git repository.

Layout of the repository (every change is one commit, made by the `git` command):
    prompts/<name>/v<N>.json     one immutable version (template, variables, model_config, metadata, sha256)
    prompts/<name>/aliases.json  movable labels {"production": 3, "staging": 4}
    experiments/<name>.json      A/B test definitions;  rollouts/<name>.json  rollout state
    state/                       append-only outcome logs (git-ignored: too hot to commit per record)

Writers (threads or processes) are serialized by an fcntl lock on .git/infercore.lock. A write stages
blobs in the index and commits them *before* the files appear in the working tree (atomic rename), and
a writer first resets the tree to HEAD, so a crash or a failed commit never leaves a partial version.
Files are untrusted on read: a malformed entry or one whose content does not match its recorded
sha256 raises RegistryCorruptionError naming the file.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import fcntl
import hashlib
import json
import math
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from typing import Any

from .._fileio import atomic_write, check_path
from .template import PromptVersion, check_name, compile_template, normalize_variables

_VERSION_FILE = re.compile(r"^v([1-9][0-9]{0,8})\.json$")
_MAX_FILE = 4 << 20
_MODEL_CONFIG_KEYS = {"model", "temperature", "top_p", "top_k", "min_p", "max_tokens", "stop", "seed",
                      "repetition_penalty", "presence_penalty", "frequency_penalty"}  # fmt: skip


class RegistryError(RuntimeError):
    """A git operation on the registry failed."""


class RegistryCorruptionError(ValueError):
    """A registry file is malformed, truncated or does not match its recorded checksum."""


class PromptNotFoundError(LookupError):
    """No such prompt, version or alias."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _checksum(doc: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in doc.items() if k != "sha256"})).hexdigest()


def _check_model_config(model_config: Any) -> dict[str, Any]:
    if model_config is None:
        return {}
    if not isinstance(model_config, Mapping):
        raise TypeError(f"model_config: expected a dict, got {type(model_config).__name__}")
    unknown = set(model_config) - _MODEL_CONFIG_KEYS
    if unknown:
        raise ValueError(f"model_config: unknown keys {sorted(unknown)} (known: {sorted(_MODEL_CONFIG_KEYS)})")
    mc = dict(model_config)
    if "model" in mc and not isinstance(mc["model"], str):
        raise TypeError("model_config['model']: expected a string")
    if "temperature" in mc and (isinstance(mc["temperature"], bool) or not isinstance(mc["temperature"], (int, float))
                                or not 0 <= mc["temperature"] < math.inf):  # fmt: skip
        raise ValueError(f"model_config['temperature']: expected a finite number >= 0, got {mc['temperature']!r}")
    if "max_tokens" in mc and (isinstance(mc["max_tokens"], bool) or not isinstance(mc["max_tokens"], int)
                               or mc["max_tokens"] < 1):  # fmt: skip
        raise ValueError(f"model_config['max_tokens']: expected an int >= 1, got {mc['max_tokens']!r}")
    _check_json(mc, "model_config")
    return mc


def _check_json(value: Any, name: str) -> None:
    """TypeError unless JSON-serializable; ValueError for NaN/Infinity (not JSON: stored, they would
    make a file other JSON readers refuse) or a circular reference."""
    try:
        json.dumps(value, allow_nan=False)
    except TypeError:
        raise TypeError(f"{name}: must be JSON-serializable") from None
    except ValueError as e:
        raise ValueError(f"{name}: must be standard JSON (finite numbers, no NaN/Infinity): {e}") from None


class PromptRegistry:
    """A directory that is a Git repository of prompts. Created (git init) when missing."""

    AUTHOR = ("infercore", "infercore@localhost")

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = os.path.abspath(check_path(path, "path"))
        self._cache: dict[str, tuple[tuple[int, int, int], PromptVersion]] = {}
        if not os.path.isdir(os.path.join(self.path, ".git")):
            if not create:
                raise ValueError(f"path: {self.path} is not a prompt registry (no .git)")
            if os.path.exists(self.path) and not os.path.isdir(self.path):
                raise ValueError(f"path: {self.path} exists and is not a directory")
            os.makedirs(self.path, exist_ok=True)
            with self._lock(recover=False):
                if not os.path.isdir(os.path.join(self.path, ".git")):
                    self._init_repo()

    # ------------------------------------------------------------------ git plumbing
    def _git(self, *args: str, input: bytes | None = None) -> str:
        name, email = self.AUTHOR
        cmd = ["git", "-c", f"user.name={name}", "-c", f"user.email={email}", "-c", "commit.gpgsign=false",
               "-c", "core.hooksPath=/dev/null", "-c", "core.fsync=committed", *args]  # fmt: skip
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        r = subprocess.run(cmd, cwd=self.path, input=input, capture_output=True, env=env, check=False)
        if r.returncode != 0:
            raise RegistryError(f"git {' '.join(args[:2])} failed in {self.path}: {r.stderr.decode(errors='replace')}")
        return r.stdout.decode()

    def _lockfile(self) -> str:
        gitdir = os.path.join(self.path, ".git")
        return os.path.join(gitdir if os.path.isdir(gitdir) else self.path, "infercore.lock")

    @contextlib.contextmanager
    def _lock(self, recover: bool = True) -> Iterator[None]:
        fd = os.open(self._lockfile(), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if recover:
                self._recover()
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _init_repo(self) -> None:
        self._git("init", "-q")
        # the lock file lived beside .git until .git existed: move it under .git
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.path, "infercore.lock"))
        self._write_tree_file(".gitignore", b"state/\n")
        self._git("add", ".gitignore")
        self._git("commit", "-q", "-m", "infercore prompt registry")

    def _recover(self) -> None:
        """Undo what a crashed or failed writer left: index and tracked files back to HEAD, strays removed.
        Only when something differs: a reset rewrites files, and readers do not hold the lock."""
        paths = ("prompts", "experiments", "rollouts", ".gitignore")
        if self._git("status", "--porcelain", "--untracked-files=all", "--", *paths).strip():
            self._git("reset", "-q", "--hard", "HEAD")
            self._git("clean", "-q", "-f", "-d", "--", *paths[:3])

    def _write_tree_file(self, rel: str, data: bytes) -> None:
        full = os.path.join(self.path, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        atomic_write(full, data)

    def _commit(self, files: Mapping[str, bytes], message: str) -> str:
        """Commit files (relative path -> bytes) in one commit, then place them in the working tree.
        Call under the lock. On failure the index is reset and nothing is visible. Files that already
        hold these bytes (the tree is HEAD's under the lock) are no change: nothing is committed.
        The message goes through stdin, so its length is not bounded by the argument list."""
        if all(self._tree_bytes(rel) == data for rel, data in files.items()):
            return self._git("rev-parse", "HEAD").strip()
        try:
            for rel, data in files.items():
                sha = self._git("hash-object", "-w", "--stdin", input=data).strip()
                self._git("update-index", "--add", "--cacheinfo", f"100644,{sha},{rel}")
            self._git("commit", "-q", "-F", "-", input=message.encode())
        except BaseException:
            with contextlib.suppress(RegistryError):
                self._git("reset", "-q", "HEAD")
            raise
        for rel, data in files.items():
            self._write_tree_file(rel, data)
        self._cache.clear()
        return self._git("rev-parse", "HEAD").strip()

    def _tree_bytes(self, rel: str) -> bytes | None:
        try:
            with open(os.path.join(self.path, rel), "rb") as fh:
                return fh.read()
        except OSError:
            return None

    # ------------------------------------------------------------------ reading
    def _read_json(self, rel: str) -> Any:
        full = os.path.join(self.path, rel)
        try:
            size = os.path.getsize(full)
            if size > _MAX_FILE:
                raise RegistryCorruptionError(f"{full}: {size} bytes is larger than any registry entry ({_MAX_FILE})")
            with open(full, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RegistryCorruptionError(f"{full}: corrupted registry entry (not valid JSON: {e})") from None

    def names(self) -> list[str]:
        root = os.path.join(self.path, "prompts")
        if not os.path.isdir(root):
            return []
        return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)) and not n.startswith("."))

    def versions(self, name: str) -> list[int]:
        check_name(name, "name")
        d = os.path.join(self.path, "prompts", name)
        if not os.path.isdir(d):
            return []
        return sorted(int(m.group(1)) for f in os.listdir(d) if (m := _VERSION_FILE.match(f)))

    def aliases(self, name: str) -> dict[str, int]:
        check_name(name, "name")
        rel = f"prompts/{name}/aliases.json"
        doc = self._read_json(rel)
        if doc is None:
            return {}
        if not isinstance(doc, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in doc.items()
        ):
            raise RegistryCorruptionError(f"{os.path.join(self.path, rel)}: corrupted aliases (expected alias -> int)")
        return doc

    def _load_version(self, name: str, version: int) -> PromptVersion:
        rel = f"prompts/{name}/v{version}.json"
        full = os.path.join(self.path, rel)
        try:
            st = os.stat(full)
        except FileNotFoundError:
            raise PromptNotFoundError(f"prompt {name!r} has no version {version}") from None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        hit = self._cache.get(rel)
        if hit is not None and hit[0] == key:
            return hit[1]
        doc = self._read_json(rel)
        fields = ("name", "version", "template", "variables", "model_config", "metadata", "message", "created_at",
                  "sha256")  # fmt: skip
        if not isinstance(doc, dict) or set(doc) != set(fields):
            raise RegistryCorruptionError(f"{full}: corrupted registry entry (fields {sorted(doc or {})})")
        if doc["sha256"] != _checksum(doc):
            raise RegistryCorruptionError(f"{full}: corrupted registry entry (content does not match its sha256)")
        if doc["name"] != name or doc["version"] != version:
            raise RegistryCorruptionError(f"{full}: entry claims to be {doc['name']!r} v{doc['version']}")
        try:
            variables = normalize_variables(doc["variables"])
            compiled, _ = compile_template(doc["template"], variables)
        except (TypeError, ValueError) as e:
            raise RegistryCorruptionError(f"{full}: corrupted registry entry ({e})") from None
        tpl = doc["template"] if isinstance(doc["template"], str) else tuple(dict(m) for m in doc["template"])
        pv = PromptVersion(name, version, tpl, variables, dict(doc["model_config"]), dict(doc["metadata"]),
                           doc["message"], doc["created_at"], None, compiled)  # fmt: skip
        self._cache[rel] = (key, pv)
        return pv

    def get(self, name: str, version: int | None = None, *, alias: str | None = None) -> PromptVersion:
        """A version by number, by alias, or the latest when neither is given."""
        check_name(name, "name")
        if version is not None and alias is not None:
            raise ValueError("version, alias: give one of them, not both")
        if alias is not None:
            check_name(alias, "alias")
            table = self.aliases(name)
            if alias not in table:
                raise PromptNotFoundError(f"prompt {name!r} has no alias {alias!r} (aliases: {sorted(table)})")
            version = table[alias]
        if version is None:
            vs = self.versions(name)
            if not vs:
                raise PromptNotFoundError(f"no prompt named {name!r} in {self.path}")
            version = vs[-1]
        if isinstance(version, bool) or not isinstance(version, int):
            raise TypeError(f"version: expected an int, got {type(version).__name__}")
        return self._load_version(name, version)

    def resolve(self, name: str, ref: int | str | None) -> PromptVersion:
        """ref: a version number, "v3" / "3", an alias name, or None for the latest."""
        if ref is None or isinstance(ref, int):
            return self.get(name, ref)
        if isinstance(ref, str) and re.fullmatch(r"v?[0-9]+", ref):
            return self.get(name, int(ref.lstrip("v")))
        return self.get(name, alias=ref)

    # ------------------------------------------------------------------ writing
    def register(
        self,
        name: str,
        template: str | list[dict[str, str]],
        *,
        variables: Mapping[str, Any] | None = None,
        model_config: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        message: str | None = None,
        alias: str | None = None,
    ) -> PromptVersion:
        """Create the next immutable version of `name` as one commit (and optionally point alias at it).

        variables: name -> type ("str", "int", "float", "bool", "list", "dict", "any") or
        {"type", "default", "description"}; None declares every variable the template reads as required.
        """
        check_name(name, "name")
        if alias is not None:
            check_name(alias, "alias")
        if message is not None and not isinstance(message, str):
            raise TypeError(f"message: expected a string, got {type(message).__name__}")
        if message is not None and "\x00" in message:
            raise ValueError("message: must not contain NUL characters (git refuses them in commit messages)")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata: expected a dict, got {type(metadata).__name__}")
        mc = _check_model_config(model_config)
        declared = normalize_variables(variables) if variables is not None else None
        _, used = compile_template(template, declared)
        if declared is None:
            declared = {v: {"type": "any"} for v in sorted(used)}
        meta = dict(metadata or {})
        _check_json(meta, "metadata")
        with self._lock():
            vs = self.versions(name)
            version = (vs[-1] + 1) if vs else 1
            doc = {"name": name, "version": version,
                   "template": template if isinstance(template, str) else [dict(m) for m in template],
                   "variables": declared, "model_config": mc, "metadata": meta, "message": message or "",
                   "created_at": _now()}  # fmt: skip
            doc["sha256"] = _checksum(doc)
            files = {f"prompts/{name}/v{version}.json": json.dumps(doc, indent=1, ensure_ascii=False).encode() + b"\n"}
            trailer = f"\n\nInfercore-Action: register\nInfercore-Prompt: {name}\nInfercore-Version: {version}"
            if alias is not None:
                table = {**self.aliases(name), alias: version}
                files[f"prompts/{name}/aliases.json"] = json.dumps(table, indent=1, sort_keys=True).encode() + b"\n"
                trailer += f"\nInfercore-Alias: {alias}"
            summary = (message or "").splitlines()[0][:72] if message else "new version"
            self._commit(files, f"{name} v{version}: {summary}{trailer}")
            return self._load_version(name, version)

    def set_alias(self, name: str, alias: str, version: int | str, *, reason: str | None = None) -> None:
        """Point alias at a version (moving it if it exists). `reason` (one or more lines) goes into the
        commit message body, its first line also into an `Infercore-Reason:` trailer (history()["reason"]).
        An alias that already points at the version is no change: nothing is committed (so no reason
        is recorded either; history() lists changes only)."""
        check_name(alias, "alias")
        if re.fullmatch(r"v?[0-9]+", alias):
            raise ValueError(f"alias: {alias!r} looks like a version number")
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            raise ValueError(f"reason: expected a non-empty string or None, got {reason!r}")
        if reason is not None and "\x00" in reason:
            raise ValueError("reason: must not contain NUL characters (git refuses them in commit messages)")
        target = self.resolve(name, version).version
        body = ""
        if reason is not None:
            first = " ".join(reason.strip().splitlines()[0].split())[:200]
            body = f"\n\n{reason.strip()}"
        with self._lock():
            table = {**self.aliases(name), alias: target}
            self._commit({f"prompts/{name}/aliases.json": json.dumps(table, indent=1, sort_keys=True).encode() + b"\n"},
                         f"{name}: alias {alias} -> v{target}{body}\n\nInfercore-Action: alias\nInfercore-Prompt: "
                         f"{name}\nInfercore-Version: {target}\nInfercore-Alias: {alias}"
                         + (f"\nInfercore-Reason: {first}" if reason is not None else ""))  # fmt: skip

    def delete_alias(self, name: str, alias: str) -> None:
        check_name(alias, "alias")
        with self._lock():
            table = self.aliases(name)
            if alias not in table:
                raise PromptNotFoundError(f"prompt {name!r} has no alias {alias!r}")
            del table[alias]
            self._commit({f"prompts/{name}/aliases.json": json.dumps(table, indent=1, sort_keys=True).encode() + b"\n"},
                         f"{name}: remove alias {alias}\n\nInfercore-Action: unalias\nInfercore-Prompt: {name}\n"
                         f"Infercore-Alias: {alias}")  # fmt: skip

    # ------------------------------------------------------------------ state for experiments and rollouts
    def read_state(self, kind: str, name: str) -> Any:
        if kind not in ("experiments", "rollouts"):
            raise ValueError(f"kind: expected 'experiments' or 'rollouts', got {kind!r}")
        check_name(name, "name")
        return self._read_json(f"{kind}/{name}.json")

    def write_state(self, kind: str, name: str, doc: Mapping[str, Any], message: str) -> None:
        if kind not in ("experiments", "rollouts"):
            raise ValueError(f"kind: expected 'experiments' or 'rollouts', got {kind!r}")
        check_name(name, "name")
        if not isinstance(message, str) or "\x00" in message:
            raise ValueError("message: expected a string without NUL characters (it is the commit message)")
        with self._lock():
            self._commit({f"{kind}/{name}.json": json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"},
                         f"{kind[:-1]} {name}: {message}\n\nInfercore-Action: {kind[:-1]}")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's write lock (for read-modify-write of state)."""
        with self._lock():
            yield

    def state_dir(self) -> str:
        d = os.path.join(self.path, "state")
        os.makedirs(d, exist_ok=True)
        return d

    # ------------------------------------------------------------------ inspection
    def list(self) -> list[dict[str, Any]]:
        out = []
        for n in self.names():
            vs = self.versions(n)
            out.append({"name": n, "latest": vs[-1] if vs else None, "versions": len(vs), "aliases": self.aliases(n)})
        return out

    def history(self, name: str) -> list[dict[str, Any]]:
        """Commits touching the prompt, newest first: {commit, date, action, version, alias, message}."""
        check_name(name, "name")
        if not self.versions(name):
            raise PromptNotFoundError(f"no prompt named {name!r} in {self.path}")
        raw = self._git("log", "--format=%H%x1f%aI%x1f%B%x1e", "--", f"prompts/{name}")
        out = []
        for rec in raw.split("\x1e"):
            rec = rec.strip("\n")
            if not rec:
                continue
            commit, date, body = rec.split("\x1f", 2)
            trailers = dict(re.findall(r"^Infercore-([A-Za-z]+): (.*)$", body, flags=re.M))
            subject = body.split("\n", 1)[0]
            out.append({"commit": commit, "date": date, "action": trailers.get("Action", "?"),
                        "version": int(trailers["Version"]) if "Version" in trailers else None,
                        "alias": trailers.get("Alias"), "message": subject,
                        "reason": trailers.get("Reason")})  # fmt: skip
        return out

    def diff(self, name: str, a: int | str, b: int | str) -> str:
        """Unified diff of two versions' templates, then the changed config, variables and metadata."""
        va, vb = self.resolve(name, a), self.resolve(name, b)

        def lines(pv: PromptVersion) -> list[str]:
            if isinstance(pv.template, str):
                return pv.template.splitlines(keepends=True)
            return [ln for m in pv.template for ln in [f"[{m['role']}]\n", *m["content"].splitlines(keepends=True)]]

        out = list(difflib.unified_diff(lines(va), lines(vb), f"{va.ref}/template", f"{vb.ref}/template"))
        out = [ln if ln.endswith("\n") else ln + "\n" for ln in out]
        for section in ("model_config", "variables", "metadata"):
            da, db = getattr(va, section), getattr(vb, section)
            for k in sorted(set(da) | set(db)):
                if da.get(k, "<unset>") != db.get(k, "<unset>"):
                    old, new = json.dumps(da.get(k, "<unset>")), json.dumps(db.get(k, "<unset>"))
                    out.append(f"{section}.{k}: {old} -> {new}\n")
        return "".join(out)

    def verify(self) -> list[str]:
        """Check every version file against its checksum and against the committed blob; problems found."""
        problems = []
        committed = set(self._git("ls-tree", "-r", "--name-only", "HEAD", "--", "prompts").split())
        for n in self.names():
            for v in self.versions(n):
                rel = f"prompts/{n}/v{v}.json"
                try:
                    self._load_version(n, v)
                except (RegistryCorruptionError, PromptNotFoundError) as e:
                    problems.append(str(e))
                    continue
                if rel not in committed:
                    problems.append(f"{rel}: not committed")
                    continue
                blob = self._git("show", f"HEAD:{rel}")
                with open(os.path.join(self.path, rel), encoding="utf-8") as fh:
                    if fh.read() != blob:
                        problems.append(f"{rel}: differs from the committed version")
            with contextlib.suppress(RegistryCorruptionError):
                self.aliases(n)
        return problems
