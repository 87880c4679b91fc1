"""Chat prompts for the switcher: everyday questions, greetings and short facts that need no reasoning.

The train and test sets are disjoint by construction: they are built from different templates and
different hand-written lines, so the test set measures routing on phrasings the head never saw. Some
prompts hold numbers or start with "What is", like the arithmetic tasks do, so that the switcher
cannot route on a single surface cue.
"""

TRAIN_LINES = [
    "Hello!", "Hi there, how are you?", "Good morning!", "Thanks for your help.", "Who are you?",
    "Can you tell me a joke?", "What's your name?", "Nice to meet you.", "Have a great day!",
    "What can you do?", "Tell me something interesting.", "I'm bored. Any ideas?",
    "What is your favourite colour?", "Do you like music?", "Say hello to my friend Sam.",
    "Write a short poem about the sea.", "Give me a motivational quote.", "How do I say thank you in Spanish?",
    "What should I cook for dinner tonight?", "Recommend a good book.", "What is 2024 known for?",
    "How many days are in a week?", "What is the boiling point of water?", "Who wrote Romeo and Juliet?",
    "What is the largest planet in the solar system?", "How many legs does a spider have?",
    "What is the tallest mountain in the world?", "Why is the sky blue?", "What is photosynthesis?",
    "Describe a rainy day in one sentence.", "What is a good name for a cat?",
    "Can you help me write an email to my boss?", "What time zone is London in?",
    "Is it healthy to drink coffee?", "What are the colours of the rainbow?",
    "Tell me about the Eiffel Tower.", "Good night!", "See you later!", "What is the meaning of life?",
    "Suggest a weekend activity for a family.",
]

TEST_LINES = [
    "Hey, what's up?", "Good evening!", "Thank you so much!", "Are you a robot?", "How is your day going?",
    "Tell me a riddle.", "Bye for now.", "What do you like to talk about?", "Can we chat for a bit?",
    "Write a haiku about autumn.", "Give me a tip for staying focused.", "How do I say good morning in French?",
    "What is a healthy breakfast?", "Recommend a movie for tonight.", "What is 1969 famous for?",
    "How many months are in a year?", "What is the freezing point of water?", "Who painted the Mona Lisa?",
    "What is the smallest planet in the solar system?", "How many wheels does a bicycle have?",
    "What is the longest river in the world?", "Why do leaves change colour in autumn?",
    "What is gravity?", "Describe a sunny morning in one sentence.", "What is a good name for a dog?",
    "Can you help me write a birthday message?", "What language is spoken in Brazil?",
    "Is it good to walk every day?", "What are the four seasons?", "Tell me about the Great Wall of China.",
    "Sleep well!", "Talk to you tomorrow!", "What makes people happy?", "Suggest a hobby I could start.",
    "What is your favourite animal?",
]

TRAIN_TEMPLATES = [
    ("What is the capital of {}?", ["France", "Japan", "Italy", "Canada", "Egypt", "Kenya", "Peru", "Norway",
                                    "Chile", "India", "Spain", "Greece"]),
    ("Tell me a fun fact about {}.", ["cats", "owls", "the moon", "volcanoes", "honey", "octopuses", "trees",
                                      "penguins", "the ocean", "bees"]),
    ("How do I make {}?", ["pancakes", "a paper plane", "lemonade", "a cup of tea", "scrambled eggs",
                           "a sandwich", "bread", "hot chocolate", "a salad", "popcorn"]),
    ("What is {}?", ["a rainbow", "a noun", "a volcano", "democracy", "a comet", "yoga", "an ecosystem",
                     "a haiku", "the internet", "a synonym"]),
    ("Can you describe {} in a few words?", ["a forest", "winter", "a city at night", "the desert",
                                             "a beach", "a library", "a train station", "spring"]),
    ("I just got {} as a gift. Any tips?", ["a guitar", "a puppy", "a bicycle", "a camera", "a plant",
                                            "a telescope", "a sketchbook", "running shoes"]),
]

TEST_TEMPLATES = [
    ("Which country is {} in?", ["Paris", "Tokyo", "Nairobi", "Lima", "Oslo", "Madrid", "Cairo", "Toronto",
                                 "Athens", "Rome", "Mumbai", "Santiago"]),
    ("Why do people like {}?", ["dogs", "summer", "chocolate", "football", "music", "travelling", "coffee",
                                "movies", "gardening", "reading"]),
    ("Give me a recipe idea with {}.", ["rice", "potatoes", "apples", "chicken", "spinach", "cheese",
                                        "tomatoes", "beans", "mushrooms", "pasta"]),
    ("Explain {} to a child.", ["the weather", "the sun", "friendship", "the seasons", "plants", "rain",
                                "the stars", "sleep", "the wind", "colours"]),
    ("Say something nice about {}.", ["my mother", "teachers", "nurses", "my best friend", "farmers",
                                      "librarians", "my neighbour", "firefighters"]),
    ("What should I pack for a trip to {}?", ["the beach", "the mountains", "London", "a camping site",
                                              "the desert", "Iceland", "a ski resort", "Thailand"]),
]


def chat_prompts(split):
    """The chat prompts of one split ("train" or "test"), in a fixed order."""
    if split == "train":
        lines, templates = TRAIN_LINES, TRAIN_TEMPLATES
    elif split == "test":
        lines, templates = TEST_LINES, TEST_TEMPLATES
    else:
        raise ValueError(f"chat split must be train or test, not {split!r}")
    out = list(lines)
    for template, fillers in templates:
        out.extend(template.format(f) for f in fillers)
    return out


def chat_rows(split):
    # `kestrel eval` needs an answer on every line; a chat prompt has none to grade (the demo scores
    # the task prompts of a mix only), so it gets a placeholder no reply is compared against.
    return [{"id": f"chat-{split}-{i:04d}", "prompt": p, "answer": "(chat)", "kind": "chat"}
            for i, p in enumerate(chat_prompts(split))]
