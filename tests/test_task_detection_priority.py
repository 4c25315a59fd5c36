"""Task detection priority and reading: the request's shape beats wording in a fixed
order, the last user message beats the system prompt, and only the parts of a message
the rules are meant to read are read. Pure functions: no database, no network."""

from __future__ import annotations

from providers.types import ChatRequest
from routing.task_detection import TaskDecision, TaskType, detect_task
from tests.task_detection_helpers import ARTICLE, LONG_DOCUMENT, WEATHER_TOOL, chat, with_image


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
