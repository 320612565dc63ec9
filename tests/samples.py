"""Texts shared by the dedupe tests: a press release wires syndicate, and a results template."""

PRESS_RELEASE = (
    "Kyverna Therapeutics today announced that the U.S. Food and Drug Administration granted "
    "Regenerative Medicine Advanced Therapy designation to KYV-101, its fully human CD19 CAR T "
    "cell therapy, for the treatment of progressive multiple sclerosis, based on early data."
)
TEMPLATE = (
    "Acme Bio reported financial results and business highlights, including progress of its "
    "CD19 CAR T programme in autoimmune disease and cash runway into the next decade."
)
