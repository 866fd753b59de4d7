# %%
# The trainer the cell above trained, under the name the log cells read (`trainer`). Unsloth's notebooks call
# it `trainer` already (then this changes nothing); others call it `sft_trainer`, ... (then `trainer` is that
# object until the notebook binds its own `trainer`).
def dsa_trained_trainer(namespace):
    """The trainer in ``namespace`` that has run ``.train()`` (steps done): the only one, else ``trainer``
    when it has trained, else the last bound one."""
    found = {
        name: value for name, value in list(namespace.items())
        if not name.startswith("_") and callable(getattr(value, "train", None))
        and isinstance(getattr(getattr(value, "state", None), "global_step", None), int)
        and value.state.global_step > 0
    }
    if not found:
        raise RuntimeError("no trained trainer found: the training cell above did not run .train()")
    return found.get("trainer", list(found.values())[-1])


trainer = dsa_trained_trainer(globals())
print(f"training log of {type(trainer).__name__} ({trainer.state.global_step} steps)")
