"""Build a tiny Qwen2.5-VL checkpoint (random weights, local tokenizer, real chat template).

``python -m training.tiny_model OUT_DIR`` writes a directory that ``AutoProcessor``,
``AutoModelForImageTextToText`` and vLLM load like a real Qwen2.5-VL checkpoint, for tests and
CPU training recipes. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import random
from importlib import resources
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2Tokenizer,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

from inspector_agent.atomic_files import check_output_folder
from inspector_agent.errors import InspectorError
from training.tiny_spec import TinySpec

# Qwen2.5-VL's added tokens, in the order of the real tokenizer.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Qwen2's pre-tokenizer: numbers split into single digits, words keep a leading space.
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
LABELS = [
    "crack", "scratch", "stain", "hole", "dent", "contamination", "missing", "bent", "cut",
    "fold", "color", "glue", "misplaced", "broken", "squeeze", "poke", "thread", "rough",
    "liquid", "oil", "print", "fabric", "faulty", "damaged", "defect", "anomaly", "normal",
]  # fmt: skip
WORDS = (
    "You are an industrial visual inspection assistant. The first images are reference images "
    "of good parts; the last image is the query. Compare the query with the references and "
    "report every anomaly with a bounding box in pixels of the query image. Product knowledge: "
    "specification, acceptance criteria, severity, critical, major, minor, surface, edge, "
    "width, length, millimetres, allowed, rejected, accepted. Answer with reasoning in think "
    "tags and the result in answer tags. Is there any defect in the object? Options: A B C D E "
    "Yes No. The query image looks the same as the reference. There is a region that differs."
)


def _corpus(seed: int) -> list[str]:
    """Text in the shape the model reads and writes, so the answer format tokenizes compactly."""
    rng = random.Random(seed)
    lines = [WORDS, " ".join(LABELS), " ".join(str(i) for i in range(1000))]
    for _ in range(2000):
        n = rng.randint(0, 2)
        boxes = [sorted(rng.sample(range(0, 448), 2)) + sorted(rng.sample(range(0, 448), 2))]
        defects = [
            {"label": rng.choice(LABELS), "bbox_2d": [b[0], b[2], b[1], b[3]]} for b in boxes[:n]
        ]
        answer = json.dumps({"anomaly": bool(defects), "defects": defects})
        lines.append(f"<think>{rng.choice(WORDS.split('. '))}.</think>\n<answer>{answer}</answer>")
        lines.append(
            f"({boxes[0][0]},{boxes[0][2]}),({boxes[0][1]},{boxes[0][3]}) {rng.choice('ABCDE')}"
        )
    return lines


def build_tokenizer(spec: TinySpec) -> Qwen2Tokenizer:
    """Train a byte-level BPE on the answer-format corpus and wrap it as a Qwen2 tokenizer."""
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab - len(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(spec.seed), trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=model["vocab"], merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.model_max_length = spec.max_positions
    return tokenizer


def chat_template() -> str:
    """Qwen2.5-VL's chat template as TRL ships it (no hub access)."""
    return (resources.files("trl") / "chat_templates" / "qwen2_5_vl.jinja").read_text("utf-8")


def build_config(spec: TinySpec, tokenizer: Qwen2Tokenizer) -> Qwen2_5_VLConfig:
    """A Qwen2.5-VL config with tiny dimensions and the tokenizer's special token ids.

    M-RoPE gives an image token's row and column the middle and the lowest rotary frequencies
    (``mrope_section``). With Qwen's base of 1e6 and a head_dim of 32 the column frequencies are
    2e-6 to 2e-4 rad per position: the 4 columns of a 112 px image's 4x4 token grid look the
    same to attention and the model cannot say where a token is. A base of 10 gives rows 0.27
    to 0.56 and columns 0.12 to 0.24 rad per step; text positions stay distinct over hundreds
    of tokens through the higher frequencies.
    """
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = spec.hidden // spec.heads
    unit = head_dim // 16  # Qwen's [16, 24, 24] for head_dim 128: sums to head_dim / 2
    vocab = -(-len(tokenizer) // 64) * 64
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab,
            "hidden_size": spec.hidden,
            "intermediate_size": spec.mlp,
            "num_hidden_layers": spec.layers,
            "num_attention_heads": spec.heads,
            "num_key_value_heads": spec.kv_heads,
            "max_position_embeddings": spec.max_positions,
            "max_window_layers": spec.layers,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": spec.rope_theta,
                "mrope_section": [unit * 2, unit * 3, unit * 3],
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": spec.vision_depth,
            "hidden_size": spec.vision_hidden,
            "intermediate_size": spec.vision_hidden * 2,
            "num_heads": spec.vision_heads,
            "out_hidden_size": spec.hidden,
            "fullatt_block_indexes": [spec.vision_depth - 1],
            "window_size": 56,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False,
    )


def build_tiny_model(out_dir: str | Path, spec: TinySpec | None = None) -> Path:
    """Write a tiny Qwen2.5-VL checkpoint (weights, config, processor, tokenizer) to ``out_dir``."""
    spec = spec or TinySpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(spec.seed)
    tokenizer = build_tokenizer(spec)
    config = build_config(spec, tokenizer)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        eos_token_id=[config.text_config.eos_token_id, config.text_config.pad_token_id],
        pad_token_id=config.text_config.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(out)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(
            min_pixels=spec.min_pixels, max_pixels=spec.max_pixels
        ),
        video_processor=Qwen2VLVideoProcessor(
            min_pixels=spec.min_pixels, max_pixels=spec.max_pixels
        ),
        tokenizer=tokenizer,
        chat_template=chat_template(),
    )
    processor.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m training.tiny_model OUT_DIR [--seed N] [--layers N] ...``."""
    parser = argparse.ArgumentParser(prog="python -m training.tiny_model", description=__doc__)
    parser.add_argument("out_dir", type=Path, help="directory to write the checkpoint to")
    defaults = TinySpec()
    for name in ("seed", "layers", "hidden", "mlp", "heads", "kv_heads", "vision_depth"):
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name)
        )
    parser.add_argument("--rope-theta", type=float, default=defaults.rope_theta)
    parser.add_argument("--min-pixels", type=int, default=defaults.min_pixels)
    parser.add_argument("--max-pixels", type=int, default=defaults.max_pixels)
    args = vars(parser.parse_args(argv))
    out_dir = args.pop("out_dir")
    try:
        spec = TinySpec(**{**defaults.__dict__, **args})
        check_output_folder(out_dir, "checkpoint files")
    except InspectorError as exc:
        parser.error(str(exc))
    path = build_tiny_model(out_dir, spec)
    print(f"wrote a tiny Qwen2.5-VL checkpoint to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
