"""The stricter rules read on the system prompt, when the last user message matched none:
only sentence starts count (an instruction, or a role the assistant is given)."""

from __future__ import annotations

from .matching import Rule, rule
from .types import TaskType

# A system prompt sentence that starts with an instruction: "Translate ...", "You will
# translate ...", "Your task is to translate ...", "Please translate ...".
INSTRUCTION = (
    r"[\n.!?:;]\s*(?:(?:you(?:\s+(?:will|should|must|always|only))?|your\s+(?:job|task|role|goal|purpose)\s+is\s+to"
    r"|please)\s+)?"
)
# ... or sets a role: "You are a professional translator", "You are an assistant that translates".
ROLE = r"[\n.!?:;]\s*you\s+are\s+(?:[^.!?\n]{0,60}?\s)?"


def system_rules(
    task: TaskType, instructions: tuple[str, ...], roles: tuple[str, ...], reason: str
) -> tuple[Rule, Rule]:
    """The two system-prompt rows of a task: an instruction, or a role.

    Only sentence starts count, so "If the user asks you to translate, ..." in a general
    assistant's system prompt does not make every request a translation.
    """
    return rule(task, instructions, reason, before=INSTRUCTION), rule(task, roles, reason, before=ROLE)


# --- rules for the system prompt, read only when the last user message matched none ---------
SYSTEM_RULES: tuple[Rule, ...] = (
    *system_rules(
        TaskType.CODE_REVIEW,
        ("review code", "review the code", "review the user's code", "review pull requests", "review diffs",
         "audit code", "debug code", "debug the code"),
        ("code reviewer", "debugger", "debugging assistant", "that reviews code", "who reviews code"),
        "The {where} sets the assistant up to review or debug code ('{match}').",
    ),
    *system_rules(
        TaskType.CODE_GENERATION,
        ("write code", "write only code", "write the code", "generate code"),
        ("programmer", "software engineer", "software developer", "developer", "coding assistant", "coder",
         "that writes code", "who writes code"),
        "The {where} sets the assistant up to write code ('{match}').",
    ),
    *system_rules(
        TaskType.TRANSLATION,
        ("translate",),
        ("translator", "interpreter", "translation assistant", "translation engine", "translation tool",
         "translation model", "translation bot", "that translates", "who translates"),
        "The {where} sets the assistant up to translate ('{match}').",
    ),
    *system_rules(
        TaskType.SUMMARIZATION,
        ("summarize", "summarise", "condense"),
        ("summarizer", "summariser", "summarization assistant", "summarisation assistant", "summarization tool",
         "summarization model", "that summarizes", "that summarises", "who summarizes", "who summarises",
         "that condenses"),
        "The {where} sets the assistant up to summarize ('{match}').",
    ),
    *system_rules(
        TaskType.CLASSIFICATION,
        ("classify", "categorize", "categorise", "label each", "label every", "label the", "tag each", "tag every",
         "tag the"),
        ("classifier", "classification assistant", "classification model", "sentiment analyzer",
         "sentiment analyser", "that classifies", "who classifies", "that categorizes", "that categorises"),
        "The {where} sets the assistant up to classify ('{match}').",
    ),
    *system_rules(
        TaskType.EXTRACTION,
        ("extract", "parse"),
        ("extractor", "extraction assistant", "extraction tool", "extraction model", "extraction engine", "parser",
         "that extracts", "who extracts", "that parses"),
        "The {where} sets the assistant up to extract data ('{match}').",
    ),
    *system_rules(
        TaskType.REASONING,
        ("solve math", "solve maths", "solve the math"),
        ("mathematician", "math tutor", "maths tutor", "math teacher", "maths teacher", "mathematics tutor",
         "mathematics teacher", "math expert", "math assistant", "logician"),
        "The {where} sets the assistant up for math or reasoning ('{match}').",
    ),
    *system_rules(
        TaskType.CREATIVE_WRITING,
        ("write poems", "write stories", "write poetry", "write song lyrics", "write lyrics", "write fiction"),
        ("poet", "novelist", "storyteller", "songwriter", "lyricist", "screenwriter", "playwright",
         "creative writer", "fiction writer", "creative writing assistant"),
        "The {where} sets the assistant up for creative writing ('{match}').",
    ),
)
