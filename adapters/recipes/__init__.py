"""Recipe registry: one module per base-notebook family, each exporting ``RECIPE``.

``RECIPES`` maps the family name (what ``--family`` takes) to its :class:`~adapters.recipes.base.Recipe`,
in a fixed order; :func:`get_recipe` raises :class:`~adapters.errors.UnknownFamilyError` for a name
that is not there.
"""

from __future__ import annotations

from ..errors import UnknownFamilyError
from . import kaggle_dsa_tunix, trl_grpo, trl_sft, tunix_grpo_demo, unsloth_gemma3_grpo, unsloth_gemma3_sft
from .base import Recipe

RECIPES: dict[str, Recipe] = {
    module.RECIPE.name: module.RECIPE
    for module in (kaggle_dsa_tunix, tunix_grpo_demo, unsloth_gemma3_grpo, unsloth_gemma3_sft, trl_sft, trl_grpo)
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; unknown names list the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise UnknownFamilyError(f"unknown family {name!r}; choose auto or one of: {', '.join(RECIPES)}") from None
