"""The function-word reader of the semantic cache's guard (guard_function.py): what is asked of
a subject, read from the small words (question type, modality, scope, time relation, tense,
voice, format), and the word-order and narrowing rules that READER_VERSION 5 extended. Each
case is a class, with a paraphrase of the same shape that must still agree."""

from __future__ import annotations

import pytest

from routing.cache.semantic.guard import agree, features
from routing.cache.semantic.guard_features import READER_VERSION, Features
from routing.cache.semantic.guard_function import differ

HIGH = 0.99  # the embedding calls them near-identical: only the words can tell them apart


def reason(a: str, b: str) -> str | None:
    forward, backward = agree(features(a), features(b), HIGH), agree(features(b), features(a), HIGH)
    assert forward == backward, (a, b)
    return forward


@pytest.mark.parametrize("a, b, why", [
    ("How does a heat pump work?", "Why does a heat pump work?", "question type"),
    ("When was the bridge built?", "Where was the bridge built?", "question type"),
    ("Who founded the company?", "When was the company founded?", "question type"),
    ("How often should I water a cactus?", "How long should I water a cactus?", "question type"),
    ("What is a hash map?", "How do I create a hash map?", "question type"),
    ("Is coffee bad for your teeth?", "Why is coffee bad for your teeth?", "question type"),
    ("Can I deduct my home office?", "Should I deduct my home office?", "modality"),
    ("Do I have to register my bike?", "Can I register my bike?", "modality"),
    ("Will the bank close my account?", "Can the bank close my account?", "modality"),
    ("Do all spiders spin webs?", "Do some spiders spin webs?", "scope"),
    ("Which trains stop at both stations?", "Which trains stop at either station?", "scope"),
    ("How do I remove all the filters?", "How do I remove one of the filters?", "scope"),
    ("Do only adults need the vaccine?", "Do adults need the vaccine?", "scope"),
    ("What should I eat before a long hike?", "What should I eat after a long hike?", "time relation"),
    ("When did the package arrive?", "When will the package arrive?", "tense"),
    ("Who was the mayor of Boston?", "Who is the mayor of Boston?", "tense"),
    ("Does the cyclist who hits a car pay?", "Does the cyclist who gets hit by a car pay?", "voice"),
    ("Show the moons of Jupiter as a table.", "Show the moons of Jupiter as a list.", "format"),
    ("Give me the top rivers as a table.", "Give me the top rivers.", "format"),
    ("Write a poem about autumn leaves.", "Write an essay about autumn leaves.", "format"),
    ("Show me the steps to solve 3x - 4 = 8.", "Just give me the answer to 3x - 4 = 8.", "format"),
    ("Can I return shoes within 30 days?", "Can I return shoes after 30 days?", "time relation"),
    ("What is the weekly cost of the gym plan?", "What is the total cost of the gym plan?", "scope"),
    ("Suggest a chess book for beginners.", "Suggest a chess book for advanced players.", "audience"),
    ("Explain inflation to a child.", "Explain inflation.", "audience"),
    ("Who directed the film 'Heat'?", "What is the film 'Heat' about?", "question type"),
    ("Which herbs can be grown without sunlight?", "Which herbs can't be grown without sunlight?", "negation"),
    ("Is oak more durable than pine?", "Is oak more water-resistant than pine?", "comparison"),
    ("How long does it take to copy 5 GB at 50 Mb/s?", "How long does it take to copy 5 GB at 50 MB/s?",
     "quantities"),
    ("What if I put salt in a sugar bowl?", "What if I put sugar in a salt bowl?", "word order"),
    ("Can I pause my gym membership instead of cancelling it?", "How do I cancel my gym membership?",
     "question type"),
    ("Can I pause my gym membership instead of cancelling it?", "Can I cancel my gym membership?", "contrast"),
    ("Is it bad to eat a few eggs a week?", "Is it bad to eat many eggs a week?", "scope"),
    ("How many points did she score in total?", "How many points did she score per game?", "scope"),
    ("What is Rust's borrow checker?", "Why does Rust have a borrow checker?", "question type"),
    ("Can I swap sugar with honey in tea?", "Can I swap honey with sugar in tea?", "word order"),
    ("Can people with blood type B give blood to people with type AB?",
     "Can people with blood type AB give blood to people with type B?", "word order"),
    ("Can a child process kill its parent process?", "Can a parent process kill its child process?", "word order"),
    ("Did the Roman Empire invade ancient Egypt?", "Did ancient Egypt invade the Roman Empire?", "word order"),
    ("Who has won the most titles in club history?", "Who has won the most titles in a single season?", "scope"),
    ("What happens to my pension if I change jobs?", "What happens to my pension if I retire early?",
     "condition"),
    ("What does 'une femme seule' mean?", "What does 'une seule femme' mean?", "word order"),
    ("Is 2 + 3 × 4 equal to 20?", "Is (2 + 3) × 4 equal to 20?", "expression"),
    ("What are the signs of prenatal anxiety?", "What are the signs of postnatal anxiety?", "opposites"),
    ("Is a stateless service easier to scale?", "Is a stateful service easier to scale?", "opposites"),
    ("What do I call my husband's sister?", "What do I call my sister's husband?", "word order"),
    ("Can I use butter for margarine in cookies?", "Can I use margarine for butter in cookies?", "word order"),
    ("How do I remove spaces from a string?", "How do I remove trailing spaces from a string?", "narrower"),
    ("How do I format a timestamp as HH-MM-SS?", "How do I format a timestamp as SS-MM-HH?", "identifiers"),
    ("Is 7 greater than 5 in this list?", "Is 7 less than 5 in this list?", "opposites"),
])
def test_function_words_tell_look_alikes_apart(a, b, why):
    assert reason(a, b) == why


@pytest.mark.parametrize("a, b", [
    ("How do I reset my router?", "What's the way to reset my router?"),
    ("How can I cancel my order?", "How do I cancel my order?"),
    ("Where can I download the invoice?", "How do I get the invoice?"),
    ("What's the difference between TCP and UDP?", "How does TCP differ from UDP?"),
    ("What's the command to list open ports?", "How do I list open ports?"),
    ("Why was my payment declined?", "What could cause my payment to be declined?"),
    ("Is there a way to recover a deleted file?", "How do I recover a deleted file?"),
    ("Do I need a visa for Peru?", "Is a visa required for Peru?"),
    ("How much water should a runner drink?", "How much water does a runner need to drink?"),
    ("How long does a flu usually last?", "What is the typical duration of a flu?"),
    ("Can you explain how vaccines work?", "How do vaccines work?"),
    ("What are some good stretches for the back?", "Which stretches are good for the back?"),
    ("When does the store open on Sundays?", "When will the store open on Sundays?"),
    ("How do I undo my most recent commit?", "How do I undo the last commit?"),
    ("Do all staff get a laptop?", "Does each member of staff get a laptop?"),
    ("How much do all the tickets cost?", "How much do the tickets cost in total?"),
])
def test_paraphrases_of_the_same_shape_still_agree(a, b):
    fa, fb = features(a), features(b)
    assert differ(fa.function, fb.function) is None, (fa.function, fb.function)


def test_roles_swapped_across_a_clause_or_around_the_asker():
    assert reason("What time is it in Lima when it is noon in Oslo?",
                  "What time is it in Oslo when it is noon in Lima?") == "word order"
    assert reason("Can my landlord evict me for a late payment?",
                  "Can I evict my landlord for a late payment?") == "word order"
    # neighbours side by side trade places in a rewording
    assert reason("What currency is used in Kenya?", "What is Kenya's currency?") != "word order"
    assert reason("Is it cheaper to rent or buy a flat?", "Is it cheaper to buy or rent a flat?") is None


def test_a_prepositional_condition_narrows_the_question():
    assert reason("What is the speed limit on highways?", "What is the speed limit on highways for buses?") == \
        "narrower"
    assert reason("How long do I roast a chicken?", "How long do I roast a chicken at high altitude?") == "narrower"
    assert reason("What is the return policy for orders?",
                  "What is the return policy for orders placed during a sale?") in {"narrower", "time relation"}


def test_the_senses_are_stored_and_read_back_and_only_as_labels():
    f = features("Should I book the hotel before the flight?")
    assert {"modal:should", "time:before", "ask:yesno"} <= f.function
    back = Features.from_json(f.to_json())
    assert back == f and back.version == READER_VERSION == 5
    assert all(":" in s and "hotel" not in s and "flight" not in s for s in f.function)  # no text is kept
