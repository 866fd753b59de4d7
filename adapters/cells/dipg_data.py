# %%
# DIPG data (DATASET_ID: hub id, .jsonl/.json/.parquet file or saved folder): validated rows and the
# upstream train/test split (seed 42, first 1400 train), read by the DSA core's dataset module.
_dsa_splits = read_source(DATASET_ID)
_dsa_bad = invalid_rows(_dsa_splits)
if _dsa_bad:
    _split, _index, _issues = _dsa_bad[0]
    raise DatasetError(f"{DATASET_ID}: {split_label(_split, _index)}: {'; '.join(i.message for i in _issues)}")
if "all" in _dsa_splits:
    dsa_train_rows, dsa_test_rows = upstream_split(_dsa_splits["all"])
else:
    dsa_train_rows, dsa_test_rows = list(_dsa_splits["train"]), list(_dsa_splits["test"])
if MAX_TRAIN_ROWS:
    dsa_train_rows = dsa_train_rows[:MAX_TRAIN_ROWS]
dsa_eval_rows = dsa_test_rows[:NUM_EVAL_ROWS]
print(f"DIPG rows: train {len(dsa_train_rows)}, test {len(dsa_test_rows)}, evaluated {len(dsa_eval_rows)}")
