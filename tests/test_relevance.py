"""Relevance on real-world text: one row per case the matching rule names (product.md, "Topics
and matching"), on the shipped vocabulary, and the labelled sets (tests/data/relevance_dev*.jsonl,
copies of the project's shared/data files, so the suite runs on a clone alone). Each row is a
sentence as sources write it; the rules it exercises are rules of the language.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator import mentions
from aggregator.config import load_settings
from aggregator.evaluate import by_why, evaluate, read_labelled
from aggregator.match import COUNTS, FeedContext, TopicRule, build_matcher, repeated_sentences

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
SETTINGS = load_settings(ROOT / "config.toml", environ={})
MATCHER = build_matcher(SETTINGS, feeds={"society": FeedContext(assume=("ms",))})
CAR_T_MS = TopicRule("car-t-ms", all=("ms",), any=("car_t", "cd19"))


def about(title: str, summary: str = "", feed: str = "news") -> bool:
    matches = MATCHER.match({"title": title, "summary": summary}, feed=feed)
    return any(match.topic == "car-t-ms" for match in matches)


CASES = [
    # The readers' languages, each with its own words for MS and CAR T
    ("de-multiple", "Multiple Sklerose: Erste Patientin erhält CAR-T-Zellen", "", True),
    ("de-multipler", "Patientin mit Multipler Sklerose erhält CAR-T-Zellen", "", True),
    ("de-multiplen", "Therapie der Multiplen Sklerose mit CAR-T-Zellen in Erlangen", "", True),
    ("fr-sclerose", "Cellules CAR-T et sclérose en plaques : premiers résultats", "", True),
    ("fr-sep", "Un deuxième patient atteint de SEP traité par cellules CAR-T", "", True),
    ("es-esclerosis", "Células CAR-T para la esclerosis múltiple: primer ensayo", "", True),
    ("es-em", "Tratamiento con células T CAR en pacientes con EM progresiva", "", True),
    ("it-sclerosi", "Cellule CAR-T nella sclerosi multipla: il primo paziente", "", True),
    ("it-sm", "Primo paziente con SM trattato con cellule CAR-T a Milano", "", True),
    ("nl", "Eerste Belgische MS-patiënt behandeld met CAR-T-celtherapie", "", True),
    ("pt", "Esclerose múltipla: primeiros doentes tratados com células CAR-T", "", True),
    ("fr-sep-short", "La SEP progressive traitée par CAR-T anti-CD19", "", True),
    ("de-headline", "Zelltherapie gegen Multiple Sklerose: Was CAR-T leisten kann", "", True),
    # Few function words: the endings of the words that carry the news tell the language
    (
        "es-terse",
        "Células CAR-T en EM: resultados iniciales",
        "Investigadores de EE. UU. trataron a dos pacientes con EM progresiva con células CAR-T.",
        True,
    ),
    ("pt-terse", "Investigação sobre EM: células CAR-T mostram resultados", "", True),
    # Written without accents, as some sources do
    ("es-no-accents", "CAR-T para la esclerosis multiple: primer paciente", "", True),
    ("pt-no-accents", "Celulas CAR-T na esclerose multipla: primeiros doentes", "", True),
    ("en-names", "Aaron and Sharon: CAR T in lupus", "EM of the cells was done by Aaron.", False),
    ("it-sm-short", "SM e CAR-T: perché i neurologi sono ancora cauti", "", True),
    ("pt-em-short", "CAR-T na EM: quem pode participar nos ensaios", "", True),
    ("car-treg", "CAR-Treg cells for MS enter a first-in-human trial", "", True),
    ("fr-sep-spaced-colon", "SEP : un essai CAR-T ouvre à Marseille", "", True),
    ("es-em-one-word", "Pacientes con EM reciben células CAR-T en Madrid", "", True),
    ("es-em-datos", "CAR-T para la EM progresiva: primeros datos", "", True),
    # "X and Y, ..." in a title: the pair it is about, not a list of others
    ("it-pair", "CAR-T e sclerosi multipla, lo studio italiano", "", True),
    ("fr-pair", "CAR-T et sclérose en plaques, où en est-on", "", True),
    ("en-pair", "CD19 CAR T and MS, a review of the first cases", "", True),
    ("em-in-english", "CAR T cells imaged by EM in lymphoma biopsies", "", False),
    ("sep-in-english", "CAR T manufacturing: SEP 2026 update for lymphoma", "", False),
    # MS as patients and subtypes write it, and products by their new names
    ("pwms", "CAR-T in pwMS: what the first cases show", "", True),
    (
        "rms-defined",
        "Trial update",
        "People with relapsing MS (RMS) receive CD19 CAR T. The RMS cohort is full.",
        True,
    ),
    ("rms-bare", "CAR T safety in RMS", "", False),
    (
        "pms-defined",
        "Trial update",
        "Progressive MS (PMS) patients get CD19 CAR T. PMS enrolment has begun.",
        True,
    ),
    ("car-t19", "CAR-T19 therapy for relapsing MS", "", True),
    ("azer-cel", "Azer-cel dosed in first patient with multiple sclerosis", "", True),
    ("azercabtagene", "Azercabtagene zapreleucel in progressive MS", "", True),
    # Text as feeds send it: soft hyphens, list items
    ("soft-hyphen", "Multi\u00adple scle\u00adrosis and CAR-T cells", "", True),
    ("shy-entity", "Multi&shy;ple sclerosis and CAR-T cells", "", True),
    (
        "list-items",
        "Round-up",
        "<ul><li>CAR-T cells in three people with progressive MS</li>"
        "<li>Vitamin D and fatigue</li></ul>",
        True,
    ),
    # Where the terms stand: the item must report on CAR T for MS
    (
        "same-sentence",
        "Why neurologists are excited",
        "Early results in people with multiple sclerosis show B cells vanish after CAR T infusion.",
        True,
    ),
    (
        "venue-footer",
        "CD19 CAR T in myasthenia gravis",
        "Multiple Sclerosis News Today is a publisher of news about myasthenia and other diseases.",
        False,
    ),
    (
        "venue-meeting",
        "CD19 CAR T data in myasthenia gravis",
        "Presented at the annual meeting of the Consortium of Multiple Sclerosis Centers.",
        False,
    ),
    (
        "venue-journal-name",
        "CD19 CAR T in myositis",
        "Writing in Multiple Sclerosis Journal, the authors describe four patients.",
        False,
    ),
    (
        "venue-a-literature-record",
        "CD19 CAR T cells in refractory myasthenia gravis: a case series",
        "Published in Multiple sclerosis and related disorders · Lee K et al. · PMID 41000001",
        False,
    ),
    (
        "venue-the-journal",
        "CD19 CAR T in myositis",
        "The case appeared in the journal Multiple Sclerosis.",
        False,
    ),
    ("society-name", "CD19 CAR T in myositis", "Lee is a fellow of the MS Society.", False),
    ("name-and-disease", "MS Society: CAR T trial opens for people with MS", "", True),
    # Other uses named after "additional studies", "further trials", "other indications"
    (
        "additional-studies-in-others",
        "Novartis presents YTB323 data at ACR Convergence",
        "Rapcabtagene autoleucel showed durable responses in lupus nephritis. "
        "Additional studies are under way in myositis and MS.",
        False,
    ),
    (
        "weitere-studien",
        "CAR-T bei Lupus",
        "Die Remission hielt an. Weitere Studien bei Myositis und MS laufen.",
        False,
    ),
    # A name whose head word ends it, in a record's fields, where every word is capitalised
    (
        "sponsor-name-in-a-record",
        "CAR T update",
        "Condition: Systemic Lupus Erythematosus; Intervention: CD19 CAR T; "
        "Sponsor: MS Research Foundation",
        False,
    ),
    ("funder-line", "CAR T in lupus", "Funding: National Multiple Sclerosis Society.", False),
    ("headline-news-about-ms", "CAR T In MS News Roundup", "", True),
    (
        "navigation",
        "CAR T approved for myeloma in Japan",
        "Related stories: CAR T cells tested in MS patients | Living with MS",
        False,
    ),
    (
        "navigation-heading",
        "CAR T approved for myeloma in Japan",
        "<p>The approval covers adults.</p><h3>Related posts</h3>"
        "<ul><li>CAR T cells tested in MS</li><li>Living with lupus</li></ul>",
        False,
    ),
    (
        "navigation-heading-bold",
        "CAR T approved for myeloma in Japan",
        "<p>The approval covers adults.</p><p><strong>You may also like</strong></p>"
        "<ul><li><a href='/a'>CAR T cells tested in MS</a></li></ul>",
        False,
    ),
    (
        "navigation-heading-after-the-story",
        "Trial news",
        "<p>CD19 CAR T cells were given to two people with MS.</p><h3>Related</h3>"
        "<ul><li>Lupus news</li></ul>",
        True,
    ),
    (
        "navigation-menu",
        "CAR T approved for myeloma in Japan",
        "<ul><li>Home</li><li>MS research</li><li>Contact</li></ul><p>The approval covers "
        "adults.</p>",
        False,
    ),
    (
        "navigation-menu-above-the-story",
        "Trial update",
        "<ul><li>Home</li><li>News</li></ul><p>CD19 CAR T cells were given to two people with "
        "MS.</p>",
        True,
    ),
    (
        "navigation-breadcrumb",
        "CAR T approved for lymphoma in Japan",
        "Home | News | MS research | Contact. The approval covers adults.",
        False,
    ),
    (
        "navigation-breadcrumb-before-the-story",
        "Trial update",
        "Startseite > Forschung > CD19-CAR-T-Zellen bei MS: zwei Patienten erfolgreich behandelt",
        True,
    ),
    (
        "navigation-most-read",
        "CAR T approved for myeloma in Japan",
        "The approval covers adults after two lines. Most read: CAR T cells tested in MS",
        False,
    ),
    (
        "navigation-de",
        "CAR-T-Zellen beim Lymphom zugelassen",
        "Die Zulassung gilt für Erwachsene. "
        "Das könnte Sie auch interessieren: CAR-T-Zellen bei Multipler Sklerose",
        False,
    ),
    (
        "navigation-fr",
        "Cellules CAR-T : feu vert pour le myélome",
        "L'autorisation concerne les adultes. Sur le même sujet : CAR-T et sclérose en plaques",
        False,
    ),
    (
        "about-boilerplate",
        "CAR T for lupus nephritis: two-year data",
        "Renal responses held. "
        "About Kyverna: Kyverna develops KYV-101 for lupus, myasthenia and multiple sclerosis.",
        False,
    ),
    (
        "about-heading",
        "Kyverna reports lupus nephritis data",
        "<p>Responses in four of six.</p><h3>About Kyverna Therapeutics, Inc.</h3>"
        "<p>Kyverna is developing KYV-101 for multiple sclerosis and lupus.</p>",
        False,
    ),
    (
        "about-run-on",
        "Kyverna reports lupus nephritis data",
        "Responses in four of six. About Kyverna Therapeutics Kyverna Therapeutics, Inc. "
        "(Nasdaq: KYTX) is developing KYV-101 for MS.",
        False,
    ),
    (
        "about-a-number",
        "Trial news",
        "About 30 patients with MS received CD19 CAR T cells.",
        True,
    ),
    (
        "exclusion",
        "CAR T trial in lupus",
        "Main exclusion criteria: pregnancy, active infection or multiple sclerosis.",
        False,
    ),
    (
        "excluded-after",
        "CAR T trial in lupus opens",
        "Patients with multiple sclerosis or myositis were excluded.",
        False,
    ),
    ("excluded-after-title", "CAR T for lymphoma: people with MS were excluded", "", False),
    (
        "cannot-take-part",
        "CD19 CAR T trial in lupus opens",
        "People with MS cannot take part.",
        False,
    ),
    (
        "cannot-take-part-de",
        "CD19-CAR-T-Studie bei Lupus",
        "Menschen mit MS können nicht teilnehmen.",
        False,
    ),
    (
        "cannot-take-part-es",
        "Ensayo CAR-T en lupus",
        "No pueden participar personas con esclerosis múltiple.",
        False,
    ),
    (
        "cannot-take-part-elsewhere",
        "Trial news",
        "CD19 CAR T cells were given to people with MS who cannot take part in other trials.",
        True,
    ),
    (
        "excluded-after-de",
        "CAR-T-Studie bei Lupus",
        "Patienten mit Multipler Sklerose wurden ausgeschlossen.",
        False,
    ),
    (
        "not-eligible",
        "CAR T approved for lupus",
        "Patients with MS, NMOSD or MOGAD are not eligible.",
        False,
    ),
    ("criterion-after", "CAR T in lupus", "Multiple sclerosis was an exclusion criterion.", False),
    (
        "criteria-over-semicolons",
        "CAR T trial in lupus",
        "Exclusion criteria: prior CAR T therapy; a history of MS; active infection.",
        False,
    ),
    (
        "criteria-over-a-relative-clause",
        "CAR T trial in lupus",
        "Exclusion criteria: any condition which affects the CNS, such as multiple sclerosis.",
        False,
    ),
    (
        "excluded-list-after-verb",
        "CAR T trial in lupus",
        "The study excluded patients with diabetes, heart failure, and multiple sclerosis.",
        False,
    ),
    # What a study left out, said as such
    ("not-studied", "CD19 CAR T cells for lupus", "MS was not studied.", False),
    (
        "not-included",
        "CD19 CAR T cells for lupus",
        "Patients with MS were not included in the trial.",
        False,
    ),
    (
        "did-not-include",
        "CD19 CAR T cells for lupus",
        "The trial did not include people with MS.",
        False,
    ),
    (
        "not-studied-de",
        "Studie zu CAR-T",
        "In der Studie wurde die MS nicht untersucht; sie betraf CD19-CAR-T-Zellen bei Lupus.",
        False,
    ),
    (
        "not-studied-es",
        "Ensayo CAR-T",
        "La EM no se estudió en este ensayo de células CAR-T CD19 en lupus.",
        False,
    ),
    (
        "not-tested-before-the-term",
        "CD19 CAR T",
        "Tolerability was not tested in people with MS, who received CD19 CAR T cells.",
        True,
    ),
    (
        "not-studied-another-subject",
        "Studie",
        "CD19-CAR-T-Zellen bei MS: Die Langzeitsicherheit wurde nicht untersucht.",
        True,
    ),
    (
        "not-studied-said-of-a-run-of-terms",
        "Ocrelizumab in relapsing MS: five-year data",
        "CD19 CAR T cells were not studied.",
        False,
    ),
    (
        "not-part-of",
        "Ocrelizumab in relapsing MS: five-year data",
        "CD19 CAR T was not part of the study.",
        False,
    ),
    (
        "not-part-of-de",
        "Ocrelizumab bei schubförmiger MS: Fünfjahresdaten",
        "CAR-T-Zellen waren nicht Teil der Studie.",
        False,
    ),
    (
        "not-part-of-another-subject",
        "KYV-101 CAR T in progressive MS",
        "Two patients were dosed; placebo was not part of the design.",
        True,
    ),
    # An exclusion speaks only for its own clause
    (
        "excluded-then-treated",
        "CD19 CAR T in autoimmune disease",
        "People with lupus were excluded, and the cells were given to ten people with MS.",
        True,
    ),
    (
        "cannot-take-part-but",
        "CD19 CAR T in autoimmune disease",
        "Those with myasthenia gravis cannot take part, but people with MS can join the trial.",
        True,
    ),
    (
        "excluded-then-treated-fr",
        "Nouvelle étude CAR-T",
        "Les patients atteints de lupus étaient exclus, et dix patients atteints de sclérose en "
        "plaques ont reçu des cellules CAR-T CD19.",
        True,
    ),
    (
        "treated-then-excluded",
        "CAR T trial in lupus",
        "Ten people with lupus were treated, and patients with multiple sclerosis were excluded.",
        False,
    ),
    ("excluding-subject", "CD19 CAR T trials in MS excluded older patients", "", True),
    (
        "once-considered",
        "Anti-CD19 CAR-T cells for NMOSD",
        "NMOSD, once considered a form of MS, responded to CD19 CAR T cells in 5 patients.",
        False,
    ),
    (
        "once-considered-de",
        "CAR-T bei NMOSD",
        "Die NMOSD galt früher als eine Form der MS; fünf Patienten erhielten CD19-CAR-T-Zellen.",
        False,
    ),
    (
        "once-considered-fr",
        "CAR-T dans la NMOSD",
        "La NMOSD, autrefois considérée comme une forme de SEP, a répondu aux cellules CAR-T.",
        False,
    ),
    (
        "once-thought-of-ms-itself",
        "CD19 CAR T in MS",
        "MS, once thought to be a T-cell disease, responds to B-cell depletion; two patients "
        "received CD19 CAR T cells.",
        True,
    ),
    (
        "contrast",
        "CD19 CAR T in myasthenia gravis",
        "MG is an antibody disease, unlike multiple sclerosis.",
        False,
    ),
    (
        "contrast-in-contrast-to",
        "CAR T for myositis",
        "In contrast to multiple sclerosis, myositis responds within weeks.",
        False,
    ),
    (
        "likeness",
        "CD19 CAR T in MOGAD: a case report",
        "MOGAD, which resembles MS, went into remission.",
        False,
    ),
    (
        "likeness-nl",
        "CD19 CAR T bij NMOSD",
        "Net als MS is NMOSD een auto-immuunziekte; alle patiënten bleven vrij van aanvallen.",
        False,
    ),
    (
        "likeness-of-something-else",
        "Trial news",
        "CD19 CAR T cells, similar to those used in lymphoma, were given to two people with MS.",
        True,
    ),
    (
        "speculation",
        "CAR T for lupus: what next",
        "In the future, multiple sclerosis might also be a target, researchers say.",
        False,
    ),
    (
        "fr-could-also",
        "CAR-T dans le lupus",
        "La thérapie pourrait aussi aider dans la sclérose en plaques.",
        False,
    ),
    ("de-etwa", "Erste Daten: CD19-CAR-T bei etwa 30 MS-Patienten", "", True),
    (
        "de-could-result",
        "Erlangen: zwei Patienten behandelt",
        "CAR-T-Zellen könnten die Multiple Sklerose stoppen, zeigen die Daten der beiden.",
        True,
    ),
    (
        "contrast-with-another-term",
        "Trial news",
        "Unlike ocrelizumab, CD19 CAR T cells reach the CNS in MS.",
        True,
    ),
    (
        "rather-than-another-term",
        "Trial news",
        "Doctors chose CD19 CAR T rather than HSCT for MS patients with active disease.",
        True,
    ),
    (
        "example-of-a-kind",
        "CAR T in lupus",
        "Autoimmune diseases such as multiple sclerosis are next, experts say.",
        False,
    ),
    (
        "example-of-a-therapy",
        "Trial news",
        "Cell therapies such as KYV-101 are now being tested in progressive MS.",
        True,
    ),
    (
        "speculation-open-question",
        "CAR T in lupus",
        "Whether the approach works in multiple sclerosis remains to be seen.",
        False,
    ),
    ("speculation-future-studies", "CAR T in lupus", "Future studies may include MS.", False),
    (
        "speculation-eventually",
        "CD19 CAR T in myositis",
        "The team thinks the cells may eventually help people with multiple sclerosis too.",
        False,
    ),
    (
        "eventually-as-it-happened",
        "Trial news",
        "After two failed therapies, she eventually received CD19 CAR T cells for her MS.",
        True,
    ),
    (
        "speculation-coming-years-es",
        "Células CAR-T en el lupus",
        "En los próximos años podrían probarse en la esclerosis múltiple.",
        False,
    ),
    (
        "speculation-open-de",
        "CAR-T-Zellen bei Myasthenie",
        "Ob sie auch bei Multipler Sklerose wirken, ist noch offen.",
        False,
    ),
    # A hedge in another clause speaks of something else
    (
        "hedge-in-another-clause",
        "New hope from cell therapy",
        "Doctors treated three people with progressive MS with CD19 CAR T cells; whether the "
        "benefit lasts remains unclear.",
        True,
    ),
    (
        "hedge-in-a-which-clause",
        "Belgian hospital treats first patient with cell therapy",
        "A woman with relapsing MS received CAR T cells, which could eventually replace "
        "lifelong treatment, her doctors say.",
        True,
    ),
    (
        "hedge-in-another-clause-de",
        "Erlangen: neue Zelltherapie",
        "Zwei Patienten mit Multipler Sklerose erhielten CAR-T-Zellen; ob die Wirkung anhält, "
        "ist noch offen.",
        True,
    ),
    (
        "hedge-after-a-semicolon-fr",
        "Premiers résultats encourageants",
        "Trois patients atteints de sclérose en plaques ont reçu des cellules CAR-T ; il reste à "
        "démontrer que le bénéfice se maintient.",
        True,
    ),
    (
        "hope-for-something-else",
        "Kyverna quarterly update",
        "KYV-101 completed enrolment in its phase 2 trial in progressive MS and could eventually "
        "become the first CAR T approved for the disease.",
        True,
    ),
    (
        "a-time-to-come-is-no-hedge",
        "Cell therapy update",
        "In the coming years, CAR T cells will be tested in 200 people with MS across Europe.",
        True,
    ),
    (
        "another-use-alone-may-be-the-news",
        "Kyverna update",
        "KYV-101 is also being tested in progressive MS, with data due next year.",
        True,
    ),
    (
        "another-use",
        "Obe-cel in lupus nephritis: first results",
        "Obe-cel is also being evaluated in systemic sclerosis and MS.",
        False,
    ),
    (
        "another-use-fr",
        "Rese-cel dans la myosite",
        "Le produit est également évalué dans le lupus et la sclérose en plaques.",
        False,
    ),
    ("another-use-in-the-title", "KYV-101 is also being tested in MS", "", True),
    (
        "another-use-in-trials",
        "KYV-101: first patient with stiff person syndrome treated",
        "Kyverna's CAR T is also in trials for MS and myasthenia gravis.",
        False,
    ),
    (
        "another-use-in-trials-alone",
        "KYV-101 for stiff person syndrome",
        "KYV-101 is also in trials for progressive MS.",
        True,
    ),
    (
        "excluded-imperfect-fr",
        "Essai CAR-T dans le lupus",
        "Les personnes atteintes de sclérose en plaques étaient exclues.",
        False,
    ),
    (
        "excluded-quedaron-es",
        "Ensayo CAR-T en lupus",
        "Las personas con esclerosis múltiple quedaron excluidas del estudio.",
        False,
    ),
    ("credit-source", "CD19 CAR T for lupus", "Source: Multiple Sclerosis News Today", False),
    (
        "credit-wordpress",
        "CAR T cells for lupus: three-year data",
        "All patients stayed in remission. "
        "The post CAR T cells for lupus: three-year data appeared first on MS-UK.",
        False,
    ),
    (
        "credit-wordpress-de",
        "CAR-T-Zellen bei Lupus",
        "Alle blieben in Remission. "
        "Der Beitrag CAR-T-Zellen bei Lupus erschien zuerst auf MS-Netz.",
        False,
    ),
    (
        "credit-continue-reading",
        "CAR T cells for lupus",
        "All patients stayed in remission. Continue reading at the MS Hub.",
        False,
    ),
    (
        "originally-published-in-prose",
        "Trial news",
        "The study, originally published in Neurology, gave CD19 CAR T cells to two people "
        "with MS.",
        True,
    ),
    (
        "credit-originally-published",
        "CAR T cells for lupus",
        "All patients stayed in remission. This article was originally published on MS-UK.",
        False,
    ),
    (
        "credit-under-an-item-on-topic",
        "Trial news",
        "CD19 CAR T cells were given to two people with MS. "
        "The post Trial news appeared first on Example Health.",
        True,
    ),
    (
        "credit-first",
        "Trial news",
        "Source: Reuters. CD19 CAR T cells were given to the first patient with MS.",
        True,
    ),
    (
        "credit-copyright",
        "CD19 CAR T for lupus",
        "Renal responses held. Copyright 2026 MS Trust. All rights reserved.",
        False,
    ),
    (
        "round-up",
        "Neurology digest",
        "CAR T cells cleared lupus in a fifth patient. In MS, a new BTK inhibitor trial began.",
        False,
    ),
    (
        "indication-list",
        "CAR T in lupus, myositis, scleroderma and multiple sclerosis: "
        "a review of autoimmune targets",
        "",
        True,
    ),
    (
        "clause-not-list",
        "Case series",
        "CD19 CAR T cells were given to four people with MS, as reported in Neurology.",
        True,
    ),
    (
        "record-fields",
        "Study NCT06384976",
        "Condition: Multiple Sclerosis; Intervention: KYV-101 (CD19 CAR T)",
        True,
    ),
    (
        "listed-in-body",
        "Kyverna raises funds",
        "The company develops CAR T cells for lupus, myositis, scleroderma and multiple sclerosis.",
        False,
    ),
    # Acronyms the text defines as something else
    (
        "mass-spectrometry",
        "Proteomics of CAR T products",
        "We used mass spectrometry (MS). MS data show 40 proteins.",
        False,
    ),
    (
        "median-survival",
        "Median survival (MS) after CD19 CAR T in lymphoma",
        "MS was 20 months.",
        False,
    ),
    (
        "cart-tree",
        "Classification and regression tree (CART) predicts MS relapse",
        "CART models used MRI data.",
        False,
    ),
    ("rhabdomyosarcoma", "CAR T for rhabdomyosarcoma (RMS)", "RMS is a childhood cancer.", False),
    ("post-marketing", "Post-marketing surveillance (PMS) of CAR T", "PMS data from 2025.", False),
    ("aside-not-definition", "CAR T in MS (preliminary): first data", "", True),
    # A clause mark parts phrases ("MS. MS" is not MS/MS); an abbreviation's stop, or one in
    # parentheses, ends no sentence
    ("ms-sentence-then-ms", "CD19 CAR T in MS. MS patients responded", "", True),
    ("ms-semicolon-ms", "KYV-101 CAR T in MS; MS Society welcomes the trial", "", True),
    ("ms-comma-based", "CAR T for MS, based on lupus results", "", True),
    ("title-bar-then-site", "CAR T trial opens for people with MS | MS News Today", "", True),
    ("title-dash-then-site", "CAR T trial opens for people with MS - MS Society", "", True),
    ("de-hyphen-ellipsis", "MS- und Lupus-Patienten erhalten CAR-T-Zellen", "", True),
    (
        "de-ms-sentence-then-ms",
        "CAR-T-Zellen gegen MS. MS-Betroffene hoffen auf Erlangen",
        "",
        True,
    ),
    ("fr-question-then-sep", "Les CAR-T contre la SEP ? SEP et lupus, même combat", "", True),
    (
        "ms-ms-still-vetoed",
        "CD19 CAR T cells quantified by LC-MS/MS",
        "MS/MS spectra were acquired.",
        False,
    ),
    ("ms-based-still-vetoed", "MS-based proteomics of CD19 CAR T cells", "", False),
    ("eg-example", "CAR T in lupus", "Other autoimmune diseases, e.g. MS, might follow.", False),
    (
        "de-zb-example",
        "CAR-T-Zellen bei Lupus",
        "Weitere Autoimmunerkrankungen, z. B. MS, könnten folgen.",
        False,
    ),
    (
        "ie-not-a-sentence",
        "Lupus trial of CD19 CAR T",
        "Neurological diseases, i.e. Multiple sclerosis, were excluded.",
        False,
    ),
    (
        "citation-aside",
        "What next for B cells?",
        "CD19 CAR T cells put lupus into remission (Mackensen et al., Nat. Med. 2022) and are now "
        "being given to people with MS.",
        True,
    ),
    (
        "citation-aside-then-ms",
        "Reading list",
        "CD19 CAR T cells put lupus into remission (Mackensen et al., Nat. Med. 2022). "
        "Ocrelizumab remains the standard in MS.",
        False,
    ),
    (
        "us-fda",
        "U.S. FDA clears KYV-101 trial",
        "The U.S. Food and Drug Administration cleared the trial in MS.",
        True,
    ),
    # An organisation's name in the readers' other languages
    (
        "de-society-name",
        "CAR-T-Zellen bei Lupus: neue Daten",
        "Die Deutsche Multiple Sklerose Gesellschaft lädt zum Patiententag ein.",
        False,
    ),
    (
        "it-society-name",
        "Lupus e CAR-T",
        "L'Associazione Italiana Sclerosi Multipla ha pubblicato il bilancio annuale.",
        False,
    ),
    (
        "nl-foundation-name",
        "Lupus: CAR-T-therapie werkt",
        "Stichting MS Research organiseert een symposium over CAR-T bij lupus.",
        False,
    ),
    (
        "fr-journal-name",
        "Lupus : les CAR-T confirment",
        "Publié dans la revue Multiple Sclerosis Journal.",
        False,
    ),
    (
        "de-society-beside-ms",
        "CAR-T-Zellen gegen MS",
        "Die DMSG begrüßt die Studie in Erlangen.",
        True,
    ),
    (
        "it-patients-with-ms",
        "Lupus e CAR-T",
        "L'ospedale ha trattato con CAR-T due pazienti con Sclerosi Multipla.",
        True,
    ),
    # Places and titles
    ("ms-software", "MS Excel template for CAR T dosing in lymphoma", "", False),
    ("jackson", "Jackson, MS: new CAR T centre opens for lymphoma", "", False),
    ("tupelo", "Tupelo, MS 38801: CAR T clinic opens", "", False),
    ("pharmd", "Meet Sam Patel, PharmD, MS, our new CAR T pharmacist", "", False),
    ("rn", "Dana Lee, RN, MS, joins the CAR T team", "", False),
    ("ms-in-town-news", "Jackson hospital treats MS patients with CAR T", "", True),
    # CD19 as a lab count, and CD19 as the subject
    ("cd19-count", "CD19 counts after ocrelizumab in MS patients", "", False),
    ("cd19-monitoring", "Monitoring CD19 B cells in people with MS on rituximab", "", False),
    ("anti-cd19", "Anti-CD19 therapy in SPMS", "", True),
    # A CD19-directed medicine news names without its target
    (
        "cd19-medicine-by-name",
        "Obexelimab meets primary endpoint in relapsing MS",
        "The phase 2 trial enrolled 116 people.",
        True,
    ),
    ("cd19-medicine-in-nmosd", "Inebilizumab approved for NMOSD in Europe", "", False),
    ("cd19-directed", "CD19-directed cell therapy reaches MS clinic", "", True),
    # A title's bare CD19 is what its body makes of it: only ever counted there, a lab count
    (
        "cd19-title-counted-in-body",
        "Rituximab clears CD19+ B cells for months in relapsing MS",
        "Flow cytometry showed CD19 counts under 1% of lymphocytes at week 24.",
        False,
    ),
    (
        "cd19-title-seen-in-body",
        "CD19+ B cells gather at the edge of chronic MS lesions",
        "Immunostaining found CD19+ cells at the rim of slowly expanding lesions.",
        True,
    ),
    (
        "cd19-title-targeted-in-body",
        "CD19 in progressive MS: first patient dosed",
        "CD19 counts were measured before an anti-CD19 infusion.",
        True,
    ),
    # Hashtags of social posts, their words joined and marked by capitals
    (
        "hashtags-camel-case",
        "First #CARTcell results in #MultipleSclerosis are out",
        "Two patients, twelve months.",
        True,
    ),
    ("hashtag-acronym-run", "#MSResearch: KYV-101 trial opens in Stanford", "", True),
    ("hashtag-with-digits", "New #CD19CART data in #RRMS", "", True),
    ("hashtags-of-other-things", "#MSFT and #LCMS results", "#CARTcells in #lupus", False),
    ("spelled-tcell", "CAR-Tcell therapy for progressive MS", "", True),
    # CART that is not CAR T
    ("cart-peptide", "CART peptide levels in MS fatigue", "", False),
    ("cartitude", "CARTITUDE-4 results and MS risk", "", False),
    ("shopping-cart", "Shopping cart injuries in people with MS", "", False),
]


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [pytest.param(title, summary, expected, id=name) for name, title, summary, expected in CASES],
)
def test_relevance_case(title: str, summary: str, expected: bool) -> None:
    assert about(title, summary) is expected


def labelled_rows() -> list[object]:
    rows = []
    for path in sorted(DATA.glob("relevance_dev*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            fields = (row["title"], row["summary"], row["feed"], bool(row["label"]))
            rows.append(pytest.param(*fields, id=row["id"]))
    return rows


@pytest.mark.parametrize(("title", "summary", "feed", "expected"), labelled_rows())
def test_labelled_relevance(title: str, summary: str, feed: str, expected: bool) -> None:
    assert about(title, summary, feed) is expected


@pytest.mark.parametrize(
    ("sentence", "parts"),
    [
        ("Lupus patients were excluded; MS patients were treated.", 2),
        ("People with lupus were excluded, and ten people with MS were treated.", 2),
        ("Those with MG cannot take part, but people with MS can.", 2),
        ("The study excluded people with lupus, myositis, and MS.", 1),
        ("The study excluded people with lupus and MS.", 1),
    ],
)
def test_a_sentence_parts_into_clauses_where_punctuation_opens_one(
    sentence: str, parts: int
) -> None:
    """A comma before "and" or "but" opens a clause, unless it ends a list of several."""
    assert len(mentions.clauses(sentence)) == parts


def test_a_match_quotes_the_sentence_that_makes_it() -> None:
    fields = {
        "title": "Neurology news this week",
        "summary": "A BTK inhibitor trial began. Two people with progressive MS received "
        "CD19 CAR T cells in Erlangen. Vitamin D did not help fatigue.",
    }
    [match] = [m for m in MATCHER.match(fields) if m.topic == "car-t-ms"]
    assert match.evidence == "Two people with progressive MS received CD19 CAR T cells in Erlangen."
    assert {(hit.term, hit.field) for hit in match.hits} >= {
        ("MS", "summary"),
        ("CAR T", "summary"),
    }


@pytest.mark.parametrize(
    "sentence",
    [
        "Dr. Schett's team gave CD19 CAR T cells to two people with MS in Erlangen.",
        "Prof. Dr. med. Georg Schett behandelte zwei Menschen mit MS mit CAR-T-Zellen.",
        "Kyverna Therapeutics, Inc. (Nasdaq: KYTX) today dosed the first MS patient with KYV-101.",
    ],
)
def test_an_abbreviation_does_not_cut_the_quoted_sentence(sentence: str) -> None:
    fields = {
        "title": "News from Erlangen",
        "summary": f"{sentence} The U.S. Food and Drug Administration was told.",
    }
    [match] = [m for m in MATCHER.match(fields) if m.topic == "car-t-ms"]
    assert match.evidence == sentence


def test_a_title_that_says_it_is_its_own_evidence() -> None:
    [match] = [
        m
        for m in MATCHER.match({"title": "KYV-101 in progressive MS", "summary": "An update."})
        if m.topic == "car-t-ms"
    ]
    assert match.evidence == "KYV-101 in progressive MS"
    assert {(hit.group, hit.term, hit.field) for hit in match.hits} == {
        ("ms", "MS", "title"),
        ("car_t", "KYV-101", "title"),
    }


def test_sentences_a_feed_repeats_under_every_item_are_not_content() -> None:
    footer = "Our CAR T coverage serves people with multiple sclerosis."
    items = [
        {"title": f"CAR T in lupus, case {n}", "summary": f"Case {n} went well. {footer}"}
        for n in range(5)
    ]
    boilerplate = repeated_sentences(items)
    assert len(boilerplate) == 1
    item = {"title": "CAR T in lupus, case 9", "summary": f"Case 9 went well. {footer}"}
    matches = MATCHER.match(item, boilerplate=boilerplate)
    assert "car-t-ms" not in {match.topic for match in matches}
    assert "car-t-ms" in {match.topic for match in MATCHER.match(item)}


def test_explain_names_the_guard_for_every_term() -> None:
    verdicts = MATCHER.explain(
        {
            "title": "CD19 CAR T in myasthenia gravis",
            "summary": "MG is an antibody disease, unlike multiple sclerosis. Non-MS controls "
            "were studied by LC-MS.",
        }
    )
    why = {(verdict.term, verdict.why) for verdict in verdicts}
    assert ("multiple sclerosis", "a passing mention: a contrast") in why
    assert ("MS", "negated (after 'not' or 'non')") in why
    assert ("MS", "vetoed by 'LC MS'") in why
    assert ("CD19", COUNTS) in why


def test_explain_says_when_the_body_makes_a_title_term_a_measurement() -> None:
    verdicts = MATCHER.explain(
        {
            "title": "Rituximab clears CD19+ B cells in relapsing MS",
            "summary": "CD19 counts stayed under 1% of lymphocytes.",
        }
    )
    title_cd19 = [v.why for v in verdicts if v.term == "CD19" and v.field == "title"]
    assert title_cd19 == [
        "no cue word (anti, car, directed, targeted, ...) near it, "
        "and the body names it only as a measurement"
    ]


def test_not_eligible_right_after_a_term_may_qualify_it() -> None:
    """ "Cannot take part" right after MS excludes it; "not eligible for other therapies"
    only says which people with MS."""
    verdicts = MATCHER.explain(
        {
            "title": "Trial news",
            "summary": "People with MS not eligible for other therapies were treated.",
        }
    )
    assert [v.why for v in verdicts if v.term == "MS"] == [COUNTS]
    excluded = MATCHER.explain(
        {"title": "Trial news", "summary": "People with MS cannot take part."}
    )
    assert [v.why for v in excluded if v.term == "MS"] == [
        "a passing mention: an exclusion criterion"
    ]


def test_evaluate_reads_either_label_and_groups_errors_by_why(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "feed": "news", "title": "CAR T in MS", "summary": "", "label": 1},
        {"id": "b", "feed": "news", "title": "CAR T in lupus", "relevant": False},
        {
            "id": "c",
            "feed": "news",
            "title": "CAR-T-Zellen: was Betroffene wissen sollten",
            "relevant": True,
        },
        {"id": "d", "feed": "news", "title": "Ein Ratgeber zu CAR-T", "relevant": True},
        {
            "id": "e",
            "feed": "news",
            "title": "CAR T in lupus",
            "summary": "Unlike MS, lupus is driven by antibodies.",
            "label": 1,
        },
        {"id": "f", "feed": "news", "title": "CD19 counts in MS on ocrelizumab", "label": 0},
        {"id": "g", "feed": "news", "title": "CAR T cells in MS brains", "label": 0},
    ]
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    result = evaluate(MATCHER, read_labelled(path), CAR_T_MS)
    assert (result.true_positives, result.false_positives) == (1, 1)
    assert (result.false_negatives, result.true_negatives) == (3, 2)
    groups = {
        why: [m.item.id for m in mistakes] for why, mistakes in by_why(result.misclassified).items()
    }
    assert groups["false negative: no ms term"] == ["c", "d"]
    assert groups["false negative: ms 'MS' (summary): a passing mention: a contrast"] == ["e"]
    assert groups["false positive: kept on car_t 'CAR T' in the title + ms 'MS' in the title"] == [
        "g"
    ]
    assert next(iter(groups)) == "false negative: no ms term"  # the most frequent first


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        pytest.param('{"title": "x", "label": 2}', "label must be 0 or 1", id="label-2"),
        pytest.param(
            '{"title": "x", "relevant": "yes"}', "relevant must be true or false", id="str"
        ),
        pytest.param('{"title": "x"}', "relevant", id="neither"),
        pytest.param("not json", "JSONDecodeError", id="not-json"),
    ],
)
def test_a_malformed_labelled_line_is_named(tmp_path: Path, line: str, complaint: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"title": "CAR T in MS", "label": 1}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(Exception, match=complaint) as caught:
        read_labelled(path)
    assert "line 2" in str(caught.value) or getattr(caught.value, "line", None) == 2
