# %%
# The device mesh from the devices present: (fsdp, tp). Tensor parallelism as wide as the attention heads
# allow (tp divides the device count, the query heads and the key/value heads), the rest FSDP: parameters and
# batches sharded over the fsdp axis. One device: (1, 1); 8 TPU cores with Gemma-3 1B (1 KV head): (8, 1);
# with Gemma-3 4B (8 heads, 4 KV heads): (2, 4). DSA_MESH_TP (environment) sets tp; it must divide the rest.


def dsa_mesh_shape(n_devices, num_heads=1, num_kv_heads=1, tp=None):
    """``n_devices`` and the model's head counts -> ``(fsdp, tp)`` with ``fsdp * tp == n_devices``."""
    import os

    if n_devices < 1:
        raise ValueError(f"no devices ({n_devices})")
    if tp is None and os.environ.get("DSA_MESH_TP"):
        tp = int(os.environ["DSA_MESH_TP"])
    if tp is None:
        tp = max(d for d in range(1, n_devices + 1)
                 if n_devices % d == 0 and num_heads % d == 0 and num_kv_heads % d == 0)
    if tp < 1 or n_devices % tp or num_heads % tp or num_kv_heads % tp:
        raise ValueError(f"tp={tp} must divide the {n_devices} devices, {num_heads} heads and {num_kv_heads} KV heads")
    return (n_devices // tp, tp)
