"""The ``<think>/<answer>`` format of the multimodal model: a total, tolerant parser and the writer.

Boxes read from an answer are in "model" space: pixels of the image as the model received it.

>>> a = parse_answer('<think>a crack</think><answer>{"anomaly": true, '
...                  '"defects": [{"label": "crack", "bbox_2d": [1, 2, 30, 40]}]}</answer>')
>>> a.status.value, a.anomaly, a.defects[0].label, a.defects[0].box.to_list()
('ok', True, 'crack', [1.0, 2.0, 30.0, 40.0])
>>> parse_answer("<answer>(0,0),(0,0)</answer>").anomaly
False
>>> parse_answer("Answer: B").option
'B'
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from inspector_agent.geometry import MODEL, Box, CoordinateMap
from inspector_agent.schema import ParseStatus

MAX_CHARS = 100_000  # longer outputs are cut before parsing (a runaway generation)
MAX_DEFECTS = 64  # further boxes of a runaway generation are dropped
DEFAULT_LABEL = "anomaly"

_THINK = re.compile(r"<think>(.*?)</think>", re.S | re.I)
_THINK_UNCLOSED = re.compile(r"<think>(.*?)(?=<answer>|\Z)", re.S | re.I)
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.S | re.I)
_FENCE = re.compile(r"```[a-zA-Z]*")
_SPECIAL = re.compile(r"<\|(?:box|object_ref|quad)_(?:start|end)\|>")
_NUM = r"(-?\d+(?:\.\d+)?)"
_DIFFERAD = re.compile(rf"\(\s*{_NUM}\s*,\s*{_NUM}\s*\)\s*,?\s*\(\s*{_NUM}\s*,\s*{_NUM}\s*\)")
_BARE = re.compile(rf"\[\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*\]")
_OPTION = re.compile(
    r"(?:^|\b(?i:answer|option|choice)\b\s*(?:(?i:is)\s*)?[:：]?\s*|\()"
    r"[(\[]?([A-Z])[)\]]?(?=\s*(?:$|[.:,;)\]]))"
)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_JSON_WORDS = {"true": "True", "false": "False", "null": "None"}
_BOX_KEYS = ("bbox_2d", "bbox", "box")
_LABEL_KEYS = ("label", "type", "name", "defect")
_TRUE_WORDS = {"true", "yes", "1", "anomalous", "anomaly", "defective", "abnormal"}
_FALSE_WORDS = {"false", "no", "0", "normal", "ok", "good"}


@dataclass(frozen=True)
class AnswerDefect:
    """One defect named in an answer: a label and a box in "model" space."""

    label: str
    box: Box


@dataclass
class ParsedAnswer:
    """What a model output says: status, reasoning, verdict, defects, option letter."""

    status: ParseStatus
    think: str = ""
    anomaly: bool | None = None
    defects: list[AnswerDefect] = field(default_factory=list)
    option: str | None = None
    answer: str = ""  # the answer text as found (inside the tags when present)
    raw: str = ""
    error: str = ""  # why the answer is unusable, for logs and the user

    def original_defects(self, cmap: CoordinateMap) -> list[tuple[str, Box]]:
        """The defects with boxes mapped to original image pixels."""
        return [(d.label, cmap.to_original(d.box)) for d in self.defects]


class _Unreadable(ValueError):
    """An answer whose structure was found but whose content is unusable."""


def parse_answer(text: object) -> ParsedAnswer:
    """Read a model output; never raises, reports how it was read in ``status``.

    >>> parse_answer("").status.value
    'empty'
    >>> parse_answer("<answer>{'anomaly': false, 'defects': [],}</answer>").anomaly
    False
    >>> parse_answer("[10, 20, 30, 40]").status.value
    'bare_box'
    """
    if text is None:
        return ParsedAnswer(ParseStatus.EMPTY, error="no output")
    if not isinstance(text, str):
        return ParsedAnswer(ParseStatus.INVALID, error=f"output is a {type(text).__name__}")
    raw = text
    text = _SPECIAL.sub("", text[:MAX_CHARS])
    if not text.strip():
        return ParsedAnswer(ParseStatus.EMPTY, raw=raw, error="empty output")
    think, rest = _split_think(text)
    answer_match = _ANSWER.search(rest)
    answer = (answer_match.group(1) if answer_match else rest).strip()
    base = ParsedAnswer(ParseStatus.INVALID, think=think, answer=answer, raw=raw)
    try:
        return _read(answer, tagged=answer_match is not None, base=base)
    except _Unreadable as exc:
        base.error = str(exc)
        return base


def _split_think(text: str) -> tuple[str, str]:
    """``(think, rest)``; a lone ``</think>`` closes reasoning that the prompt opened."""
    match = _THINK.search(text) or _THINK_UNCLOSED.search(text)
    if match:
        return match.group(1).strip(), text[: match.start()] + text[match.end() :]
    head, sep, tail = text.partition("</think>")
    return (head.strip(), tail) if sep else ("", text)


def _read(answer: str, *, tagged: bool, base: ParsedAnswer) -> ParsedAnswer:
    if not answer:
        base.error = "no answer after the reasoning"
        return base
    cleaned = _FENCE.sub("", answer).strip()
    data = _load_json(cleaned)
    if data is not None and not _is_flat_box(data):  # bare boxes: the regex finds them all
        status = ParseStatus.OK if tagged else ParseStatus.NO_ANSWER_TAGS
        return _from_json(data, status, base)
    boxes = [_box(m.groups()) for m in _DIFFERAD.finditer(cleaned)]
    status = ParseStatus.DIFFERAD
    if not boxes:
        boxes = [_box(m.groups()) for m in _BARE.finditer(cleaned)]
        status = ParseStatus.BARE_BOX
    if boxes:
        return _boxes_answer(boxes, status, base)
    option = _OPTION.search(cleaned)
    if option:
        base.status, base.option = ParseStatus.OPTION, option.group(1)
        return base
    base.error = "the answer has no verdict, box or option letter"
    return base


def _is_flat_box(data: Any) -> bool:
    return (
        isinstance(data, list)
        and len(data) == 4
        and not any(isinstance(v, dict | list) for v in data)
    )


def _boxes_answer(boxes: list[Box], status: ParseStatus, base: ParsedAnswer) -> ParsedAnswer:
    """Boxes without labels; the all-zero box (DifferAD-R1's convention) means normal."""
    real = [b for b in boxes if (b.x1, b.y1, b.x2, b.y2) != (0, 0, 0, 0)]
    base.status, base.anomaly = status, bool(real)
    base.defects = [AnswerDefect(DEFAULT_LABEL, b) for b in real[:MAX_DEFECTS]]
    return base


def _load_json(text: str) -> Any:
    """The first JSON-like object or list in ``text``, read leniently, or ``None``."""
    starts = [i for i, ch in enumerate(text) if ch in "{["][:8]
    for start in starts:
        closer = "}" if text[start] == "{" else "]"
        end = text.rfind(closer)
        if end <= start:
            continue
        candidate = text[start : end + 1]
        for attempt in (_json, _json_no_trailing, _python_literal):
            value = attempt(candidate)
            if isinstance(value, dict | list):
                return value
        try:
            value, _ = json.JSONDecoder().raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):  # a list prefix may be one of several bare boxes
            return value
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _json_no_trailing(text: str) -> Any:
    return _json(_TRAILING_COMMA.sub(r"\1", text))


def _python_literal(text: str) -> Any:
    python = re.sub(r"\b(true|false|null)\b", lambda m: _JSON_WORDS[m.group(1)], text)
    try:
        return ast.literal_eval(python)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        return None


def _from_json(data: Any, status: ParseStatus, base: ParsedAnswer) -> ParsedAnswer:
    if isinstance(data, list):
        if data and all(isinstance(v, list) for v in data):
            return _boxes_answer([_box(v) for v in data], ParseStatus.BARE_BOX, base)
        data = {"defects": data}
    option = data.get("answer", data.get("option"))
    if isinstance(option, str) and re.fullmatch(r"\s*\(?[A-Z]\)?\s*", option):
        base.status, base.option = ParseStatus.OPTION, option.strip(" ()")
        return base
    defects_raw = data.get("defects", [])
    if isinstance(defects_raw, dict):
        defects_raw = [defects_raw]
    if not isinstance(defects_raw, list):
        raise _Unreadable("'defects' is not a list")
    if any(k in data for k in _BOX_KEYS):
        defects_raw = [data, *defects_raw]
    defects = [_defect(d) for d in defects_raw[:MAX_DEFECTS]]
    anomaly = _flag(data.get("anomaly", data.get("anomalous")), default=bool(defects))
    if anomaly is False and defects:
        raise _Unreadable("the answer says normal but lists defects")
    if not defects and not {"anomaly", "anomalous", "defects"} & data.keys():
        raise _Unreadable("the answer has no 'anomaly' field")
    base.status, base.anomaly, base.defects = status, anomaly, defects
    return base


def _flag(value: Any, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise _Unreadable(f"'anomaly' must be true or false, got {value!r}")


def _defect(item: Any) -> AnswerDefect:
    if not isinstance(item, dict):
        raise _Unreadable("a defect is not an object")
    coords = next((item[k] for k in _BOX_KEYS if k in item), None)
    if coords is None:
        raise _Unreadable("a defect has no 'bbox_2d'")
    label = next((item[k] for k in _LABEL_KEYS if isinstance(item.get(k), str)), "")
    return AnswerDefect(label.strip() or DEFAULT_LABEL, _box(coords))


def _box(coords: Any) -> Box:
    pairs = isinstance(coords, list | tuple) and len(coords) == 2
    if pairs and all(isinstance(p, list | tuple) and len(p) == 2 for p in coords):
        coords = [*coords[0], *coords[1]]
    if not isinstance(coords, list | tuple) or len(coords) != 4:
        raise _Unreadable("a box must have 4 numbers [x1, y1, x2, y2]")
    values = []
    for v in coords:
        if isinstance(v, bool):
            raise _Unreadable("a box coordinate is not a number")
        try:
            number = float(v)
        except (TypeError, ValueError, OverflowError):
            raise _Unreadable(f"a box coordinate is not a number: {v!r}") from None
        if not math.isfinite(number):
            raise _Unreadable("a box coordinate is not finite")
        values.append(number)
    return Box(*values, space=MODEL).normalized()


def format_answer(anomaly: bool, defects: list[tuple[str, Box]], think: str) -> str:
    """The canonical training target: think text, then the JSON answer with integer pixels.

    >>> format_answer(True, [("crack", Box(1.4, 2, 30.6, 40, space="model"))], "A dark line.")
    '<think>A dark line.</think><answer>{"anomaly": true, "defects": [{"label": "crack", "bbox_2d": [1, 2, 31, 40]}]}</answer>'
    """
    if not anomaly and defects:
        raise ValueError("a normal answer cannot list defects")
    entries = []
    for label, box in defects:
        if box.space != MODEL:
            raise ValueError(f"answer boxes must be in model space, got {box.space!r}")
        if not label.strip():
            raise ValueError("a defect label cannot be empty")
        b = box.normalized()
        coords = [round(v) for v in (b.x1, b.y1, b.x2, b.y2)]
        entries.append({"label": label.strip(), "bbox_2d": coords})
    payload = json.dumps({"anomaly": bool(anomaly), "defects": entries}, ensure_ascii=False)
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<think>{_clean_think(think)}</think><answer>{payload}</answer>"


def _clean_think(think: str) -> str:
    return re.sub(r"</?\s*(?:think|answer)\s*>", " ", think, flags=re.I).strip()


_ANOMALY_WORDS = re.compile(
    r"(anomal|abnormal|defect|damage|crack|scratch|broke|dent|hole|contamin|stain|missing|"
    r"flaw|fault|deform|misalign|tear|torn|bent|rust|corro|chipped|frayed|leak|irregular|"
    r"foreign|spot|blemish|discolo|puncture|fracture)\w*"
)
_NORMAL_WORDS = re.compile(
    r"normal|intact|flawless|undamaged|acceptable|fine|ok|okay|good|clean|perfect|conforming|"
    r"nominal|pristine|unblemished|spotless"
)
_NEGATORS = re.compile(r"no|not|without|never|nor|neither|none|nothing|free|lack|absence|\w+n't")
_CONCLUSION = re.compile(
    r"\b(therefore|thus|hence|so|overall|conclu\w*|final\w*|summary|consequently|verdict)\b"
)
_REFERENCE = re.compile(r"reference|template|golden")


def reasoning_conclusion(think: str) -> bool | None:
    """What the reasoning concludes: ``True`` anomalous, ``False`` normal, ``None`` nothing.

    The last clause with a signal wins, preferring clauses with a concluding word ("thus",
    "overall", ...); negations ("no defects", "not normal", "defect-free") flip a signal.

    >>> reasoning_conclusion("The reference is normal. The query shows a crack.")
    True
    >>> reasoning_conclusion("I looked for scratches. Overall there are no defects.")
    False
    >>> reasoning_conclusion("The image is blurry.") is None
    True
    """
    if not isinstance(think, str) or not think.strip():
        return None
    found: list[tuple[bool, bool]] = []  # (concluding clause, anomalous)
    text = think.lower().replace("\u2019", "'")
    for clause in re.split(r"[.!?;\n]+|\bbut\b|\bhowever\b", text):
        polarity = _clause_polarity(clause)
        if polarity is not None:
            found.append((bool(_CONCLUSION.search(clause)), polarity))
    concluding = [p for c, p in found if c]
    if concluding:
        return concluding[-1]
    return found[-1][1] if found else None


def _clause_polarity(clause: str) -> bool | None:
    words = re.findall(r"[a-z]+(?:'[a-z]+)?", clause)
    polarity = None
    for i, word in enumerate(words):
        if _NORMAL_WORDS.fullmatch(word):
            if any(_REFERENCE.fullmatch(w) for w in words[i + 1 : i + 3]):
                continue
            anomalous = False
        elif _ANOMALY_WORDS.fullmatch(word):
            anomalous = True
        else:
            continue
        before = words[max(0, i - 4) : i]
        negated = any(_NEGATORS.fullmatch(w) for w in before)
        negated = negated or (i + 1 < len(words) and words[i + 1] == "free")
        polarity = anomalous != negated
    return polarity
