"""The re-run recipe of a report: what to install, from where, and which command to run.

radfusion is not on a package index, so ``pip install radfusion==<version>`` installs
nothing. The recipe names what actually exists:

- **the project source** (:func:`project_source`): the git commit the running code was
  loaded from (its ``origin`` remote, else the local repository as a ``git+file://`` URL), the
  wheel or archive pip recorded in ``direct_url.json``, or, only when pip installed it from an
  index, ``radfusion==<version>``;
- **the dependencies** (:func:`pinned_requirements`): every distribution radfusion needs at
  run time, transitively, with the version installed here (markers evaluated for this
  platform and Python), so the new environment resolves to the same versions.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

__all__ = ["pinned_requirements", "project_source", "reproduce_steps"]

PROJECT = "radfusion"
#: The folder the running ``radfusion.pipeline`` package was loaded from (``pipeline/``).
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def pinned_requirements(project: str = PROJECT) -> list[str]:
    """``name==version`` of every installed distribution ``project`` needs, transitively.

    Requirements whose markers do not hold here (another platform, an extra not asked for)
    are left out; a requirement that is not installed is left out too (the import would
    have failed). Sorted by normalised name; ``project`` itself is not listed.
    """
    pins: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    queue: list[tuple[str, str]] = [(project, "")]
    while queue:
        name, extra = queue.pop()
        key = canonicalize_name(name)
        if (key, extra) in seen:
            continue
        seen.add((key, extra))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if key != canonicalize_name(project):
            pins[key] = f"{dist.metadata['Name']}=={dist.version}"
        for text in dist.requires or ():
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
                continue
            for wanted in ("", *sorted(requirement.extras)):
                queue.append((requirement.name, wanted))
    return [pins[key] for key in sorted(pins)]


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", os.fspath(root), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _direct_url(project: str) -> dict[str, Any] | None:
    """pip's ``direct_url.json`` (PEP 610) of the installed ``project``, if any."""
    for dist in metadata.distributions(name=project):
        text = dist.read_text("direct_url.json")
        if text:
            return json.loads(text)
    return None


def project_source(project: str = PROJECT) -> dict[str, Any]:
    """Where the running radfusion code comes from, as something pip can install.

    Returns
    -------
    dict
        ``kind`` ("git", "archive", "index" or "unknown"), ``spec`` (a pip requirement, or
        None when there is nothing installable to name), ``commit`` (git only) and
        ``uncommitted`` (git only: number of files changed since that commit, which the
        recipe does not reproduce).
    """
    root = _PACKAGE_DIR.parent
    top = (
        _git(root, "rev-parse", "--show-toplevel") if (root / "pyproject.toml").is_file() else None
    )
    if top is not None and Path(top).resolve() == root:
        commit = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        remote = _git(root, "config", "--get", "remote.origin.url")
        url = remote or root.as_uri()
        url = url if "://" in url else f"ssh://{url.replace(':', '/', 1)}"  # scp-like remote
        return {
            "kind": "git",
            "spec": f"{project} @ git+{url}@{commit}",
            "commit": commit,
            "uncommitted": len(status.splitlines()) if status else 0,
        }
    direct = _direct_url(project)
    if direct is not None:
        url = direct.get("url", "")
        if "vcs_info" in direct:
            vcs = direct["vcs_info"]
            return {
                "kind": "git",
                "spec": f"{project} @ {vcs.get('vcs', 'git')}+{url}@{vcs['commit_id']}",
                "commit": vcs["commit_id"],
                "uncommitted": 0,
            }
        if "archive_info" in direct:
            digest = direct["archive_info"].get("hashes", {}).get("sha256")
            return {
                "kind": "archive",
                "spec": f"{project} @ {url}" + (f"#sha256={digest}" if digest else ""),
            }
        return {"kind": "unknown", "spec": None}  # a local folder that is not a git checkout
    try:
        return {"kind": "index", "spec": f"{project}=={metadata.version(project)}"}
    except metadata.PackageNotFoundError:  # run from a source folder without installing
        return {"kind": "unknown", "spec": None}


def reproduce_steps(config: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """How to re-run: the command, the install commands, the pinned requirements, the steps."""
    command = config.get("command") if isinstance(config, Mapping) else None
    if isinstance(command, (list, tuple)):
        command = shlex.join(str(part) for part in command)
    requirements = pinned_requirements()
    source = project_source()
    python = ".".join(platform.python_version_tuple()[:2])
    install = [f"python{python} -m venv .venv && . .venv/bin/activate"]
    install.append(shlex.join(["pip", "install", *requirements]))
    if source["spec"] is not None:
        install.append(shlex.join(["pip", "install", "--no-deps", source["spec"]]))
    if source["kind"] == "git":
        where = f"radfusion from git commit {source['commit']}"
        if source["uncommitted"]:
            where += (
                f" (warning: {source['uncommitted']} "
                f"{'file' if source['uncommitted'] == 1 else 'files'} of the source had "
                "uncommitted changes when this report was made; they are not part of that "
                "commit)"
            )
    elif source["kind"] == "archive":
        where = "radfusion from the wheel or archive it was installed from"
    elif source["kind"] == "index":
        where = "radfusion from the package index"
    else:
        where = (
            "radfusion from a copy of the source folder it ran from (not a git checkout, so "
            "no installable reference could be recorded)"
        )
    steps = [
        f"On {platform.system() or 'this platform'} with Python {python}, create an "
        f"environment and install the {len(requirements)} pinned dependencies, then {where}: "
        "the commands below.",
        "Check that every input file has the SHA-256 listed under inputs (sha256sum FILE).",
        "Run the command below (or the configuration above through "
        "radfusion.pipeline.experiment.run_cv) with the same seed."
        if command
        else "Run radfusion.pipeline.experiment.run_cv with the configuration above and the "
        "same seed.",
        "The new report.json is byte-identical to this one; timings are in run.json.",
    ]
    if not inputs:
        steps.pop(1)
    return {
        "command": command,
        "requirements": requirements,
        "source": source,
        "install": install,
        "steps": steps,
    }
