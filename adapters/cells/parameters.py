# %% tags=["parameters"]
# Run parameters (papermill: -p NAME VALUE). MODEL_ID and DATASET_ID take a hub id or a local path.
MODEL_ID = "google/gemma-3-1b-it"
DATASET_ID = "surfiniaburger/dipg-safety-instruction-1500"
OUTPUT_DIR = "dsa_outputs"
MAX_STEPS = 100  # optimiser steps of the first training stage (SFT, or GRPO where there is no SFT)
GRPO_MAX_STEPS = 50  # optimiser steps of a GRPO stage that follows SFT
NUM_GENERATIONS = 4  # GRPO completions per prompt
MAX_SEQ_LENGTH = 2048  # haystack rows are the longest (~1k tokens); longer rows are dropped, never cut
MAX_PROMPT_LENGTH = 1536  # GRPO prompt budget: a haystack prompt needs ~1k tokens
MAX_NEW_TOKENS = 512
GRADIENT_ACCUMULATION_STEPS = 0  # micro-batches per optimiser step; 0: the notebook's own value
LOGGING_STEPS = 1  # the loss of every step lands in OUTPUT_DIR/train_log.json
MAX_TRAIN_ROWS = 0  # 0: the whole train split
NUM_EVAL_ROWS = 20  # test rows generated and scored in the evaluation cells
USE_SYSTEM_PROMPT = False  # the DIPG rows carry their instructions in the user turn
SEED = 42
