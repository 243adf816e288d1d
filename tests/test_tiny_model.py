"""The tiny Qwen2.5-VL builder writes a checkpoint that transformers loads and generates from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from training.tiny_model import SPECIAL_TOKENS, TinySpec, build_tiny_model, main


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny checkpoint shared by the tests of this module."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), TinySpec(seed=1))


def test_config_is_qwen2_5_vl_with_consistent_token_ids(tiny_dir: Path) -> None:
    config = json.loads((tiny_dir / "config.json").read_text())
    processor = AutoProcessor.from_pretrained(tiny_dir)
    tokenizer = processor.tokenizer
    assert config["model_type"] == "qwen2_5_vl"
    assert config["image_token_id"] == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert config["vision_start_token_id"] == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert config["text_config"]["vocab_size"] >= len(tokenizer)
    mrope = config["text_config"]["rope_parameters"]["mrope_section"]
    head_dim = config["text_config"]["hidden_size"] // config["text_config"]["num_attention_heads"]
    assert sum(mrope) == head_dim // 2
    assert config["vision_config"]["out_hidden_size"] == config["text_config"]["hidden_size"]
    for token in SPECIAL_TOKENS:
        assert tokenizer.tokenize(token) == [token]
    assert tokenizer.eos_token == "<|im_end|>"


def test_image_columns_are_apart_for_attention(tiny_dir: Path) -> None:
    """M-RoPE gives columns the lowest rotary frequencies: each must still turn a query-key
    pair by a visible angle from one column of the token grid to the next."""
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    rotary = model.model.language_model.rotary_emb
    t, h, w = rotary.mrope_section
    assert t + h + w == len(rotary.inv_freq)
    columns, rows = rotary.inv_freq[t + h :], rotary.inv_freq[t : t + h]
    assert float(columns.max()) > 0.2 and float(rows.max()) > 0.5  # radians per grid step


def test_answer_format_round_trips_and_tokenizes_compactly(tiny_dir: Path) -> None:
    tokenizer = AutoProcessor.from_pretrained(tiny_dir).tokenizer
    text = (
        "<think>A dark stain differs from the reference.</think>\n"
        '<answer>{"anomaly": true, "defects": [{"label": "stain", "bbox_2d": [12, 34, 156, 78]}]}</answer>'
    )
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text) // 2
    # Qwen2's pre-tokenizer splits numbers into single digits.
    assert tokenizer.tokenize("156") == ["1", "5", "6"]


def test_chat_template_places_images_and_generation_works(tiny_dir: Path) -> None:
    processor = AutoProcessor.from_pretrained(tiny_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    messages = [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Defect?"}],
        }
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert text.endswith("<|im_start|>assistant\n")
    images = [Image.new("RGB", (300, 200), "gray"), Image.new("RGB", (90, 90), "white")]
    inputs = processor(text=[text], images=images, return_tensors="pt")
    # Qwen2.5-VL's smart resize: 300x200 -> 308x196 model pixels (22x14 patches of 14).
    assert inputs["image_grid_thw"].tolist() == [[1, 14, 22], [1, 6, 6]]
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    new_tokens = out.shape[1] - inputs["input_ids"].shape[1]
    assert 1 <= new_tokens <= 6


def test_cli_writes_checkpoint_with_chosen_dims(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main([str(tmp_path / "m"), "--layers", "2", "--seed", "3"]) == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["text_config"]["num_hidden_layers"] == 2
    assert "wrote a tiny Qwen2.5-VL checkpoint" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hidden", "100"], "hidden / heads must be a whole multiple of 16"),
        (["--layers", "0"], "layers must be 1 or more, got 0"),
        (["--heads", "4", "--kv-heads", "3"], "must be a multiple of kv_heads"),
        (["--min-pixels", "999999999"], "min_pixels must not exceed max_pixels"),
    ],
)
def test_cli_rejects_inconsistent_dims(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "m"), *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_cli_refuses_a_file_for_the_checkpoint_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "m").write_text("x", "utf-8")
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "m")])
    assert exc.value.code == 2
    assert "is a file; the checkpoint files need a folder" in capsys.readouterr().err
