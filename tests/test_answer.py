"""The answer parser reads every tolerated form, never raises, and round-trips the writer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector_agent.answer import format_answer, parse_answer, reasoning_conclusion
from inspector_agent.geometry import Box, CoordinateMap
from inspector_agent.schema import ParseStatus

S = ParseStatus
CRACK = '{"label": "crack", "bbox_2d": [10, 20, 30, 40]}'

# (model output, status, anomaly, [(label, [x1, y1, x2, y2]), ...], option)
CASES = [
    (
        f'<think>x</think><answer>{{"anomaly": true, "defects": [{CRACK}]}}</answer>',
        S.OK,
        True,
        [("crack", [10, 20, 30, 40])],
        None,
    ),
    ('<answer>{"anomaly": false, "defects": []}</answer>', S.OK, False, [], None),
    (
        "<answer>{'anomaly': True, 'defects': [{'label': 'dent', 'bbox': ['1', '2', '3', '4'],},],}"
        "</answer>",
        S.OK,
        True,
        [("dent", [1, 2, 3, 4])],
        None,
    ),
    (
        '<answer>```json\n{"anomaly": true, "defects": [{"label": "hole", "bbox_2d": [5, 5, 9, 9]}]}'
        "\n```</answer>",
        S.OK,
        True,
        [("hole", [5, 5, 9, 9])],
        None,
    ),
    (
        f'<answer>[{CRACK}, {{"label": "stain", "bbox_2d": [1, 1, 2, 2]}}]</answer>',
        S.OK,
        True,
        [("crack", [10, 20, 30, 40]), ("stain", [1, 1, 2, 2])],
        None,
    ),
    (
        '<answer>{"anomaly": "yes", "defects": [{"bbox_2d": [30, 40, 10, 20]}]}</answer>',
        S.OK,
        True,
        [("anomaly", [10, 20, 30, 40])],
        None,
    ),
    ('<answer>{"defects": []}</answer>', S.OK, False, [], None),
    (
        f'{{"anomaly": true, "defects": [{CRACK}]}}',
        S.NO_ANSWER_TAGS,
        True,
        [("crack", [10, 20, 30, 40])],
        None,
    ),
    (
        f'reasoning</think><answer>{{"anomaly": true, "defects": [{CRACK}]}}</answer>',
        S.OK,
        True,
        [("crack", [10, 20, 30, 40])],
        None,
    ),
    (
        "<think>I see a scratch</think><answer>(12,34),(56,78)</answer>",
        S.DIFFERAD,
        True,
        [("anomaly", [12, 34, 56, 78])],
        None,
    ),
    ("<answer>(0,0),(0,0)</answer>", S.DIFFERAD, False, [], None),
    (
        "<answer><|box_start|>(1,2),(3,4)<|box_end|> and (5, 6), (7, 8)</answer>",
        S.DIFFERAD,
        True,
        [("anomaly", [1, 2, 3, 4]), ("anomaly", [5, 6, 7, 8])],
        None,
    ),
    (
        "<answer>[10, 20, 30.5, 40]</answer>",
        S.BARE_BOX,
        True,
        [("anomaly", [10, 20, 30.5, 40])],
        None,
    ),
    (
        "The defects are at [1, 2, 3, 4] and [5, 6, 7, 8].",
        S.BARE_BOX,
        True,
        [("anomaly", [1, 2, 3, 4]), ("anomaly", [5, 6, 7, 8])],
        None,
    ),
    (
        "<answer>[[1, 2, 3, 4], [0, 0, 0, 0]]</answer>",
        S.BARE_BOX,
        True,
        [("anomaly", [1, 2, 3, 4])],
        None,
    ),
    ("<answer>A</answer>", S.OPTION, None, [], "A"),
    ("Answer: B", S.OPTION, None, [], "B"),
    ("<think>hmm</think><answer>(C)</answer>", S.OPTION, None, [], "C"),
    ("The answer is (D).", S.OPTION, None, [], "D"),
    ("<answer>B. Yes, there is a defect</answer>", S.OPTION, None, [], "B"),
    ('<answer>{"answer": "C"}</answer>', S.OPTION, None, [], "C"),
]

INVALID = [
    '<answer>{"anomaly": false, "defects": [' + CRACK + "]}</answer>",  # normal with defects
    '<answer>{"anomaly": true, "defects": [{"label": "crack", "bbox_2d": [1, 2, 3]}]}</answer>',
    '<answer>{"anomaly": true, "defects": [{"label": "crack", "bbox_2d": ["a", 2, 3, 4]}]}'
    "</answer>",
    '<answer>{"anomaly": "perhaps", "defects": []}</answer>',
    '<answer>{"anomaly": true, "defects": "crack"}</answer>',
    '<answer>{"verdict": "maybe"}</answer>',
    "<think>the part looks fine</think>",
    "<answer>A crack on the left</answer>",
    "The part has a crack on the left.",
    "<answer></answer>",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[" * 500,
]


@pytest.mark.parametrize(("text", "status", "anomaly", "defects", "option"), CASES)
def test_reads_each_tolerated_form(text, status, anomaly, defects, option):
    parsed = parse_answer(text)
    assert parsed.status == status, parsed.error
    assert parsed.anomaly is anomaly
    assert [(d.label, d.box.to_list()) for d in parsed.defects] == defects
    assert all(d.box.space == "model" for d in parsed.defects)
    assert parsed.option == option


@pytest.mark.parametrize("text", INVALID)
def test_unusable_answers_are_invalid_with_a_reason(text):
    parsed = parse_answer(text)
    assert parsed.status == S.INVALID
    assert parsed.anomaly is None and parsed.defects == [] and parsed.option is None
    assert parsed.error


@pytest.mark.parametrize(
    ("value", "status"),
    [(None, S.EMPTY), ("", S.EMPTY), ("  \n", S.EMPTY), (42, S.INVALID), (b"<answer>", S.INVALID)],
)
def test_empty_and_non_text_outputs(value, status):
    assert parse_answer(value).status == status


def test_think_is_extracted_and_raw_kept():
    text = "<think> The query shows a dark line. </think>\n<answer>(1,1),(2,2)</answer>"
    parsed = parse_answer(text)
    assert parsed.think == "The query shows a dark line."
    assert parsed.raw == text
    assert parsed.answer == "(1,1),(2,2)"


def test_answer_tags_inside_reasoning_do_not_count():
    text = (
        '<think>I must reply <answer>{"anomaly": false}</answer> style</think>'
        '<answer>{"anomaly": true, "defects": [' + CRACK + "]}</answer>"
    )
    assert parse_answer(text).anomaly is True


def test_original_defects_maps_boxes_back():
    parsed = parse_answer(f'<answer>{{"anomaly": true, "defects": [{CRACK}]}}</answer>')
    cmap = CoordinateMap(original_width=200, original_height=400, model_width=100, model_height=100)
    [(label, box)] = parsed.original_defects(cmap)
    assert label == "crack" and box.space == "original"
    assert box.to_list() == [20.0, 80.0, 60.0, 160.0]


TOKENS = [
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    '"',
    "'",
    ",",
    ":",
    " ",
    "anomaly",
    "defects",
    "bbox_2d",
    "label",
    "true",
    "false",
    "null",
    "0",
    "12",
    "-3",
    "4.5",
    "1e9",
    "nan",
    "A",
    "Answer:",
    "```json",
    "\n",
    "<|box_start|>",
]
OUTPUTS = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join) | st.text()


@settings(max_examples=400, deadline=None)
@given(OUTPUTS)
def test_parse_never_raises(text):
    parsed = parse_answer(text)
    assert parsed.status in set(ParseStatus)
    if parsed.anomaly is False:
        assert parsed.defects == []


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1).filter(str.strip),
            st.lists(st.integers(0, 2000), min_size=4, max_size=4),
        ),
        max_size=4,
    ),
    st.text(),
)
def test_format_then_parse_round_trips(defects, think):
    boxes = [(label, Box(*coords, space="model")) for label, coords in defects]
    anomaly = bool(boxes)
    text = format_answer(anomaly, boxes, think)
    parsed = parse_answer(text)
    assert parsed.status == S.OK, (text, parsed.error)
    assert parsed.anomaly is anomaly
    assert [d.label for d in parsed.defects] == [label.strip() for label, _ in boxes]
    assert [d.box for d in parsed.defects] == [b.normalized() for _, b in boxes]
    assert "<answer>" not in parsed.think and "</think>" not in parsed.think


def test_format_answer_is_canonical_and_strict():
    text = format_answer(False, [], "Looks the same as the reference.")
    assert text == (
        "<think>Looks the same as the reference.</think>"
        '<answer>{"anomaly": false, "defects": []}</answer>'
    )
    with pytest.raises(ValueError, match="normal"):
        format_answer(False, [("crack", Box(1, 2, 3, 4, space="model"))], "")
    with pytest.raises(ValueError, match="model space"):
        format_answer(True, [("crack", Box(1, 2, 3, 4))], "")


@pytest.mark.parametrize(
    ("think", "expected"),
    [
        ("The query shows a clear crack near the edge.", True),
        ("There are no defects; the surface is intact.", False),
        ("The part is defect-free.", False),
        ("The texture is not normal around the screw.", True),
        ("Compared with the normal reference, the query has a scratch.", True),
        ("I checked for scratches and dents. Overall the part looks normal.", False),
        ("There is a dark spot. However, it is just dust, so the part is fine.", False),
        ("No visible signs of damage.", False),
        ("It isn't damaged at all.", False),
        ("The lighting differs between the two images.", None),
        ("", None),
    ],
)
def test_reasoning_conclusion(think, expected):
    assert reasoning_conclusion(think) is expected
