"""Another checkout of core in the same run: ``--baseline PATH`` and ``--baseline-ref REF``.

``core-baseline`` (compiled) and ``core-py-baseline`` (CORE_PURE_PYTHON=1) run ``python -m core``
from the other checkout with cwd=PATH and PYTHONPATH=PATH, so that checkout's own ``core``
package and the extension modules compiled in place there are imported, not this one's.
Whether that really happened is checked before any run (verify_checkout): the same
interpreter with the same environment and directory reports which files it imported.  An
editable install of a third checkout would otherwise be picked up without a word.

``--baseline-ref REF`` checks REF out into a temporary git worktree (``git worktree add
--detach``), builds it in place and removes the worktree at the end (temporary_worktree).
"""
from __future__ import annotations

import contextlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from .servers import LISTENING, REPO_ROOT, ServerSpec, core_command

COMPILED_SERVER = "core-baseline"
PURE_SERVER = "core-py-baseline"
CHECKOUT_SERVERS = (COMPILED_SERVER, PURE_SERVER)
BUILD_TIMEOUT_S = 600

# Run by the baseline's interpreter in the baseline's environment: which core did it import,
# and where do the compiled modules (one per core/*.pyx) come from, if they load at all?
PROBE_SCRIPT = r"""
import importlib, json, pathlib, sys
import core
core_file = getattr(core, "__file__", None)  # None: a namespace package, no core/__init__.py
compiled = {}
for source in sorted(pathlib.Path(core_file).resolve().parent.glob("*.pyx")) if core_file else ():
    try:
        compiled[source.stem] = importlib.import_module("core." + source.stem).__file__
    except ImportError:
        compiled[source.stem] = None
print(json.dumps({"core_file": core_file, "compiled": compiled}))
"""


class BaselineError(RuntimeError):
    """The baseline checkout cannot be used: missing, not built, or not the core that gets imported."""


def server_env(checkout: Path, pure: bool) -> dict[str, str]:
    """The environment variables a baseline server gets on top of the harness's own.

    The compiled one also gets CORE_REQUIRE_COMPILED=1: a checkout that knows the variable then
    fails instead of falling back to pure Python (the pure one gets 0, the two contradict).
    """
    return {
        "PYTHONPATH": str(checkout),
        "CORE_PURE_PYTHON": "1" if pure else "0",
        "CORE_REQUIRE_COMPILED": "0" if pure else "1",
    }


def server_specs(checkout: Path, label: str | None = None) -> dict[str, ServerSpec]:
    """core-baseline and core-py-baseline for the checkout at ``checkout`` (described as ``label``)."""
    checkout = Path(checkout).resolve()
    label = label or str(checkout)

    def unavailable() -> str | None:
        if (checkout / "core" / "__main__.py").exists():
            return None
        return f"{checkout}/core/__main__.py not found: not a checkout of this project"

    def spec(name: str, description: str, pure: bool) -> ServerSpec:
        return ServerSpec(name, description, core_command, unavailable, env=server_env(checkout, pure),
                          ready_line=LISTENING, cwd=checkout, scales_with_workers=True)  # fmt: skip

    return {
        COMPILED_SERVER: spec(COMPILED_SERVER, f"core from {label}, compiled", pure=False),
        PURE_SERVER: spec(PURE_SERVER, f"core from {label}, pure Python (CORE_PURE_PYTHON=1)",
                          pure=True),  # fmt: skip
    }


def probe_command() -> list[str]:
    return [sys.executable, "-c", PROBE_SCRIPT]


def _inside(path: str | None, directory: Path) -> bool:
    return path is not None and Path(path).resolve().is_relative_to(directory)


def verify_checkout(spec: ServerSpec) -> dict:
    """Check that ``spec`` (a baseline server) imports core from its checkout, compiled if it should be.

    Runs probe_command() with the server's directory and environment.  Returns what was
    imported (``core_file``, ``compiled``: module -> file) and ``warnings`` (e.g. a build
    older than its source); raises BaselineError when the baseline would not be that checkout.
    """
    checkout = spec.cwd.resolve()
    why = spec.unavailable()
    if why:
        raise BaselineError(why)
    try:
        proc = subprocess.run(probe_command(), cwd=checkout, env=dict(os.environ, **spec.env),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BaselineError(f"{spec.name}: importing core from {checkout} took over 60 s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BaselineError(f"{spec.name}: `import core` fails in {checkout}: {last}")
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    if not _inside(found["core_file"], checkout):
        where = found["core_file"] or "a namespace package (no core/__init__.py)"
        raise BaselineError(f"{spec.name}: imports core from {where}, not from {checkout}")
    warnings = []
    if spec.env["CORE_PURE_PYTHON"] != "1":
        missing = [name for name, path in found["compiled"].items() if not _is_extension_in(path, checkout)]
        if not found["compiled"] or missing:
            what = ", ".join(f"core.{name}" for name in missing) or "no core/*.pyx"
            raise BaselineError(f"{spec.name}: {checkout} has no compiled build for this Python ({what}); "
                                f"build it: cd {checkout} && {sys.executable} setup.py build_ext --inplace")  # fmt: skip
        warnings += stale_builds(checkout, found["compiled"])
    return {"core_file": found["core_file"], "compiled": found["compiled"], "warnings": warnings}


def _is_extension_in(path: str | None, checkout: Path) -> bool:
    return _inside(path, checkout) and path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def stale_builds(checkout: Path, compiled: dict[str, str | None]) -> list[str]:
    """One warning per compiled module whose .pyx source is newer than the built file."""
    warnings = []
    for name, built in compiled.items():
        source = checkout / "core" / f"{name}.pyx"
        if built and source.exists() and source.stat().st_mtime > Path(built).stat().st_mtime:
            warnings.append(f"{source} is newer than {Path(built).name}: the baseline runs an older build")
    return warnings


def build_in_place(checkout: Path) -> None:
    """``python setup.py build_ext --inplace`` in ``checkout`` (compiled, whatever CORE_PURE_PYTHON says)."""
    env = {k: v for k, v in os.environ.items() if k != "CORE_PURE_PYTHON"}
    try:
        proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=checkout,
                              env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BaselineError(f"building {checkout} took over {BUILD_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise BaselineError(f"building {checkout} failed: {tail}")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=120)


def resolve_ref(ref: str, repo: Path = REPO_ROOT) -> str:
    """The full commit id ``ref`` names in ``repo``."""
    proc = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if proc.returncode != 0:
        raise BaselineError(f"--baseline-ref {ref}: not a commit in {repo}")
    return proc.stdout.strip()


@contextlib.contextmanager
def temporary_worktree(ref: str, build: bool = True, repo: Path = REPO_ROOT,
                       log=sys.stderr) -> Iterator[tuple[Path, str]]:  # fmt: skip
    """A detached worktree of ``ref`` in a temp dir, built in place if ``build``: yields (path, commit).

    The worktree is removed (``git worktree remove --force``) however the block ends.
    """
    commit = resolve_ref(ref, repo)
    parent = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
    checkout = parent / "checkout"
    added = False
    try:
        print(f"baseline: checking out {ref} ({commit[:10]}) into {checkout}", file=log, flush=True)
        proc = _git(repo, "worktree", "add", "--detach", str(checkout), commit)
        if proc.returncode != 0:
            raise BaselineError(f"git worktree add failed: {proc.stderr.strip()}")
        added = True
        if build:
            print("baseline: building it in place (setup.py build_ext --inplace)", file=log, flush=True)
            build_in_place(checkout)
        yield checkout, commit
    finally:
        if added:
            proc = _git(repo, "worktree", "remove", "--force", str(checkout))
            if proc.returncode != 0:
                print(f"baseline: could not remove the worktree {checkout}: {proc.stderr.strip()}", file=log)
        shutil.rmtree(parent, ignore_errors=True)
