"""Prompt formats: plain for tokenizers without a chat template, the chat template's own boundary for
those with one, a system prompt and date string passed to the template, and a clear refusal where the
template's prompt is not a prefix of the exchange (no real model: a scratch tokenizer with a template)."""

from __future__ import annotations

import pytest

from bench.core.encoding import PromptFormat, encode_many, format_prompt, prompt_format, prompt_ids, set_prompt_format
from bench.core.errors import FieldError
from bench.models.zoo import train_tokenizer

TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}{% if date_string is defined %} ({{ date_string }})"
            "{% endif %}</s>\n{% endfor %}{% if add_generation_prompt %}<s>assistant:{% endif %}")


@pytest.fixture
def tokenizer():
    texts = ["Question: Where was Ann born?\nAnswer: Ann was born in Rome.", "user: system: assistant: Be brief."] * 20
    return train_tokenizer(texts, 300)


def _decoded(tok, encoded):
    return tok.decode(encoded.input_ids[: encoded.answer_start]), tok.decode(encoded.input_ids[encoded.answer_start:])


def test_auto_is_plain_without_a_chat_template(tokenizer):
    assert prompt_format(tokenizer).format == "plain"
    (enc,) = encode_many(tokenizer, [("Where was Ann born?", "Ann was born in Rome.")], 64)
    prompt, answer = _decoded(tokenizer, enc)
    assert prompt == "<s>" + format_prompt("Where was Ann born?") and answer == " Ann was born in Rome.</s>"


def test_auto_is_chat_with_a_template_and_the_answer_is_what_the_exchange_adds(tokenizer):
    tokenizer.chat_template = TEMPLATE
    assert prompt_format(tokenizer).format == "chat"
    (enc,) = encode_many(tokenizer, [("Where was Ann born?", "Ann was born in Rome.")], 64)
    prompt, answer = _decoded(tokenizer, enc)
    assert prompt == "<s>user: Where was Ann born?</s>\n<s>assistant:"
    assert answer == " Ann was born in Rome.</s>"  # cut after end-of-sequence: the newline is no answer token
    assert enc.input_ids[: enc.answer_start] == prompt_ids(tokenizer, "Where was Ann born?")


def test_plain_chosen_over_a_template_and_chat_refused_without_one(tokenizer):
    with pytest.raises(ValueError, match="chat template"):
        set_prompt_format(tokenizer, PromptFormat("chat"))
    tokenizer.chat_template = TEMPLATE
    set_prompt_format(tokenizer, PromptFormat("plain"))
    assert prompt_ids(tokenizer, "Q?")[1:] == tokenizer(format_prompt("Q?"), add_special_tokens=False)["input_ids"]


def test_system_prompt_and_date_string_reach_the_template(tokenizer):
    tokenizer.chat_template = TEMPLATE
    set_prompt_format(tokenizer, PromptFormat("chat", system_prompt="Be brief.", date_string="5 Dec 2026"))
    text = tokenizer.decode(prompt_ids(tokenizer, "Q?"))
    assert text.startswith("<s>system: Be brief. (5 Dec 2026)</s>\n<s>user: Q? (5 Dec 2026)</s>")


def test_a_template_whose_prompt_is_not_a_prefix_of_the_exchange_is_refused(tokenizer):
    tokenizer.chat_template = TEMPLATE.replace("<s>assistant:{% endif %}", "<s>assistant says:{% endif %}")
    with pytest.raises(ValueError, match="not a prefix"):
        encode_many(tokenizer, [("Q?", "A.")], 64)


def test_an_unknown_format_names_the_allowed_ones():
    with pytest.raises(FieldError, match="auto, plain, chat"):
        PromptFormat("jinja")
