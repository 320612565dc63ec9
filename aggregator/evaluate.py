"""How well a topic's rules agree with labelled items: precision, recall, and the mistakes.

The format is the one of `relevance_dev.jsonl`: one JSON object per line with `id`, `feed`,
`title`, `summary` and `label` (1 relevant, 0 not).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aggregator.errors import ConfigError
from aggregator.match import Matcher


@dataclass(frozen=True, slots=True)
class LabelledItem:
    id: str
    feed: str
    title: str
    summary: str
    relevant: bool


@dataclass(frozen=True, slots=True)
class Evaluation:
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    misclassified: tuple[tuple[LabelledItem, bool], ...]  # (item, what the rules predicted)

    @property
    def total(self) -> int:
        return len(self.misclassified) + self.true_positives + self.true_negatives

    @property
    def relevant(self) -> int:
        return self.true_positives + self.false_negatives

    @property
    def precision(self) -> float | None:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.relevant if self.relevant else None


def read_labelled(path: Path) -> list[LabelledItem]:
    """Read labelled items; a malformed line is a ConfigError naming the file and line."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(
                LabelledItem(
                    id=str(row.get("id", number)),
                    feed=str(row.get("feed", "")),
                    title=str(row["title"]),
                    summary=str(row.get("summary", "")),
                    relevant=bool(int(row["label"])),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"expected a JSON object with title and label (0 or 1): {exc!r}",
                path=str(path),
                line=number,
            ) from None
    return items


def evaluate(matcher: Matcher, items: Sequence[LabelledItem], topic: str) -> Evaluation:
    """Compare what `matcher` says of `topic` for each item with its label."""
    counts = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    misclassified = []
    for item in items:
        matches = matcher.match({"title": item.title, "summary": item.summary}, feed=item.feed)
        predicted = any(match.topic == topic for match in matches)
        counts[(predicted, item.relevant)] += 1
        if predicted != item.relevant:
            misclassified.append((item, predicted))
    return Evaluation(
        true_positives=counts[(True, True)],
        false_positives=counts[(True, False)],
        false_negatives=counts[(False, True)],
        true_negatives=counts[(False, False)],
        misclassified=tuple(misclassified),
    )
