"""TRL reward functions: format, verdict, localisation (DCLR), ROAM and MMAD multiple choice.

Each is ``f(completions, **columns) -> list[float | None]`` (None: not applicable to that row,
which TRL leaves out of the group baseline). Boxes are compared in the model's input pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from inspector_agent.answer import ParsedAnswer, parse_answer, reasoning_conclusion
from inspector_agent.geometry import MODEL, Box
from inspector_agent.schema import ParseStatus
from training.boxscore import match_score

RewardFunc = Callable[..., list[float | None]]
ROAM_BOTH_RIGHT, ROAM_UNREASONED_RIGHT, ROAM_UNREASONED_WRONG = 1.0, 0.8, 0.05
ROAM_CONSISTENT_WRONG, ROAM_CONTRADICTS = 0.1, 0.0


def completion_text(completion: Any) -> str:
    """The assistant text of a TRL completion (conversational list or plain string)."""
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content", "")) for m in completion if m.get("role") == "assistant")


def _parsed(completions: Sequence[Any]) -> list[ParsedAnswer]:
    return [parse_answer(completion_text(c)) for c in completions]


def format_reward(completions: Sequence[Any], **_: Any) -> list[float | None]:
    """1.0 for a well-formed ``<think>..</think><answer>{json}</answer>`` or option answer, else 0.

    >>> format_reward(['<think>x</think><answer>{"anomaly": false, "defects": []}</answer>'])
    [1.0]
    """
    good = (ParseStatus.OK, ParseStatus.OPTION)
    return [float(p.status in good and bool(p.think)) for p in _parsed(completions)]


def verdict_reward(
    completions: Sequence[Any], anomaly: Sequence[bool | None], **_: Any
) -> list[float | None]:
    """1.0 when the answer's verdict matches the label, 0.0 otherwise, None on rows without one."""
    return [
        None if a is None else float(p.anomaly is not None and p.anomaly == bool(a))
        for p, a in zip(_parsed(completions), anomaly, strict=True)
    ]


def _model_boxes(rows: Sequence[Sequence[float]] | None) -> list[Box]:
    return [Box(*map(float, r), space=MODEL) for r in rows or []]


def make_localization_reward(pair: str = "dclr") -> RewardFunc:
    """Localisation reward with per-pair score ``pair`` ("dclr", "monotone" or "iou").

    Normal rows: 1.0 for a normal answer without boxes, else 0. Anomalous rows: mean pair score
    over a one-to-one matching of predicted and true boxes, unmatched boxes scoring 0.
    """

    def localization_reward(
        completions: Sequence[Any],
        anomaly: Sequence[bool | None],
        boxes: Sequence[Sequence[Sequence[float]] | None],
        **_: Any,
    ) -> list[float | None]:
        out: list[float | None] = []
        for p, a, truth in zip(_parsed(completions), anomaly, boxes, strict=True):
            preds = [d.box for d in p.defects]
            if a is None:
                out.append(None)
            elif not a:
                out.append(float(p.anomaly is False and not preds))
            else:
                out.append(match_score(preds, _model_boxes(truth), pair) if p.anomaly else 0.0)
        return out

    localization_reward.__name__ = f"localization_{pair}_reward"
    return localization_reward


def _answer_correct(
    p: ParsedAnswer, anomaly: bool | None, labels: Sequence[str] | None, option: str | None
) -> bool:
    if option:
        return p.option is not None and p.option.upper() == option.upper()
    if p.anomaly is None or p.anomaly != bool(anomaly):
        return False
    wanted = {label.lower() for label in labels or []}
    return not (p.anomaly and wanted) or any(d.label.lower() in wanted for d in p.defects)


def _answer_key(p: ParsedAnswer, option: str | None) -> str | bool | None:
    return (p.option or "").upper() or None if option else p.anomaly


def _concluded(think: str, options: bool) -> str | bool | None:
    """The reasoning's own conclusion: an option letter for MMAD rows, else a verdict."""
    if not options:
        return reasoning_conclusion(think)
    letter = parse_answer(think).option if think else None
    return letter.upper() if letter else None


def roam_reward(
    completions: Sequence[Any],
    anomaly: Sequence[bool | None] | None = None,
    labels: Sequence[Sequence[str] | None] | None = None,
    option: Sequence[str | None] | None = None,
    **_: Any,
) -> list[float | None]:
    """AnomalyR1's ROAM, generalised from option letters to verdict and defect label.

    Reasoning conclusion and answer agree and are right 1.0; no conclusion, right 0.8; no
    conclusion, wrong 0.05; consistent but wrong 0.1; conclusion contradicts the answer 0.
    """
    n = len(completions)
    anomaly, labels, option = anomaly or [None] * n, labels or [None] * n, option or [None] * n
    out: list[float | None] = []
    for p, a, lab, opt in zip(_parsed(completions), anomaly, labels, option, strict=True):
        if a is None and not opt:
            out.append(None)
            continue
        right = _answer_correct(p, a, lab, opt)
        concluded = _concluded(p.think, bool(opt))
        if concluded is None:
            out.append(ROAM_UNREASONED_RIGHT if right else ROAM_UNREASONED_WRONG)
        elif concluded != _answer_key(p, opt):
            out.append(ROAM_CONTRADICTS)
        else:
            out.append(ROAM_BOTH_RIGHT if right else ROAM_CONSISTENT_WRONG)
    return out


def choice_reward(
    completions: Sequence[Any], option: Sequence[str | None], **_: Any
) -> list[float | None]:
    """MMAD multiple choice: 1.0 when the answer's option letter is the right one."""
    return [
        None if not o else float(p.option is not None and p.option.upper() == o.upper())
        for p, o in zip(_parsed(completions), option, strict=True)
    ]


REWARDS: dict[str, RewardFunc] = {
    "format": format_reward,
    "verdict": verdict_reward,
    "localization": make_localization_reward("dclr"),
    "localization_monotone": make_localization_reward("monotone"),
    "localization_iou": make_localization_reward("iou"),
    "roam": roam_reward,
    "choice": choice_reward,
}


def get_rewards(names: Sequence[str]) -> list[RewardFunc]:
    """The reward functions called ``names`` (see :data:`REWARDS`), or a ValueError naming them."""
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown rewards {unknown} (known: {', '.join(REWARDS)})")
    return [REWARDS[n] for n in names]
