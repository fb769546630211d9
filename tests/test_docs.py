"""The documentation's sources: the README is a first page whose links resolve, and the API
reference covers every public face. ``make docs`` (run by CI) builds the site itself."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import pytest

import radfusion.pipeline

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def docs_conf():
    spec = importlib.util.spec_from_file_location("docs_conf", ROOT / "docs" / "conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_a_first_page_whose_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert local, "the README links to the guide"
    assert [link for link in local if not (ROOT / link).exists()] == []


def test_every_guide_page_is_in_a_toctree():
    guide = ROOT / "docs" / "user_guide"
    index = (guide / "index.md").read_text(encoding="utf-8")
    pages = {path.stem for path in guide.glob("*.md")} - {"index"}
    assert pages and {page for page in pages if f"\n{page}\n" not in index} == set()


def test_api_reference_documents_every_public_face(docs_conf):
    listed = [name for names in docs_conf.API_MODULES.values() for name in names]
    subpackages = [
        f"radfusion.pipeline.{info.name}"
        for info in pkgutil.iter_modules(radfusion.pipeline.__path__)
        if info.ispkg
    ]
    assert {"radfusion.pipeline", "radfusion.features", *subpackages} <= set(listed)
    for name in listed:
        assert importlib.import_module(name).__all__, name


def test_api_pages_list_each_object_once(docs_conf, tmp_path):
    docs_conf.write_api_pages(tmp_path)
    pages = sorted((tmp_path / "api").glob("radfusion.*.rst"))
    documented = [
        getattr(importlib.import_module(page.stem), line.strip())
        for page in pages
        for line in page.read_text(encoding="utf-8").split(":nosignatures:")[-1].splitlines()
        if line.strip() and ":nosignatures:" in page.read_text(encoding="utf-8")
    ]
    assert radfusion.pipeline.FusionClassifier in documented
    assert len({id(obj) for obj in documented}) == len(documented)
    index = (tmp_path / "api" / "index.rst").read_text(encoding="utf-8")
    assert [page.stem for page in pages if f"   {page.stem}\n" not in index] == []
