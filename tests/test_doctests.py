"""The examples in docstrings run: every radfusion module's doctests, found by walking the
installed packages (so the modules are imported under their installed names)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("radfusion.features", "radfusion.pipeline")


def _modules() -> list[str]:
    names = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, package_name + ".")]
    return sorted(names)


MODULES = _modules()


def test_the_walk_finds_the_modules_with_examples():
    assert "radfusion.pipeline.fusion._branch" in MODULES
    assert "radfusion.features.naming" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
