"""Safe loading of hostile or odd files, Qwen2.5-VL resizing, and overlays that show the defect."""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from inspector_agent.errors import InspectorError
from inspector_agent.geometry import Box
from inspector_agent.imaging import ImageError, load_image, resize_for_model, smart_resize
from inspector_agent.overlay import BANNER, CLOSE_CALL_BANNER, render_overlay
from inspector_agent.schema import Defect, InspectionResult, Verdict


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def noise(width: int = 64, height: int = 48) -> Image.Image:
    pixels = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, mode="RGB")


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    return Image.fromarray(np.stack([np.tile(x, (height, 1))] * 3, axis=-1), mode="RGB")


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("empty.png", lambda: b"", "file is empty"),
        ("notes.png", lambda: b"this is a text file, renamed\n" * 10, "not a supported image"),
        ("cut.png", lambda: half(encode(noise(), "PNG")), "damaged or truncated"),
        ("cut.jpg", lambda: half(encode(noise(), "JPEG")), "damaged or truncated"),
        ("bomb.png", lambda: png_header_only(100_000, 100_000), "too large"),
        ("big.png", lambda: png_header_only(8000, 6000), "too large"),
        ("icon.ico", lambda: encode(gradient(32, 32), "ICO"), "not a supported image"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, name, make, message):
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert isinstance(info.value, InspectorError)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_missing_file_directory_and_byte_limits(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)
    data = encode(gradient(), "PNG")
    with pytest.raises(ImageError, match="too large"):
        load_image(data, max_bytes=len(data) - 1)
    assert load_image(data, name="upload").size == (64, 48)


def test_odd_modes_become_rgb(tmp_path):
    cmyk = load_image(encode(Image.new("CMYK", (10, 8), (0, 255, 255, 0)), "JPEG"))
    assert cmyk.mode == "RGB" and cmyk.getpixel((5, 4))[0] > 200 > cmyk.getpixel((5, 4))[1]
    deep = np.tile(np.linspace(0, 65535, 16, dtype=np.uint16), (4, 1))
    sixteen = load_image(encode(Image.fromarray(deep), "PNG"))
    assert sixteen.mode == "RGB" and sixteen.getpixel((15, 0)) == (255, 255, 255)
    assert sixteen.getpixel((0, 0)) == (0, 0, 0)
    floats = np.tile(np.linspace(0.0, 1.0, 8, dtype=np.float32), (2, 1))
    scaled = load_image(encode(Image.fromarray(floats), "TIFF"))
    assert scaled.getpixel((7, 0)) == (255, 255, 255) and scaled.getpixel((0, 0)) == (0, 0, 0)
    palette = Image.new("P", (6, 6), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    clear = load_image(encode(palette, "PNG", transparency=1))
    assert clear.getpixel((0, 0)) == (255, 255, 255)  # transparent: shown on white
    assert load_image(encode(palette, "PNG")).getpixel((0, 0)) == (10, 20, 30)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((250, 0, 0), (0, 0, 250))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    image = load_image(data)
    assert image.mode == "RGB" and image.getpixel((4, 4))[0] > 200


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    loaded = load_image(encode(image, "JPEG", exif=exif, quality=95))
    assert loaded.size == (20, 40)
    assert loaded.getpixel((10, 5))[0] > 200 and loaded.getpixel((10, 35))[2] > 200


def test_smart_resize_matches_transformers():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as reference

    rng = random.Random(7)
    budgets = [(56 * 56, 28 * 28 * 1280), (56 * 56, 28 * 28 * 512), (28 * 28 * 4, 28 * 28 * 16)]
    for _ in range(400):
        height, width = rng.randint(1, 6000), rng.randint(1, 6000)
        if max(height, width) / min(height, width) > 200:
            continue
        for low, high in budgets:
            ours = smart_resize(height, width, min_pixels=low, max_pixels=high)
            assert ours == reference(height, width, min_pixels=low, max_pixels=high)
            assert ours[0] % 28 == 0 and ours[1] % 28 == 0
            if ours[0] * ours[1] <= high:  # the processor leaves a resized image alone
                assert smart_resize(*ours, min_pixels=low, max_pixels=high) == ours


def test_smart_resize_refuses_extreme_shapes():
    with pytest.raises(ImageError, match="aspect ratio"):
        smart_resize(10, 2500)
    with pytest.raises(ImageError, match="no pixels"):
        smart_resize(0, 10)


def test_resize_for_model_returns_the_map_back():
    image, cmap = resize_for_model(gradient(1000, 500), max_pixels=28 * 28 * 256)
    assert image.size == (cmap.model_width, cmap.model_height) == (616, 308)
    assert (cmap.original_width, cmap.original_height) == (1000, 500)
    same, _ = resize_for_model(image, max_pixels=28 * 28 * 256)
    assert same.size == image.size


def result_with(box: Box, verdict: Verdict, size: tuple[int, int], mask: bool) -> InspectionResult:
    width, height = size
    pred_mask = None
    if mask:
        pred_mask = np.zeros((height, width), dtype=bool)
        pred_mask[int(box.y1) : int(box.y2), int(box.x1) : int(box.x2)] = True
    defects = [Defect("crack", box, 0.91)] if verdict == Verdict.DEFECTIVE else []
    heat = np.random.default_rng(0).random((height, width), dtype=np.float32)
    return InspectionResult(
        verdict, 0.91, defects, image_size=size, pred_mask=pred_mask, anomaly_map=heat
    )


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((20, 20), Box(5, 5, 15, 15)),
        ((110, 290), Box(30, 130, 60, 160)),  # a magnetic-tile photo: shown at twice its size
        ((3000, 2000), Box(1000, 800, 1600, 1300)),
    ],
)
def test_overlay_marks_the_box_at_any_size(size, box):
    image = Image.new("RGB", size, (120, 120, 120))
    plain = render_overlay(image, result_with(box, Verdict.OK, size, mask=False))
    drawn = render_overlay(image, result_with(box, Verdict.DEFECTIVE, size, mask=True))
    scale = drawn.width / size[0]
    assert max(size) * scale >= 320 and drawn.width <= 1600  # the picture, banner aside
    pixels, before = np.asarray(drawn, dtype=int), np.asarray(plain, dtype=int)
    x1, y1, x2, y2 = (round(v * scale) for v in (box.x1, box.y1, box.x2, box.y2))
    inside = np.abs(pixels[y1:y2, x1:x2] - before[y1:y2, x1:x2]).sum(axis=-1)
    assert (inside > 60).mean() > 0.9  # tinted or outlined almost everywhere inside
    red, green, _ = pixels[(y1 + y2) // 2, (x1 + x2) // 2]
    assert red > green + 50  # the mask tint
    assert (pixels[2, drawn.width - 3] == before[2, drawn.width - 3]).all()  # far away: untouched
    assert tuple(pixels[-2, -2]) == BANNER[Verdict.DEFECTIVE]
    assert tuple(before[-2, -2]) == BANNER[Verdict.OK]


def test_overlay_shows_where_to_look_on_a_close_call():
    """A passed part's candidate mask is tinted only on a close call, under an amber banner."""
    size, box = (400, 300), Box(100, 100, 200, 180)
    image = Image.new("RGB", size, (120, 120, 120))
    passed = result_with(box, Verdict.OK, size, mask=True)
    plain = np.asarray(render_overlay(image, passed), dtype=int)
    close = np.asarray(render_overlay(image, replace(passed, close_call=True)), dtype=int)
    scale = close.shape[1] / size[0]
    cy, cx = round(140 * scale), round(150 * scale)
    assert (plain[cy, cx] == 120).all()  # a clear pass: the candidate mask is not drawn
    red, green, _ = close[cy, cx]
    assert red > green + 50
    assert tuple(plain[-2, -2]) == BANNER[Verdict.OK]
    assert tuple(close[-2, -2]) == CLOSE_CALL_BANNER
    assert InspectionResult.from_dict(replace(passed, close_call=True).to_dict()).close_call


def test_overlay_heatmap_is_optional():
    image = Image.new("RGB", (400, 300), (120, 120, 120))
    result = result_with(Box(10, 10, 50, 50), Verdict.DEFECTIVE, (400, 300), mask=False)
    without = np.asarray(render_overlay(image, result), dtype=int)
    with_heat = np.asarray(render_overlay(image, result, heatmap=True), dtype=int)
    assert (without[200, 300] == 120).all()
    assert np.abs(with_heat[200, 300] - 120).sum() > 10


def banner_rows(image: Image.Image, height: int) -> np.ndarray:
    """The overlay's banner: the rows below the ``height`` rows of the picture."""
    return np.asarray(image, dtype=int)[height:]


def test_overlay_banner_wraps_to_a_narrow_image():
    """A tall, narrow photo gets its whole verdict, on several lines, none of it cut off."""
    result = replace(
        result_with(Box(10, 10, 30, 30), Verdict.DEFECTIVE, (60, 400), mask=False),
        close_call=True,
    )
    narrow = render_overlay(Image.new("RGB", (60, 400)), result)
    wide = render_overlay(Image.new("RGB", (400, 60)), replace(result, image_size=(400, 60)))
    narrow_banner, wide_banner = banner_rows(narrow, 400), banner_rows(wide, 60)
    assert narrow.width < 120  # widened, if at all, only for a word that cannot fit
    assert narrow_banner.shape[0] > 2 * wide_banner.shape[0]  # several lines
    ink = [(banner.min(axis=-1) > 200).sum() for banner in (narrow_banner, wide_banner)]
    assert ink[0] > 0.9 * ink[1]  # the same text, wrapped rather than cut at the edge


def test_overlay_label_fits_a_narrow_image():
    """A label longer than the image is shortened, its tag closed inside the picture."""
    size, box = (60, 400), Box(10, 200, 30, 230)
    image = Image.new("RGB", size, (120, 120, 120))
    result = result_with(box, Verdict.DEFECTIVE, size, mask=False)
    result.defects[0] = Defect("contamination along the lower rim", box, 0.91)
    pixels = np.asarray(render_overlay(image, result), dtype=int)[:400]
    yellow = (pixels[..., 0] > 200) & (pixels[..., 1] > 180) & (pixels[..., 2] < 80)
    rows = np.nonzero(yellow[:200].any(axis=1))[0]  # the tag, above the box
    assert rows.size
    assert not yellow[rows, -1].any()  # its dark outline, not its fill, at the right edge
