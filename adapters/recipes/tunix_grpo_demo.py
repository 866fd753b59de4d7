"""Tunix GRPO demo (FIELD_NOTES §4b): ``examples/grpo_demo.ipynb`` (<= v0.1.3, Gemma 2) and its
successor ``grpo_gemma.ipynb`` (Gemma 3 1B, Tunix main), GRPO with LoRA (qwix) on GSM8K.

GSM8K from TFDS or a Kaggle CSV chosen by ``source = input(...)`` -> DIPG prompts (rendered as the
kit renders them, pre-filled with ``<think>``) batched as the base batches them (``dataset``,
``train_dataset``, ``val_dataset``, ``test_dataset``); the ``TEMPLATE``/tags cell -> DIPG tags (the
system prompt is used: this notebook has no SFT half to teach the format); the four math/format rewards
-> DSA rewards in Tunix's string convention, recorded per batch; the evaluation -> strict format + gym
rubric, before and after training; the GRPO run's steps, losses and rewards -> OUTPUT_DIR/grpo_log.json.

The model is MODEL_ID's Gemma-3 safetensors folder (a local folder, a hub id or a Kaggle handle): the
HF/Kaggle download -> the kit's resolver; Gemma 2's Kaggle Flax checkpoint conversion -> removed and its
loader -> Gemma 3 from safetensors; ModelConfig presets and the SentencePiece tokenizer -> the folder's
config and Hugging Face tokenizer (:mod:`.tunix_repairs`). LoRA via qwix stays (it runs on CPU).
Repairs for google-tunix 0.1.7: ``RLEngine``/``rl_engine=`` (main) -> ``RLCluster``/``rl_cluster=``,
``grpo_config=`` -> ``algo_config=``, ``jax.make_mesh`` with Auto axes, stop tokens 106 and 1, a
``MAX_PROMPT_LENGTH`` that cuts haystack prompts; hardware fallbacks for the TPU mesh shapes.
"""

from __future__ import annotations

from .base import Recipe, Rule, Signature
from .shared import (
    EOS_REPAIR,
    EVAL_CALL_RULE,
    GRPO_CONFIG_KEYWORD_REPAIR,
    GRPO_IMPORTS_REPAIR,
    GSM8K_PATH_REPAIR,
    RL_ENGINE_REPAIR,
    TUNIX_PIN_REPAIR,
    TUNIX_REWARD_LIST_REPAIR,
)
from .tunix_grpo_demo_repairs import GRPO_TRAIN_LOG_REPAIR, TUNIX_GRPO_DEMO_REPAIRS, saves_checkpoint
from .tunix_repairs import TUNIX_REPAIRS

RECIPE = Recipe(
    name="tunix-grpo-demo",
    title="Tunix GRPO demo (grpo_demo / grpo_gemma)",
    dsa_title="DSA: Gemma on DIPG safety questions in the dual-stream format with Tunix: GRPO",
    environment="tunix",
    signatures=(
        Signature(r"\bTEMPLATE\s*=", "TEMPLATE with {system_prompt}/{question}", 1),
        Signature(r"\bdef get_dataset\(", "get_dataset(data_dir, split, source)", 2),
        Signature(r"\bGRPOLearner\b", "GRPOLearner", 2, required=True),
        Signature(r"\bdef match_format_exactly\(", "reward match_format_exactly", 1),
        Signature(r"\bdef check_numbers\(", "reward check_numbers", 1),
        Signature(r"\b(RLCluster|RLEngine)\b", "RLCluster / RLEngine", 1),
        # An SFT half builds a PeftTrainer (importing the module alone, e.g. to patch it, is not one).
        Signature(r"\bPeftTrainer\(|\bKAGGLE_MODEL_HANDLE\b", "no SFT half (no PeftTrainer built)", -5),
    ),
    min_score=5,
    rules=(
        # The checkpoint download of a fixed id stays (repaired to resolve MODEL_ID); the resolver goes first.
        Rule("download", "prefix", (r"\bkagglehub\.model_download\(", r"\bsnapshot_download\("),
             "the kit's model resolver (MODEL_ID: local folder, hub id or Kaggle handle) before the download cell",
             cells=("model_path",)),
        Rule("gemma2-conversion", "remove", (r"\.load_and_format_params\(", r"\bTransformer\.from_params\("),
             "Gemma 2 checkpoint conversion (Kaggle Flax params re-saved for NNX): the kit loads MODEL_ID's "
             "Gemma-3 safetensors directly", predicate=saves_checkpoint),
        Rule("evaluation", "replace", (r"^def evaluate\(",),
             "GSM8K accuracy evaluation -> strict format + gym rubric on DIPG test rows (baseline run)",
             cells=("tunix_inference", "evaluate")),
        EVAL_CALL_RULE,
        Rule("grpo-data", "replace", (r"^\s*source\s*=\s*(dsa_)?input\(", r"\bget_dataset\(\s*TRAIN_DATA_DIR"),
             "GSM8K source prompt (input()) and loaders -> DIPG prompts pre-filled with <think>, batched as the base "
             "batches them", cells=("dipg_data", "tunix_grpo_data", "tunix_grpo_batches")),
        Rule("gsm8k-helpers", "remove", (r"\bdef get_dataset\(", r"\bdef download_kaggle_dataset\(", r"\bdef extract_hash_answer\("),
             "GSM8K download/extract helpers: DIPG rows come from DATASET_ID"),
        Rule("tags", "replace", (r"^reasoning_start\s*=",),
             "reasoning/answer tags, SYSTEM_PROMPT and TEMPLATE -> DIPG think/proof/answer tags", cells=("dipg_tags",)),
        Rule("template-prompts", "remove", (r"\bTEMPLATE\.format\(",),
             "GSM8K prompt helper (TEMPLATE prompts) of the removed evaluation: the kit's dsa_generate renders "
             "DIPG prompts"),
        Rule("inference", "replace", (r"\bsampler_lib\.Sampler\(",),
             "sampler with TEMPLATE prompts -> core prompt, <think> pre-fill, stop 106+1",
             cells=("tunix_inference", "sample_questions")),
        Rule("rewards", "replace",
             (r"\bdef (match_format_exactly|match_format_approximately|check_answer|check_numbers)\(", r"^match_format\s*=",
              r"^match_numbers\s*="),
             "math/format rewards -> DSA rewards (strict, partial, gym rubric)", cells=("tunix_rewards",)),
        Rule("model-config", "prefix", (r"\bModelConfig\.\w+\(\s*\)", r"\bTokenizer\(\s*tokenizer_path\s*="),
             "Tunix model config and tokenizer that follow MODEL_ID's folder (any Gemma-3 size; <bos>, no <eos>)",
             cells=("tunix_model_config",)),
        Rule("grpo-log", "prefix", (r"\bGRPOLearner\(",),
             "the DSA rewards recorded per scored batch; the GRPO run's steps, losses and rewards -> OUTPUT_DIR/grpo_log.json",
             cells=("tunix_grpo_log", "tunix_grpo_train_log")),
    ),
    repairs=(
        TUNIX_PIN_REPAIR,
        RL_ENGINE_REPAIR,
        GRPO_CONFIG_KEYWORD_REPAIR,
        GRPO_IMPORTS_REPAIR,
        EOS_REPAIR,
        TUNIX_REWARD_LIST_REPAIR,
        GSM8K_PATH_REPAIR,
    ) + TUNIX_GRPO_DEMO_REPAIRS + tuple(
        # the kit's inference cell reads the LoRA policy (names below), not an alias of the base model
        # and its GRPO log holds per-step losses and rewards (GRPO_TRAIN_LOG_REPAIR) rather than reward lists
        r for r in TUNIX_REPAIRS if r.name not in ("policy_alias", "grpo_log")
    ) + (GRPO_TRAIN_LOG_REPAIR,),
    insert=("parameters", "install", "headless", "dsa_core", "tunix_mesh", "dipg_tags"),
    # The kit's inference cell samples from the LoRA policy (the base's name for it).
    names={"gemma3": "lora_policy"},
    parameters={
        "MODEL_ID": "google/gemma-3-1b-it",  # a Gemma-3 safetensors folder, hub id or Kaggle handle
        "USE_SYSTEM_PROMPT": True,
        "_DSA_EVAL_LABEL": "before GRPO",
    },
    packages={
        "med_safety_eval": "openenv-dipg-safety==0.1.67",
        "yaml": "pyyaml",
        "pydantic": "pydantic",
        "requests": "requests",
        "numpy": "numpy",
    },
)
