"""Sphinx configuration of radfusion's documentation (``make docs``).

The API reference is generated from the public faces: every module listed in ``API_MODULES``
is documented through its ``__all__`` (functions and classes; each object once, under the
first face that exports it), so a name added to a face appears here without editing the docs.
The example gallery runs at build time (sphinx-gallery). The build is offline: no intersphinx,
no remote assets.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
from pathlib import Path

project = "radfusion"
author = "the radfusion developers"
copyright = "2026, the radfusion developers"
release = importlib.metadata.version("radfusion")

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "examples/README.rst"]
templates_path = ["_templates"]

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
numpydoc_show_class_members = False

html_theme = "pydata_sphinx_theme"
html_title = "radfusion"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": [],
}

#: The shared data beside the repository (radMLBench tables): examples 2 and 3 read it, and
#: when it is absent only the synthetic-cohort example runs (the others are shown unrun).
SHARED_DATA = Path(
    os.environ.setdefault(
        "RADFUSION_SHARED_DATA", str(Path(__file__).parents[2] / "shared" / "data")
    )
)
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_" if (SHARED_DATA / "radmlbench").is_dir() else r"/plot_1_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
}

#: The public faces the API reference documents, in reading order.
API_MODULES = {
    "User API": ["radfusion.pipeline", "radfusion.features"],
    "Modelling": [
        "radfusion.pipeline.fusion",
        "radfusion.pipeline.preprocessing",
        "radfusion.pipeline.targets",
        "radfusion.pipeline.survival",
        "radfusion.pipeline.splits",
    ],
    "Validation and reports": [
        "radfusion.pipeline.validation",
        "radfusion.pipeline.survival_metrics",
        "radfusion.pipeline.statistics",
        "radfusion.pipeline.evaluability",
        "radfusion.pipeline.report",
        "radfusion.pipeline.external",
        "radfusion.pipeline.persistence",
        "radfusion.pipeline.tracking",
    ],
    "Tables": [
        "radfusion.pipeline.dataset",
        "radfusion.pipeline.tables",
        "radfusion.pipeline.pyradiomics_table",
    ],
    "Extraction": [
        "radfusion.features.manifest",
        "radfusion.features.batch",
        "radfusion.features.params",
        "radfusion.features.preprocess",
        "radfusion.features.runner",
        "radfusion.features.table",
        "radfusion.features.cache",
        "radfusion.features.distributed",
        "radfusion.features.dicom",
        "radfusion.features.suv",
        "radfusion.features.robustness",
        "radfusion.features.check",
        "radfusion.features.control",
        "radfusion.features.ibsi",
        "radfusion.features.synthetic",
        "radfusion.features.files",
    ],
}


def _documented(module_name: str, seen: dict[int, str]) -> list[str]:
    """The functions and classes of a module's ``__all__`` not documented under another face."""
    module = importlib.import_module(module_name)
    names = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)) or id(obj) in seen:
            continue
        seen[id(obj)] = module_name
        names.append(name)
    return names


def write_api_pages(root: Path) -> None:
    """Write ``api/index.rst`` and one page per module of ``API_MODULES``."""
    out = root / "api"
    out.mkdir(exist_ok=True)
    seen: dict[int, str] = {}
    index = [
        "API reference",
        "=============",
        "",
        "Generated from each module's public face (its ``__all__``); an object exported by",
        "several faces is documented once, under the first one listed here.",
        "",
    ]
    for section, modules in API_MODULES.items():
        index += [section, "-" * len(section), "", ".. toctree::", "   :maxdepth: 1", ""]
        for module_name in modules:
            index.append(f"   {module_name}")
            names = _documented(module_name, seen)
            page = [
                module_name,
                "=" * len(module_name),
                "",
                f".. automodule:: {module_name}",
                "   :no-members:",
                "",
                f".. currentmodule:: {module_name}",
                "",
            ]
            if names:
                page += [".. autosummary::", "   :toctree: generated", "   :nosignatures:", ""]
                page += [f"   {name}" for name in names]
            _write_if_changed(out / f"{module_name}.rst", "\n".join(page) + "\n")
        index.append("")
    _write_if_changed(out / "index.rst", "\n".join(index))


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _skip_metadata_requests(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_*_request`` methods (metadata routing)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    # Before Sphinx lists the source files, so that autosummary finds the pages.
    app.connect("config-inited", lambda app, config: write_api_pages(Path(app.srcdir)))
    app.connect("autodoc-skip-member", _skip_metadata_requests)
