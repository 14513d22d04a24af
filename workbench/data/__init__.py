"""Sample frames that need no download.

- :func:`sample_image` / :func:`sample_frame`: scikit-image's packaged pictures
  (``astronaut``, ``camera``, ``coffee``, ``chelsea``, ``motorcycle``, ...; see
  :data:`SAMPLE_IMAGES`);
- :func:`lfw_subset` / :func:`lfw_mosaic`: the 25x25 Labeled Faces in the Wild subset shipped
  with scikit-image (100 faces, 100 non-faces), and a mosaic of faces for multi-face frames;
- the synthetic shapes generator (:mod:`workbench.data.shapes`): scenes with boxes, classes and
  per-image group attributes, deterministic by seed.

Provenance and licenses: data/README.md.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import DataError
from ..media import Frame, to_rgb_uint8
from .shapes import (
    SHAPE_CLASSES,
    CueDataset,
    ShapesScene,
    cue_mask,
    generate_scene,
    generate_scenes,
    make_cue_dataset,
)

__all__ = [
    "SAMPLE_IMAGES", "sample_names", "sample_image", "sample_frame", "lfw_subset", "lfw_mosaic",
    "SHAPE_CLASSES", "ShapesScene", "CueDataset", "generate_scene", "generate_scenes",
    "make_cue_dataset", "cue_mask", "shapes_frame",
]


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _motorcycle() -> np.ndarray:
    import skimage.data

    return skimage.data.stereo_motorcycle()[0]


#: name -> (loader, one-line description). All ship inside the scikit-image wheel.
SAMPLE_IMAGES: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "astronaut": (_skimage("astronaut"), "Eileen Collins, NASA portrait: one frontal face"),
    "camera": (_skimage("camera"), "cameraman, grayscale: one face in profile-ish view"),
    "coffee": (_skimage("coffee"), "a cup of coffee: no face"),
    "chelsea": (_skimage("chelsea"), "Chelsea the cat: an animal face"),
    "cat": (_skimage("cat"), "Chelsea the cat (same picture, alias)"),
    "motorcycle": (_motorcycle, "left view of the Middlebury stereo motorcycle"),
    "rocket": (_skimage("rocket"), "a rocket on its launch pad"),
    "immunohistochemistry": (_skimage("immunohistochemistry"), "stained tissue, microscopy"),
    "hubble_deep_field": (_skimage("hubble_deep_field"), "Hubble deep field: many small galaxies"),
    "coins": (_skimage("coins"), "Greek coins, grayscale: many round objects"),
}


def sample_names() -> list[str]:
    """Names accepted by :func:`sample_image`, plus ``lfw-mosaic`` and ``shapes``."""
    return sorted(SAMPLE_IMAGES) + ["lfw-mosaic", "shapes"]


def sample_image(name: str) -> np.ndarray:
    """A packaged sample picture as ``(H, W, 3) uint8`` RGB."""
    if name == "lfw-mosaic":
        return lfw_mosaic()
    if name == "shapes":
        return generate_scene(0).image
    try:
        loader = SAMPLE_IMAGES[name][0]
    except KeyError:
        raise DataError(
            f"no sample image called {name!r}", hint=f"pick one of {', '.join(sample_names())}"
        ) from None
    try:
        return to_rgb_uint8(loader(), what=f"sample {name}")
    except (ImportError, OSError, ModuleNotFoundError) as exc:
        raise DataError(
            f"scikit-image could not load its packaged image {name!r}: {exc}",
            hint="reinstall scikit-image (make setup)",
        ) from exc


def sample_frame(name: str) -> Frame:
    """:func:`sample_image` wrapped in a :class:`~workbench.media.Frame` (id = name)."""
    return Frame(sample_image(name), id=name, source=f"sample:{name}")


def lfw_subset() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's LFW subset: ``images (200, 25, 25, 3) uint8``, ``is_face (200,) bool``.

    The first 100 images are faces, the last 100 are non-face patches.
    """
    import skimage.data

    raw = skimage.data.lfw_subset()  # (200, 25, 25) float in [0, 1]
    imgs = np.stack([to_rgb_uint8(x) for x in raw])
    is_face = np.zeros(len(raw), dtype=bool)
    is_face[:100] = True
    return imgs, is_face


def lfw_mosaic(rows: int = 2, cols: int = 3, scale: int = 4, gap: int = 24, start: int = 0) -> np.ndarray:
    """A frame with ``rows * cols`` LFW faces, each upscaled ``scale`` times, on a gray canvas.

    Returns ``(H, W, 3) uint8``. Useful to see a detector find several faces in one frame.
    """
    if rows < 1 or cols < 1 or scale < 1 or not 0 <= start <= 100 - rows * cols:
        raise DataError(
            f"lfw_mosaic needs rows, cols, scale >= 1 and start + rows*cols <= 100, got "
            f"rows={rows} cols={cols} scale={scale} start={start}"
        )
    faces, _ = lfw_subset()
    tile = 25 * scale
    h = rows * tile + (rows + 1) * gap
    w = cols * tile + (cols + 1) * gap
    canvas = np.full((h, w, 3), 128, dtype=np.uint8)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        face = np.kron(faces[start + k], np.ones((scale, scale, 1), dtype=np.uint8))
        y, x = gap + r * (tile + gap), gap + c * (tile + gap)
        canvas[y : y + tile, x : x + tile] = face
    return canvas


def shapes_frame(seed: int = 0, **kw) -> Frame:  # type: ignore[no-untyped-def]
    """A synthetic shapes scene as a Frame (see :func:`generate_scene` for keywords)."""
    scene = generate_scene(seed, **kw)
    return Frame(scene.image, id=f"shapes-{seed}", source=f"shapes:seed={seed}")
