"""Shared fixtures: where the shared real data lives, and one small demo run."""

import functools
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (it lives beside the repository)")
    return path


@functools.cache
def _shares_module_fixtures(path: Path) -> bool:
    """Whether a test file defines module-scoped fixtures (built once per file and process)."""
    return 'scope="module"' in path.read_text(encoding="utf-8")


def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n N --dist loadgroup`` (``make test``): the tests of a file with module
    fixtures stay on one worker, so each fixture is built once; every other test is spread
    one by one over the workers, which keeps both cores busy to the end."""
    for item in items:
        if _shares_module_fixtures(Path(str(item.path))):
            item.add_marker(pytest.mark.xdist_group(Path(str(item.path)).stem))
