"""Expert grounder: few-shot patch nearest-neighbour anomaly maps against a product's references.

PatchCore / AnomalyDINO on EfficientNet-Lite0 features. Aligned products (references whose
patches find their nearest neighbour at the same place) are matched position by position;
unaligned ones against a global memory bank augmented with flips and coreset-subsampled, in
features whitened by the references' own patch covariance for the verdict.
The image threshold and the mask threshold come from leave-one-out scores of the references
against each other (setting aside a reference unlike all the others, such as the only one of
a product variant), never from defect labels. The verdict comes from this map, on images
mirrored a few cells beyond their edges so border patches are not judged on the network's
padding, with a matching window wide enough for parts that move a little between photos; the
heatmap, mask and boxes from a second pass at twice the pixels, a narrower window and only the
references closest to the query, which outlines small defects more tightly. Banks and
calibration are cached on disk.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from inspector_agent.geometry import boxes_from_mask
from inspector_agent.grounding import features as feat
from inspector_agent.grounding import regions
from inspector_agent.grounding.base import GroundingError, GroundingRequest, register_grounder
from inspector_agent.grounding.expert_config import ExpertConfig, expert_config, settings_text
from inspector_agent.grounding.memory_bank import (
    ExpertCalibration,
    MemoryBank,
    content_hash,
    image_threshold,
    reference_order,
)
from inspector_agent.imaging import load_image
from inspector_agent.schema import Defect, InspectionResult, Verdict
from inspector_agent.settings import Settings
from inspector_agent.wording import counted

MODEL_NAME = "efficientnet-lite0-patchnn"


class ExpertGrounder:
    """Few-shot anomaly heatmaps, masks and boxes against reference images."""

    name = "expert"

    def __init__(
        self,
        settings: Settings,
        config: ExpertConfig | None = None,
        extractor: feat.FeatureExtractor | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or expert_config(dict(settings.expert))
        self.cache_dir = settings.cache_dir / "expert"
        torch.set_num_threads(max(1, int(settings.torch_threads)))
        self.extractor = extractor or feat.FeatureExtractor(self.config.blocks)
        self._banks: dict[str, MemoryBank] = {}
        self._products: dict[ExpertConfig, ExpertGrounder] = {}  # see for_product
        self._detail: ExpertGrounder | None = None  # the finer localisation pass
        if self.config.detail_area != 1.0:
            # each choice measured in docs/expert-grounder.md, "Method"
            fine = replace(
                self.config,
                pixels=round(self.config.pixels * self.config.detail_area),
                detail_area=1.0,
                context=0,  # mirrored borders help the verdict, not the outline
                whiten=False,  # whitening helps the verdict, not the outline
                radius=self.config.detail_radius,  # a wide window loosens outlines
                max_aligned=self.config.detail_max_aligned,  # as calibrated at K = 4
            )
            self._detail = ExpertGrounder(settings, fine, self.extractor)

    def for_product(self, overrides: Mapping[str, Any]) -> ExpertGrounder:
        """This grounder, or one with a product manifest's ``expert`` settings applied on top
        of its own (kept, so its banks stay in memory)."""
        config = expert_config(overrides, self.config) if overrides else self.config
        if config == self.config:
            return self
        if config not in self._products:
            same = config.blocks == self.config.blocks
            self._products[config] = ExpertGrounder(
                self.settings, config, self.extractor if same else None
            )
        return self._products[config]

    # ---- features -------------------------------------------------------------------------
    def _features(
        self,
        image: Image.Image,
        scale: float,
        grid: tuple[int, int] | None = None,
        context: int | None = None,
    ) -> torch.Tensor:
        """Features (C, h, w) of ``image`` resized by ``scale`` (or to a fixed grid), with
        ``context`` cells mirrored around it (default: the configured context)."""
        w, h = image.size
        if grid is None:
            grid = (max(4, round(h * scale / feat.STRIDE)), max(4, round(w * scale / feat.STRIDE)))
        size = (grid[1] * feat.STRIDE, grid[0] * feat.STRIDE)
        x = feat.to_tensor(image, size)
        context = self.config.context if context is None else context
        m = min(context, grid[0] - 1, grid[1] - 1)  # reflect needs pad < side
        if m > 0:  # border cells see mirrored texture, not the network's padding
            x = F.pad(x, (m * feat.STRIDE,) * 4, mode="reflect")
        pad_h, pad_w = (-x.shape[-2]) % feat.PAD_MULTIPLE, (-x.shape[-1]) % feat.PAD_MULTIPLE
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return self.extractor(x)[0, :, m : m + grid[0], m : m + grid[1]]

    # ---- memory bank and calibration ------------------------------------------------------
    def memory_bank(self, paths: list[Path]) -> MemoryBank:
        """The (cached) memory bank and calibration of a reference set (and of the finer pass)."""
        if not paths:
            raise GroundingError("no reference images: add good images of this product first")
        paths = reference_order(paths)
        key = content_hash(paths, self.config.key())
        if key in self._banks:
            return self._banks[key]
        if self._detail is not None:
            self._detail.memory_bank(paths)
        file = self.cache_dir / f"{key}.pt"
        if file.is_file():
            bank = MemoryBank.load(file)
        else:
            bank = self._build(paths)
            bank.save(file)
        self._banks[key] = bank
        return bank

    def _build(self, paths: list[Path]) -> MemoryBank:
        cfg = self.config
        images = [load_image(p) for p in paths]
        sizes = {im.size for im in images}
        scale = float(np.sqrt(cfg.pixels / np.median([im.size[0] * im.size[1] for im in images])))
        w0, h0 = images[0].size
        grid = (max(4, round(h0 * scale / feat.STRIDE)), max(4, round(w0 * scale / feat.STRIDE)))
        grids = torch.stack([self._features(im, scale, grid) for im in images])
        fraction = 0.0
        if len(sizes) == 1 and len(images) > 1:
            # judged without the mirror, which makes a periodic pattern's edge cells look like
            # any other place on it (the verdict still reads mirrored features)
            plain = grids
            if cfg.context:
                plain = torch.stack([self._features(im, scale, grid, context=0) for im in images])
            fraction = feat.aligned_fraction(plain, cfg.alignment_radius)
        mode = cfg.alignment
        if mode == "auto":
            mode = (
                "aligned" if len(sizes) == 1 and fraction >= cfg.aligned_min_fraction else "global"
            )
        bank = rows = torch.empty(0, grids.shape[1])
        owners = torch.empty(0, dtype=torch.long)
        plain: list[torch.Tensor] = []
        whitening = None
        if mode == "global":
            rows, owners, plain = self._global_rows(images, scale)
            if cfg.whiten:  # from the references as taken, not their flips
                whitening = feat.whitening(_patches(plain), cfg.whiten_shrinkage)
            bank = feat.transform(rows, whitening)
            if bank.shape[0] > cfg.max_bank:
                keep = feat.greedy_coreset(bank, cfg.max_bank)
                rows, owners, bank = rows[keep], owners[keep], bank[keep]
        maps = []
        for i in range(len(images)):  # leave-one-out maps of each reference against the others
            if len(images) == 1:
                break
            if mode == "aligned":
                others = feat.nearest_grids(
                    grids[i], torch.cat([grids[:i], grids[i + 1 :]]), cfg.max_aligned
                )
                raw = feat.positional_distance(grids[i], others, cfg.radius)
            else:
                metric = whitening
                if metric is not None:  # the left-out reference must not shape its own metric
                    metric = feat.whitening(
                        _patches(plain[:i] + plain[i + 1 :]), cfg.whiten_shrinkage
                    )
                query = feat.transform(plain[i].flatten(1).T, metric)
                pool = feat.transform(rows[owners != i], metric)
                raw = feat.knn_distance(query, pool).reshape(plain[i].shape[1:])
            maps.append(self._smooth(raw))
        baseline, relative = None, maps
        if (cfg.normalize or cfg.relative_decisions) and mode == "aligned" and len(maps) > 2:
            baseline = torch.from_numpy(np.mean(maps, axis=0))
            relative = _less_the_others(maps)
        if maps:
            scores = [self._image_score(m) for m in (relative if cfg.relative_decisions else maps)]
            pixels = np.concatenate([m.ravel() for m in (relative if cfg.normalize else maps)])
            pixel_threshold = float(np.quantile(pixels, cfg.mask_quantile))
        else:  # one reference: no statistics; thresholds will be set from the query map
            scores, pixel_threshold = [], float("inf")
        # the others' scores among themselves, without the highest-scoring one; aligned parts
        # only, as plain distances keep a floor of patch noise that squeezes ratios
        # (docs/expert-grounder.md, "A reference unlike the others")
        peers: list[float] = []
        if baseline is not None and cfg.relative_decisions:
            top = int(np.argmax(scores))
            peers = [self._image_score(m) for m in _less_the_others(maps[:top] + maps[top + 1 :])]
        threshold, set_aside = image_threshold(scores, peers, cfg.outlier_factor)
        calibration = ExpertCalibration(
            mode=mode,
            scale=scale,
            image_threshold=threshold,
            pixel_threshold=pixel_threshold,
            reference_scores=[float(s) for s in scores],
            aligned_fraction=float(fraction),
            config_key=cfg.key(),
            set_aside=set_aside,
        )
        return MemoryBank(grids, bank, calibration, baseline, whitening)

    def _global_rows(
        self, images: list[Image.Image], scale: float
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Patch rows (N, C) of every reference and its flips, the index of the reference each
        row came from, and each reference's own (unflipped) features (C, h, w)."""
        rows, owners, plain = [], [], []
        for i, image in enumerate(images):
            for v, view in enumerate(feat.flip_views(image)):
                f = self._features(view, scale)
                if v == 0:
                    plain.append(f)
                rows.append(f.flatten(1).T)
                owners.append(torch.full((rows[-1].shape[0],), i))
        return torch.cat(rows), torch.cat(owners), plain

    # ---- scoring ------------------------------------------------------------------------
    def _smooth(self, raw: torch.Tensor) -> np.ndarray:
        """Grid distances -> model-pixel map, Gaussian-smoothed (float32)."""
        up = F.interpolate(
            raw[None, None], scale_factor=feat.STRIDE, mode="bilinear", align_corners=False
        )
        return ndimage.gaussian_filter(up[0, 0].numpy(), self.config.sigma).astype(np.float32)

    def _image_score(self, amap: np.ndarray) -> float:
        k = max(1, round(self.config.top_k * amap.size))
        return float(np.partition(amap.ravel(), amap.size - k)[-k:].mean())

    def model_map(self, image: Image.Image, bank: MemoryBank) -> tuple[np.ndarray, np.ndarray]:
        """Anomaly map of one query at model resolution (float32), and the map decisions use.

        With a per-position baseline (aligned parts), the verdict score and the defect mask are
        taken from the map minus the references' mean map, so places that vary on good parts
        too (a highlight that moves from photo to photo) decide neither the verdict nor the box.
        """
        cfg = self.config
        cal = bank.calibration
        grid = tuple(bank.grids.shape[-2:])
        if cal.mode == "aligned" and _same_aspect(image.size, grid):
            f = self._features(image, cal.scale, grid)
            refs = feat.nearest_grids(f, bank.grids, cfg.max_aligned)
            amap = self._smooth(feat.positional_distance(f, refs, cfg.radius))
            if bank.baseline is None:
                return amap, amap
            relative = amap - bank.baseline.numpy()
            return (relative if cfg.normalize else amap), (
                relative if cfg.relative_decisions else amap
            )
        f = feat.transform(self._features(image, cal.scale), bank.whitening)
        pool = (
            bank.bank
            if bank.bank.shape[0]
            else bank.grids.flatten(2).permute(0, 2, 1).flatten(0, 1)
        )
        amap = self._smooth(feat.knn_distance(f.flatten(1).T, pool).reshape(f.shape[1:]))
        return amap, amap

    def ground(self, request: GroundingRequest) -> InspectionResult:
        """Inspect the query against the product's references (with the product's settings)."""
        own = self.for_product(request.references.expert)
        if own is not self:
            result = own.ground(request)
            result.notes.append(f"product settings: {settings_text(request.references.expert)}")
            return result
        start = time.perf_counter()
        bank = self.memory_bank(list(request.references.paths))
        cal = bank.calibration
        small, decisive = self.model_map(request.query, bank)
        score = self._image_score(decisive)
        if self._detail is not None:  # the verdict stands; outline the defect on a finer map
            fine_bank = self._detail.memory_bank(list(request.references.paths))
            small, decisive = self._detail.model_map(request.query, fine_bank)
        size = request.query.size
        amap = np.asarray(
            Image.fromarray(small).resize(size, Image.Resampling.BILINEAR), np.float32
        )
        small_mask = Image.fromarray(self._mask(decisive))
        mask = np.asarray(small_mask.resize(size, Image.Resampling.NEAREST), bool)
        verdict = Verdict.DEFECTIVE if score > cal.image_threshold else Verdict.OK
        defects = []
        if verdict == Verdict.DEFECTIVE:
            labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
            for box in boxes_from_mask(mask):
                region = labels[int(box.y1) : int(box.y2), int(box.x1) : int(box.x2)]
                inside = region > 0
                peak = float(
                    amap[int(box.y1) : int(box.y2), int(box.x1) : int(box.x2)][inside].max()
                )
                defects.append(Defect("anomaly", box, peak, int(inside.sum())))
            defects.sort(key=lambda d: -d.score)
        how = "place by place" if cal.mode == "aligned" else "anywhere on the part"
        notes = [f"compared with {counted(len(request.references.paths), 'good reference')}, {how}"]
        close_call = _close_call(verdict, score, cal.image_threshold, self.config.borderline)
        if close_call:
            notes.append(close_call)
        odd = cal.set_aside_reference(list(request.references.paths))
        if odd is not None:
            notes.append(
                f"{odd.name} is unlike the other references and does not set the threshold"
            )
        return InspectionResult(
            verdict=verdict,
            pred_score=score,
            defects=defects,
            threshold=cal.image_threshold,
            grounder=self.name,
            model=MODEL_NAME,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            reasoning=f"anomaly score {score:.3f} vs threshold {cal.image_threshold:.3f}",
            notes=notes,
            close_call=close_call is not None,
            image_size=request.query.size,
            anomaly_map=amap,
            pred_mask=mask,
        )

    def _mask(self, amap: np.ndarray) -> np.ndarray:
        """The most anomalous regions of the map, whatever the verdict (see :mod:`.regions`)."""
        cfg = self.config
        return regions.outline(
            amap, cfg.region_fraction, cfg.peak_fraction, cfg.max_regions, cfg.prominence_window
        )


def _close_call(verdict: Verdict, score: float, threshold: float, share: float) -> str | None:
    """A note for a part passed with a score above ``share`` of a positive, finite threshold."""
    if verdict != Verdict.OK or not 0 < threshold < float("inf") or score < share * threshold:
        return None
    return (
        f"close call: score {score:.3f} is {int(100 * score / threshold)}% of the threshold "
        f"{threshold:.3f}; a faint defect is possible, check the part by eye where the "
        "overlay tints it"
    )


def _less_the_others(maps: list[np.ndarray]) -> list[np.ndarray]:
    """Each map less the mean of the others (leave-one-out relative maps)."""
    total = np.sum(maps, axis=0)
    return [m - (total - m) / (len(maps) - 1) for m in maps]


def _patches(grids: list[torch.Tensor]) -> torch.Tensor:
    """The patches (N, C) of feature grids (C, h, w) of any sizes."""
    return torch.cat([g.flatten(1).T for g in grids])


def _same_aspect(size: tuple[int, int], grid: tuple[int, ...]) -> bool:
    return abs(size[0] / size[1] - grid[1] / grid[0]) < 0.05 * grid[1] / grid[0]


@register_grounder("expert")
def make_expert(settings: Settings) -> ExpertGrounder:
    """Registry factory for the expert grounder."""
    return ExpertGrounder(settings)
