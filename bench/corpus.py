"""Synthetic but realistic research-news items, reproducible from a seed.

Titles and summaries are assembled from the phrases this field really uses: on-topic CAR T in MS
news, its neighbours (CAR T in lupus or lymphoma, MS drugs), false friends (mass spectrometry,
"Ms.", carts) and general biomedical news, in roughly the mix a feed farm delivers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SUBJECTS_ON_TOPIC = [
    "Anti-CD19 CAR-T cells",
    "CAR T-cell therapy",
    "KYV-101",
    "Rese-cel (CABA-201)",
    "Chimeric antigen receptor T cells",
    "CD19-directed CAR\u2011T",
    "YTB323",
]
SUBJECTS_NEIGHBOURS = [
    "Ocrelizumab",
    "Tolebrutinib",
    "BCMA-directed CAR T cells",
    "Obecabtagene autoleucel",
    "CD19 CAR T",
    "Autologous stem cell transplant",
    "Vitamin D supplementation",
]
CONDITIONS = [
    "relapsing multiple sclerosis",
    "progressive MS",
    "SPMS",
    "lupus nephritis",
    "myasthenia gravis",
    "diffuse large B-cell lymphoma",
    "multiple myeloma",
    "systemic sclerosis",
    "NMOSD",
    "amyotrophic lateral sclerosis",
]
FALSE_FRIENDS = [
    "LC-MS profiling of",
    "Tandem MS/MS assay for",
    "Ms. Rivera's story about",
    "Supermarket cart study on",
    "MSK experience with",
    "Kinetics measured every 2 ms in",
]
VERBS = [
    "reduces relapses in",
    "shows durable remission in",
    "enters phase 2 for",
    "is well tolerated in",
    "receives FDA RMAT designation for",
    "fails to slow",
]
FILLER = (
    "The open-label single-arm study enrolled patients at five sites across Europe and the "
    "United States. Investigators reported safety, pharmacokinetics and B-cell depletion over "
    "twelve months, with cytokine release syndrome in a minority of participants. Further "
    "results will be presented at the annual meeting of the society later this year."
)


@dataclass(frozen=True, slots=True)
class Item:
    title: str
    summary: str


def make_items(count: int, seed: int = 2026) -> list[Item]:
    """`count` items: about 15% on topic, 45% neighbours, 10% false friends, 30% general news."""
    rng = random.Random(seed)
    items = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.15:
            subject = rng.choice(SUBJECTS_ON_TOPIC)
            condition = rng.choice(CONDITIONS[:3])
        elif roll < 0.60:
            subject = rng.choice(SUBJECTS_NEIGHBOURS)
            condition = rng.choice(CONDITIONS)
        elif roll < 0.70:
            subject = f"{rng.choice(FALSE_FRIENDS)} {rng.choice(SUBJECTS_ON_TOPIC)}"
            condition = rng.choice(CONDITIONS[3:])
        else:
            subject = rng.choice(["Sleep quality", "Gut microbiome", "Exercise", "Air pollution"])
            condition = rng.choice(["older adults", "heart failure", "asthma", "depression"])
        title = f"{subject} {rng.choice(VERBS)} {condition}"
        words = FILLER.split()
        start = rng.randrange(0, len(words) - 30)
        summary = f"{condition[0].upper()}{condition[1:]}: " + " ".join(words[start : start + 30])
        items.append(Item(title, summary))
    return items


@dataclass(frozen=True, slots=True)
class FeedItem:
    feed: str
    link: str
    guid: str
    title: str
    summary: str
    story: int  # the story it was generated for: the answer dedupe should find


_VOCABULARY = (
    "patients trial cells therapy immune disease study results dose safety response clinical "
    "neurology lesions relapse progression antibody treatment cohort data phase open label "
    "efficacy follow up months years centre network registry enrolment outcome measure brain "
    "spinal cord myelin inflammation lymphocyte depletion infusion conditioning remission "
    "biomarker imaging disability score walking fatigue cognition quality life research team "
    "university hospital society charity funding grant approval agency regulator label review"
).split()


def make_feed_items(count: int, duplicates: float = 0.2, seed: int = 7) -> list[FeedItem]:
    """`count` items of which about `duplicates` repeat an earlier story, in four ways:
    a syndicated copy (same text, reworded title, another site), the same page with tracking
    parameters, the same paper by DOI, and the same trial record by NCT number.

    Text mixes common words with a long tail of rarer ones (20,000 of them), as real text
    does; a small closed vocabulary would make unrelated items look alike."""
    rng = random.Random(seed)
    items: list[FeedItem] = []
    originals: list[FeedItem] = []
    for n in range(count):
        if originals and rng.random() < duplicates:
            items.append(_duplicate(rng, rng.choice(originals), n))
            continue
        words = [
            rng.choice(_VOCABULARY) if rng.random() < 0.6 else f"term{rng.randrange(20_000)}"
            for _ in range(45)
        ]
        kind = rng.random()
        if kind < 0.2:
            link, guid = f"https://clinicaltrials.gov/study/NCT{10_000_000 + n:08d}", f"nct-{n}"
        elif kind < 0.4:
            link, guid = f"https://doi.org/10.1000/bench.{n}", f"doi-{n}"
        else:
            link, guid = f"https://site{n % 97}.example/news/{n}", f"news-{n}"
        original = FeedItem(
            feed=f"feed-{n % 200}",
            link=link,
            guid=guid,
            title=" ".join(words[:9]).capitalize(),
            summary=" ".join(words[9:]),
            story=n,
        )
        originals.append(original)
        items.append(original)
    return items


def _duplicate(rng: random.Random, original: FeedItem, n: int) -> FeedItem:
    feed = f"feed-{(int(original.feed[5:]) + 1 + rng.randrange(198)) % 200}"
    kind = rng.random()
    if kind < 0.4:  # syndicated: same text, another site, the title reworded
        words = original.title.split()
        return FeedItem(
            feed,
            f"https://wire{n % 13}.example/{n}",
            f"dup-{n}",
            " ".join([*words[1:], words[0]]),
            original.summary,
            original.story,
        )
    if kind < 0.7:  # the same page, with tracking parameters
        return FeedItem(
            feed,
            f"{original.link}?utm_source=feed&utm_medium={n}",
            f"dup-{n}",
            f"{original.title} (via {feed})",
            "",
            original.story,
        )
    if original.link.startswith("https://doi.org/"):  # the same paper, through its publisher
        doi = original.link.removeprefix("https://doi.org/")
        return FeedItem(
            feed,
            f"https://journal.example/doi/{doi}",
            f"dup-{n}",
            f"Paper: {original.title}",
            "",
            original.story,
        )
    return FeedItem(
        feed,
        f"{original.link}#details",
        f"dup-{n}",
        original.title,
        original.summary,
        original.story,
    )
