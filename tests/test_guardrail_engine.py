"""guardrails.engine and the kinds that need no detector module: decisions, typed
placeholders, restoring, the stream check at every chunk size, failures by on_error."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from guardrails.engine import StreamCheck, Vault, check_input, check_output
from guardrails.kinds import KINDS, ParamError
from guardrails.policy import GuardrailInfo, info
from providers.types import ChatChunk
from routing.stages.guard import GuardrailBlocked, _GuardFilter, _State


def guard(name="g", kind="keywords", action="redact", stage="both", on_error="block", restore=False, **params):
    row = SimpleNamespace(id=1, name=name, kind=kind, stage=stage, action=action, on_error=on_error,
                          restore=restore, params=params)
    return info(row)


def words(*w, **kw) -> GuardrailInfo:
    return guard(kind="keywords", words=list(w), **kw)


def run_input(guards, *texts, vault=None):
    vault = vault or Vault(texts)
    return asyncio.run(check_input(guards, list(texts), vault)), vault


# --- parameters ------------------------------------------------------------------------
def test_parameters_are_validated_by_the_kinds_schema():
    with pytest.raises(ParamError) as bad:
        KINDS["regex"].clean({"patterns": ["(unclosed"]})
    assert bad.value.param == "patterns" and "does not compile" in bad.value.message
    with pytest.raises(ParamError, match="matches the empty string"):
        KINDS["regex"].clean({"patterns": ["a*"]})
    with pytest.raises(ParamError, match="unknown parameter"):
        KINDS["keywords"].clean({"words": ["x"], "wrods": ["y"]})
    with pytest.raises(ParamError, match="required"):
        KINDS["keywords"].clean({})
    with pytest.raises(ParamError, match="at least 1"):
        KINDS["max_input_tokens"].clean({"max_tokens": 0})
    with pytest.raises(ParamError, match="at most 1"):
        KINDS["classifier"].clean({"route": "moderation", "threshold": 1.5})
    assert KINDS["keywords"].clean({"words": "alpha\n\n beta \nalpha"}) == {"words": ["alpha", "beta"]}


def test_a_guardrail_with_broken_parameters_fails_as_its_on_error_says():
    closed = guard(kind="regex", action="block", patterns=["("])
    assert closed.check is None and closed.broken
    result, _ = run_input([closed], "anything")
    assert result.blocked_by is not None and result.blocked_by.outcome == "error_blocked"
    opened = guard(kind="regex", action="block", on_error="allow", patterns=["("])
    result, _ = run_input([opened], "anything")
    assert result.blocked_by is None and [d.outcome for d in result.decisions] == ["error_allowed"]


# --- input --------------------------------------------------------------------------------
def test_keywords_match_whole_words_ignoring_case_only():
    g = words("project-nightingale", "ass", action="block")
    assert run_input([g], "Tell me about Project-Nightingale.")[0].blocked_by is not None
    assert run_input([g], "a class of its own, passing grade")[0].decisions == []


def test_redaction_uses_typed_numbered_placeholders_the_same_for_the_same_value():
    g = guard(kind="regex", patterns=[r"PRJ-\d{4}"], entity="project_code", restore=True)
    result, vault = run_input([g], "PRJ-1234 and PRJ-9999", "again PRJ-1234")
    assert result.texts == ["[PROJECT_CODE_1] and [PROJECT_CODE_2]", "again [PROJECT_CODE_1]"]
    assert result.decisions[0].entities == {"project_code": 3}
    assert vault.restore("see [PROJECT_CODE_2], not [PROJECT_CODE_7]") == "see PRJ-9999, not [PROJECT_CODE_7]"


def test_a_placeholder_the_client_wrote_itself_is_never_taken_for_ours():
    g = guard(kind="regex", patterns=[r"PRJ-\d{4}"], entity="project_code", restore=True)
    result, vault = run_input([g], "[PROJECT_CODE_1] is literal; PRJ-1234 is not")
    assert result.texts == ["[PROJECT_CODE_1] is literal; [PROJECT_CODE_2] is not"]
    assert vault.restore("[PROJECT_CODE_1] [PROJECT_CODE_2]") == "[PROJECT_CODE_1] PRJ-1234"


def test_without_restore_placeholders_stay_in_the_answer():
    g = guard(kind="regex", patterns=[r"PRJ-\d{4}"], entity="code")
    _, vault = run_input([g], "PRJ-1234")
    assert vault.restore("about [CODE_1]") == "about [CODE_1]"


def test_flag_changes_nothing_but_is_decided():
    g = words("nightingale", action="flag")
    result, _ = run_input([g], "nightingale")
    assert result.texts == ["nightingale"] and not result.changed
    assert [(d.outcome, dict(d.entities)) for d in result.decisions] == [("flagged", {"keyword": 1})]


def test_block_wins_over_redaction_and_nothing_is_rewritten():
    result, _ = run_input([words("a1", action="redact"), words("b2", action="block")], "a1 b2")
    assert result.blocked_by.guardrail.name == "g" and result.texts == ["a1 b2"]


def test_max_input_tokens_counts_the_whole_prompt():
    g = guard(kind="max_input_tokens", action="block", stage="input", max_tokens=10)
    assert run_input([g], "x" * 20, "y" * 20)[0].blocked_by is None  # 40 characters ~ 10 tokens
    assert run_input([g], "x" * 24, "y" * 24)[0].blocked_by is not None


def test_a_detector_that_raises_fails_closed_by_default_and_open_when_asked():
    class Boom:
        def find(self, text):
            raise RuntimeError("detector bug")

        def hold(self, text):
            return 0

    closed = guard(kind="keywords", action="redact", words=["x"])
    object.__setattr__(closed, "check", Boom())
    result, _ = run_input([closed], "text")
    assert result.blocked_by.outcome == "error_blocked"
    opened = guard(kind="keywords", action="redact", on_error="allow", words=["x"])
    object.__setattr__(opened, "check", Boom())
    result, _ = run_input([opened], "text")
    assert result.blocked_by is None and result.texts == ["text"]


def test_a_regex_that_backtracks_catastrophically_is_an_error_not_a_stall():
    g = guard(kind="regex", action="block", on_error="allow", patterns=[r"(a|aa)+b"])
    result, _ = run_input([g], "a" * 60)
    assert [d.outcome for d in result.decisions] == ["error_allowed"]


# --- output -----------------------------------------------------------------------------
def test_output_redacts_new_findings_and_restores_ours():
    g_in = guard(kind="regex", patterns=[r"PRJ-\d{4}"], entity="code", restore=True)
    _, vault = run_input([g_in], "PRJ-1234")
    g_out = guard(kind="regex", patterns=[r"PRJ-\d{4}"], entity="code")
    out = check_output([g_out], "[CODE_1] is like PRJ-5555", vault)
    assert out.text == "PRJ-1234 is like [CODE_2]"  # the provider's own finding is not restorable


# --- streams ----------------------------------------------------------------------------
def stream_through(guards, text, size, vault=None, max_hold=512):
    """The guard filter over `text` cut into chunks of `size` characters."""
    vault = vault or Vault()
    state = _State(tuple(guards), vault, who=None)
    call = SimpleNamespace(annotations={}, annotate=lambda stage, **kv: None)
    f = _GuardFilter(call, state, SimpleNamespace(_note_output=lambda c, s: None))
    f.max_hold = max_hold
    out = []
    for i in range(0, len(text), size):
        for c in f.feed(ChatChunk("m", [{"index": 0, "delta": {"content": text[i:i + size]}, "finish_reason": None}])):
            out.extend(ch["delta"].get("content") or "" for ch in c.choices)
    for c in f.feed(ChatChunk("m", [{"index": 0, "delta": {}, "finish_reason": "stop"}])) + f.flush():
        out.extend(ch["delta"].get("content") or "" for ch in c.choices)
    return "".join(out), state


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 1000])
def test_a_stream_is_redacted_and_restored_whatever_the_chunk_size(size):
    g_in = guard(kind="regex", patterns=[r"PRJ-\d{4}"], entity="code", restore=True)
    _, vault = run_input([g_in], "PRJ-1234")
    g_out = guard(kind="regex", patterns=[r"PRJ-\d{4}"], entity="code")
    text = "Sure: [CODE_1] is done, PRJ-7777 is next, [CODE_1] again; [CODE_9] is not ours."
    got, state = stream_through([g_out], text, size, vault)
    assert got == "Sure: PRJ-1234 is done, [CODE_2] is next, PRJ-1234 again; [CODE_9] is not ours."
    assert state.output["g"].entities == {"code": 1}


@pytest.mark.parametrize("size", [1, 4, 1000])
def test_a_banned_word_ends_the_stream_before_any_of_it_is_sent(size):
    g = words("project-nightingale", action="block")
    sent = []
    with pytest.raises(GuardrailBlocked) as blocked:
        vault = Vault()
        state = _State((g,), vault, who=None)
        f = _GuardFilter(SimpleNamespace(), state, SimpleNamespace(_note_output=lambda c, s: None))
        text = "The codename is project-nightingale, do not tell."
        for i in range(0, len(text), size):
            for c in f.feed(ChatChunk("m", [{"index": 0, "delta": {"content": text[i:i + size]}}])):
                sent.extend(ch["delta"].get("content") or "" for ch in c.choices)
    assert "nightingale" not in "".join(sent) and "project-n" not in "".join(sent)
    assert blocked.value.code == "content_policy_violation"
    assert "project" not in blocked.value.message.replace("guardrail 'g'", "")


def test_a_stream_without_suspicious_tails_is_released_at_once():
    g = words("project-nightingale", action="block")
    vault = Vault()
    state = _State((g,), vault, who=None)
    f = _GuardFilter(SimpleNamespace(), state, SimpleNamespace(_note_output=lambda c, s: None))
    out = f.feed(ChatChunk("m", [{"index": 0, "delta": {"content": "Hello there, "}}]))
    assert out[0].choices[0]["delta"]["content"] == "Hello there, "  # nothing held


def test_the_hold_back_is_bounded():
    g = guard(kind="regex", patterns=[r"A+B"], entity="x")  # any run of A could still become a match
    got, _ = stream_through([g], "A" * 100 + " end", 1, max_hold=10)
    assert got == "A" * 100 + " end"


def test_stream_check_context_sees_text_already_sent():
    check = StreamCheck([words("alpha beta", action="redact")], Vault())
    out1, keep1 = check.process("say alpha", False)
    assert out1 == "say " and keep1 == "alpha"  # could become "alpha beta"
    out2, keep2 = check.process(keep1 + " beta!", True)
    assert out2 == "[KEYWORD_1]!" and keep2 == ""


def stream_chunks(guards, chunks):
    """(what the client got after each chunk, all of it)."""
    state = _State(tuple(guards), Vault(), who=None)
    f = _GuardFilter(SimpleNamespace(annotate=lambda *a, **k: None), state,
                     SimpleNamespace(_note_output=lambda c, s: None))
    got = []
    for text in chunks:
        out = f.feed(ChatChunk("m", [{"index": 0, "delta": {"content": text}, "finish_reason": None}]))
        got.append("".join(ch["delta"].get("content") or "" for c in out for ch in c.choices))
    rest = f.feed(ChatChunk("m", [{"index": 0, "delta": {}, "finish_reason": "stop"}])) + f.flush()
    got.append("".join(ch["delta"].get("content") or "" for c in rest for ch in c.choices))
    return got, "".join(got)


LLM_CHUNKS = ["Write", " to", " john", ".doe", "@exam", "ple", ".com", " today", "."]


def test_by_default_an_address_split_before_its_at_sign_is_caught_whole():
    per_chunk, text = stream_chunks([guard(kind="pii", stage="output", entities=["email"])], LLM_CHUNKS)
    assert text == "Write to [EMAIL_1] today."
    assert per_chunk[0] == ""  # "Write" could still become an address: held one chunk


def test_at_sign_mode_streams_prose_at_once_and_redacts_an_address_from_its_at_sign():
    g = guard(kind="pii", stage="output", entities=["email"], stream_hold="at_sign")
    per_chunk, text = stream_chunks([g], LLM_CHUNKS)
    assert per_chunk[:3] == ["Write", " to", " john"]  # nothing held
    assert "@exam" not in text and "example.com" not in text and text.endswith(" today.")
    assert text.startswith("Write to john.doe[EMAIL_")


def test_stream_hold_is_one_of_its_choices():
    with pytest.raises(ParamError, match="must be one of"):
        KINDS["pii"].clean({"stream_hold": "never"})
    assert KINDS["pii"].clean({})["stream_hold"] == "words"
