"""TRL SFT example notebooks (FIELD_NOTES §4e; nbformat 4.0): LoRA/QLoRA SFT on a chat, reasoning or math set.

Matched by what cells do, so TRL's real notebooks (``model=model_id`` strings handed to the trainer,
``train_dataset`` names, QLoRA configs, vLLM serving) and the look-alikes share one recipe:

* ``load_dataset(...)`` -> DIPG split + the same rows under TRL's names (``train_dataset``,
  ``test_dataset``, ``dataset_name``); the base's own clean-up / mapping of its dataset is dropped;
* before ``SFTTrainer(...)``: the tokenizer (MODEL_ID's when the base has none yet) and the kit's
  token-exact masked rows, which ``train_dataset=`` then reads; ``eval_dataset=`` is dropped;
* after ``.train()``: the training log; the generation demo -> kit inference (on the trained model),
  sample questions and the evaluation;
* hardware fallbacks (4-bit, half precision, 8-bit optimisers, Liger, flash attention, GPU memory
  reports, vLLM) active only without CUDA; hub pushes and trackers safe offline.
"""

from __future__ import annotations

from .base import Recipe, Rule, Signature
from .hf_repairs import (
    HARDWARE_FALLBACKS,
    MODEL_TUPLE_REPAIR,
    OFFLINE_REPAIRS,
    TRAINER_EVAL_DATASET_REPAIR,
    trainer_dataset_repair,
)
from .shared import GSM8K_PATH_REPAIR, HF_KNOB_REPAIRS, MODEL_ID_REPAIR, MODEL_NAME_REPAIR

# A cell that only reshapes the base's own dataset (drops/renames its columns, maps its rows into the
# base's format, GSM8K answer helpers): DIPG rows arrive in the kit's format, so it has nothing to do.
DATASET_PREP_PATTERNS = (
    r"^\w+\s*=\s*\w+\.(map|remove_columns|rename_columns?|select_columns|filter|cast_column)\(",
    r"\bdef extract_hash_answer\(",
    r"\bdef to_prompt_completion\(",
)
DATASET_PREP_UNLESS = (r"\b(SFT|GRPO)Trainer\(", r"\b(SFT|GRPO)Config\(", r"\.from_pretrained\(", r"\bLoraConfig\(")
# Generation with HF transformers (vLLM cells keep their own guard: hardware fallback to the kit's inference).
INFERENCE_PATTERNS = (r"\.generate\(", r"\bpipeline\(\s*[\"']text-generation")
INFERENCE_UNLESS = (r"\.train\(", r"\bSamplingParams\b", r"^\s*(from|import)\s+vllm\b")
INFERENCE_CELLS = ("hf_trained_model", "hf_inference", "sample_questions", "evaluate")
HF_PACKAGES = {
    "med_safety_eval": "openenv-dipg-safety==0.1.67",
    "yaml": "pyyaml",
    "pydantic": "pydantic",
    "requests": "requests",
    "numpy": "numpy",
}

RECIPE = Recipe(
    name="trl-sft",
    title="TRL SFT example",
    dsa_title="DSA: Gemma 3 on DIPG safety questions in the dual-stream format with TRL: SFT",
    signatures=(
        Signature(r"\bSFTTrainer\b", "TRL SFTTrainer", 3, required=True),
        Signature(r"\bSFTConfig\b", "SFTConfig", 1),
        Signature(r"\bLoraConfig\b|\bpeft_config\b", "LoRA config", 1),
        Signature(r"\bFastModel\b|\bFastLanguageModel\b", "not Unsloth", -5),
        Signature(r"\bGRPOTrainer\b", "no GRPOTrainer", -5),
    ),
    min_score=4,
    rules=(
        Rule("data", "replace", (r"\bload_dataset\(",),
             "training dataset -> DIPG train/test split (DATASET_ID), also as train_dataset/test_dataset/dataset_name",
             cells=("dipg_data", "trl_data")),
        Rule("dataset-prep", "remove", DATASET_PREP_PATTERNS,
             "the base's clean-up/mapping of its own dataset: DIPG rows are rendered and masked by the kit "
             "(trl_data, trl_sft_data)", unless=DATASET_PREP_UNLESS),
        Rule("train-log", "suffix", (r"\btrainer\.train\(",),
             "per-step losses and trained-token share -> OUTPUT_DIR/train_log.json", cells=("hf_train_log",)),
        Rule("sft-rows", "prefix", (r"\bSFTTrainer\(",),
             "DIPG rows with the token-exact mask, built once the tokenizer exists (before SFTTrainer); with more "
             "than one GPU, SFTTrainer trains under accelerate.notebook_launcher (a no-op on one device)",
             cells=("hf_tokenizer", "trl_sft_data", "hf_multi_gpu")),
        Rule("inference", "replace", INFERENCE_PATTERNS,
             "generation demo -> kit inference on the trained model (stops on the template's end of turn and EOS), DIPG sample questions and evaluation",
             cells=INFERENCE_CELLS, unless=INFERENCE_UNLESS),
    ),
    repairs=(
        MODEL_ID_REPAIR,
        MODEL_NAME_REPAIR,
        MODEL_TUPLE_REPAIR,
        GSM8K_PATH_REPAIR,
        trainer_dataset_repair("dsa_sft_dataset", "token-exact masked SFT rows"),
        TRAINER_EVAL_DATASET_REPAIR,
    )
    + HF_KNOB_REPAIRS
    + HARDWARE_FALLBACKS
    + OFFLINE_REPAIRS,
    insert=("parameters", "install", "headless", "hf_hub", "dsa_core", "dipg_tags"),
    names={},
    parameters={"MODEL_ID": "google/gemma-3-270m-it", "_DSA_EVAL_LABEL": "after SFT"},
    packages=dict(HF_PACKAGES),
)
