"""Candidate extraction engines against pyradiomics: parity of every feature and speed per ROI.

Issue 25 asked for an engine several times faster than pyradiomics, chosen by evidence. Each
candidate that is importable here gets the image PyRadiomics computes on (a textured
sphere, 1 mm voxels, shipped CT parameters without resampling, so that every engine sees the
same voxels) and its features are matched to pyradiomics' by name; the table prints, per
ROI size, the seconds per ROI (best of ``--repeat``, one thread each), the speed-up, how many
features carry a pyradiomics name and how many of those differ by more than 1e-6 relative.

Candidates: ``flash-radiomics`` (a pyradiomics re-implementation with a C library; same
names), ``fastrad`` (PyTorch; its own names, prefixed here with ``original_``). ``nyxus`` and
``pictologics`` use their own names and APIs (Nyxus reads folders of files; pictologics
needs Python >= 3.12) and are not run here. Usage::

    OMP_NUM_THREADS=1 python benchmarks/engines.py [--voxels 26000 100000 1000000]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from radfusion.features.extract import make_extractor  # noqa: E402
from radfusion.features.params import load_params  # noqa: E402


def sphere(voxels: int, seed: int = 0) -> tuple[sitk.Image, sitk.Image]:
    """A textured sphere of about ``voxels`` voxels in a cube 2.5 radii wide (1 mm)."""
    radius = (3 * voxels / (4 * np.pi)) ** (1 / 3)
    n = int(np.ceil(2.5 * radius))
    rng = np.random.default_rng(seed)
    z, y, x = np.indices((n, n, n))
    inside = (x - n / 2) ** 2 + (y - n / 2) ** 2 + (z - n / 2) ** 2 <= radius**2
    texture = ndimage.gaussian_filter(rng.normal(0, 1, inside.shape), 1.5)
    values = 40 + rng.normal(0, 10, inside.shape) + inside * (30 + 60 * texture / texture.std())
    return sitk.GetImageFromArray(np.rint(values)), sitk.GetImageFromArray(inside.astype(np.uint8))


def ct_params() -> dict:
    ct = load_params(None, ["CT"])["CT"]
    drop = ("resampledPixelSpacing", "interpolator")
    return {**ct, "setting": {k: v for k, v in ct["setting"].items() if k not in drop}}


def best(function, repeat: int, *args) -> tuple[dict, float]:
    function(*args)  # warm-up: imports, JIT, caches
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = function(*args)
        times.append(time.perf_counter() - start)
    return out, min(times)


def engines(params: dict) -> dict:
    """name -> (version, function(image, mask) -> features); the importable ones."""
    found = {}
    try:
        import flash_radiomics
        from flash_radiomics import featureextractor

        flash = featureextractor.RadiomicsFeatureExtractor(params)
        found["flash-radiomics"] = (
            flash_radiomics.__version__,
            lambda image, mask: flash.execute(image, mask),
        )
    except ImportError as error:
        print(f"flash-radiomics: not run ({error})")
    try:
        from importlib.metadata import version

        import fastrad
        import torch

        torch.set_num_threads(1)
        extractor = fastrad.FeatureExtractor(fastrad.FeatureSettings(bin_width=25.0, device="cpu"))

        def run_fastrad(image, mask):
            tensor = torch.from_numpy(sitk.GetArrayFromImage(image).astype(np.float32))
            roi = torch.from_numpy(sitk.GetArrayFromImage(mask))
            spacing = tuple(image.GetSpacing()[::-1])
            out = extractor.extract(
                fastrad.MedicalImage(tensor, spacing), fastrad.Mask(roi, spacing)
            )
            return {f"original_{k}": v for k, v in out.items()}

        found["fastrad"] = (version("fastrad"), run_fastrad)
    except ImportError as error:
        print(f"fastrad: not run ({error})")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=int, nargs="+", default=[26_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    params = ct_params()
    pyradiomics = make_extractor(params)
    candidates = engines(params)
    print("| ROI voxels | engine | s / ROI | speed-up | pyradiomics names | differ > 1e-6 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for voxels in args.voxels:
        image, mask = sphere(voxels)
        count = int(sitk.GetArrayViewFromImage(mask).sum())
        reference, seconds = best(pyradiomics.execute, args.repeat, image, mask)
        reference = {k: float(v) for k, v in reference.items() if not k.startswith("diagnostics")}
        print(f"| {count} | pyradiomics | {seconds:.3f} | 1 | {len(reference)} | - |")
        for name, (version, run) in candidates.items():
            try:
                out, own = best(run, args.repeat, image, mask)
            except (RuntimeError, MemoryError) as error:  # e.g. fastrad's all-pairs distances
                reason = " ".join(str(error).split())[:90]
                print(f"| {count} | {name} {version} | failed: {reason} | | | |")
                continue
            named = [k for k in reference if k in out]
            differ = {
                k: abs(float(out[k]) - reference[k]) / max(abs(reference[k]), 1e-12) for k in named
            }
            differ = {k: v for k, v in differ.items() if v > 1e-6}
            worst = ", ".join(f"{k} {v:.2g}" for k, v in sorted(differ.items())[:3])
            print(
                f"| {count} | {name} {version} | {own:.3f} | {seconds / own:.1f} | "
                f"{len(named)} of {len(out)} | {len(differ)} {worst} |"
            )


if __name__ == "__main__":
    main()
