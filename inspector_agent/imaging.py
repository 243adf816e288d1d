"""Safe image loading (allow-list, bomb guard, EXIF orientation) and resizing for the model."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from inspector_agent.errors import InspectorError
from inspector_agent.geometry import CoordinateMap

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF"})
# the file names of ALLOWED_FORMATS, for picking images out of a folder
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# Qwen2.5-VL: 14 px patches merged 2x2, so model-input sides are multiples of 28.
PATCH_FACTOR = 28
MODEL_MIN_PIXELS = 56 * 56  # the Qwen2.5-VL processor's default floor
MODEL_MAX_PIXELS = 28 * 28 * 1280  # the Qwen2.5-VL processor's default cap (1280 image tokens)


class ImageError(InspectorError):
    """An image that cannot be used, with a message naming the file and the problem."""


def image_files(folder: Path) -> list[Path]:
    """The files directly in ``folder`` named like images, sorted (hidden files left out)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def load_image(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Image.Image:
    """Load an image as RGB with EXIF orientation applied, or raise :class:`ImageError`.

    Only the allow-listed formats are read; images over ``max_pixels`` (decompression bombs
    included) and files over ``max_bytes`` are refused before their pixels are decoded.
    Animated images give their first frame.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "uploaded image")
    data = _read_bytes(source, label, max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{label}: image is too large ({width}x{height} pixels, "
                    f"limit {max_pixels:,} pixels)"
                )
            image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image) or image
            return _to_rgb(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{label}: image is too large (possible decompression bomb)") from None
    except UnidentifiedImageError:
        allowed = ", ".join(sorted(ALLOWED_FORMATS))
        raise ImageError(f"{label}: not a supported image (allowed: {allowed})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{label}: image file is damaged or truncated ({exc})") from None


def _read_bytes(source: str | Path | bytes, label: str, max_bytes: int) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{label}: file not found")
        if not path.is_file():
            raise ImageError(f"{label}: not a file")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(f"{label}: file is too large ({size / 1e6:.1f} MB)")
        data = path.read_bytes()
    if not data:
        raise ImageError(f"{label}: file is empty")
    if len(data) > max_bytes:
        raise ImageError(f"{label}: file is too large ({len(data) / 1e6:.1f} MB)")
    return data


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any mode (palette, CMYK, 16-bit, alpha) to 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit, 32-bit and float TIFFs
        import numpy as np

        arr = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64)), 0.0, None)
        top = arr.max() or 1.0
        image = Image.fromarray((arr / top * 255.0).astype("uint8"), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def smart_resize(
    height: int,
    width: int,
    factor: int = PATCH_FACTOR,
    min_pixels: int = MODEL_MIN_PIXELS,
    max_pixels: int = MODEL_MAX_PIXELS,
) -> tuple[int, int]:
    """Qwen2.5-VL's target ``(height, width)``: multiples of ``factor``, area in the pixel range.

    The same arithmetic as ``transformers.models.qwen2_vl.image_processing_qwen2_vl``; a
    target within ``max_pixels`` maps to itself, so the processor leaves a resized image
    alone (with budgets closer than one row of patches, the upscale branch can overshoot).

    >>> smart_resize(480, 640)
    (476, 644)
    """
    if min(height, width) <= 0:
        raise ImageError(f"image has no pixels ({width}x{height})")
    if max(height, width) / min(height, width) > 200:
        raise ImageError(f"image is too elongated ({width}x{height}; aspect ratio limit 200)")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resize_for_model(
    image: Image.Image,
    min_pixels: int = MODEL_MIN_PIXELS,
    max_pixels: int = MODEL_MAX_PIXELS,
    factor: int = PATCH_FACTOR,
) -> tuple[Image.Image, CoordinateMap]:
    """The image resized (bicubic, like the processor) to its smart size, and the box map back."""
    height, width = smart_resize(image.height, image.width, factor, min_pixels, max_pixels)
    rgb = image.convert("RGB")
    resized = rgb if rgb.size == (width, height) else rgb.resize((width, height), Image.BICUBIC)
    return resized, CoordinateMap(image.width, image.height, width, height)
