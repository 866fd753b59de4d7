# %%
# The model: MODEL_ID is a local folder, a Kaggle model handle (owner/model/framework/variation) or a hub id.
def dsa_resolve_model(model_id):
    """MODEL_ID -> a local folder holding the weights and tokenizer."""
    if os.path.isdir(model_id):
        return model_id
    if model_id.count("/") >= 3:
        import kagglehub

        return kagglehub.model_download(model_id)
    from huggingface_hub import snapshot_download

    return snapshot_download(model_id, token=dsa_secret("HF_TOKEN"))


local_model_path = dsa_resolve_model(MODEL_ID)
print("model files:", local_model_path)
