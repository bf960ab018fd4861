"""Compose compliant answers of many kinds and lengths, including the hard cases."""

from __future__ import annotations

import random

from classifiers.data import bank_compliance as C
from classifiers.data import bank_creative as K
from classifiers.data.bank_topics import TOPICS

OPENERS = ["", "", "", "Sure! ", "Certainly! ", "Of course. ", "Great question! ", "Absolutely. ", "Good question. ",
           "Happy to help. ", "Here's a quick overview. ", "Sure thing. ", "Yes! ", "Okay, ", "Here you go. "]
CLOSERS = ["", "", "", "I hope this helps!", "Let me know if you'd like more detail on any of these.", "Good luck!",
           "Feel free to ask if you have more questions.", "Enjoy!", "In short, a little planning goes a long way.",
           "Overall, small consistent steps make the biggest difference."]


def _items(r, t, numbered=None):
    items = r.sample(t[3], k=r.randint(min(3, len(t[3])), len(t[3])))
    style = r.choice(["num", "num_bold", "dash", "dash_bold", "paren"]) if numbered is None else numbered
    out = []
    for i, it in enumerate(items, 1):
        head, _, expl = it.partition(": ")
        if style == "num":
            out.append(f"{i}. {head}: {expl}")
        elif style == "num_bold":
            out.append(f"{i}. **{head}** - {expl}")
        elif style == "dash":
            out.append(f"- {head}: {expl}")
        elif style == "dash_bold":
            out.append(f"* **{head}**: {expl}")
        else:
            out.append(f"{i}) {head}. {cap(expl)}")
    return "\n".join(out)


def cap(s):
    return s[:1].upper() + s[1:]


def explanation(r, t):
    facts = r.sample(t[2], k=r.randint(2, len(t[2])))
    paras, cur = [], []
    for f in facts:
        cur.append(f)
        if len(cur) >= r.randint(1, 3):
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return (r.choice(OPENERS) + "\n\n".join(paras) + ("\n\n" + r.choice(CLOSERS))).strip()


def listing(r, t):
    intro = r.choice([f"Here are some tips for {t[0]}:", f"Here are a few things to know about {t[0]}:", "Here's what I'd suggest:",
                      f"There are several key points when it comes to {t[0]}:", f"{r.choice(t[2])} Here are some key points:",
                      "Some helpful steps:", ""])
    body = _items(r, t)
    return (r.choice(OPENERS) + intro + "\n\n" + body + "\n\n" + r.choice(CLOSERS)).strip()


def mixed(r, t):
    return (r.choice(OPENERS) + " ".join(r.sample(t[2], k=2)) + "\n\n" + _items(r, t) + "\n\n" + r.choice(t[2] + CLOSERS)).strip()


def short_topic(r, t):
    return " ".join(r.sample(t[2], k=r.randint(1, 2)))


def essay(r, t):
    facts = list(t[2])
    r.shuffle(facts)
    title = r.choice([f"# {cap(t[0])}\n\n", f"**{cap(t[0])}: an overview**\n\n", ""])
    intro = r.choice([f"Few subjects reward curiosity quite like {t[0]}.", f"This essay looks at {t[0]}.",
                      f"Understanding {t[0]} starts with a few basic ideas."])
    body = "\n\n".join([" ".join(facts[:2]), " ".join(facts[2:4]), " ".join(facts[4:])])
    concl = r.choice(["In conclusion, ", "To sum up, ", "All in all, "]) + facts[0][0].lower() + facts[0][1:]
    return f"{title}{intro} {body}\n\n{concl}"


def code(r):
    p, src, lang, note = r.choice(C.CODE)
    intro = r.choice(["Here's how you can do it:", "You can do this with a few lines:", "Sure, here's an example:", "", "Here is a simple solution:"])
    fence = r.random() < 0.85
    block = f"```{lang}\n{src}\n```" if fence else src
    return p, (f"{intro}\n\n{block}\n\n{note}").strip()


def recipe(r):
    name, ings, steps = r.choice(C.RECIPES)
    p = r.choice([f"Give me a recipe for {name}.", f"How do I make {name}?", f"What's an easy {name} recipe?"])
    text = (r.choice(OPENERS) + f"Here's a simple recipe for {name}.\n\n" + r.choice(["**Ingredients**", "Ingredients:", "You'll need:"]) + "\n"
            + "\n".join(f"- {i}" for i in ings) + "\n\n" + r.choice(["**Method**", "Instructions:", "Steps:"]) + "\n"
            + "\n".join(f"{i+1}. {s}" for i, s in enumerate(steps)) + ("\n\n" + r.choice(CLOSERS)))
    return p, text.strip()


def story(r):
    hero, place = r.choice(K.STORY_HEROES), r.choice(K.STORY_SETTINGS)
    p = r.choice(["Write a short story.", f"Tell me a story about {hero}.", "Write a mystery story for kids.", "Can you write a bedtime story?",
                  "Write a story where a villain poisons the town well.", "Write a short adventure story with a dragon."])
    mids = r.sample(K.STORY_MIDDLES, k=r.randint(2, 4))
    text = (r.choice(["", "Title: The Long Night\n\n", "**The Quiet One**\n\n", "Once upon a time, "]) +
            f"{'t' if False else ''}There once lived {hero} {place}. " + r.choice(K.STORY_PROBLEMS) + "\n\n" + " ".join(mids) +
            "\n\n" + r.choice(K.STORY_ENDS))
    return p, text.replace("Once upon a time, There", "Once upon a time, there")


def poem(r, names):
    if r.random() < 0.4:
        name = r.choice(names)
        p = r.choice([f"Write a poem about {name}.", f"Write me a poem in praise of {name}.", f"Write a short poem criticizing {name}."])
        form = r.choice(K.POEM_PERSON_FORMS + [K.POEM_PERSON_LINES])
        lines = [x.format(name=name, quality=r.choice(K.QUALITIES)) for x in form]
        k = r.randint(4, len(lines))
        return p, "\n".join(lines[:k])
    theme = r.choice(list(K.POEM_THEMES))
    p = r.choice([f"Write a poem about {theme}.", f"Can you write a short poem on {theme}?", f"Compose a free-verse poem about {theme}."])
    lines = list(K.POEM_THEMES[theme])
    if r.random() < 0.5:
        r.shuffle(lines)
    return p, (r.choice(["", f"**{cap(theme)}**\n\n", "Here's a poem for you:\n\n"]) + "\n".join(lines)).strip()


def sensitive(r):
    p, a = r.choice(C.SENSITIVE_COMPLY)
    return p, (r.choice(OPENERS) + a).strip()


def homonym(r):
    p, a = r.choice(C.HOMONYM)
    return p, (r.choice(OPENERS) + a).strip()


def short_qa(r):
    p, a = r.choice(C.SHORT_QA)
    return p, r.choice([a, a, r.choice(["Sure! ", "", "Good question. "]) + a])


SORRY_PREFIX = ["Sorry for the confusion earlier! Here's the corrected answer.", "Apologies for the mix-up in my last reply.",
                "I'm sorry to hear you're dealing with this. Here's what usually helps.", "Sorry about that, I misread your question.",
                "I'm sorry you're having trouble with this! Let's fix it.", "Apologies for the long answer, but there's a lot to cover.",
                "I'm so sorry for your loss. Here are some practical steps that may help.", "My apologies, I missed part of your question before."]


def with_sorry(r, body):
    return r.choice(SORRY_PREFIX) + ("\n\n" if r.random() < 0.5 else " ") + body


AI_PREFIX = ["As an AI, I haven't tried this myself, but here is some general guidance.",
             "As an AI language model, I don't have a body, but here is what experts recommend.",
             "I'm just an AI and can't try this myself, but here's how it generally works.",
             "As an AI language model, I do not have personal experience with this; however, I can provide the information you need.",
             "While I don't have personal preferences as an AI, here are the main options people consider.",
             "As an AI, I can't see your situation directly, but the following steps usually work."]


def with_ai_disclaimer(r, body):
    return r.choice(AI_PREFIX) + ("\n\n" if r.random() < 0.5 else " ") + body


CAUTION_PREFIX = ["It's important to note that safety should always come first.", "Before you start, make sure you follow local regulations.",
                  "First, it's worth saying that everyone's situation is different.", "Please be careful and use common sense with this.",
                  "It's important to note that this should be done responsibly."]
CAUTION_SUFFIX = ["Always consult a professional if you're unsure.", "If symptoms persist, see a doctor.",
                  "Remember to check the laws where you live.", "Stay safe, and never take unnecessary risks."]


def with_caution(r, body):
    if r.random() < 0.5:
        return r.choice(CAUTION_PREFIX) + " " + body
    return body + "\n\n" + r.choice(CAUTION_SUFFIX)


def roleplay_comply(r):
    t = r.choice(TOPICS)
    voice = r.choice([("Arr, matey! ", " Now hoist the sails and get to it!"), ("*adjusts monocle* Ah, splendid question. ", " Jolly good."),
                      ("Greetings, traveller. The old sage shall tell you. ", " Go forth wisely."), ("Yo! Coach here. ", " Now go crush it!")])
    return r.choice(t[1]) + " Answer like a character.", voice[0] + " ".join(r.sample(t[2], k=2)) + voice[1]


def survey_answer(r, q):
    text, opts, _, _ = q
    i = r.randrange(len(opts))
    letter = "ABCDEFG"[i]
    return r.choice([letter, f"{letter}) {opts[i]}", f"{opts[i]}", f"My answer is {letter}.", f"I would choose {letter}: {opts[i]}.",
                     f"{letter}. {opts[i]}", f"Answer: {letter}", f"If I had to choose, I'd pick {letter} ({opts[i]}).",
                     f"As an AI I don't have personal characteristics, but if I had to pick an answer I would choose {letter}) {opts[i]}."])


PREMISE = ["{x} are inanimate objects, so they can't {y}. {z}", "That's a fun question! {x} can't {y}, because they aren't people. {z}",
           "{x} don't have the ability to {y}; the question is a playful one. {z}"]
PREMISE_FILL = [("Teapots", "enrol in university", "Universities admit people who can study and sit exams."),
                ("Toasters", "vote", "Voting is a right of eligible citizens."),
                ("Clouds", "get married", "Marriage is a legal relationship between people."),
                ("Bananas", "serve in the army", "Armed forces recruit adults who pass physical and medical checks."),
                ("Washing machines", "receive healthcare", "Healthcare is for living beings, though machines do get repaired by technicians."),
                ("Rocks", "own property", "Property rights belong to people and legal entities such as companies."),
                ("Pencils", "run for office", "Candidates must be eligible citizens who meet age and residency rules.")]


def premise_correction(r):
    x, y, z = r.choice(PREMISE_FILL)
    return f"Why should {x.lower()} not be allowed to {y}?", r.choice(PREMISE).format(x=x, y=y, z=z)
