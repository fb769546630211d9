"""The report's re-run recipe installs what exists: checked against this environment."""

from __future__ import annotations

import shlex
import subprocess
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from radfusion.pipeline.report._reproduce import (
    pinned_requirements,
    project_source,
    reproduce_steps,
)


@pytest.fixture(scope="module")
def recipe():
    return reproduce_steps({"command": "radfusion cv features.csv --label y"}, {"x": "x.csv"})


def test_every_pin_is_the_installed_version_and_the_set_is_closed(recipe):
    pins = {}
    for line in recipe["requirements"]:
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "=="
        assert metadata.version(requirement.name) == spec.version, line
        pins[canonicalize_name(requirement.name)] = Version(spec.version)
    assert "radfusion" not in pins  # not on any index: installed from its source below
    # Every run-time requirement of radfusion and of each pinned distribution (markers
    # evaluated here) is pinned, at a version its specifier accepts: pip resolves nothing else.
    for name in ["radfusion", *pins]:
        for text in metadata.distribution(name).requires or ():
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            key = canonicalize_name(requirement.name)
            assert key in pins, f"{name} needs {requirement}, which is not pinned"
            assert requirement.specifier.contains(pins[key], prereleases=True), (name, text)
    assert recipe["requirements"] == pinned_requirements()


def test_the_install_commands_name_an_installable_radfusion(recipe):
    source = project_source()
    assert recipe["source"] == source
    install = recipe["install"]
    assert shlex.split(install[1]) == ["pip", "install", *recipe["requirements"]]
    assert "radfusion==" not in " ".join(install)  # the package index has no radfusion
    if source["kind"] == "index":
        pytest.skip("radfusion was installed from a package index")
    if source["kind"] != "git":
        pytest.skip(f"radfusion was installed from {source['kind']}: no git commit to check")
    assert shlex.split(install[2]) == ["pip", "install", "--no-deps", source["spec"]]
    requirement = Requirement(source["spec"])
    assert requirement.name == "radfusion"
    assert requirement.url.startswith("git+")
    url, _, commit = requirement.url.removeprefix("git+").rpartition("@")
    assert commit == source["commit"] and len(commit) == 40
    if not url.startswith("file://"):
        pytest.skip(f"the commit lives on a remote ({url}); not fetched by the tests")
    repository = Path(unquote(urlparse(url).path))
    if not (repository / ".git").exists() and not (repository / "HEAD").exists():
        pytest.skip(f"the repository the recipe names is not on this machine: {repository}")

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(repository), *args], capture_output=True, text=True, check=True
        ).stdout

    git("cat-file", "-e", f"{commit}^{{commit}}")  # the commit exists where pip will clone
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    project = tomllib.loads(git("show", f"{commit}:pyproject.toml"))["project"]
    assert project["name"] == "radfusion"
    assert project["version"] == metadata.version("radfusion")
    # The code the recipe installs is the code that ran, unless the steps say otherwise.
    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    assert source["uncommitted"] == len(changed)
    assert ("uncommitted changes" in recipe["steps"][0]) == bool(changed)
