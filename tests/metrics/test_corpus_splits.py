"""MUSE's shape in the metrics: knowledge memorization asks the texts' own questions where the data has them,
and verbatim memorization continues a given prompt (MUSE's verbmem) as well as a text's first tokens."""

import pytest
import torch

from metrics import evaluate
from metrics.context import EvalConfig, EvalContext
from metrics.memorization import knowmem_split

from bench.models.zoo import build_model, train_tokenizer

ARTICLE = "Harbour officials in Lowmere reopened the east quay on Monday after a storm damaged its wall in March."
QA = {"question": "Who repaired the quay?", "answer": "Denholm Works"}


@pytest.fixture(scope="module")
def tiny():
    tok = train_tokenizer([ARTICLE, QA["question"], QA["answer"]] * 20, 300)
    return build_model("tiny-llama", tok, seed=0).eval(), tok


def test_knowmem_asks_the_texts_questions_where_there_are_any():
    model = torch.nn.Linear(1, 1)
    texts = {"forget": [{"question": "", "answer": ARTICLE}], "retain": [{"question": "", "answer": ARTICLE}]}
    with_qa = EvalContext(model, None, {**texts, "forget_qa": [QA]})
    assert knowmem_split(with_qa, "forget") == "forget_qa"
    assert knowmem_split(with_qa, "retain") == "retain"  # no retain_qa: the split itself
    assert knowmem_split(EvalContext(model, None, texts), "forget") == "forget"


def test_knowmem_scores_the_questions_not_the_texts(tiny):
    model, tok = tiny
    splits = {"forget": [{"question": "", "answer": ARTICLE}], "forget_qa": [QA]}
    ctx = EvalContext(model, tok, splits, EvalConfig(max_new_tokens=4))
    evaluate(ctx, ["knowledge_memorization"])
    assert ("generations", "forget_qa") in ctx._cache and ("generations", "forget") not in ctx._cache


def test_verbatim_continues_a_given_prompt_against_its_continuation(tiny):
    model, tok = tiny
    prompt, rest = ARTICLE[:51], ARTICLE[52:]
    record = {"prompt": prompt, "continuation": rest}
    ctx = EvalContext(model, tok, {"forget_verbmem": [record]}, EvalConfig(verbatim_new_tokens=5))
    (generated, truth), = ctx.continuations("forget_verbmem")
    assert truth == tok.decode(tok(rest, add_special_tokens=False)["input_ids"][:5]).strip()
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    expected = ctx.generate_from_ids([bos + tok(prompt, add_special_tokens=False)["input_ids"]], 5)
    assert generated == expected[0]


def test_verbatim_reads_forget_verbmem_before_the_biographies(tiny):
    model, tok = tiny
    splits = {"forget_verbmem": [{"prompt": ARTICLE[:51], "continuation": ARTICLE[52:]}],
              "forget_bio": [{"text": "x"}]}  # too short to continue: read, it would raise
    out = evaluate(EvalContext(model, tok, splits, EvalConfig(verbatim_new_tokens=5)), ["verbatim_memorization"])
    assert 0.0 <= out["forget_verbmem"] <= 1.0
