# %%
# Sample questions from the test split (never seen in training), answered with the inference cell: the
# first (at most 3) of the NUM_EVAL_ROWS rows the evaluation scores, so a small run generates no extra row.
SAMPLE_ROWS = dsa_eval_rows[:3]
for _row, _reply in zip(SAMPLE_ROWS, dsa_generate([dsa_prompt_messages(r) for r in SAMPLE_ROWS])):
    _parse = parse_strict(_reply)
    print("QUESTION:", split_user_content(_row["messages"][0]["content"])[1])
    print("REPLY:", _reply)
    print("STRICT FORMAT:", _parse.describe(), "\n" + "-" * 80)
