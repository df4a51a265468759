"""LLM-Culture's prompt library and personalities, word for word, as named presets.

Perez et al. (2024), "Cultural evolution in populations of Large Language Models", ran
their studies with the software at https://github.com/flowersteam/LLM-Culture
(MIT License, Copyright (c) 2024-2026 Jérémy Perez). These texts are copied verbatim from
its parameter files, so a scenario can restate their designs with their exact words
instead of paraphrases:

- ``PROMPT_INIT`` (the first story):
  ``llm_culture/data/parameters/prompt_init.json`` at commit
  02272d57ca885892620493bebd4ce2ad37c21e5a
- ``PROMPT_UPDATE`` (every later story, followed by the stories received):
  ``llm_culture/data/parameters/prompt_update.json`` at the same commit
- ``PERSONALITIES``: ``llm_culture/data/parameters/personalities.json`` at the same
  commit, plus the entries of the older ``llm_culture/data/parameters/personnalities.json``
  at commit 3c0a2bef9a1f77fc292be012c6f6e54d8e05690a that the newer file dropped (the
  names "Very creative" and "Not Creative" of their published creative/not-creative runs,
  and the book genres). "Empty" is a single space, as in their file: their runs with
  "Empty" agents sent " \\n" before the instruction, no neutral persona.

Each preset keeps its source (``Preset.source``: the file's URL at that commit).
``tests/data/llm_culture/`` holds copies of those files, and a test checks every text here
against them.

How their code used these texts (``llm_culture/simulation/agent.py``, same commit), which
scenario keys restate: the personality goes at the head of the user message, joined by a
newline (``culture.personality_in: user``), with no system message; the update prompt is
followed directly by the stories received as a Python list of ``"i: story"`` strings
numbered from 0 (``culture.ideas_format: python_list``); every neighbour's story is shown
and the model picks among them (``culture.transform_shows: all`` for the transform
operation; combine always shows all).
"""

from __future__ import annotations

from dataclasses import dataclass

REPOSITORY = "https://github.com/flowersteam/LLM-Culture"
COMMIT = "02272d57ca885892620493bebd4ce2ad37c21e5a"
OLD_COMMIT = "3c0a2bef9a1f77fc292be012c6f6e54d8e05690a"
LICENSE = "MIT License, Copyright (c) 2024-2026 Jérémy Perez"

_INIT = f"{REPOSITORY}/blob/{COMMIT}/llm_culture/data/parameters/prompt_init.json"
_UPDATE = f"{REPOSITORY}/blob/{COMMIT}/llm_culture/data/parameters/prompt_update.json"
_PERSONALITIES = f"{REPOSITORY}/blob/{COMMIT}/llm_culture/data/parameters/personalities.json"
_OLD_PERSONALITIES = f"{REPOSITORY}/blob/{OLD_COMMIT}/llm_culture/data/parameters/personnalities.json"


@dataclass(frozen=True)
class Preset:
    """One named text of LLM-Culture and the file (at a commit) it is copied from."""

    name: str
    text: str
    source: str


def _table(source: str, entries: list[tuple[str, str]]) -> dict[str, Preset]:
    return {name: Preset(name, text, source) for name, text in entries}


# prompt_init.json: what an agent is asked when it has received nothing yet
PROMPT_INIT: dict[str, Preset] = _table(_INIT, [
    ("story teller", "Create a story. Just output the story, nothing else."),
    ("kid", "Imagine that you are telling a story to your kid. What would that story be? "
            "Just output the story, nothing else."),
    ("simple", "Tell me a story."),
    ("translator", "Create a story in English."),
    ("ShortTest", "Output a two-sentences story. Just output the story, nothing else."),
    ("100words story", "Create a story of about 100 words. Just output the story, nothing else."),
    ("100words kid", "Imagine that you are telling a story to your kid. What would that sory be? "
                     "It has to be about 100 words long. Just output the story, do not output "
                     "anything else. "),
    ("long story", "Create a long story."),
])

# prompt_update.json: what an agent is asked with its neighbours' stories appended
PROMPT_UPDATE: dict[str, Preset] = _table(_UPDATE, [
    ("CombineTwo", "You will receive stories. Pick the two stories you prefer, and create a story "
                   "that is combination of these two stories. Just output your story, don't write "
                   "anything else."),
    ("MinorChanges", "You will receive a list of one or more stories. Create a new story by making "
                     "some minor changes to one of those stories. Just output one story, do not "
                     "output anything else."),
    ("Repeat", "You will receive stories. Select only one of these stories, and repeat it. Just "
               "output the story, don't write anything else."),
    ("MaximizeDifference", "You will receive stories. Create a story that is as different as "
                           "possible from the stories you received. Just output your story, nothing "
                           "else."),
    ("kid", "Here is one or more stories you were told as a kid. It is now your turn to tell a story "
            "at your kid. Tell that story. Write only one story. Do not output anything else."),
])

# personalities.json, then what only the older personnalities.json had
PERSONALITIES: dict[str, Preset] = {
    **_table(_PERSONALITIES, [
        ("Empty", " "),
        ("Traditional society", "Pretend that you come from a very traditional society."),
        ("Secular society", "Pretend that you come from a very secular society."),
        ("Positive", "For what follows, pretend that you are a very positive person. "),
        ("Negative", "For what follows, pretend that you are a very negative person."),
        ("Creative", "For what follows, pretend that you are a very creative person."),
        ("NotCreative", "For what follows, pretend that you are not a very creative person."),
    ]),
    **_table(_OLD_PERSONALITIES, [
        ("Very creative", "For what follows, pretend that you are a very creative person."),
        ("Not Creative", "For what follows, pretend that you are not a very creative person."),
        ("Post-Modernism", "Your favorite book genre is Post-Modernism."),
        ("Romance", "Your favorite book genre is Romance."),
        ("Sci-Fi", "Your favorite book genre is Science-Fiction."),
    ]),
}

# which table names each operation's preset: create is the first story, transform and
# combine are both their "update" prompt (their code has one update prompt for both)
PROMPTS_BY_OPERATION: dict[str, dict[str, Preset]] = {
    "create": PROMPT_INIT, "transform": PROMPT_UPDATE, "combine": PROMPT_UPDATE,
}
LIBRARIES = ("llm_culture",)


def template(operation: str, name: str) -> str:
    """The culture kind's prompt template for ``operation`` from the preset ``name``.

    Their code appends the stories right after the update prompt with no separator
    (``prompt_update + str([...])``), so the template is the text followed by ``{ideas}``;
    braces in the text (none today) are escaped so they stay literal.
    """
    text = PROMPTS_BY_OPERATION[operation][name].text.replace("{", "{{").replace("}", "}}")
    return text if operation == "create" else text + "{ideas}"
