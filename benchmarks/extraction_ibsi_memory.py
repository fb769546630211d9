"""IBSI-mode extraction of one large CT: time and peak memory, whole grid vs cut grid.

Writes a synthetic 512 x 512 x 160 int16 CT (0.7 x 0.7 x 2.5 mm, a textured 4 cm lesion) and
extracts its ROI with the shipped CT parameters in IBSI mode (``radfusion: {resample:
{spacing: [1, 1, 1], mode: ibsi}}`` instead of PyRadiomics' resampling), each way in a fresh
process, and prints wall time and peak RSS:

- ``whole``: the whole scan resampled, then PyRadiomics on it (radfusion before issue 25);
- ``cut``: :func:`radfusion.features.extract.extract_case` as it is, which resamples only the
  grid around the ROI (see :func:`radfusion.features.preprocess.resample`).

It also checks that both give the same features. Usage::

    python benchmarks/extraction_ibsi_memory.py [--slices 160]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPACING = (0.7, 0.7, 2.5)


def write_ct(folder: Path, slices: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    shape = (slices, 512, 512)
    voxels = rng.normal(40, 15, shape).astype(np.float32)
    voxels[:, :, :40] = -1000  # air at one side, as around a patient
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    centre = (slices * 0.55, 300, 210)
    inside = (
        ((z - centre[0]) * SPACING[2] / 20) ** 2
        + ((y - centre[1]) * SPACING[1] / 22) ** 2
        + ((x - centre[2]) * SPACING[0] / 18) ** 2
    ) <= 1
    box = tuple(slice(int(c - r), int(c + r)) for c, r in zip(centre, (12, 40, 40), strict=True))
    texture = ndimage.gaussian_filter(rng.normal(0, 1, voxels[box].shape), 2)
    voxels[box] += 60 * texture / texture.std() * inside[box]
    voxels += 30 * inside
    image = sitk.GetImageFromArray(np.rint(voxels).astype(np.int16))
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    for item in (image, mask):
        item.SetSpacing(SPACING)
    paths = folder / "ct.nii.gz", folder / "mask.nii.gz"
    sitk.WriteImage(image, str(paths[0]))
    sitk.WriteImage(mask, str(paths[1]))
    return paths


def params() -> dict:
    from radfusion.features.params import load_params

    ct = load_params(None, ["CT"])["CT"]
    setting = {k: v for k, v in ct["setting"].items() if k not in ("resampledPixelSpacing",)}
    return {
        **ct,
        "setting": setting,
        "radfusion": {"resample": {"spacing": [1, 1, 1], "mode": "ibsi"}},
    }


def run(way: str, image: str, mask: str) -> dict:
    """One extraction in this process; its features, seconds and peak RSS."""
    from radfusion.features.extract import extract_case
    from radfusion.features.preprocess import CaseSpec, Resample, resample

    spec = params()
    start = time.perf_counter()
    if way == "cut":
        features, _ = extract_case(image, mask, spec, modality="CT")
    else:
        original, roi = sitk.ReadImage(image), sitk.ReadImage(mask)
        config = Resample((1.0, 1.0, 1.0), "linear", "ibsi")
        rounded = CaseSpec.from_params(spec, modality="CT").round_intensities
        whole, whole_roi = resample(original, roi, 1, config, round_intensities=rounded)
        del original, roi
        plain = {k: v for k, v in spec.items() if k != "radfusion"}
        features, _ = extract_case(whole, whole_roi, {**plain, "radfusion": {"ibsi": True}})
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"features": features, "seconds": seconds, "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=160)
    parser.add_argument("--way", choices=("whole", "cut"), help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.way:  # the child process
        print(json.dumps(run(args.way, *args.files)))
        return
    with tempfile.TemporaryDirectory() as folder:
        image, mask = write_ct(Path(folder), args.slices)
        roi = int(sitk.GetArrayFromImage(sitk.ReadImage(str(mask))).sum())
        print(
            f"CT 512 x 512 x {args.slices} int16 at {SPACING} mm, ROI {roi} voxels; IBSI mode 1 mm"
        )
        results = {}
        for way in ("whole", "cut"):
            out = subprocess.run(
                [sys.executable, __file__, "--way", way, "--files", str(image), str(mask)],
                check=True,
                capture_output=True,
                text=True,
            )
            results[way] = json.loads(out.stdout.strip().splitlines()[-1])
            seconds, peak = results[way]["seconds"], results[way]["peak_mb"]
            print(f"{way:>6}: {seconds:6.1f} s, peak RSS {peak:7.0f} MB")
        whole, cut = results["whole"]["features"], results["cut"]["features"]
        differ = [k for k in whole if whole[k] != cut[k]]
        print(f"features: {len(whole)}, differing between the two: {len(differ)} {differ[:5]}")


if __name__ == "__main__":
    main()
