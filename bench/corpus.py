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
