"""Task detection: realistic prompts land on their task, look-alikes do not, the fixed
priority order holds, client hints override the rules, and every decision explains
itself in one plain sentence. Pure functions: no database, no network."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from providers.types import ChatRequest
from routing.task_detection import (
    HINT_HEADER,
    SYSTEM_RULES,
    USER_RULES,
    TaskDecision,
    TaskType,
    Text,
    detect_task,
    parse_hint,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "task-detection.md"


def chat(user: str | list, *, system: str | None = None, history: tuple[dict, ...] = (), **params) -> ChatRequest:
    metadata = params.pop("metadata", {})
    messages = [{"role": "system", "content": system}] if system else []
    messages += [*history, {"role": "user", "content": user}]
    return ChatRequest(model="task-route", messages=messages, params=params, metadata=metadata)


def with_image(text: str) -> list[dict]:
    return [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]


WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}
ARTICLE = (
    "The central bank raised interest rates by a quarter point on Wednesday, citing persistent inflation in "
    "services and a tight labour market. Officials signalled that further increases were possible. "
)
LONG_DOCUMENT = ARTICLE * 400  # ~80,000 characters, ~20,000 tokens

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


# --- priority -----------------------------------------------------------------------------
def test_an_image_beats_every_wording_rule():
    decision = detect_task(chat(with_image("Summarize this scanned article.")))

    assert decision.task == TaskType.VISION
    assert decision.reason == "A user message contains an image."


def test_an_image_beats_a_long_prompt_and_tools():
    req = chat(with_image("Summarize.") + [{"type": "text", "text": LONG_DOCUMENT}], tools=[WEATHER_TOOL])

    assert detect_task(req).task == TaskType.VISION


def test_an_image_in_an_assistant_message_does_not_count():
    req = chat("Thanks!", history=({"role": "assistant", "content": with_image("Here is your chart.")},))

    assert detect_task(req).task == TaskType.CHAT


def test_a_long_prompt_beats_summarize():
    decision = detect_task(chat("Summarize this document:\n" + LONG_DOCUMENT))

    assert decision.task == TaskType.LONG_CONTEXT
    assert "16,000" in decision.reason


def test_long_context_threshold_is_configurable():
    prompt = "Summarize this article: " + ARTICLE * 10  # ~500 tokens

    assert detect_task(chat(prompt), long_context_tokens=400).task == TaskType.LONG_CONTEXT
    assert detect_task(chat(prompt), long_context_tokens=4000).task == TaskType.SUMMARIZATION


def test_tools_beat_wording():
    decision = detect_task(chat("Translate 'hello' into French.", tools=[WEATHER_TOOL]))

    assert decision.task == TaskType.TOOL_USE
    assert decision.reason == "The request offers the model 1 tool to call."


def test_tools_the_model_may_not_call_do_not_count():
    decision = detect_task(chat("Translate 'hello' into French.", tools=[WEATHER_TOOL], tool_choice="none"))

    assert decision.task == TaskType.TRANSLATION


def test_json_response_format_with_classify_is_classification():
    req = chat("Classify this ticket: 'I was charged twice'.", response_format={"type": "json_object"})
    decision = detect_task(req)

    assert decision.task == TaskType.CLASSIFICATION
    assert decision.reason.startswith("The request asks for JSON output, but the last user message asks to classify")


def test_json_response_format_with_a_classifier_system_prompt_is_classification():
    req = chat("I was charged twice.", system="Classify each ticket by team.", response_format={"type": "json_object"})

    assert detect_task(req).task == TaskType.CLASSIFICATION


def test_json_response_format_beats_other_wording():
    decision = detect_task(chat("Summarize this: " + ARTICLE, response_format={"type": "json_object"}))

    assert decision.task == TaskType.EXTRACTION
    assert decision.reason == "The request asks for the answer as JSON (response_format json_object)."


def test_text_response_format_is_not_json():
    assert detect_task(chat("Hello there!", response_format={"type": "text"})).task == TaskType.CHAT


def test_code_review_beats_code_generation():
    decision = detect_task(chat("Fix this bug and then write unit tests for the function."))

    assert decision.task == TaskType.CODE_REVIEW


def test_code_generation_beats_translation():
    assert detect_task(chat("Translate this Python function into JavaScript.")).task == TaskType.CODE_GENERATION


def test_translation_beats_summarization():
    assert detect_task(chat("Translate this summary into Italian: ...")).task == TaskType.TRANSLATION


def test_only_the_last_user_message_is_read():
    history = (
        {"role": "user", "content": "Write a poem about the sea."},
        {"role": "assistant", "content": "The sea, the sea..."},
    )
    decision = detect_task(chat("Thanks, that's lovely!", history=history))

    assert decision.task == TaskType.CHAT


def test_a_trailing_assistant_message_does_not_hide_the_last_user_message():
    req = chat("Summarize the notes below: ...", history=())
    req.messages.append({"role": "assistant", "content": "Sure, here is"})

    assert detect_task(req).task == TaskType.SUMMARIZATION


def test_the_last_user_message_beats_the_system_prompt():
    decision = detect_task(chat("Summarize this article: " + ARTICLE, system="You are a professional translator."))

    assert decision.task == TaskType.SUMMARIZATION
    assert "last user message" in decision.reason


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


# --- reading the text --------------------------------------------------------------------
def test_content_parts_are_read_like_plain_text():
    req = chat([{"type": "text", "text": "Please summarize"}, {"type": "text", "text": "this article: ..."}])

    assert detect_task(req).task == TaskType.SUMMARIZATION


def test_matching_ignores_case_and_curly_quotes():
    assert detect_task(chat("WHAT’S WRONG WITH MY CODE?")).task == TaskType.CODE_REVIEW


def test_only_the_head_and_tail_of_a_long_message_are_read():
    filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 200  # ~11,000 characters

    assert detect_task(chat(filler + " Summarize. " + filler)).task == TaskType.CHAT
    assert detect_task(chat(filler + filler + " Summarize the above.")).task == TaskType.SUMMARIZATION
    assert detect_task(chat("Summarize the following. " + filler + filler)).task == TaskType.SUMMARIZATION


def test_a_request_without_a_user_message_is_chat():
    req = ChatRequest(model="m", messages=[{"role": "system", "content": "Be brief."}])

    assert detect_task(req) == TaskDecision(
        TaskType.CHAT, "default", "No rule matched, so the request is treated as general chat."
    )


def test_reason_quotes_the_clients_own_words():
    decision = detect_task(chat("Please SUMMARIZE this for me: ..."))

    assert decision.reason == "The last user message asks for a summary ('SUMMARIZE')."


def test_reason_quotes_whole_words_of_an_unknown_error_name():
    decision = detect_task(chat("Prod logs show java.lang.MyCustomException: boom"))

    assert decision.task == TaskType.CODE_REVIEW
    assert decision.reason == "The last user message contains an error message ('MyCustomException')."


# --- hints --------------------------------------------------------------------------------
def test_hint_header_name():
    assert HINT_HEADER == "x-gateway-task"


def test_header_hint_overrides_the_rules():
    decision = detect_task(chat(with_image("Summarize this.")), hint="code_generation")

    assert decision == TaskDecision(
        TaskType.CODE_GENERATION,
        "hint",
        "The client asked for the Code generation task via the x-gateway-task header ('code_generation').",
    )


def test_metadata_hint_overrides_the_rules():
    decision = detect_task(chat("Write a poem about rain.", metadata={"task": "translation"}))

    assert decision.task == TaskType.TRANSLATION
    assert decision.source == "hint"
    assert "metadata.task" in decision.reason


def test_header_hint_beats_metadata_hint():
    decision = detect_task(chat("Hello", metadata={"task": "summarization"}), hint="reasoning")

    assert decision.task == TaskType.REASONING
    assert "header" in decision.reason


@pytest.mark.parametrize(
    ("hint", "task"),
    [
        ("code", TaskType.CODE_GENERATION),
        ("summarize", TaskType.SUMMARIZATION),
        ("summary", TaskType.SUMMARIZATION),
        ("json", TaskType.EXTRACTION),
        ("math", TaskType.REASONING),
        ("creative", TaskType.CREATIVE_WRITING),
        ("translate", TaskType.TRANSLATION),
        ("debug", TaskType.CODE_REVIEW),
        ("tools", TaskType.TOOL_USE),
        ("CODE_REVIEW", TaskType.CODE_REVIEW),
        ("Code-Generation", TaskType.CODE_GENERATION),
        ("  long context ", TaskType.LONG_CONTEXT),
    ],
)
def test_hint_accepts_values_aliases_and_any_case(hint, task):
    assert parse_hint(hint) == task
    assert detect_task(chat("Hello"), hint=hint).task == task


@pytest.mark.parametrize("task", list(TaskType))
def test_every_task_value_is_a_valid_hint(task):
    for hint in (task.value, task.value.upper()):
        decision = detect_task(chat("Hello"), hint=hint)
        assert (decision.task, decision.source) == (task, "hint")


def test_invalid_hint_is_ignored_and_the_reason_says_so():
    decision = detect_task(chat("Summarize this article: ..."), hint="poetry-please")

    assert decision.task == TaskType.SUMMARIZATION
    assert decision.source == "rules"
    assert decision.reason == (
        "The last user message asks for a summary ('Summarize'); "
        "the x-gateway-task header value 'poetry-please' was not recognised as a task, so ignored."
    )


def test_invalid_header_hint_falls_back_to_a_valid_metadata_hint():
    decision = detect_task(chat("Hello", metadata={"task": "math"}), hint="bogus")

    assert decision.task == TaskType.REASONING
    assert decision.source == "hint"
    assert "'bogus' was not recognised" in decision.reason


def test_invalid_metadata_hint_is_ignored_by_the_default_too():
    decision = detect_task(chat("Hello there", metadata={"task": 42}))

    assert decision.task == TaskType.CHAT
    assert decision.source == "default"
    assert "metadata.task value '42' was not recognised" in decision.reason


def test_empty_hints_are_no_hints():
    decision = detect_task(chat("Hello there", metadata={"task": ""}), hint="   ")

    assert decision == detect_task(chat("Hello there"))


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


def test_decision_is_frozen():
    decision = detect_task(chat("Hello"))

    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.task = TaskType.VISION  # type: ignore[misc]


def test_task_type_is_django_text_choices():
    assert TaskType.choices[0] == ("chat", "General chat")
    assert dict(TaskType.choices)["code_review"] == "Code review / debugging"
    assert dict(TaskType.choices)["extraction"] == "Extraction / JSON output"
    assert dict(TaskType.choices)["reasoning"] == "Reasoning / math"
    assert {t.value for t in TaskType} == {
        "chat", "code_generation", "code_review", "summarization", "translation", "extraction", "classification",
        "reasoning", "creative_writing", "long_context", "tool_use", "vision",
    }  # fmt: skip


def test_every_rule_row_matches_some_example():
    """A row that no example reaches is dead weight or a broken regex."""
    texts = [Text.of(prompt) for _, prompt in TEXT_CASES] + [Text.of("\n" + system) for _, system in SYSTEM_PROMPTS]
    for rule in USER_RULES + SYSTEM_RULES:
        assert any(rule.search(text) for text in texts), (rule.task, rule.triggers[:3])


def test_docs_cover_every_task_and_the_hint_header():
    text = DOCS.read_text()
    for task in TaskType:
        assert f"`{task.value}`" in text, task
    assert HINT_HEADER in text
