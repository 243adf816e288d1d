"""Safe image loading: format allow-list, decompression-bomb guard, EXIF orientation, clear errors."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from inspector_agent.errors import InspectorError

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF"})
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


class ImageError(InspectorError):
    """An image that cannot be used, with a message naming the file and the problem."""


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
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        top = arr.max() or 1.0
        image = Image.fromarray((arr / top * 255.0).astype("uint8"), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")
