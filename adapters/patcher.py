"""Base GSM8K notebook -> DIPG dual-stream notebook: pick a recipe, apply it, check it, report it.

``adapt(nb, family="auto", model_id=None, dataset_id=None) -> Adapted(nb, report, family, why)``
is pure (no I/O); the CLI (``scripts/adapt_dsa_notebook.py``) reads, writes and prints.

Steps, each deterministic:

1. **family**: a notebook this kit already adapted names its family in ``metadata.dsa_kit``; else
   every recipe scores its content signatures over the joined code and the best one above its
   threshold wins (ties are an error). No recipe -> :class:`UnknownFamilyError` listing signatures.
2. **rewrite**: one pass over the cells. A cell the kit wrote before (``metadata.dsa_kit.cell``) is
   re-rendered from its template; otherwise the first recipe rule whose content pattern matches
   replaces or removes it; otherwise the recipe's repairs and the generic headless / secret repairs
   run on it. Cells the recipe inserts (parameters, guarded install, DSA core) go before the first
   code cell unless present. Every cell gets one report row: kept / replaced / inserted / removed /
   repaired, with the reason.
3. **check**: nbformat 4.5 with unique ids, kernelspec present, every code cell parses, no GSM8K
   identifier left in a code cell, no secret left anywhere. Any failure is a :class:`NotebookError`.

Running :func:`adapt` on its own output changes nothing (step 2 re-renders the same templates and
finds no defect left), which is what ``--check`` relies on.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import nbformat

from . import cells as cell_templates
from .dataflow import FlowCell, cell_names, check_contract, removable, undefined_reads
from .errors import NotebookError, UnknownFamilyError
from .markdown_rewrite import markdown_problems, rewrite_markdown, title_of
from .notebook_io import code_problems, ensure_cell_ids, validate_notebook
from .recipes import RECIPES, get_recipe
from .recipes.base import Recipe
from .recipes.common import COMMON_REPAIRS, SECRET_PATTERNS, parameter_owner_repairs, scrub_secrets

KIT_KEY = "dsa_kit"
DEFAULT_KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
# Identifiers that betray a GSM8K pipeline; none may survive in a code cell of the output.
GSM8K_PATTERNS = (r"gsm8k", r"GSM8K", r"extract_hash_answer", r"\"####\"", r"'####'")


@dataclass(frozen=True)
class ReportRow:
    """One line of the report: output position (None when removed), status, label, reason."""

    index: int | None
    status: str  # kept | replaced | inserted | removed | repaired
    cell: str
    reason: str

    def as_dict(self) -> dict:
        return {"index": self.index, "status": self.status, "cell": self.cell, "reason": self.reason}


@dataclass
class Adapted:
    """Result of :func:`adapt`."""

    nb: nbformat.NotebookNode
    family: str
    why: str
    report: list[ReportRow] = field(default_factory=list)
    secrets_found: list[str] = field(default_factory=list)
    # name -> (kit cell that defines it, output index of the first kept cell reading it)
    provided: dict[str, tuple[str, int]] = field(default_factory=dict)
    # (output index, name): the base notebook itself read it before defining it
    inherited: list[tuple[int, str]] = field(default_factory=list)
    # The Colab URL the header's badge links to; None when no repository/path was known (no badge written).
    badge: str | None = None
    # Which chat template and stop tokens the notebook uses, as far as MODEL_ID tells (the report's line).
    chat: str | None = None

    def reasons_starting(self, prefix: str) -> list[tuple[int | None, str]]:
        """(output index, reason part) for every report reason part that starts with ``prefix``."""
        found = []
        for row in self.report:
            for part in row.reason.split("; "):
                if part.startswith(prefix):
                    found.append((row.index, part[len(prefix):].strip()))
        return found

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.report:
            counts[row.status] = counts.get(row.status, 0) + 1
        return dict(sorted(counts.items()))


def _code_text(nb) -> str:
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")


def _label(cell) -> str:
    """A short human label for a cell: first non-empty line, trimmed to 48 characters."""
    for line in cell.source.split("\n"):
        if line.strip():
            text = line.strip()
            return text if len(text) <= 48 else text[:45] + "..."
    return f"(empty {cell.cell_type})"


def detect_family(nb, family: str = "auto") -> tuple[Recipe, str]:
    """(recipe, one-line why). ``family`` names a recipe or is ``auto``."""
    if family != "auto":
        recipe = get_recipe(family)
        return recipe, f"family {recipe.name} chosen with --family"
    marker = nb.metadata.get(KIT_KEY, {})
    if isinstance(marker, dict) and marker.get("family") in RECIPES:
        recipe = RECIPES[marker["family"]]
        return recipe, f"notebook already adapted by the kit as {recipe.name} (metadata.{KIT_KEY})"
    code = _code_text(nb)
    scored = []
    for recipe in RECIPES.values():
        score, found, _ = recipe.score(code)
        if score >= recipe.min_score:
            scored.append((score, recipe, found))
    if not scored:
        looked = "; ".join(
            f"{r.name}: " + ", ".join(s.description for s in r.signatures if s.weight > 0) for r in RECIPES.values()
        )
        raise UnknownFamilyError(f"no recipe recognises this notebook; signatures looked for: {looked}")
    scored.sort(key=lambda item: (-item[0], item[1].name))
    if len(scored) > 1 and scored[0][0] == scored[1][0]:
        raise UnknownFamilyError(
            f"ambiguous family: {scored[0][1].name} and {scored[1][1].name} both score {scored[0][0]}; "
            "pass --family"
        )
    score, recipe, found = scored[0]
    return recipe, f"family {recipe.name} (score {score}): found " + ", ".join(found)


def _new_cell(template: cell_templates.CellTemplate, index_hint: int = 0):
    """A fresh nbformat cell for ``template`` with the kit marker and a name-derived id."""
    if template.cell_type == "markdown":
        cell = nbformat.v4.new_markdown_cell(template.source)
    else:
        cell = nbformat.v4.new_code_cell(template.source)
    cell.metadata[KIT_KEY] = {"cell": template.name}
    if template.tags:
        cell.metadata["tags"] = list(template.tags)
    cell["id"] = f"dsa-{template.name.replace('_', '-')}"
    return cell


def _parameter_values(recipe: Recipe, model_id: str | None, dataset_id: str | None, existing: dict) -> dict:
    values = dict(recipe.parameters)
    values.update(existing)
    if model_id is not None:
        values["MODEL_ID"] = model_id
    if dataset_id is not None:
        values["DATASET_ID"] = dataset_id
    return values


def _existing_parameters(nb) -> dict:
    """Values already in a kit ``parameters`` cell (a re-run keeps the user's/CLI's choices)."""
    import ast

    for cell in nb.cells:
        if cell.metadata.get(KIT_KEY, {}).get("cell") == "parameters":
            values = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        values[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        continue
            return values
    return {}


COLAB_URL = "https://colab.research.google.com/github/{repo}/blob/{branch}/{path}"
COLAB_BADGE = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"
_BADGE_RE = re.compile(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([^/)\s]+)/([^)\s]+)\)")
_PROVENANCE_LINE = re.compile(r"^Adapted from .* by adapt_dsa_notebook\.py\.?$", re.MULTILINE)
# A repository that is a placeholder, never a real one (an OWNER/REPO badge must never be written).
PLACEHOLDER_REPOS = {"owner/repo", "user/repo", "org/repo"}


def _existing_header(nb) -> tuple[tuple[str, str, str] | None, str | None]:
    """((repo, branch, path) of the Colab badge, provenance line) an earlier run wrote (a re-run keeps them)."""
    for cell in nb.cells:
        if _kit_cell_name(cell) == BADGE_CELL:
            match = _BADGE_RE.search(cell.source)
            badge = None
            if match and match.group(1).lower() not in PLACEHOLDER_REPOS and match.group(3) != "NOTEBOOK_PATH":
                badge = (match.group(1), match.group(2), match.group(3))
            line = _PROVENANCE_LINE.search(cell.source)
            return badge, (line.group(0) if line else None)
    return None, None


def colab_badge(repo: str, branch: str, path: str) -> str:
    """The Open-in-Colab badge markdown for ``path`` in GitHub repository ``repo`` at ``branch``."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo or "") or repo.lower() in PLACEHOLDER_REPOS:
        raise NotebookError(f"colab repository {repo!r} is not OWNER/NAME of a real GitHub repository")
    return COLAB_BADGE.format(url=COLAB_URL.format(repo=repo, branch=branch, path=path.lstrip("/")))


def _render(recipe: Recipe, name: str, values: dict) -> cell_templates.CellTemplate:
    render_values = dict(values)
    render_values["_DSA_PACKAGES"] = dict(sorted(recipe.packages.items()))
    return cell_templates.render_cell(name, names=recipe.names, values=render_values)


def _kit_cell_name(cell) -> str | None:
    marker = cell.metadata.get(KIT_KEY)
    if isinstance(marker, dict) and isinstance(marker.get("cell"), str):
        return marker["cell"]
    return None


def adapt(nb, family: str = "auto", model_id: str | None = None, dataset_id: str | None = None,
          notebook_path: str | None = None, colab_repo: str | None = None, colab_branch: str = "main",
          base_name: str | None = None) -> Adapted:
    """Apply the recipe to a copy of ``nb`` (nbformat 4.5 node from :func:`read_notebook`).

    The kit header cell opens the output: the recipe's DSA title, the provenance line ("Adapted from <the
    base's title, else ``base_name``, else the family> by adapt_dsa_notebook.py") and, when both
    ``colab_repo`` (GitHub OWNER/NAME) and ``notebook_path`` (the output's path in it) are known, an Open in
    Colab badge; without them no badge is written (``Adapted.badge`` is None). A re-run keeps both.
    """
    nb = copy.deepcopy(nb)
    recipe, why = detect_family(nb, family)
    existing = _existing_parameters(nb)
    own_model = recipe.model_default([c.source for c in nb.cells if c.cell_type == "code"]) if recipe.model_default and model_id is None else None
    values = _parameter_values(recipe, model_id if own_model is None else own_model, dataset_id, existing)
    if own_model is not None and "MODEL_ID" in existing:
        values["MODEL_ID"] = existing["MODEL_ID"]
    old_badge, old_provenance = _existing_header(nb)
    if colab_repo and notebook_path:
        badge = (colab_repo, colab_branch, notebook_path)
    elif colab_repo and old_badge:
        badge = (colab_repo, colab_branch, old_badge[2])
    elif not colab_repo and old_badge and (notebook_path in (None, old_badge[2])):
        badge = old_badge
    else:
        badge = None
    values["_DSA_BADGE"] = colab_badge(*badge) if badge else None
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    title_at = next((i for i, c in enumerate(nb.cells[:first_code])
                     if c.cell_type == "markdown" and _kit_cell_name(c) is None and title_of(c.source)), None)
    base_title = title_of(nb.cells[title_at].source) if title_at is not None else None
    named = f'"{base_title}"' if base_title else (f"`{base_name}`" if base_name else f"the {recipe.title} notebook")
    values["_DSA_TITLE"] = recipe.dsa_title
    values["_DSA_PROVENANCE"] = old_provenance or f"Adapted from {named} by adapt_dsa_notebook.py."
    # Base code cells a replace/remove rule drops: the markdown right before one only explained it.
    dropped = {
        i for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and _kit_cell_name(c) is None
        and any(r.action in ("replace", "remove") and r.matches(c.source, "code") for r in recipe.rules)
    }
    secrets = []
    notebook_code = _code_text(nb)
    out_cells = []
    rows: list[tuple[object, str, str, str]] = []  # (cell or None, status, label, reason)
    used_rules: set[str] = set()
    present = {_kit_cell_name(c) for c in nb.cells} - {None}
    rendered_names: set[str] = set()

    base_position: dict[int, int] = {}  # id(output cell) -> position of the base cell it keeps

    def emit(cell, status, label, reason, position=None):
        out_cells.append(cell)
        rows.append((cell, status, label, reason))
        if position is not None:
            base_position[id(cell)] = position

    for position, cell in enumerate(nb.cells):
        kit_name = _kit_cell_name(cell)
        if kit_name is not None:
            template = _render(recipe, kit_name, values)
            fresh = _new_cell(template)
            fresh["id"] = cell.get("id", fresh["id"])
            if fresh.source == cell.source and fresh.metadata == cell.metadata:
                emit(cell, "kept", _label(cell), f"kit cell {kit_name}, up to date")
            else:
                emit(fresh, "replaced", _label(fresh), f"kit cell {kit_name} refreshed from adapters/cells")
            rendered_names.add(kit_name)
            continue
        rule = next((r for r in recipe.rules if r.action != "suffix" and r.matches(cell.source, cell.cell_type)), None)
        after_cells: list[str] = []
        suffix = next((r for r in recipe.rules if r.action == "suffix" and r.matches(cell.source, cell.cell_type)), None)
        if suffix is not None and (rule is None or rule.action == "prefix"):
            # Template cells go right after the first matching cell, which stays (e.g. the training log
            # written once trainer.train() has run); a cell may take a prefix and a suffix both.
            if suffix.name not in {k[0] for k in used_rules}:
                used_rules.add((suffix.name, False))
                after_cells = [n for n in suffix.cells if n not in present and n not in rendered_names]
        if rule is not None and rule.action == "prefix":
            # Template cells go right before the first matching cell, which then stays (e.g. the SFT rows
            # built just before SFTTrainer(...), once the tokenizer exists).
            if rule.name not in {k[0] for k in used_rules}:
                used_rules.add((rule.name, False))
                for name in rule.cells:
                    if name in present or name in rendered_names:
                        continue
                    fresh = _new_cell(_render(recipe, name, values))
                    emit(fresh, "inserted", _label(fresh), rule.reason)
                    rendered_names.add(name)
            rule = None
        if rule is not None:
            seen_after = bool(rule.after) and any(
                re.search(rule.after, c.source, re.MULTILINE) for c in nb.cells[:position] if c.cell_type == "code"
            )
            key = (rule.name, seen_after)
            first_use = key not in used_rules
            used_rules.add(key)
            targets = rule.cells_for(seen_after)
            if rule.action == "replace" and first_use and targets:
                for name in targets:
                    if name in present or name in rendered_names:
                        continue
                    fresh = _new_cell(_render(recipe, name, values))
                    emit(fresh, "replaced", _label(cell), f"{rule.reason} -> kit cell {name}")
                    rendered_names.add(name)
            elif rule.action == "replace" and targets:
                rows.append((None, "removed", _label(cell), f"{rule.reason} (already replaced above)"))
            elif rule.action == "replace":
                rows.append((None, "removed", _label(cell), f"{rule.reason} (runs in the kit cell above)"))
            else:
                rows.append((None, "removed", _label(cell), rule.reason))
            continue
        # Kept cell: the recipe's repairs, then the generic ones, each only where detected.
        source = cell.source
        reasons = []
        if cell.cell_type == "code":
            for repair in recipe.repairs + parameter_owner_repairs() + COMMON_REPAIRS:
                if repair.applies(source, notebook_code):
                    fixed = repair.apply(source, notebook_code)
                    if fixed != source:
                        reasons.append(repair.reason_for(source, notebook_code))
                        source = fixed
        if cell.cell_type == "markdown":
            explains = next((i for i in range(position + 1, len(nb.cells)) if nb.cells[i].cell_type == "code"), None)
            rewritten, why_md = rewrite_markdown(source, is_title=position == title_at,
                                                 explains_dropped=explains in dropped,
                                                 before_code=position < first_code)
            if rewritten is None:
                rows.append((None, "removed", _label(cell), "; ".join(why_md)))
                continue
            if why_md:
                reasons.extend(why_md)
                source = rewritten
        scrubbed, kinds = scrub_secrets(source)
        if kinds:
            secrets.extend(f"cell {position}: {kind}" for kind in kinds)
            source = scrubbed
            reasons.append("hard-coded " + " and ".join(sorted(set(kinds))) + " removed (read from the environment)")
        # papermill injects after the FIRST cell tagged `parameters`: the kit's own parameters cell is the
        # one, so a base settings cell loses the tag (its knobs that the kit owns are repaired above).
        untag = "parameters" in cell.metadata.get("tags", [])
        if untag:
            reasons.append("base 'parameters' tag removed: papermill injects after the kit's parameters cell")
        if reasons:
            fixed_cell = copy.deepcopy(cell)
            fixed_cell.source = source
            if untag:
                tags = [t for t in fixed_cell.metadata.get("tags", []) if t != "parameters"]
                if tags:
                    fixed_cell.metadata["tags"] = tags
                else:
                    fixed_cell.metadata.pop("tags", None)
            if fixed_cell.cell_type == "code":
                fixed_cell.outputs = []
                fixed_cell.execution_count = None
            emit(fixed_cell, "repaired", _label(cell), "; ".join(reasons), position)
        else:
            if cell.cell_type == "code" and _outputs_have_secret(cell):
                cell = copy.deepcopy(cell)
                cell.outputs = []
                cell.execution_count = None
                secrets.append(f"cell {position}: secret in outputs")
                emit(cell, "repaired", _label(cell), "outputs held a secret; cleared", position)
            else:
                emit(cell, "kept", _label(cell), "no DIPG change needed", position)
        for name in after_cells:
            fresh = _new_cell(_render(recipe, name, values))
            emit(fresh, "inserted", _label(fresh), next(r.reason for r in recipe.rules if name in r.cells))
            rendered_names.add(name)

    # Insertions (unless already there): parameters before the first code cell, so every knob is
    # set before first use; install (+ headless helpers) right after it; the DSA core after install.
    def insert_at(index, name):
        fresh = _new_cell(_render(recipe, name, values))
        anchor = out_cells[index] if index < len(out_cells) else None
        row_index = next((k for k, r in enumerate(rows) if r[0] is anchor), len(rows)) if anchor is not None else len(rows)
        out_cells.insert(index, fresh)
        rows.insert(row_index, (fresh, "inserted", _label(fresh), _INSERT_REASONS.get(name, "kit cell")))
        rendered_names.add(name)

    def position_of(name):
        return next((i for i, c in enumerate(out_cells) if _kit_cell_name(c) == name), None)

    # The "Open in Colab" badge opens every adapted notebook (Colab shows the first cell as the header).
    if BADGE_CELL not in rendered_names:
        insert_at(0, BADGE_CELL)
    for name in recipe.insert:
        if name in rendered_names:
            continue
        previous = recipe.insert[: recipe.insert.index(name)]
        anchors = [p for p in (position_of(n) for n in previous) if p is not None]
        if anchors:
            insert_at(max(anchors) + 1, name)
        else:
            insert_at(next((i for i, c in enumerate(out_cells) if c.cell_type == "code"), len(out_cells)), name)

    provided, inherited = _enforce_name_contract(nb, out_cells, rows, base_position)
    nb.cells = out_cells
    _finish_metadata(nb, recipe)
    ensure_cell_ids(nb)
    report = []
    position = {id(c): i for i, c in enumerate(nb.cells)}
    for cell, status, label, reason in rows:
        report.append(ReportRow(position.get(id(cell)) if cell is not None else None, status, label, reason))
    result = Adapted(nb=nb, family=recipe.name, why=why, report=report, secrets_found=secrets,
                     provided={name: (kit, position[id(cell)]) for name, (kit, cell) in provided.items()},
                     inherited=[(position[id(cell)], name) for cell, name in inherited],
                     badge=COLAB_URL.format(repo=badge[0], branch=badge[1], path=badge[2]) if badge else None)
    result.chat = chat_report_line(recipe, str(values.get("MODEL_ID") or ""))
    check_output(nb)
    return result


# What a model id says about its template, before any tokenizer is loaded (the patch report): substrings of
# the lower-cased id -> (template, stop tokens). None of them: read from the tokenizer at run time.
MODEL_ID_TEMPLATES = (
    ("gemma", ("Gemma", "<end_of_turn>, <eos>")),
    ("qwen", ("ChatML", "<|im_end|>, <|endoftext|>")),
    ("smollm", ("ChatML", "<|im_end|>")),
    ("llama-3", ("Llama-3", "<|eot_id|>, <|end_of_text|>")),
    ("llama3", ("Llama-3", "<|eot_id|>, <|end_of_text|>")),
)


def template_from_model_id(model_id: str) -> tuple[str, str] | None:
    """``"unsloth/Qwen3-4B-Base"`` -> ``("ChatML", "<|im_end|>, <|endoftext|>")``; None when the id does not say."""
    lowered = (model_id or "").lower()
    return next((found for key, found in MODEL_ID_TEMPLATES if key in lowered), None)


def chat_report_line(recipe: Recipe, model_id: str) -> str:
    """The report's ``chat template:`` line: the template and stop tokens MODEL_ID implies (Tunix: Gemma-3 only)."""
    if recipe.environment == "tunix":
        return "Gemma, stops <end_of_turn>, <eos> (Tunix runs Gemma-3 only)"
    found = template_from_model_id(model_id)
    if found is None:
        return (f"read from MODEL_ID {model_id!r}'s tokenizer at run time (the model's own when it can express a "
                "DIPG row, else plain ChatML); the notebook prints it")
    return f"{found[0]}, stops {found[1]} (from MODEL_ID {model_id!r}; the notebook prints its tokenizer's at run time)"


def _enforce_name_contract(nb, out_cells, rows, base_position):
    """The name contract (adapters/dataflow.py) on the output cells, in place.

    A kept base cell that reads a name only a dropped base cell defined is removed, with the reason in its
    report row, when nothing after it uses what it defines (a display cell such as ``print(dataset[0])``);
    otherwise the output is refused. Returns ({name: (kit cell, first reader)}, [(reader, name)]) for the
    names the kit provides and the names the base itself read before defining them.
    """
    base_code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    undefined = dict(zip((i for i, _ in base_code), undefined_reads([c.source for _, c in base_code])))
    base_defined = set().union(*(cell_names(c.source).defines for _, c in base_code)) if base_code else set()

    def definer_label(name: str) -> str:
        for _, cell in base_code:
            if name in cell_names(cell.source).defines:
                return _label(cell)
        return "?"

    while True:
        code_cells = [c for c in out_cells if c.cell_type == "code"]
        flow = [
            FlowCell(
                c.source,
                "kit" if _kit_cell_name(c) is not None else "base",
                _kit_cell_name(c) or _label(c),
                frozenset(undefined.get(base_position.get(id(c), -1), set())),
            )
            for c in code_cells
        ]
        contract = check_contract(flow, base_defined)
        if contract.introduced:
            reader, name = contract.introduced[0]
            raise NotebookError(
                f"name contract: repaired cell '{_label(code_cells[reader])}' reads {name}, which no earlier cell "
                "defines; the recipe's kit cells must define it before that cell"
            )
        lost = contract.lost_by_cell()
        if not lost:
            break
        index, names = next(iter(sorted(lost.items())))
        cell = code_cells[index]
        where = ", ".join(f"{n} (base cell '{definer_label(n)}')" for n in names)
        if not removable(flow, index):
            raise NotebookError(
                f"name contract: kept cell '{_label(cell)}' reads {where}, which the patch replaced or removed, and "
                "no kit cell provides it; the recipe must provide the name or rewrite that cell"
            )
        out_cells.remove(cell)
        row_at = next(k for k, r in enumerate(rows) if r[0] is cell)
        rows[row_at] = (None, "removed", rows[row_at][2],
                        f"reads {where}, replaced by the DIPG cells; nothing later uses what it defines")
    provided = {name: (kit, code_cells[reader]) for name, (kit, reader) in contract.provided.items()}
    inherited = [(code_cells[reader], name) for reader, name in contract.inherited]
    return provided, inherited


BADGE_CELL = "colab_badge"
_INSERT_REASONS = {
    BADGE_CELL: "kit header: DSA title, provenance line, Open in Colab badge (when the repository is known), "
                "where-it-runs note",
    "parameters": "papermill parameters (MODEL_ID, DATASET_ID, run-size knobs) before first use",
    "install": "guarded install of the kit's own needs (gym scorer --no-deps, pyyaml, ...): skips what imports",
    "headless": "environment detection and headless-safe input/login/tensorboard/pip helpers",
    "dsa_core": "DSA core inlined (format, chat template, masking, rewards) so the kit need not be installed",
    "dipg_tags": "DIPG think/proof/answer tags and prompt helpers",
    "dipg_data": "DIPG train/test split from DATASET_ID",
    "tunix_mesh": "device mesh shape (fsdp, tp) from the devices present and the model's attention heads",
    "hf_hub": "hub and tracker helpers: uploads only with a token and a reachable hub, trackers only where they import",
}


def _outputs_have_secret(cell) -> bool:
    text = nbformat.writes(nbformat.v4.new_notebook(cells=[cell]))
    return any(re.search(p, text) for _, p in SECRET_PATTERNS)


def _finish_metadata(nb, recipe: Recipe) -> None:
    """Kernelspec present; the kit marker names the family; Colab/Kaggle metadata left as is."""
    nb.nbformat = 4
    nb.nbformat_minor = 5
    if not isinstance(nb.metadata.get("kernelspec"), dict) or not nb.metadata["kernelspec"].get("name"):
        nb.metadata["kernelspec"] = dict(DEFAULT_KERNELSPEC)
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata[KIT_KEY] = {"family": recipe.name}


def check_output(nb) -> None:
    """Raise :class:`NotebookError` unless ``nb`` meets every output guarantee."""
    validate_notebook(nb)
    if not nb.metadata.get("kernelspec", {}).get("name"):
        raise NotebookError("output has no kernelspec")
    problems = code_problems(nb)
    if problems:
        raise NotebookError("output code does not parse: " + "; ".join(problems))
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for pattern in GSM8K_PATTERNS:
            match = re.search(pattern, cell.source)
            if match:
                raise NotebookError(
                    f"output cell {index} still refers to GSM8K ({match.group(0)!r}); the recipe does not cover it"
                )
    wording = markdown_problems(nb)
    if wording:
        raise NotebookError("output markdown still describes the GSM8K task: " + "; ".join(wording))
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and re.search(r"colab\.research\.google\.com/github/(?i:owner/repo)/", cell.source):
            raise NotebookError(f"output cell {index} has a placeholder OWNER/REPO Colab badge")
    text = nbformat.writes(nb)
    for kind, pattern in SECRET_PATTERNS:
        if re.search(pattern, text):
            raise NotebookError(f"output would contain a {kind}; refusing to write it")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise NotebookError(f"output has {len(tagged)} cells tagged 'parameters', expected 1")


def format_report(result: Adapted) -> str:
    """The table the CLI prints: one row per cell, then counts."""
    lines = [f"family: {result.why}"]
    header = ("#", "status", "cell", "reason")
    rows = [(str(r.index) if r.index is not None else "-", r.status, r.cell, r.reason) for r in result.report]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header[:3])]
    lines.append(f"{header[0]:>{widths[0]}}  {header[1]:<{widths[1]}}  {header[2]:<{widths[2]}}  {header[3]}")
    for row in rows:
        lines.append(f"{row[0]:>{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}")
    lines.append("totals: " + ", ".join(f"{k} {v}" for k, v in result.counts().items()))
    lines.append(f"colab badge: {result.badge}" if result.badge else
                 "colab badge: left out (no --colab-repo, and no GitHub 'origin' remote or --colab-path for the output)")
    if result.chat:
        lines.append(f"chat template: {result.chat}")
    for name, (kit, reader) in sorted(result.provided.items()):
        lines.append(f"provides: {name} (kit cell {kit}; first read by cell {reader})")
    for reader, name in result.inherited:
        lines.append(f"base defect kept: cell {reader} reads {name}, which the base notebook never defines before it")
    for index, what in result.reasons_starting("hardware fallback:"):
        lines.append(f"hardware fallback: cell {index}: {what}")
    for index, what in result.reasons_starting("GPU/TPU only:"):
        lines.append(f"GPU/TPU only: cell {index}: {what}")
    if result.secrets_found:
        lines.append(f"secrets: {len(result.secrets_found)} hard-coded credential(s) found and not copied: "
                     + "; ".join(result.secrets_found))
    return "\n".join(lines)
