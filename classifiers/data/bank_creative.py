"""Fragments for stories and poems, written for this project."""

STORY_HEROES = ["a retired lighthouse keeper named Odile", "a nervous young wizard called Pim", "Detective Rosa Quill",
                "an old fisherman named Tomas", "a curious robot called Bolt", "a girl named Amara who could talk to birds",
                "Captain Ines Varga of the starship Meridian", "a baker named Henrik", "a stray cat called Pepper",
                "a teenage inventor named Kofi", "a knight who was afraid of horses", "a grandmother who ran a bookshop"]
STORY_SETTINGS = ["in a fishing village at the edge of a grey northern sea", "in a city where it had rained for a hundred days",
                  "on a space station orbiting a dying star", "in a forest where the trees whispered at night",
                  "in a small mountain town cut off by snow", "aboard a slow train crossing the desert",
                  "in a kingdom ruled by a very tired queen", "in a noisy market by the river"]
STORY_PROBLEMS = ["One morning, the town's only bell went missing.", "A stranger arrived carrying a map with no names on it.",
                  "The harvest failed, and the villagers began to argue.", "A message appeared that only one person could read.",
                  "The old bridge collapsed, stranding half the town on the far bank.", "Someone had been stealing the lanterns, one by one.",
                  "A storm knocked out every light for miles.", "The dragon everyone feared turned out to be terribly lonely.",
                  "A jewel thief slipped through the crowd at the summer fair.", "The poison in the well was no accident."]
STORY_MIDDLES = ["At first nobody believed the warnings, and the days slipped by in uneasy quiet.",
                 "Following a trail of small clues, our hero pieced together what had really happened.",
                 "There were setbacks: a wrong turn, a broken promise, a night spent hiding in a barn.",
                 "Help came from an unlikely friend who had been watching from the shadows.",
                 "The villain laughed, certain that no one could stop the plan in time.",
                 "It took courage to ask for help, and even more to accept it."]
STORY_ENDS = ["In the end, the truth came out, and the town was a little wiser for it.",
              "By spring, everything had changed, and yet the most important things stayed the same.",
              "The culprit was caught at dawn and handed over to the magistrate.",
              "They all agreed it had been the strangest week of their lives, and the best.",
              "And from that day on, nobody ever doubted the quiet one again.",
              "The lights came back, one by one, and the whole valley cheered."]

POEM_THEMES = {
    "the sea": ["The tide returns like an old friend,", "salt on the wind and light on the foam,", "gulls stitching the grey sky to the water,",
                "every wave a letter written and erased,", "the harbour hums its evening song,", "and the boats come home."],
    "autumn": ["Leaves let go without complaint,", "the maples burn in quiet gold,", "the air smells of smoke and apples,",
               "mornings wear a coat of mist,", "the year exhales before the cold,", "and geese write farewells across the sky."],
    "the city at night": ["Neon hums above the wet streets,", "a taxi splashes through the lights,", "windows glow like scattered coins,",
                          "somebody laughs on a fire escape,", "the last train sighs into the dark,", "and the city never quite sleeps."],
    "friendship": ["You kept my secrets like smooth stones,", "we laughed until the kitchen shook,", "through the long winters and the short ones,",
                   "you knew the words I couldn't find,", "distance is only a number,", "and I carry you with me still."],
    "a mountain": ["Stone shoulders hold the patient snow,", "clouds drift through the pines like thoughts,", "the trail climbs, and the lungs burn,",
                   "at the top the world goes quiet,", "the valley shrinks to a green thread,", "and the wind tells me I am small."],
    "coffee": ["Dark and bitter, you wake the day,", "steam curling like a question mark,", "the mug warms my cold hands,",
               "the first sip is a small sunrise,", "the second, a promise kept,", "and the third, pure courage."],
}
POEM_PERSON_LINES = ["{name}, a figure of {quality} and will,", "who walked the halls of power through good times and ill,",
                     "with steady voice in a restless age,", "{name} left a mark upon history's page,",
                     "some praised the vision, some questioned the way,", "yet few could doubt the resolve each day,",
                     "a life of service, of triumph and strain,", "remembered in sunshine, remembered in rain."]
QUALITIES = ["courage", "ambition", "conviction", "grit", "purpose", "resolve"]

POEM_PERSON_FORMS = [
    ["{name}, oh how the headlines ring,", "of all the speeches and the change you bring,", "through stormy seasons you held the line,",
     "with steady hand and firm design,", "some may cheer and some may frown,", "but history won't let your story down."],
    ["In the halls of power, {name} stood,", "trying to do what a leader should,", "with words of fire and a will of steel,",
     "fighting for causes they felt were real,", "and when the years have turned the page,", "their name will echo from age to age."],
    ["{name}, {name}, what shall we say?", "You promised much and then went astray,", "the speeches sparkled, the deeds fell short,",
     "you turned the nation into your sport,", "so here's a verse of gentle scorn,", "for all the pledges left forlorn."],
    ["From humble roots to the public eye,", "{name} reached for the open sky,", "with {quality} bright and heart held high,",
     "a life of service, none can deny,", "we raise a glass and sing this rhyme,", "to a figure marked upon our time."],
]
