# %%
# The model the kit's inference and evaluation use: the trained one. A notebook that handed the trainer a
# model id (not a loaded model) has it only as trainer.model (with its LoRA adapter, when there is one).
if not hasattr(globals().get("model"), "generate") and "trainer" in globals():
    model = trainer.model
_ = model.eval()  # inference mode (the trainer switches back when it trains again)
