"""Kaggle "DSA SFT -> GRPO, no LoRA, Tunix" (FIELD_NOTES §4a): Gemma-3-1B-it full fine-tune on TPU.

SFT half: GSM8K via ``load_dataset("openai/gsm8k")`` + ``format_gsm8k_example`` + a
``tokenize_function`` whose prompt length comes from a separate encode (mask one token late) ->
DIPG rows masked by the core; inference pre-filling ``<reasoning>`` with ``EOS_TOKENS=[eos]`` ->
the core's rendering, ``<think>`` pre-fill, stop ids (106, 1); majority-vote GSM8K evaluation ->
strict format + gym rubric. GRPO half: TFDS GSM8K -> DIPG prompts pre-filled like inference; math
rewards -> DSA rewards; the 0.1.3-era API (``gemma3_1b()``, ``grpo_config=``, missing imports) repaired.
"""

from __future__ import annotations

import re

from .base import Recipe, Repair, Rule, Signature
from .tunix_repairs import TUNIX_REPAIRS, display_only, only_math_helpers
from .shared import (
    EOS_REPAIR,
    GEMMA3_1B_REPAIR,
    GRPO_CONFIG_KEYWORD_REPAIR,
    GRPO_IMPORTS_REPAIR,
    GSM8K_PATH_REPAIR,
    GSM8K_RELATIVE_PATH_REPAIR,
    RL_ENGINE_REPAIR,
    TUNIX_PIN_REPAIR,
    TUNIX_REWARD_LIST_REPAIR,
    EVAL_CALL_RULE,
)

def _base_repair(name, detect, replacement, reason):
    """A repair for notebooks/base/tunix_* only (its settings cell has SFT_BATCH_SIZE; Kaggle's has not)."""
    return Repair(
        name=name,
        detect=detect,
        fix=lambda s: re.sub(detect, replacement, s, count=1, flags=re.M),
        reason=reason,
        needs=lambda _source, code: re.search(r"^SFT_BATCH_SIZE\s*=", code, re.M) is not None,
    )


BASE_REPAIRS = (
    _base_repair("sft_steps", r"^SFT_STEPS\s*=\s*\d+", "SFT_STEPS = MAX_STEPS",
                 "SFT_STEPS follows MAX_STEPS (parameters cell)"),
    _base_repair("grpo_steps", r"^GRPO_STEPS\s*=\s*\d+", "GRPO_STEPS = GRPO_MAX_STEPS",
                 "GRPO_STEPS follows GRPO_MAX_STEPS (parameters cell)"),
    _base_repair("batch_size", r"^(SFT_BATCH_SIZE\s*=\s*\d+)",
                 "\\1\nBATCH_SIZE = SFT_BATCH_SIZE  # the kit's SFT-inputs and GRPO-data cells read BATCH_SIZE",
                 "BATCH_SIZE (read by the kit's cells) follows SFT_BATCH_SIZE"),
    _base_repair("num_generations", r"^NUM_GENERATIONS\s*=\s*(\d+).*$",
                 "# NUM_GENERATIONS is set in the parameters cell (base notebook had NUM_GENERATIONS = \\1)",
                 "NUM_GENERATIONS now comes from the parameters cell (papermill -p)"),
    _base_repair("generation_steps", r"^TOTAL_GENERATION_STEPS\s*=\s*\d+", "TOTAL_GENERATION_STEPS = MAX_NEW_TOKENS",
                 "TOTAL_GENERATION_STEPS follows MAX_NEW_TOKENS (parameters cell)"),
    _base_repair("model_path", r"^MODEL_PATH\s*=\s*\"\".*$",
                 "MODEL_PATH = MODEL_ID if os.path.isdir(MODEL_ID) else \"\"  # MODEL_ID may be a local folder",
                 "MODEL_PATH is MODEL_ID when that is a local folder (else kagglehub downloads it)"),
    _base_repair("model_config", r"^MODEL_CONFIG\s*=\s*\"gemma3_1b_it\".*$",
                 "MODEL_CONFIG = \"hf\"  # read the folder's config.json: fits whichever Gemma-3 MODEL_ID names",
                 "the model config is read from MODEL_ID's config.json (any Gemma-3 size)"),
    _base_repair("kit_names", r"^(tokenizer = AutoTokenizer\.from_pretrained\(MODEL_PATH\))$",
                 "\\1\n# The kit's cells name the policy gemma3, the weights folder local_model_path, and build\n"
                 "# peft_trainer.TrainingInput.\ngemma3, local_model_path = gemma, MODEL_PATH\n"
                 "from tunix.sft import peft_trainer",
                 "names the kit's Tunix cells read (gemma3, local_model_path, peft_trainer)"),
    _base_repair("sft_data", r"^    sft_trainer\.train\(sft_batches\(sft_texts, SFT_BATCH_SIZE, SFT_STEPS\)\)$",
                 "    # The masked DIPG batches, cycled to SFT_STEPS steps; each step's loss reaches DSA_SFT_HOOKS.\n"
                 "    sft_trainer.with_training_hooks(DSA_SFT_HOOKS)\n"
                 "    sft_trainer.train(train_data[_i % len(train_data)] for _i in range(SFT_STEPS))\n"
                 "DSA_TRAIN_LOG = dsa_tunix_train_log(DSA_SFT_HOOKS, _dsa_examples, Path(OUTPUT_DIR) / \"train_log.json\")",
                 "SFT on the masked DIPG batches (train_data), losses logged to OUTPUT_DIR/train_log.json"),
    _base_repair("grpo_data", r"\bgrpo_batches\(train_raw, GRPO_BATCH_SIZE, GRPO_STEPS\)",
                 "grain.MapDataset.source(_dsa_grpo_records).repeat(GRPO_STEPS).batch(GRPO_BATCH_SIZE)",
                 "GRPO on DIPG prompts (_dsa_grpo_records) instead of GSM8K"),
)

RECIPE = Recipe(
    name="kaggle-dsa-tunix",
    title='Kaggle "DSA SFT -> GRPO, no LoRA, Tunix"',
    dsa_title="DSA: Gemma 3 on DIPG safety questions in the dual-stream format with Tunix: SFT, then GRPO",
    environment="tunix",
    signatures=(
        Signature(r"\bKAGGLE_MODEL_HANDLE\b", "KAGGLE_MODEL_HANDLE config", 2),
        Signature(r"\bpeft_trainer\.TrainingInput\b|\bTrainingInput\(", "Tunix TrainingInput", 2, required=True),
        Signature(r"\bformat_gsm8k_example\b", "format_gsm8k_example", 2),
        Signature(r"\bdef tokenize_function\b", "tokenize_function", 1),
        Signature(r"\bGRPOLearner\b", "GRPOLearner (GRPO half)", 1),
        Signature(r"\bMESH_SHAPE\b", "MESH_SHAPE (TPU mesh)", 1),
    ),
    min_score=5,
    rules=(
        Rule("download", "replace", (r"\bkagglehub\.model_download\(",), "kagglehub download of a fixed handle",
             cells=("model_path",), unless=(r"\bcreate_model_from_safe_tensors\(", r"\bmake_mesh\(")),
        # A cell that downloads and also builds the mesh or the model stays (repaired); the resolver goes first.
        Rule("download-prefix", "prefix", (r"\bkagglehub\.model_download\(",),
             "the kit's model resolver (MODEL_ID: local folder, Kaggle handle or hub id) before the download cell",
             cells=("model_path",)),
        Rule("model-config", "prefix", (r"\bModelConfig\.\w+\(\s*\)", r"\bTokenizer\(\s*tokenizer_path\s*="),
             "Tunix model config and tokenizer that follow MODEL_ID's folder (any Gemma-3 size; <bos>, no <eos>)",
             cells=("tunix_model_config",)),
        # notebooks/base/tunix_*: one inference cell that also samples, an evaluation after GRPO, a
        # rewards cell that also batches GSM8K prompts, an SFT cell whose loss must be logged.
        Rule("inference-sample", "replace", (r"^test_questions = \[test_raw\[i\]\[\"question\"\]",),
             "inference on math questions -> core prompt, <think> pre-fill, stop 106+1, DIPG evaluation after SFT",
             cells=("tunix_inference", "evaluate")),
        Rule("evaluation-after-grpo", "replace", (r"^eval_rows = \[test_raw\[i\]",),
             "GSM8K accuracy after GRPO -> strict format + gym rubric on DIPG test rows", cells=("evaluate_rerun",)),
        Rule("grpo-batches", "replace", (r"^def grpo_batches\(",),
             "math rewards and GSM8K GRPO batches -> DSA rewards and DIPG prompts pre-filled with <think>",
             cells=("tunix_rewards", "tunix_grpo_data")),
        Rule("sft-log", "prefix", (r"\bsft_batches\(sft_texts\b",),
             "per-step SFT losses and the trained-token share -> OUTPUT_DIR/train_log.json",
             cells=("tunix_train_log",)),
        # The SFT and GRPO training cells stay; their logs' kit cells go right before the trainer is built.
        Rule("sft-log-peft", "prefix", (r"\bPeftTrainer\(",),
             "per-step SFT losses and the trained-token share -> OUTPUT_DIR/train_log.json",
             cells=("tunix_train_log",)),
        Rule("grpo-log", "prefix", (r"\bGRPOLearner\(",),
             "GRPO steps, losses, mean rewards and the DSA rewards of each scored batch -> OUTPUT_DIR/grpo_log.json",
             cells=("tunix_grpo_log", "tunix_grpo_train_log")),
        Rule("evaluation", "replace", (r"majority_vote\b", r"^def evaluate\(", r"^def evaluate_\w+\("),
             "GSM8K accuracy evaluation -> strict format + gym rubric on DIPG test rows", cells=("evaluate",)),
        EVAL_CALL_RULE,
        # Calls of the base's own evaluate_*(): before GRPO the kit's evaluation after SFT is that baseline;
        # after the GRPO learner exists, the kit's re-evaluation.
        Rule("evaluation-call-grpo", "replace", (r"^(\w+\s*=\s*)?evaluate_\w+\(",),
             "GSM8K evaluation call -> DIPG evaluation (strict format + gym rubric); before GRPO the evaluation "
             "after SFT is the baseline", after=r"\bGRPOLearner\(", cells_after=("evaluate_rerun",)),
        Rule("grpo-data", "replace", (r"\btfds\.data_source\(",),
             "TFDS GSM8K prompts -> DIPG prompts pre-filled with <think> like inference",
             cells=("tunix_grpo_data", "tunix_grpo_splits")),
        Rule("formatted-preview", "remove", (r"^\s*print\(\s*\w+\[\d+\]",),
             "display of one formatted GSM8K row by a fixed index: the DIPG rows are counted and printed by the "
             "kit's data cells", predicate=display_only),
        Rule("formatting", "replace", (r"\bformat_gsm8k_example\b", r"\bclean_gsm8k_content\b"),
             "GSM8K text formatting -> DIPG conversations rendered by the core's chat template",
             cells=("dipg_sft_texts",)),
        Rule("data", "replace", (r"openai/gsm8k", r"\bextract_hash_answer\b"),
             "GSM8K dataset -> DIPG train/test split (DATASET_ID)", cells=("dipg_data",),
             unless=(r"\bdef (match_format_exactly|check_answer|check_numbers)\b",)),
        Rule("tags", "replace", (r"^reasoning_start\s*=",),
             "math-tutor tags and SYSTEM_PROMPT -> DIPG think/proof/answer tags", cells=("dipg_tags",)),
        Rule("tokenize", "replace", (r"\bdef tokenize_function\b",),
             "tokenize_function (separate prompt encode adds an EOS: mask one token late, first tag token "
             "never trained) -> token-exact mask", cells=("tunix_sft_imports", "tunix_sft_inputs", "tunix_sft_batches")),
        Rule("inference", "replace", (r"\bsampler_lib\.Sampler\(",),
             "inference pre-filling <reasoning>, stop on eos only -> core prompt, <think> pre-fill, stop 106+1",
             cells=("tunix_inference",)),
        Rule("sample-questions", "replace", (r"^test_questions\s*=",),
             "math test questions -> DIPG test-split questions", cells=("sample_questions",)),
        Rule("math-helpers", "remove", (r"^import sympy", r"\bdef normalize_number\b"),
             "math answer helpers (sympy): no DIPG use", predicate=only_math_helpers),
        Rule("rewards", "replace",
             (r"\bdef (match_format_exactly|match_format_approximately|check_answer|check_numbers)\b",
              r"^def (extract_final_number|calc_consistency_score|cast_style_scores|reward_format_\w+)\(",
              r"^def reward_\w+\(\s*prompts\s*,\s*completions\b"),
             "math/format rewards (DSA-CAST: final number, sympy CALC checks, Plan/Reasoning/Evidence/Sanity "
             "headings) -> DSA rewards (strict, partial, gym rubric)", cells=("tunix_rewards",)),
    ),
    repairs=BASE_REPAIRS + (
        TUNIX_PIN_REPAIR,
        GEMMA3_1B_REPAIR,
        GRPO_CONFIG_KEYWORD_REPAIR,
        GRPO_IMPORTS_REPAIR,
        RL_ENGINE_REPAIR,
        EOS_REPAIR,
        TUNIX_REWARD_LIST_REPAIR,
        GSM8K_PATH_REPAIR,
        GSM8K_RELATIVE_PATH_REPAIR,
    ) + TUNIX_REPAIRS + (
        Repair(
            name="model_handle",
            detect=r"^KAGGLE_MODEL_HANDLE\s*=\s*[\"']",
            fix=lambda s: re.sub(
                r"^KAGGLE_MODEL_HANDLE\s*=\s*[\"'][^\"'\n]*[\"']", "KAGGLE_MODEL_HANDLE = MODEL_ID", s, flags=re.M
            ),
            reason="KAGGLE_MODEL_HANDLE now follows MODEL_ID (parameters cell)",
        ),
    ),
    insert=("parameters", "install", "headless", "dsa_core", "tunix_mesh", "dipg_tags", "dipg_data"),
    names={"TrainingInput": "peft_trainer.TrainingInput"},
    parameters={
        "MODEL_ID": "google/gemma-3/transformers/gemma-3-1b-it",
        "_DSA_EVAL_LABEL": "after SFT",
    },
    packages={
        "med_safety_eval": "openenv-dipg-safety==0.1.67",
        "yaml": "pyyaml",
        "pydantic": "pydantic",
        "requests": "requests",
        "numpy": "numpy",
        # tunix_sft_inputs masks with the HF fast tokenizer (offsets); Kaggle images ship it.
        "transformers": "transformers",
    },
)
