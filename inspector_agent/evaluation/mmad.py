"""The MMAD benchmark protocol for the multimodal model (``inspector eval mmad``).

One question per request, 1-shot by default: each query image is shown after a normal
template drawn at random (seeded) from the record's ``random_templates``. The answer's option
letter is read by the shared parser, then by a letter search, then by fuzzy matching of the
answer text against the options. Accuracy is per task and subset (the first folder of the
image path); anomaly discrimination uses balanced accuracy; the average is taken over subsets
for each task, then over tasks, like the published table (AnomalyR1-3B 76.96, Qwen2.5-VL-7B
72.19, human experts 86.65).
"""

from __future__ import annotations

import difflib
import json
import random
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspector_agent.answer import parse_answer
from inspector_agent.errors import InspectorError
from inspector_agent.grounding.base import GroundingError
from inspector_agent.grounding.model_io import Progress, TextBackend, with_data_urls
from inspector_agent.imaging import ImageError, load_image
from inspector_agent.prompts import build_mmad_messages

DISCRIMINATION = "Anomaly Detection"
TEMPLATE_KEYS = ("random_templates", "similar_templates", "templates")
FUZZY_CUTOFF = 0.5


class MmadError(InspectorError):
    """An MMAD file or image that cannot be used."""


@dataclass(frozen=True)
class Question:
    """One multiple-choice question about one query image."""

    subset: str
    task: str
    image: str
    templates: tuple[str, ...]
    question: str
    options: dict[str, str]
    answer: str


@dataclass
class Outcome:
    """A question with the model's output and the letter read from it."""

    question: Question
    output: str
    chosen: str | None
    error: str = ""  # why the model gave no output

    @property
    def correct(self) -> bool:
        """Whether the chosen letter is the right one."""
        return self.chosen == self.question.answer


@dataclass
class MmadReport:
    """Scores per task and subset, the task averages and the overall average (percent)."""

    average: float
    tasks: dict[str, float]
    subsets: dict[str, dict[str, float]]
    questions: int
    unanswered: int
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "average": round(self.average, 2),
            "tasks": {k: round(v, 2) for k, v in self.tasks.items()},
            "subsets": {s: {k: round(v, 2) for k, v in t.items()} for s, t in self.subsets.items()},
            "questions": self.questions,
            "unanswered": self.unanswered,
            "errors": self.errors[:20],
        }


def load_questions(mmad_json: str | Path, limit: int | None = None) -> list[Question]:
    """The questions of an ``mmad.json`` file, in file order (``limit`` questions at most)."""
    try:
        records = json.loads(Path(mmad_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MmadError(f"{mmad_json}: cannot read the MMAD file ({exc})") from None
    if not isinstance(records, dict):
        raise MmadError(f"{mmad_json}: expected an object of image paths to records")
    questions = []
    for key, record in records.items():
        templates = next((record[k] for k in TEMPLATE_KEYS if record.get(k)), [])
        for turn in record.get("conversation", []):
            try:
                options = {str(k).strip(): str(v) for k, v in turn["Options"].items()}
                item = Question(
                    subset=key.split("/")[0],
                    task=str(turn.get("type", "question")),
                    image=record.get("image_path", key),
                    templates=tuple(templates),
                    question=str(turn["Question"]),
                    options=options,
                    answer=str(turn["Answer"]).strip(),
                )
            except (KeyError, AttributeError, TypeError):
                raise MmadError(f"{mmad_json}: record {key} has a malformed question") from None
            questions.append(item)
            if limit is not None and len(questions) >= limit:
                return questions
    return questions


def choose_option(text: str, options: Mapping[str, str]) -> str | None:
    """The option letter an output picks: parsed tag, then a bare letter, then fuzzy text.

    >>> choose_option("<think>..</think><answer>B</answer>", {"A": "Yes.", "B": "No."})
    'B'
    >>> choose_option("I think the answer is no", {"A": "Yes.", "B": "No."})
    'B'
    """
    parsed = parse_answer(text)
    if parsed.option in options:
        return parsed.option
    answer = parsed.answer or text
    letters = "".join(re.escape(k) for k in options if len(k) == 1)
    if letters:
        found = re.findall(rf"(?<![A-Za-z])([{letters}])(?![A-Za-z])", answer)
        if len(set(found)) == 1:
            return found[0]
    return _fuzzy(answer, options)


def _fuzzy(answer: str, options: Mapping[str, str]) -> str | None:
    words = answer.lower().strip(" .\n")
    best, best_score = None, FUZZY_CUTOFF
    for letter, option in options.items():
        target = option.lower().strip(" .")
        score = 1.0 if target and re.search(rf"\b{re.escape(target)}\b", words) else 0.0
        score = max(score, difflib.SequenceMatcher(None, words[-200:], target).ratio())
        if score > best_score:
            best, best_score = letter, score
    return best


def ask_all(
    questions: Sequence[Question],
    images_root: str | Path,
    backend: TextBackend,
    shots: int = 1,
    seed: int = 0,
    concurrency: int = 1,
    on_done: Progress | None = None,
) -> list[Outcome]:
    """Ask every question (one request each) with ``shots`` random normal templates."""
    if shots != 1:
        raise MmadError("only the 1-shot protocol is implemented (--shots 1)")
    rng = random.Random(seed)
    root = Path(images_root)
    bundles = []
    for q in questions:
        if not q.templates:
            raise MmadError(f"{q.image}: the record has no normal template image")
        template = rng.choice(q.templates)
        try:
            query, normal = load_image(root / q.image), load_image(root / template)
        except ImageError as exc:
            raise MmadError(f"MMAD image cannot be read: {exc}") from None
        bundle = build_mmad_messages(
            normal,
            query,
            q.question,
            q.options,
            max_pixels=backend.max_pixels,
        )
        bundles.append(with_data_urls(bundle) if backend.for_openai else bundle)
    outputs = backend.generate(bundles, concurrency, on_done)
    return [
        Outcome(q, "", None, str(o))
        if isinstance(o, GroundingError)
        else Outcome(q, o, choose_option(o, q.options))
        for q, o in zip(questions, outputs, strict=True)
    ]


def _is_anomalous_answer(question: Question) -> bool:
    return question.options.get(question.answer, "").strip().lower().startswith("yes")


def _accuracy(outcomes: Sequence[Outcome], task: str) -> float:
    if task != DISCRIMINATION:
        return 100.0 * sum(o.correct for o in outcomes) / len(outcomes)
    by_class: dict[bool, list[bool]] = defaultdict(list)
    for o in outcomes:
        by_class[_is_anomalous_answer(o.question)].append(o.correct)
    return 100.0 * sum(sum(v) / len(v) for v in by_class.values()) / len(by_class)


def score(outcomes: Sequence[Outcome], errors: Sequence[str] = ()) -> MmadReport:
    """Per-subset task accuracies, task means over subsets, and their mean."""
    groups: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[(o.question.subset, o.question.task)].append(o)
    subsets: dict[str, dict[str, float]] = defaultdict(dict)
    for (subset, task), items in sorted(groups.items()):
        subsets[subset][task] = _accuracy(items, task)
    per_task: dict[str, list[float]] = defaultdict(list)
    for tasks in subsets.values():
        for task, value in tasks.items():
            per_task[task].append(value)
    tasks = {t: sum(v) / len(v) for t, v in sorted(per_task.items())}
    average = sum(tasks.values()) / len(tasks) if tasks else 0.0
    unanswered = sum(o.chosen is None for o in outcomes)
    return MmadReport(average, tasks, dict(subsets), len(outcomes), unanswered, list(errors))


def evaluate_mmad(
    mmad_json: str | Path,
    images_root: str | Path,
    backend: TextBackend,
    *,
    shots: int = 1,
    limit: int | None = None,
    seed: int = 0,
    concurrency: int = 1,
    on_done: Progress | None = None,
) -> MmadReport:
    """Run the MMAD protocol with ``backend`` and score it."""
    questions = load_questions(mmad_json, limit)
    if not questions:
        raise MmadError(f"{mmad_json}: no questions found")
    outcomes = ask_all(questions, images_root, backend, shots, seed, concurrency, on_done)
    return score(outcomes, sorted({o.error for o in outcomes if o.error}))
