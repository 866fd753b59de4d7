# %%
# Tunix's SFT module, which the kit's SFT cells use (the base imported its names in the cell replaced here).
from tunix.sft import peft_trainer
