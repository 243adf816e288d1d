"""Drawing an inspection result on its image: mask tint, optional heatmap, boxes, labels, verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from inspector_agent.atomic_files import OutputPathError, check_output_file, write_atomic
from inspector_agent.geometry import Box
from inspector_agent.schema import InspectionResult, Verdict

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
PixelBox = tuple[int, int, int, int]

MASK_RGB = (255, 32, 32)
BOX_COLOURS = [(255, 221, 0), (0, 229, 255), (255, 64, 255), (118, 255, 3), (255, 145, 0)]
OUTLINE_DARK = (0, 0, 0)
BANNER = {Verdict.OK: (27, 128, 56), Verdict.DEFECTIVE: (196, 28, 36)}
CLOSE_CALL_BANNER = (176, 96, 0)  # amber: passed, but worth a look
NEUTRAL_GROUND = (48, 48, 48)  # beside a picture narrower than its banner
SEPARATOR = "  ·  "  # between the banner's parts
OVERLAY_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# Heatmap ramp (dark blue -> cyan -> yellow -> red) as (position, rgb) stops.
_RAMP = np.array(
    [[0.0, 20, 24, 90], [0.35, 0, 160, 220], [0.65, 250, 230, 40], [1.0, 220, 20, 20]],
    dtype=np.float64,
)


def mask_to_image(mask: np.ndarray) -> Image.Image:
    """A binary mask as an 8-bit ``L`` image (255 inside)."""
    return Image.fromarray(np.asarray(mask, dtype=bool).astype(np.uint8) * 255, mode="L")


def heatmap_to_image(
    anomaly_map: np.ndarray, vmin: float | None = None, vmax: float | None = None
) -> Image.Image:
    """An anomaly map coloured on a blue-to-red ramp, scaled to ``[vmin, vmax]`` (default: its range)."""
    values = np.nan_to_num(np.asarray(anomaly_map, dtype=np.float64))
    lo = float(values.min()) if vmin is None else vmin
    hi = float(values.max()) if vmax is None else vmax
    scaled = np.clip((values - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(values)
    channels = [np.interp(scaled, _RAMP[:, 0], _RAMP[:, c]) for c in (1, 2, 3)]
    return Image.fromarray(np.stack(channels, axis=-1).astype(np.uint8), mode="RGB")


def render_overlay(
    image: Image.Image,
    result: InspectionResult,
    *,
    max_side: int = 1600,
    min_side: int = 320,
    heatmap: bool = False,
) -> Image.Image:
    """The image with the result drawn on it, sized for a chat bubble, verdict banner below.

    Huge images are shrunk to ``max_side``, small ones enlarged to at least ``min_side`` by a
    whole factor (nearest neighbour, so pixels stay visible); line widths and fonts scale with
    the drawn size. Boxes are in original pixels of ``image``; the mask and heatmap are at
    original size.
    """
    base = image.convert("RGB")
    scale = _display_scale(base.size, max_side, min_side)
    size = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
    resample = Image.NEAREST if scale > 1 else Image.LANCZOS
    canvas = base.resize(size, resample) if size != base.size else base.copy()
    if heatmap and result.anomaly_map is not None:
        values = np.nan_to_num(np.asarray(result.anomaly_map, dtype=np.float32))
        small = np.asarray(Image.fromarray(values, mode="F").resize(size, Image.BILINEAR))
        heat = heatmap_to_image(small, float(values.min()), float(values.max()))
        canvas = Image.blend(canvas, heat, 0.45)
    shown = result.verdict == Verdict.DEFECTIVE or result.disagreement or result.close_call
    if shown and result.pred_mask is not None and np.asarray(result.pred_mask).any():
        canvas = _tint_mask(canvas, result.pred_mask)  # a clear OK's mask is only a candidate
    unit = max(size) / 400.0
    line = max(2, round(unit * 1.5))
    font = ImageFont.load_default(size=max(11, min(48, round(unit * 8))))
    draw = ImageDraw.Draw(canvas)
    for index, defect in enumerate(result.defects):
        box = _scaled(defect.box, scale, size)
        colour = BOX_COLOURS[index % len(BOX_COLOURS)]
        _draw_box(draw, box, colour, line)
        # the label only: a box's raw score is on another scale than the verdict's (the banner)
        _draw_label(draw, box, defect.label, colour, font, size)
    return _with_banner(canvas, result, font, line)


def _display_scale(size: tuple[int, int], max_side: int, min_side: int) -> float:
    longest = max(size)
    if longest > max_side:
        return max_side / longest
    if longest < min_side:
        return float(-(-min_side // longest))  # whole multiples keep pixels square and sharp
    return 1.0


def _tint_mask(canvas: Image.Image, mask: np.ndarray) -> Image.Image:
    """Semi-transparent red over the mask, with a solid red edge so thin regions still show."""
    small = mask_to_image(mask).resize(canvas.size, Image.NEAREST)
    inside = np.asarray(small) > 127
    edge = inside & ~ndimage.binary_erosion(inside, iterations=max(1, max(canvas.size) // 500))
    pixels = np.asarray(canvas, dtype=np.float64).copy()
    pixels[inside] = 0.55 * pixels[inside] + 0.45 * np.array(MASK_RGB)
    pixels[edge] = MASK_RGB
    return Image.fromarray(pixels.astype(np.uint8), mode="RGB")


def _scaled(box: Box, scale: float, size: tuple[int, int]) -> PixelBox:
    b = box.normalized()
    x1, y1 = round(b.x1 * scale), round(b.y1 * scale)
    x2, y2 = round(b.x2 * scale) - 1, round(b.y2 * scale) - 1
    width, height = size
    x1, x2 = min(max(x1, 0), width - 1), min(max(x2, 0), width - 1)
    y1, y2 = min(max(y1, 0), height - 1), min(max(y2, 0), height - 1)
    return x1, y1, max(x1, x2), max(y1, y2)


def _draw_box(draw: ImageDraw.ImageDraw, box: PixelBox, colour: RGB, line: int) -> None:
    """A dark outer stroke and a bright inner stroke: visible on light and dark backgrounds."""
    x1, y1, x2, y2 = box
    pad = max(1, line // 2)
    draw.rectangle(
        (x1 - pad, y1 - pad, x2 + pad, y2 + pad), outline=OUTLINE_DARK, width=line + 2 * pad
    )
    draw.rectangle((x1, y1, x2, y2), outline=colour, width=line)


def _draw_label(
    draw: ImageDraw.ImageDraw,
    box: PixelBox,
    text: str,
    colour: RGB,
    font: Font,
    size: tuple[int, int],
) -> None:
    """The label on a filled tag above the box (inside it when the box touches the top),
    shortened with an ellipsis where the image is narrower than the whole label."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(2, (bottom - top) // 4)
    while len(text) > 1 and right - left + 2 * pad >= size[0]:  # the tag spans tag_w + 1 px
        text = text[:-2].rstrip() + "…"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tag_w, tag_h = right - left + 2 * pad, bottom - top + 2 * pad
    x = min(max(box[0], 0), max(0, size[0] - 1 - tag_w))
    y = box[1] - tag_h if box[1] - tag_h >= 0 else box[1]
    draw.rectangle((x, y, x + tag_w, y + tag_h), fill=colour, outline=OUTLINE_DARK)
    draw.text((x + pad - left, y + pad - top), text, fill=OUTLINE_DARK, font=font)


def _with_banner(
    canvas: Image.Image, result: InspectionResult, font: Font, line: int
) -> Image.Image:
    """The canvas with a verdict strip added below it, so nothing of the part is hidden.

    The strip's text wraps to the image's width; a word wider than a narrow image widens the
    strip (and the picture, on a neutral ground) rather than being cut off.
    """
    verdict = "DEFECTIVE" if result.verdict == Verdict.DEFECTIVE else "OK"
    segments = [(verdict, f"score {result.pred_score:.2f}")]
    if result.defects:
        segments.append((f"{len(result.defects)} defect{'s' if len(result.defects) > 1 else ''}",))
    colour = BANNER[result.verdict]
    if result.close_call:
        segments.append(("close call:", "check", "the", "tinted", "area"))
        colour = CLOSE_CALL_BANNER
    draw = ImageDraw.Draw(canvas)
    pad = max(4, line * 2)
    lines = _banner_lines(segments, draw, font, canvas.width - 2 * pad)
    boxes = [draw.textbbox((0, 0), text, font=font) for text in lines]
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (boxes[0][3], 0)
    step = ascent + descent + pad // 2
    width = max(canvas.width, max(right - left for left, _, right, _ in boxes) + 2 * pad)
    strip = Image.new("RGB", (width, step * len(lines) - pad // 2 + 2 * pad), colour)
    ink = ImageDraw.Draw(strip)
    for index, (text, (left, _, _, _)) in enumerate(zip(lines, boxes, strict=True)):
        ink.text((pad - left, pad + index * step), text, fill=(255, 255, 255), font=font)
    out = Image.new("RGB", (width, canvas.height + strip.height), NEUTRAL_GROUND)
    out.paste(canvas, (0, 0))
    out.paste(strip, (0, canvas.height))
    return out


def _banner_lines(
    segments: list[tuple[str, ...]], draw: ImageDraw.ImageDraw, font: Font, width: int
) -> list[str]:
    """``segments`` (each a run of words or phrases, kept whole) joined by separators into
    lines at most ``width`` pixels wide; a segment that does not fit on a line of its own is
    broken between its words."""

    def fits(text: str) -> bool:
        left, _, right, _ = draw.textbbox((0, 0), text, font=font)
        return right - left <= width

    lines: list[str] = []
    for units in segments:
        segment = " ".join(units)
        if lines and fits(f"{lines[-1]}{SEPARATOR}{segment}"):
            lines[-1] = f"{lines[-1]}{SEPARATOR}{segment}"
            continue
        if fits(segment):
            lines.append(segment)
            continue
        current = units[0]
        for word in units[1:]:
            if fits(f"{current} {word}"):
                current = f"{current} {word}"
            else:
                lines.append(current)
                current = word
        lines.append(current)
    return lines


def check_overlay_path(path: str | Path) -> Path:
    """``path`` as an overlay file name, or a one-line error naming what is wrong with it."""
    path = check_output_file(path, "overlay")
    if path.suffix.lower() not in OVERLAY_FORMATS:
        known = ", ".join(sorted(OVERLAY_FORMATS))
        raise OutputPathError(f"{path}: overlay must end in one of {known}")
    return path


def save_overlay(image: Image.Image, path: str | Path) -> Path:
    """Write an overlay whole or not at all; a one-line error when it cannot be written."""
    path = check_overlay_path(path)
    fmt = OVERLAY_FORMATS[path.suffix.lower()]
    try:
        return write_atomic(
            path, lambda handle: image.convert("RGB").save(handle, format=fmt), text=False
        )
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write the overlay ({exc.strerror or exc})") from None
