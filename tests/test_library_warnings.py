"""The harness's own calls into transformers and accelerate raise no FutureWarning or
DeprecationWarning and log no deprecation: what is deprecated today breaks on a coming release."""
import warnings

import pytest
from helpers import THREE_QA

from bench.models.zoo import build_model, train_tokenizer
from metrics import EvalConfig, EvalContext, evaluate


@pytest.mark.parametrize("arch", ["tiny-llama", "tiny-gpt2"])
def test_evaluation_and_training_raise_no_deprecation(arch, capfd):
    from bench.training.batches import aligned_stream, merge_streams
    from bench.core.encoding import encode_many
    from bench.training.loop import OptimConfig, make_accelerator, train
    from methods.losses import mean_nll

    texts = [r[k] for r in THREE_QA for k in ("question", "answer", "paraphrased_answer")] * 20
    tok = train_tokenizer(texts, 320)
    model = build_model(arch, tok, seed=0)
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        encoded = encode_many(tok, [(r["question"], r["answer"]) for r in THREE_QA], 64)
        stream = merge_streams(aligned_stream({"forget": encoded}, 2, tok.pad_token_id, seed=0))
        train(model, lambda m, b, _s: (mean_nll(m, b["forget"]), {}), stream, OptimConfig(steps=2, lr=1e-3),
              make_accelerator())
        # shared-prompt scoring (the KV cache handed back to the model) and greedy generation
        ctx = EvalContext(model.eval(), tok, {"forget": THREE_QA, "retain": THREE_QA},
                          EvalConfig(batch_size=8, max_new_tokens=4, share_prompts=True, reuse_teacher_forcing=False))
        evaluate(ctx, metrics=["probability", "rouge", "truth_ratio"])
    printed = capfd.readouterr()
    assert "deprecat" not in (printed.out + printed.err).lower()
