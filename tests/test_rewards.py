"""Table tests of the training rewards, with values computed by hand."""

from __future__ import annotations

import json
import math

import pytest

from inspector_agent.geometry import MODEL, Box
from training.boxscore import dclr, match_score, monotone
from training.rewards import (
    choice_reward,
    format_reward,
    get_rewards,
    make_localization_reward,
    roam_reward,
    verdict_reward,
)


def answer(
    anomaly: bool, boxes: list[list[int]] = (), think: str = "Looked.", label: str = "stain"
) -> str:
    defects = [{"label": label, "bbox_2d": b} for b in boxes]
    return f"<think>{think}</think><answer>{json.dumps({'anomaly': anomaly, 'defects': defects})}</answer>"


def conv(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def mbox(*v: float) -> Box:
    return Box(*v, space=MODEL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (answer(False), 1.0),
        (answer(True, [[0, 0, 28, 28]]), 1.0),
        ('<think>x</think><answer>{"anomaly": true,', 0.0),
        ('{"anomaly": false, "defects": []}', 0.0),  # no tags
        ('<answer>{"anomaly": false, "defects": []}</answer>', 0.0),  # no reasoning
        ("<think>B fits.</think><answer>B</answer>", 1.0),
        ("", 0.0),
    ],
)
def test_format_reward(text: str, expected: float) -> None:
    assert format_reward([conv(text)]) == [expected]


def test_verdict_reward_and_missing_labels() -> None:
    texts = [
        conv(answer(True, [[0, 0, 2, 2]])),
        conv(answer(False)),
        conv("garbage"),
        conv(answer(False)),
    ]
    assert verdict_reward(texts, [True, True, False, None]) == [1.0, 0.0, 0.0, None]


@pytest.mark.parametrize(
    ("pred", "truth", "expected"),
    [
        # identical boxes: IoU 1
        ((0, 0, 28, 28), (0, 0, 28, 28), 1.0),
        # half overlap: IoU 0.5, centre 1 - 14/sqrt(28^2+56^2), area 0.5
        ((0, 0, 28, 28), (0, 0, 28, 56), 0.5 + 0.5 * (0.6 * (1 - 14 / math.hypot(28, 56)) + 0.2)),
        # disjoint, same size, side by side: IoU 0, centre 1 - 2/sqrt(20), area 1
        ((0, 0, 2, 2), (2, 0, 4, 2), 0.6 * (1 - 2 / math.sqrt(20)) + 0.4),
    ],
)
def test_dclr_pairs(pred: tuple, truth: tuple, expected: float) -> None:
    assert dclr(mbox(*pred), mbox(*truth)) == pytest.approx(expected)


def test_monotone_never_ranks_lower_iou_higher() -> None:
    truth = mbox(0, 0, 10, 10)
    near_miss = mbox(10, 0, 20, 10)  # IoU 0, same size, adjacent: DCLR scores it highly
    sliver = mbox(9, 0, 40, 40)  # IoU 10/(100+1240-10) > 0, bad shape
    assert dclr(near_miss, truth) > dclr(sliver, truth)  # DCLR is not monotone in IoU
    assert monotone(sliver, truth) > monotone(near_miss, truth)
    assert monotone(sliver, truth) == pytest.approx(0.2 + 0.8 * 10 / 1330)
    assert monotone(near_miss, truth) == pytest.approx(
        0.2 * (0.6 * (1 - 10 / math.hypot(20, 10)) + 0.4)
    )


def test_match_score_one_to_one_and_unmatched_penalty() -> None:
    t1, t2 = mbox(0, 0, 10, 10), mbox(50, 50, 60, 60)
    assert match_score([t2, t1], [t1, t2], "iou") == 1.0  # order does not matter
    assert match_score([t1], [t1, t2], "iou") == 0.5  # one missed truth
    assert match_score([t1, t1, t2], [t1, t2], "iou") == pytest.approx(2 / 3)  # one extra box
    assert match_score([], [t1], "iou") == 0.0


def test_localization_reward_rows() -> None:
    reward = make_localization_reward("dclr")
    completions = [
        conv(answer(False)),  # correct normal
        conv(answer(True, [[0, 0, 28, 28]])),  # false alarm on a normal part
        conv(answer(True, [[0, 0, 28, 28]])),  # exact box
        conv(answer(False)),  # missed defect
        conv(answer(True, [[0, 0, 28, 28]])),  # one of two defects
        conv(answer(True, [[0, 0, 28, 28]])),  # row without localisation labels
    ]
    anomaly = [False, False, True, True, True, None]
    boxes = [[], [], [[0, 0, 28, 28]], [[0, 0, 28, 28]], [[0, 0, 28, 28], [56, 56, 84, 84]], None]
    assert reward(completions, anomaly, boxes) == [1.0, 0.0, 1.0, 0.0, 0.5, None]
    assert reward.__name__ == "localization_dclr_reward"


@pytest.mark.parametrize(
    ("text", "anomaly", "labels", "expected"),
    [
        (answer(True, [[0, 0, 9, 9]], think="There is a stain."), True, ["stain"], 1.0),
        (answer(True, [[0, 0, 9, 9]], think="Looked at it."), True, ["stain"], 0.8),
        (answer(False, think="Looked at it."), True, ["stain"], 0.05),
        (answer(False, think="Overall the part is normal."), True, ["stain"], 0.1),
        (answer(True, [[0, 0, 9, 9]], think="Overall the part is normal."), True, ["stain"], 0.0),
        # right verdict, wrong defect label: consistent but wrong
        (answer(True, [[0, 0, 9, 9]], think="A crack.", label="crack"), True, ["stain"], 0.1),
        (answer(False, think="The part is normal."), False, [], 1.0),
    ],
)
def test_roam_verdict_table(text: str, anomaly: bool, labels: list[str], expected: float) -> None:
    assert roam_reward([conv(text)], [anomaly], [labels]) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>So the answer is B.</think><answer>B</answer>", 1.0),
        ("<think>Hmm.</think><answer>B</answer>", 0.8),
        ("<think>Hmm.</think><answer>C</answer>", 0.05),
        ("<think>So the answer is C.</think><answer>C</answer>", 0.1),
        ("<think>So the answer is B.</think><answer>C</answer>", 0.0),
    ],
)
def test_roam_option_table(text: str, expected: float) -> None:
    assert roam_reward([conv(text)], [None], [None], ["B"]) == [expected]
    assert choice_reward([conv(text)], ["B"]) == [float(text.endswith("<answer>B</answer>"))]


def test_reward_registry() -> None:
    assert [f.__name__ for f in get_rewards(["format", "localization_monotone"])] == [
        "format_reward",
        "localization_monotone_reward",
    ]
    with pytest.raises(ValueError, match="unknown rewards"):
        get_rewards(["nope"])
