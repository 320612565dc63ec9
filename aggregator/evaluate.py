"""How well a topic's rules agree with labelled items: precision, recall, and the mistakes,
grouped by why they happened.

The format is the one of `relevance_dev.jsonl`: one JSON object per line with `id`, `feed`,
`title`, `summary` (and optionally `content`), and either `label` (1 relevant, 0 not) or
`relevant` (true or false).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aggregator.errors import ConfigError
from aggregator.match import LISTED, Matcher, TopicRule, Verdict
from aggregator.models import TermHit


@dataclass(frozen=True, slots=True)
class LabelledItem:
    id: str
    feed: str
    title: str
    summary: str
    relevant: bool
    content: str = ""

    @property
    def fields(self) -> dict[str, str]:
        return {"title": self.title, "summary": self.summary, "content": self.content}


@dataclass(frozen=True, slots=True)
class Mistake:
    """A misclassified item: what the rules predicted, and why (one line an operator acts on)."""

    item: LabelledItem
    predicted: bool
    why: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    misclassified: tuple[Mistake, ...]

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
                    summary=str(row.get("summary") or ""),
                    content=str(row.get("content") or ""),
                    relevant=_label(row),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                "expected a JSON object with title and label (0 or 1) or relevant "
                f"(true or false): {exc!r}",
                path=str(path),
                line=number,
            ) from None
    return items


def _label(row: dict[str, object]) -> bool:
    if "label" in row:
        label = row["label"]
        if label not in (0, 1) or isinstance(label, float):
            raise ValueError(f"label must be 0 or 1, not {label!r}")
        return bool(label)
    relevant = row["relevant"]
    if not isinstance(relevant, bool):
        raise ValueError(f"relevant must be true or false, not {relevant!r}")
    return relevant


def evaluate(matcher: Matcher, items: Sequence[LabelledItem], topic: TopicRule) -> Evaluation:
    """Compare what `matcher` says of `topic` for each item with its label."""
    counts = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    misclassified = []
    for item in items:
        matches = matcher.match(item.fields, feed=item.feed)
        found = next((match for match in matches if match.topic == topic.id), None)
        predicted = found is not None
        counts[(predicted, item.relevant)] += 1
        if found is not None and not item.relevant:
            kept = sorted({_kept_on(hit) for hit in found.hits})
            misclassified.append(Mistake(item, True, "kept on " + " + ".join(kept)))
        elif found is None and item.relevant:
            verdicts = matcher.explain(item.fields, feed=item.feed)
            misclassified.append(Mistake(item, False, missed_because(topic, verdicts)))
    return Evaluation(
        true_positives=counts[(True, True)],
        false_positives=counts[(True, False)],
        false_negatives=counts[(False, True)],
        true_negatives=counts[(False, False)],
        misclassified=tuple(misclassified),
    )


def _kept_on(hit: TermHit) -> str:
    if hit.field == "feed":
        return f"{hit.group} (every item of feed {hit.text!r})"
    return f"{hit.group} {hit.term!r} in the {hit.field}"


def missed_because(topic: TopicRule, verdicts: Sequence[Verdict]) -> str:
    """Why an item the topic should hold was left out: for each group the topic needs and
    the item did not give, the guard that dropped its terms (or that none was found)."""
    needed = [(group,) for group in topic.all] + ([topic.any] if topic.any else [])
    reasons = []
    for groups in needed:
        terms = [v for v in verdicts if not set(groups).isdisjoint(v.groups)]
        if any(verdict.counts for verdict in terms):
            continue
        name = " or ".join(groups)
        if not terms:
            reasons.append(f"no {name} term")
        for verdict in terms:
            reasons.append(f"{name} {verdict.term!r} ({verdict.field}): {verdict.why}")
    if reasons:
        return "; ".join(dict.fromkeys(reasons))
    listed = [repr(verdict.term) for verdict in verdicts if verdict.why == LISTED]
    if listed:
        return f"only listed among others: {', '.join(dict.fromkeys(listed))}"
    return "the terms stand in different sentences (and not in the title)"


def by_why(mistakes: Sequence[Mistake]) -> dict[str, list[Mistake]]:
    """The mistakes grouped by why they happened, the most frequent reason first."""
    groups: defaultdict[str, list[Mistake]] = defaultdict(list)
    for mistake in mistakes:
        kind = "false positive" if mistake.predicted else "false negative"
        groups[f"{kind}: {mistake.why}"].append(mistake)
    return dict(sorted(groups.items(), key=lambda pair: (-len(pair[1]), pair[0])))
