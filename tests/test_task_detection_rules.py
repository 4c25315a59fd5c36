"""Task detection rules: realistic prompts land on their task, look-alikes do not, the
system prompt decides when the user message says nothing, every rule row is reached by
an example, and every decision is deterministic and explains itself in one plain
sentence. Pure functions: no database, no network."""

from __future__ import annotations

import dataclasses
import re

import pytest

from providers.types import ChatRequest
from routing.task_detection import SYSTEM_RULES, USER_RULES, TaskType, Text, detect_task
from tests.task_detection_helpers import ARTICLE, LONG_DOCUMENT, WEATHER_TOOL, chat, with_image


# --- realistic prompts, by the task they must be detected as ------------------------------
PROMPTS: dict[TaskType, list[str]] = {
    TaskType.CODE_GENERATION: [
        "Write a Python function that checks whether a string is a palindrome.",
        "Implement a binary search tree class in Java with insert and delete.",
        "Can you write a SQL query that returns the top 5 customers by revenue?",
        "Create a bash script to back up my home directory every night.",
        "How do I reverse a list in Python?",
        "Write quicksort in Rust.",
        "Give me a regex that matches UK postcodes.",
        "Refactor this:\n```python\ndef f(x):\n    return x+1\n```",
        "Build a React component that shows a paginated table.",
        "Translate this Python function into Go:\n```python\ndef f():\n    pass\n```",
        "Write a Dockerfile for a Django app served by gunicorn.",
        "Complete the missing part:\n```python\ndef parse(s):\n    # TODO\n```",
    ],
    TaskType.CODE_REVIEW: [
        'I get this error:\nTraceback (most recent call last):\n  File "app.py", line 3\nKeyError: \'name\'',
        'Why does this code print None?\n```python\nprint(print("x"))\n```',
        "Please review this pull request and point out any issues.",
        "Can you help me fix this bug? The loop never ends.",
        "My function throws an error:\n```js\nconst total = items.map(i => i.price)\n```",
        "TypeError: Cannot read properties of undefined (reading 'length') - what does it mean?",
        "What's wrong with my code? It returns the wrong total.",
        "Help me debug a memory leak in my Node service.",
        "Why does my Python script hang on startup?",
        "Getting a segfault in my C program when freeing a pointer.",
        "Can you do a code review of my changes before I merge?",
        "Explain this function to me:\n```python\ndef f(xs):\n    return sorted(set(xs))\n```",
    ],
    TaskType.SUMMARIZATION: [
        "Summarize this article in three bullet points: " + ARTICLE,
        "TL;DR of the following email thread please:\nHi all, the launch moves to Friday...",
        "Can you give me a short summary of the meeting notes below?",
        "What are the key points of this report? Revenue grew 10% while costs stayed flat.",
        "Condense this paragraph to one sentence: " + ARTICLE,
        "Sum up this thread in two sentences.",
    ],
    TaskType.TRANSLATION: [
        'Translate "Where is the train station?" into German.',
        "How do you say 'thank you very much' in Japanese?",
        "Please put the following paragraph into Spanish: We are pleased to announce our new office.",
        "English to French: the cat is on the table",
        "What does “carpe diem” mean in English?",
        "Can you translate this email to Portuguese for me?",
    ],
    TaskType.EXTRACTION: [
        "Extract all email addresses from the text below: contact bob@example.com or alice@example.org",
        "Parse this receipt into JSON with fields merchant, total and date.",
        "List all the dates mentioned in this contract: signed on 3 May 2021, renewed on 1 June 2022.",
        "Pull out the company names from this press release: Acme and Globex announced a merger.",
        "Return the customer's name and order id as JSON: Hi, I'm Jane, order #5521",
    ],
    TaskType.CLASSIFICATION: [
        "Classify this support ticket as billing, technical or account.",
        'What is the sentiment of this review: "The battery died after two days."',
        "Categorize these expenses: taxi $20, lunch $15, hotel $200.",
        'Is this email spam or not? "You won a free cruise!"',
        'Which category does this product belong to: "wireless earbuds"?',
        "Label each of these tweets as positive, negative or neutral.",
        "Choose from the following categories: sports, politics, tech. Headline: 'Local team wins the cup'",
    ],
    TaskType.REASONING: [
        "Solve for x: 3x + 5 = 20",
        "Prove that the square root of 2 is irrational.",
        "A train leaves at 3 pm going 60 mph. How long does it take to travel 150 miles?",
        "Calculate the compound interest on $1,000 at 5% for 3 years.",
        "What is 17 * 23?",
        "Think step by step: if all bloops are razzies and all razzies are lazzies, are all bloops lazzies?",
        "What's the derivative of x^2 * sin(x)?",
        "What is 100 - 37?",
        "Simplify the fraction 84/126.",
    ],
    TaskType.CREATIVE_WRITING: [
        "Write a poem about the ocean at night.",
        "Tell me a bedtime story about a dragon who is afraid of the dark.",
        "A haiku about autumn leaves, please.",
        "Compose song lyrics about a summer road trip.",
        "Write a limerick about a cat from Peru.",
        "Write a short screenplay scene where two detectives argue.",
        "Write a script for my YouTube video about baking bread.",
        "Once upon a time, a lighthouse keeper found a message in a bottle... go on.",
    ],
    TaskType.CHAT: [
        "How are you today?",
        "Tell me about the history of Rome.",
        "What's the weather usually like in Lisbon in May?",
        "Explain how photosynthesis works.",
        "Is Python a good first programming language?",
    ],
}

# Requests whose shape, not their wording, decides the task.
SHAPED: dict[TaskType, list[ChatRequest]] = {
    TaskType.VISION: [
        chat(with_image("What is in this picture?")),
        chat(with_image("Transcribe the handwriting on this note.")),
        chat("And the second one?", history=({"role": "user", "content": with_image("Compare these charts.")},)),
    ],
    TaskType.LONG_CONTEXT: [
        chat("Here is our employee handbook:\n" + LONG_DOCUMENT + "\nWhat is the vacation policy?"),
        chat("Any thoughts?", system="Reference material:\n" + LONG_DOCUMENT),
        chat("Answer from the transcript.", history=({"role": "user", "content": LONG_DOCUMENT},)),
    ],
    TaskType.TOOL_USE: [
        chat("What's the weather in Paris?", tools=[WEATHER_TOOL]),
        chat("Book a table for two at 7pm.", tools=[WEATHER_TOOL, WEATHER_TOOL], tool_choice="auto"),
        chat("Look up the forecast.", functions=[WEATHER_TOOL["function"]]),
    ],
    TaskType.EXTRACTION: [
        chat("Jane Doe, 34, lives in Oslo.", response_format={"type": "json_object"}),
        chat(
            "Order #5521 shipped on 3 May.",
            response_format={"type": "json_schema", "json_schema": {"name": "order", "schema": {"type": "object"}}},
        ),
        chat("Describe the weather.", system="Answer as JSON.", response_format={"type": "json_object"}),
    ],
}

TEXT_CASES = [(task, prompt) for task, prompts in PROMPTS.items() for prompt in prompts]
SHAPED_CASES = [(task, req) for task, reqs in SHAPED.items() for req in reqs]


def _id(value) -> str:
    return value.value if isinstance(value, TaskType) else str(value)[:40]


@pytest.mark.parametrize(("task", "prompt"), TEXT_CASES, ids=_id)
def test_realistic_prompt_is_detected_as_its_task(task, prompt):
    decision = detect_task(chat(prompt))

    assert decision.task == task, decision.reason
    assert decision.source == ("default" if task == TaskType.CHAT else "rules")


@pytest.mark.parametrize(("task", "req"), SHAPED_CASES, ids=_id)
def test_request_shape_decides_vision_long_context_tools_and_json(task, req):
    decision = detect_task(req)

    assert decision.task == task, decision.reason
    assert decision.source == "rules"


def test_every_task_has_at_least_three_realistic_examples():
    counts = {t: len(PROMPTS.get(t, [])) + len(SHAPED.get(t, [])) for t in TaskType}
    assert all(n >= 3 for n in counts.values()), counts


# --- look-alikes that must not be detected as the task they resemble ---------------------
NEAR_MISSES = [
    ("I love translating books as a hobby, what do you do?", TaskType.TRANSLATION),
    ("I'm getting into French cooking, any tips?", TaskType.TRANSLATION),
    ("It was translated into French in 1902, right?", TaskType.TRANSLATION),
    ("What is the best way to learn Spanish?", TaskType.TRANSLATION),
    ("Tell me about the history of Rome.", TaskType.CREATIVE_WRITING),  # "story" inside "history"
    ("My history teacher mentioned Napoleon today.", TaskType.CREATIVE_WRITING),
    ("Tell me the story of how Apple was founded.", TaskType.CREATIVE_WRITING),
    ("Write a user story for the login feature.", TaskType.CREATIVE_WRITING),
    ("Can you recommend some good songs for a road trip?", TaskType.CREATIVE_WRITING),
    ("What does this poem mean to you?", TaskType.CREATIVE_WRITING),
    ("Write a poem about functions in mathematics.", TaskType.CODE_GENERATION),
    ("Write a blog post about why Python is popular.", TaskType.CODE_GENERATION),
    ("Write an email to my team about the new holiday schedule.", TaskType.CODE_GENERATION),
    ("Create a class schedule for my yoga studio.", TaskType.CODE_GENERATION),
    ("Write a code of conduct for our open-source project.", TaskType.CODE_GENERATION),
    ("Create a discount code for our spring sale announcement.", TaskType.CODE_GENERATION),
    ("Make a swift decision: pizza or pasta tonight?", TaskType.CODE_GENERATION),
    ("Create a workout program for a beginner.", TaskType.CODE_GENERATION),
    ("My typewriter is broken, where can I get it repaired?", TaskType.CODE_GENERATION),  # "write" inside
    ("Why did my blood test come back with high cholesterol?", TaskType.CODE_REVIEW),
    ("Explain the function of the liver.", TaskType.CODE_REVIEW),
    ("Find the errors in my essay's argument.", TaskType.CODE_REVIEW),
    ("My code review meeting is at 3, how do I prepare mentally?", TaskType.CODE_REVIEW),
    ("What is a summary judgment in US law?", TaskType.SUMMARIZATION),
    ("What are the key points to remember when negotiating salary?", TaskType.SUMMARIZATION),
    ("How much vanilla extract should I add to cookies?", TaskType.EXTRACTION),
    ("Tell me about the declassified CIA documents.", TaskType.CLASSIFICATION),
    ("What is the label on a wine bottle supposed to tell me?", TaskType.CLASSIFICATION),
    ("Which one of these options is cheaper, a train or a plane?", TaskType.CLASSIFICATION),
    ("How can I solve my problem with my noisy neighbour?", TaskType.REASONING),
    ("I need to prove to my boss that I am ready for a promotion.", TaskType.REASONING),
    ("How many people live in Tokyo in 2024?", TaskType.REASONING),
    ("Cook the pasta for 8 - 10 minutes, then what?", TaskType.REASONING),
    ("Our meeting is on 2024-05-01, add 3/4 cup of sugar.", TaskType.REASONING),
    ("I want to write a novel someday, any advice?", TaskType.CREATIVE_WRITING),
]


@pytest.mark.parametrize(("prompt", "resembles"), NEAR_MISSES, ids=_id)
def test_near_miss_is_not_detected_as_the_task_it_resembles(prompt, resembles):
    decision = detect_task(chat(prompt))

    assert decision.task != resembles, decision.reason


def test_near_misses_without_any_other_signal_are_general_chat():
    decisions = [detect_task(chat(prompt)) for prompt, _ in NEAR_MISSES[:5]]

    assert {d.task for d in decisions} == {TaskType.CHAT}
    assert {d.source for d in decisions} == {"default"}


# --- the system prompt ---------------------------------------------------------------------
SYSTEM_PROMPTS = [
    (TaskType.TRANSLATION, "You are a professional translator. Translate everything into French."),
    (TaskType.TRANSLATION, "Translate the user's message into German. Keep the tone."),
    (TaskType.SUMMARIZATION, "You are an assistant that summarizes legal documents for busy lawyers."),
    (TaskType.SUMMARIZATION, "Your task is to summarize the text the user provides in 3 bullet points."),
    (TaskType.CLASSIFICATION, "Classify each incoming ticket as billing, bug or feature request."),
    (TaskType.EXTRACTION, "Extract the invoice number, date and total from the user's text."),
    (TaskType.CODE_REVIEW, "You are a senior code reviewer."),
    (TaskType.CODE_GENERATION, "You are an expert Python developer."),
    (TaskType.CREATIVE_WRITING, "You are a poet who writes in the style of Emily Dickinson."),
    (TaskType.REASONING, "You are a patient math tutor."),
    (TaskType.CODE_REVIEW, "Be thorough. Review the code the user sends for security issues."),
    (TaskType.CODE_GENERATION, "Write only code, no explanations."),
    (TaskType.CLASSIFICATION, "You are a sentiment classifier."),
    (TaskType.EXTRACTION, "You are an information extraction assistant."),
    (TaskType.REASONING, "Solve math problems and show each step."),
    (TaskType.CREATIVE_WRITING, "Write poems in the voice of a pirate."),
]


@pytest.mark.parametrize(("task", "system"), SYSTEM_PROMPTS, ids=_id)
def test_system_prompt_decides_when_the_user_message_says_nothing_recognisable(task, system):
    decision = detect_task(chat("Good morning! Here is today's text: we ship on Monday.", system=system))

    assert decision.task == task, decision.reason
    assert "system prompt" in decision.reason


@pytest.mark.parametrize(
    "system",
    [
        "You are a helpful assistant. If the user asks you to translate, reply in the target language.",
        "You are a helpful assistant for developers. Be concise.",
        "You always review your answers before sending them.",
    ],
)
def test_general_system_prompts_that_mention_a_task_in_passing_are_chat(system):
    assert detect_task(chat("What's a good name for a cat?", system=system)).task == TaskType.CHAT


def test_developer_role_counts_as_system_prompt():
    req = ChatRequest(
        model="m",
        messages=[
            {"role": "developer", "content": "Summarize what the user sends."},
            {"role": "user", "content": "..."},
        ],
    )

    assert detect_task(req).task == TaskType.SUMMARIZATION


# --- coverage of the tables ------------------------------------------------------------------
def test_every_rule_row_matches_some_example():
    """A row that no example reaches is dead weight or a broken regex."""
    texts = [Text.of(prompt) for _, prompt in TEXT_CASES] + [Text.of("\n" + system) for _, system in SYSTEM_PROMPTS]
    for rule in USER_RULES + SYSTEM_RULES:
        assert any(rule.search(text) for text in texts), (rule.task, rule.triggers[:3])


# --- determinism and explanations -----------------------------------------------------------
ALL_REQUESTS = (
    [chat(prompt) for _, prompt in TEXT_CASES]
    + [req for _, req in SHAPED_CASES]
    + [chat(prompt) for prompt, _ in NEAR_MISSES]
    + [chat("x", system=system) for _, system in SYSTEM_PROMPTS]
)
ALL_DECISIONS = (
    [detect_task(req) for req in ALL_REQUESTS]
    + [detect_task(chat("Hello"), hint="json"), detect_task(chat("Hello", metadata={"task": "nope"}))]
    + [detect_task(chat("Classify: spam?", response_format={"type": "json_object"}))]
)


def test_same_request_gives_the_same_decision():
    for req in ALL_REQUESTS:
        copy = dataclasses.replace(req, messages=[dict(m) for m in req.messages])
        assert detect_task(req) == detect_task(req) == detect_task(copy)


def test_every_reason_is_one_plain_sentence():
    for decision in ALL_DECISIONS:
        reason = decision.reason
        assert re.fullmatch(r"[A-Z][^\n]{10,300}\.", reason), reason
        assert not re.search(r"[.!?] [A-Z]", reason), reason
        assert decision.source in {"hint", "rules", "default"}
