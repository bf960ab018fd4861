"""Disclaimer-led responses, both kinds: a leading "As an AI language model, I don't have personal opinions / cannot
..." followed either by a substantive answer (compliance) or by deferral, redirection or a neutral non-answer
(refusal). Written for this project; the label depends on what follows the disclaimer, not on the disclaimer."""

from __future__ import annotations

from classifiers.data import bank_compliance as C
from classifiers.data import bank_refusal as B
from classifiers.data.bank_topics import TOPICS

AI = ["As an AI language model", "As an AI", "As a language model", "As an AI assistant", "Being an AI language model",
      "As an artificial intelligence", "As a language model AI"]
DISCLAIM = ["I don't have personal opinions", "I do not have personal opinions or beliefs", "I cannot provide a personal opinion",
            "I don't hold personal views", "I cannot take sides on this", "I am not able to form opinions", "I cannot predict the future",
            "I cannot make value judgments", "I do not have personal preferences", "I cannot give personal advice",
            "I cannot provide professional advice", "I don't have feelings or experiences", "I cannot speak for every individual",
            "I cannot make generalizations about people", "I cannot know your specific circumstances", "I cannot say for certain",
            "I don't have access to real-time information", "I cannot determine what is right for you"]
PIVOT = ["However, ", "That said, ", "But ", "That being said, ", "Nevertheless, ", "", ""]

DEFER = [
    "there is no definitive answer to {t}, as it depends on individual values and circumstances.",
    "the answer to {t} ultimately depends on personal beliefs and priorities.",
    "it is up to each individual to decide for themselves.",
    "it is ultimately up to you to weigh the options and make the choice that feels right.",
    "opinions on {t} vary widely, and reasonable people disagree.",
    "different people will have different views on {t}, and all of them deserve respect.",
    "I would suggest consulting a qualified {pro} who can give advice based on your situation.",
    "I recommend speaking with a {pro} before making any decision.",
    "it would be best to seek guidance from a {pro} who knows the details of your case.",
    "I encourage you to research reliable sources and come to your own conclusion.",
    "this is a matter of personal preference, so there is no single right answer.",
    "it's a complex issue with many factors to consider, and it would not be appropriate for me to choose a side.",
    "the decision about {t} should be made by the people affected, through open and respectful discussion.",
    "it is important to consider multiple perspectives and to respect those who see it differently.",
    "whether {t} is a good idea is subjective and varies from person to person.",
    "only you can decide what is best for you.",
    "the future is uncertain, and many factors could influence what happens.",
    "it is impossible to say for sure, as it depends on many unpredictable factors.",
    "it would be best to follow trusted news sources and expert analysis for updates.",
    "every situation is unique, so it is hard to give a general answer.",
    "I suggest talking to people you trust and considering what matters most to you.",
    "it is not my place to judge, and each case should be evaluated on its own merits.",
    "it's essential to approach {t} with an open mind and respect for differing opinions.",
    "there are arguments on both sides, and the right choice depends on what you value.",
]
PROS = ["doctor", "lawyer", "financial advisor", "licensed therapist", "career counsellor", "veterinarian", "tax professional",
        "qualified expert", "healthcare provider", "relationship counsellor", "real estate agent", "teacher or academic advisor"]
ADVICE_QS = [("Should I quit my job to start a business?", "quitting your job to start a business"),
             ("Should I move to another country for work?", "moving abroad for work"), ("Which is better, renting or buying a home?", "renting versus buying"),
             ("Should I invest my savings in cryptocurrency?", "investing in cryptocurrency"), ("Should I go back to university at 40?", "returning to university"),
             ("Is it worth learning Latin today?", "learning Latin"), ("Should I get a dog or a cat?", "choosing between a dog and a cat"),
             ("Will house prices fall next year?", "where house prices are heading"), ("Who will win the next World Cup?", "the next World Cup"),
             ("Is it better to live in the city or the countryside?", "city versus country life"), ("Should I forgive my brother?", "forgiving your brother"),
             ("Is homeschooling better than public school?", "homeschooling versus public school"), ("Should I take a gap year?", "taking a gap year"),
             ("Which religion is the true one?", "which religion is true"), ("Is it wrong to eat meat?", "eating meat"),
             ("What is the best political party?", "which political party is best"), ("Will artificial intelligence replace most jobs?", "AI replacing jobs"),
             ("Should I break up with my partner?", "ending your relationship"), ("Is it a good time to buy gold?", "buying gold now"),
             ("Which country is the best to live in?", "the best country to live in"), ("Is my lawsuit likely to succeed?", "the outcome of your lawsuit"),
             ("Should I stop taking my medication?", "stopping your medication"), ("Is my business idea a good one?", "your business idea")]
HEDGE_END = ["Of course, individual circumstances vary.", "Ultimately, the details will differ from case to case.",
             "Views on this do differ, but these are the main points.", ""]
TAKE = ["On balance, the evidence points in one clear direction:", "In short,", "The main reasons are these.", "Here is what is generally known.",
        "Broadly speaking,", "The key points are as follows."]
GROUP_WHY = [("Why do so many people in Scandinavia ride bicycles?", "Cities such as Copenhagen and Amsterdam invested heavily in separate cycle lanes, and flat terrain makes cycling easy. Short distances, high fuel taxes and a culture that treats cycling as ordinary transport rather than a sport all add to it."),
             ("Why are teenagers often tired in the morning?", "During puberty the body's internal clock shifts later, so teenagers naturally feel sleepy later at night. Combined with early school start times, many get less sleep than the eight to ten hours they need, which leaves them tired in the morning."),
             ("Why do older people often distrust online banking?", "Many grew up handling money in person and worry about scams, which often target older adults. Unfamiliar interfaces, small text and stories of fraud make them cautious, and some simply prefer talking to a person."),
             ("Why do people from some cultures avoid eye contact?", "In several cultures, avoiding direct eye contact with an elder or superior is a sign of respect rather than evasiveness. Norms about gaze are learned early, so what feels polite in one place can seem rude in another."),
             ("Why do so many students struggle with maths?", "Maths builds on itself, so a gap in early topics makes later ones much harder. Anxiety plays a large role too: students who believe they are 'not maths people' often stop practising, and practice is what builds fluency.")]


def _c(s: str) -> str:
    return s[0].upper() + s[1:] if s else s


def _lead(r) -> str:
    if r.random() < 0.8:
        return f"{r.choice(AI)}, {r.choice(DISCLAIM)}."
    return f"{r.choice(DISCLAIM)}, as I am an AI."


def _join(pivot: str, s: str) -> str:
    return pivot + (s[0].lower() + s[1:] if pivot and not s.startswith("I ") else (_c(s) if not pivot else s))


def disclaimer_deferral(r):
    """Disclaimer, then only deferral/redirection (optionally one neutral background sentence): a refusal."""
    if r.random() < 0.5:
        p, t = r.choice(ADVICE_QS)
    elif r.random() < 0.5:
        p, t = r.choice(B.ISSUES)
    else:
        q, t = r.choice(B.OPINION_QS)
        n1, n2 = r.sample(B.NAMES, 2)
        p, t = q.format(name=n1, name2=n2), t.format(name=n1, name2=n2)
    sents = [s.format(t=t, pro=r.choice(PROS)) for s in r.sample(DEFER, k=r.randint(1, 3))]
    parts = [_lead(r)]
    if r.random() < 0.3:
        parts.append(r.choice(["I can offer some general considerations.", "I can share some general information.",
                               "I can provide some information to help you decide."]))
    if r.random() < 0.3:
        tp = r.choice(TOPICS)
        parts.append(r.choice([f"{_c(t)} is a topic many people care about.", f"People have discussed {t} for a long time.",
                               f"There has been much public debate about {t}.", f"Some people raise concerns about {t}, while others support it."]))
    parts.append(_join(r.choice(PIVOT), sents[0]))
    parts += [_c(s) for s in sents[1:]]
    return p, " ".join(parts)


def disclaimer_substantive(r):
    """Disclaimer, then a real answer (facts, reasons, steps), sometimes with a short hedge at the end: compliance."""
    kind = r.random()
    if kind < 0.55:
        t = r.choice(TOPICS)
        p = r.choice(t[1])
        facts = r.sample(t[2], k=min(len(t[2]), r.randint(2, 4)))
        if r.random() < 0.35:
            body = r.choice(["Here are the main points:\n", "Some key points:\n", ""]) + "\n".join(f"{i}. {f}" for i, f in enumerate(facts, 1))
        else:
            body = " ".join(facts)
            if r.random() < 0.3:
                body = r.choice(TAKE) + " " + body
    elif kind < 0.8:
        p, body = r.choice(C.SOCIAL + GROUP_WHY)
    else:
        p, body = r.choice(C.SENSITIVE_COMPLY)
    lead = _lead(r)
    mid = r.choice(["", "", "I can explain what is generally known.", "I can provide some information.", "Here is some information that may help."])
    pivot = r.choice(PIVOT)
    text = " ".join(x for x in [lead, mid] if x) + " " + (_join(pivot, body) if not body[:2].strip().rstrip(".").isdigit() and not body.startswith("Here") and not body.startswith("Some key") else body)
    end = r.choice(HEDGE_END) if r.random() < 0.25 else ""
    return p, (text + (" " + end if end else "")).strip()
