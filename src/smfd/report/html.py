"""The demo's static web page: every sample as blurry | mask | output | sharp, with measured PSNR/SSIM."""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

from ..data.io import write_image
from ..fileio import atomic_write_bytes
from ..metrics import scores_uint8
from .palette import colorize_mask


def image_scores(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM of an RGB uint8 image against a reference, as the demo reports them."""
    return scores_uint8(a, b)


_FAMILIES = {
    "thesis": "the thesis's degradation (1-3 stacked motion/Gaussian blurs, rescaling, noise)",
    "realistic": "the realistic family (camera shake, defocus, mild blur, sensor noise, JPEG)",
}


def demo_page(out: str | os.PathLike, ids, blurry, restored, sharp, masks, manifest: dict, *,
              degradations, scores) -> Path:
    """Write ``out/index.html`` and its images under ``out/faces/``; returns the page's path.

    ``degradations``: the family each face was blurred with (``thesis`` or ``realistic``); ``scores``: each
    face's (blurry PSNR, blurry SSIM, output PSNR, output SSIM) against the sharp face (:func:`image_scores`).
    """
    out = Path(out)
    rows = []
    for i, d, (pb, sb, pr, sr), b, r, s, m in zip(ids, degradations, scores, blurry, restored, sharp, masks,
                                                   strict=True):
        names = {}
        for kind, img in (("blurry", b), ("mask", colorize_mask(m)), ("output", r), ("sharp", s)):
            names[kind] = f"faces/{i}_{kind}.png"
            write_image(out / names[kind], img)
        cells = "".join(f'<td><img src="{names[k]}" width="192" alt="{k}"></td>'
                        for k in ("blurry", "mask", "output", "sharp"))
        rows.append(f"<tr><td>{html.escape(i)}<br>{html.escape(d)}</td>{cells}<td>{pb:.2f} dB / {sb:.3f}</td>"
                    f"<td>{pr:.2f} dB / {sr:.3f}</td></tr>")
    families = list(dict.fromkeys(degradations))
    means = []
    for d in families:
        mean = np.mean([t for t, e in zip(scores, degradations, strict=True) if e == d], axis=0)
        means.append(f'<tr><th>mean, {html.escape(d)}</th><td colspan="4"></td>'
                     f"<th>{mean[0]:.2f} dB / {mean[1]:.3f}</th><th>{mean[2]:.2f} dB / {mean[3]:.3f}</th></tr>")
    card = manifest.get("card", {})
    status = html.escape(card.get("status", card.get("summary", "")))
    files = manifest.get("files", {})
    net = html.escape(files.get("deblur", {}).get("model_name", "deblurring net")
                      + (f"; faces above 256 px: {files['deblur_big'].get('model_name', '')}" if "deblur_big" in files
                         else ""))
    used = " and ".join(_FAMILIES.get(d, d) for d in families)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>smfd demo</title>
<style>body{{font-family:sans-serif;margin:2em}} td{{padding:4px;text-align:center}}
th{{background:#eee;padding:6px}} .note{{color:#555;max-width:60em}}</style></head><body>
<h1>smfd: face deblurring guided by semantic face masks</h1>
<p class="note">Sample faces blurred (seeded) with {html.escape(used)}, then restored by the bundled mask
generator and deblurring net ({net}). PSNR / SSIM are measured against the sharp original on this page's
images.</p>
<p class="note">{status}</p>
<table><tr><th>face</th><th>blurry input</th><th>predicted mask</th><th>smfd output</th><th>sharp original</th>
<th>blurry: PSNR / SSIM</th><th>output: PSNR / SSIM</th></tr>
{''.join(rows)}
{''.join(means)}
</table></body></html>
"""
    atomic_write_bytes(out / "index.html", page.encode())
    return out / "index.html"
