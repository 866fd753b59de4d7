"""DIPG dataset I/O: load (hub id, file, saved dir), validate rows, split the upstream way, save, push.

Sources :func:`load_rows` / :func:`load_splits` accept:

* a local ``.jsonl`` file (one row per line; a non-JSON or truncated line is reported with its
  line number; a file that is not UTF-8 is reported with the offending byte offset);
* a local ``.json`` file holding a list of rows;
* a local ``.parquet`` file;
* a folder written by ``DatasetDict.save_to_disk`` / ``Dataset.save_to_disk``;
* a folder with ``train`` and ``test`` files (``.jsonl``, ``.json`` or ``.parquet``);
* a hub id (``owner/name``), read with ``datasets.load_dataset`` (fails with one clear line offline).

A source that already has ``train``/``test`` splits is used as is; a single collection of rows is
split the upstream way (FIELD_NOTES §1): ``random.seed(42); random.shuffle(rows)``, then the first
``N - 100`` rows are train and the last 100 test (for the upstream N = 1500 that is exactly
``[:1400]`` / ``[1400:1500]``).

Row indices in messages are 0-based positions in the source (in a JSONL file without blank lines,
row ``i`` is line ``i + 1``); rows of a pre-split source are named ``train row i`` / ``test row i``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chat import check_control_tokens
from .dsa_format import parse_strict
from .errors import ControlTokenError, DatasetError, OutputExistsError

ROW_KEYS = ("messages", "metadata")
METADATA_KEYS = ("id", "type", "source", "timestamp")
ROW_TYPES = ("reasoning", "refusal", "haystack", "anti_knowledge")
SPLITS = ("train", "test")
UPSTREAM_SEED = 42
UPSTREAM_TEST_ROWS = 100
TOKEN_ENV_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")

_USER_RE = re.compile(r"^<context>\n.*?\n</context>\n\n<question>\n.*?\n</question>$", re.DOTALL)
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# ---------------------------------------------------------------------------------------------
# Validation

@dataclass(frozen=True)
class RowIssue:
    """One reason a row breaks the schema. ``kind`` is a stable key for counting; ``message`` is prose."""

    kind: str
    message: str


def _type_name(value: Any) -> str:
    """``a list``, ``an int``, ``null``: the JSON-ish type of ``value`` for messages."""
    if value is None:
        return "null"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def row_issues(row: Any) -> list[RowIssue]:
    """Every way ``row`` breaks the FIELD_NOTES §1 schema (empty list: the row is valid).

    Checks, in order: the row is an object with exactly ``messages`` and ``metadata``; exactly two
    turns user -> assistant (no system turn), each an object with exactly ``role`` and ``content``,
    content a non-empty string without chat-control tokens; the user turn has the
    ``<context>``/``<question>`` layout; the assistant turn passes the strict dual-stream parse;
    metadata has exactly ``id``/``type``/``source``/``timestamp``, non-empty strings, a known type.
    """
    if not isinstance(row, dict):
        return [RowIssue("row_not_object", f"row is {_type_name(row)}, expected an object")]
    issues: list[RowIssue] = []
    extra = sorted(set(row) - set(ROW_KEYS))
    if extra:
        issues.append(RowIssue("extra_columns", f"unexpected column(s) {', '.join(map(repr, extra))}"))
    for key in ROW_KEYS:
        if key not in row:
            issues.append(RowIssue(f"missing_{key}", f"missing column {key!r}"))
    if "messages" in row:
        issues.extend(_message_issues(row["messages"]))
    if "metadata" in row:
        issues.extend(_metadata_issues(row["metadata"]))
    return issues


def _message_issues(messages: Any) -> list[RowIssue]:
    if not isinstance(messages, list):
        return [RowIssue("messages_not_list", f"messages is {_type_name(messages)}, expected a list")]
    if any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
        return [RowIssue("system_turn", "messages contain a system turn (the dataset has none)")]
    if len(messages) != 2:
        return [RowIssue("turn_count", f"messages has {len(messages)} turn(s), expected 2 (user, assistant)")]
    issues: list[RowIssue] = []
    for index, (message, role) in enumerate(zip(messages, ("user", "assistant"))):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            issues.append(RowIssue("message_not_object", f"{where} is {_type_name(message)}, expected an object"))
            continue
        extra = sorted(set(message) - {"role", "content"})
        if extra:
            issues.append(RowIssue("extra_message_keys", f"{where} has unexpected key(s) {', '.join(map(repr, extra))}"))
        if message.get("role") != role:
            issues.append(RowIssue("role_order", f"{where}.role is {message.get('role')!r}, expected {role!r}"))
        content = message.get("content")
        if "content" not in message:
            issues.append(RowIssue("content_type", f"{where}.content is missing"))
        elif not isinstance(content, str):
            issues.append(RowIssue("content_type", f"{where}.content is {_type_name(content)}, expected a string"))
        elif not content.strip():
            issues.append(RowIssue("empty_content", f"{where}.content is empty"))
    if issues:
        return issues
    try:
        check_control_tokens(messages)
    except ControlTokenError as exc:
        return [RowIssue("control_token", str(exc))]
    user, reply = messages[0]["content"], messages[1]["content"]
    if not _USER_RE.match(user):
        missing = [tag for tag in ("context", "question") if f"<{tag}>" not in user or f"</{tag}>" not in user]
        detail = f"missing <{'> and <'.join(missing)}> block" if missing else "blocks not laid out as <context>\\n…\\n</context>\\n\\n<question>\\n…\\n</question>"
        issues.append(RowIssue("user_layout", f"messages[0].content: {detail}"))
    parsed = parse_strict(reply)
    if not parsed.ok:
        issues.append(RowIssue(f"reply_{parsed.primary_kind}", f"messages[1].content: {parsed.describe()}"))
    return issues


def _metadata_issues(metadata: Any) -> list[RowIssue]:
    if not isinstance(metadata, dict):
        return [RowIssue("metadata_not_object", f"metadata is {_type_name(metadata)}, expected an object")]
    issues: list[RowIssue] = []
    extra = sorted(set(metadata) - set(METADATA_KEYS))
    if extra:
        issues.append(RowIssue("extra_metadata_keys", f"metadata has unexpected key(s) {', '.join(map(repr, extra))}"))
    for key in METADATA_KEYS:
        if key not in metadata:
            issues.append(RowIssue("missing_metadata", f"metadata.{key} is missing"))
        elif not isinstance(metadata[key], str):
            issues.append(RowIssue("metadata_type", f"metadata.{key} is {_type_name(metadata[key])}, expected a string"))
        elif not metadata[key].strip():
            issues.append(RowIssue("metadata_empty", f"metadata.{key} is empty"))
    row_type = metadata.get("type")
    if isinstance(row_type, str) and row_type.strip() and row_type not in ROW_TYPES:
        issues.append(RowIssue("bad_type", f"metadata.type is {row_type!r}, expected one of {', '.join(ROW_TYPES)}"))
    return issues


def validate_row(row: Any, index: int) -> list[str]:
    """Reasons ``row`` (at 0-based ``index``) is invalid, each ``"row {index}: {reason}"``; empty if valid."""
    return [f"row {index}: {issue.message}" for issue in row_issues(row)]


# ---------------------------------------------------------------------------------------------
# Reading

def _read_jsonl(path: Path) -> list[Any]:
    """Rows of a JSONL file; blank lines are skipped. Raises :class:`DatasetError` naming the line."""
    text = _read_text(path)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            # An error at the very end of the line means the row was cut off mid-way.
            kind = "truncated JSON" if exc.pos >= len(line.rstrip()) or "Unterminated" in exc.msg else "invalid JSON"
            raise DatasetError(f"{path}: line {number}: {kind} ({exc.msg} at column {exc.colno})") from None
    if not rows:
        raise DatasetError(f"{path}: file has no rows")
    return rows


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # a leading byte-order mark (Windows editors) is not data
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DatasetError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}, line {line})"
        ) from None


def _read_json(path: Path) -> list[Any]:
    text = _read_text(path)
    if not text.strip():
        raise DatasetError(f"{path}: file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of rows, found {_type_name(data)}")
    if not data:
        raise DatasetError(f"{path}: file has no rows")
    return data


def _read_parquet(path: Path) -> list[Any]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DatasetError(f"{path}: cannot read Parquet ({type(exc).__name__}: {_first_line(exc)})") from None
    rows = table.to_pylist()
    if not rows:
        raise DatasetError(f"{path}: file has no rows")
    return rows


def _read_file(path: Path) -> list[Any]:
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: file is empty")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".json":
        return _read_json(path)
    if suffix == ".parquet":
        return _read_parquet(path)
    raise DatasetError(f"{path}: unsupported file type {suffix or '(none)'} (use .jsonl, .json or .parquet)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _dataset_to_rows(dataset) -> list[dict]:
    return [dict(row) for row in dataset]


def _read_saved(path: Path) -> dict[str, list[Any]]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise DatasetError(f"{path}: cannot load saved dataset ({_first_line(exc)})") from None
    if isinstance(loaded, datasets.DatasetDict):
        return {name: _dataset_to_rows(split) for name, split in loaded.items()}
    return {"all": _dataset_to_rows(loaded)}


def _read_folder(path: Path) -> dict[str, list[Any]]:
    if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists() or (path / "state.json").exists():
        return _read_saved(path)
    found: dict[str, list[Any]] = {}
    for split in SPLITS:
        candidates = [path / f"{split}{suffix}" for suffix in DATA_SUFFIXES if (path / f"{split}{suffix}").is_file()]
        if candidates:
            found[split] = _read_file(candidates[0])
    if set(found) != set(SPLITS):
        raise DatasetError(
            f"{path}: not a saved dataset and has no train/test files (expected train.jsonl and test.jsonl, "
            f"or .json/.parquet)"
        )
    return found


def _read_hub(repo: str) -> dict[str, list[Any]]:
    """``datasets.load_dataset(repo)``; any failure (offline, missing, private) becomes one line."""
    import datasets
    from huggingface_hub.utils import logging as hub_logging

    # The hub client logs every retry as a warning; the user gets one error line instead.
    verbosity = hub_logging.get_verbosity()
    hub_logging.set_verbosity_error()
    try:
        loaded = datasets.load_dataset(repo)
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        hint = "HF_HUB_OFFLINE is set; " if offline else ""
        raise DatasetError(
            f"{repo}: cannot load hub dataset: {type(exc).__name__}: {_first_line(exc)} "
            f"({hint}no local file or folder of that name either)"
        ) from None
    finally:
        hub_logging.set_verbosity(verbosity)
    return {name: _dataset_to_rows(split) for name, split in loaded.items()}


def read_source(source: str | os.PathLike) -> dict[str, list[Any]]:
    """Raw rows of ``source`` by split: ``{"all": rows}`` for one collection, else ``{"train", "test"}``.

    Rows are returned unvalidated (they may be anything JSON can hold); :func:`row_issues` judges them.
    """
    path = Path(source)
    if path.is_dir():
        splits = _read_folder(path)
    elif path.is_file():
        splits = {"all": _read_file(path)}
    elif path.exists():
        raise DatasetError(f"{path}: not a regular file or folder")
    elif _HUB_ID_RE.match(str(source)) and path.suffix.lower() not in DATA_SUFFIXES:
        splits = _read_hub(str(source))
    else:
        raise DatasetError(f"{source}: no such file or folder (and not a hub id owner/name)")
    if "all" not in splits:
        missing = [s for s in SPLITS if s not in splits]
        if missing and len(splits) == 1:
            # A hub dataset or saved dict with one split (e.g. only ``train``) is one collection.
            splits = {"all": next(iter(splits.values()))}
        elif missing:
            raise DatasetError(f"{source}: splits {sorted(splits)} lack {', '.join(missing)}")
        else:
            splits = {name: splits[name] for name in SPLITS}
    return splits


def load_rows(source: str | os.PathLike) -> list[dict]:
    """All rows of ``source`` (train then test for a pre-split source), unvalidated."""
    return [row for rows in read_source(source).values() for row in rows]


# ---------------------------------------------------------------------------------------------
# Splitting

def upstream_split(rows: list) -> tuple[list, list]:
    """The upstream split: ``random.seed(42); random.shuffle(rows)``; first ``N-100`` train, last 100 test.

    Shapes: ``rows`` (N,) -> ``(train (N-100,), test (100,))``. The input list is not modified.
    The global ``random`` state is used exactly as upstream did, then restored, so callers'
    random streams are untouched.
    """
    if len(rows) <= UPSTREAM_TEST_ROWS:
        raise DatasetError(f"need more than {UPSTREAM_TEST_ROWS} rows to split, got {len(rows)}")
    shuffled = list(rows)
    state = random.getstate()
    try:
        random.seed(UPSTREAM_SEED)
        random.shuffle(shuffled)
    finally:
        random.setstate(state)
    cut = len(shuffled) - UPSTREAM_TEST_ROWS
    return shuffled[:cut], shuffled[cut:]


def split_label(split: str, index: int) -> str:
    """How a row is named in messages: ``row 17`` or ``train row 17``."""
    return f"row {index}" if split == "all" else f"{split} row {index}"


def invalid_rows(splits: dict[str, list[Any]]) -> list[tuple[str, int, list[RowIssue]]]:
    """``(split, index, issues)`` for every invalid row, in source order."""
    bad = []
    for split, rows in splits.items():
        for index, row in enumerate(rows):
            issues = row_issues(row)
            if issues:
                bad.append((split, index, issues))
    return bad


def to_dataset_dict(train: list[dict], test: list[dict]):
    """``datasets.DatasetDict`` with ``train`` and ``test`` from lists of valid rows."""
    import datasets

    features = datasets.Features({
        "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
        "metadata": {key: datasets.Value("string") for key in METADATA_KEYS},
    })
    return datasets.DatasetDict({
        "train": datasets.Dataset.from_list(train, features=features),
        "test": datasets.Dataset.from_list(test, features=features),
    })


def load_splits(source: str | os.PathLike):
    """``DatasetDict`` (train/test) of valid rows; raises :class:`DatasetError` on any invalid row.

    A pre-split source keeps its split; one collection is split with :func:`upstream_split`.
    """
    splits = read_source(source)
    bad = invalid_rows(splits)
    if bad:
        split, index, issues = bad[0]
        more = f" (and {len(bad) - 1} more invalid row(s))" if len(bad) > 1 else ""
        raise DatasetError(f"{source}: {split_label(split, index)}: {'; '.join(i.message for i in issues)}{more}")
    if "all" in splits:
        train, test = upstream_split(splits["all"])
    else:
        train, test = splits["train"], splits["test"]
    return to_dataset_dict(train, test)


# ---------------------------------------------------------------------------------------------
# Writing

def _write_jsonl(rows, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def save_splits(dd, out_dir: str | os.PathLike, force: bool = False) -> Path:
    """Write ``dd`` to ``out_dir``: ``save_to_disk`` files plus ``train.jsonl`` / ``test.jsonl``.

    The folder is built in a temporary folder beside it and renamed into place, so it is written
    whole or not at all; an existing ``out_dir`` is replaced only with ``force``.
    """
    out = Path(out_dir)
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: already exists (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; the output is an ordinary folder
    retired = None
    try:
        dd.save_to_disk(str(staging))
        for split in dd:
            _write_jsonl((dict(row) for row in dd[split]), staging / f"{split}.jsonl")
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, retired / out.name)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and not out.exists() and (retired / out.name).exists():
            os.replace(retired / out.name, out)  # put the previous output back
        raise
    finally:
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    return out


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def hub_token() -> str | None:
    """The hub token from the environment (``HF_TOKEN`` first), or ``None``. Never log it."""
    for name in TOKEN_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def push_preflight(repo: str) -> str:
    """Check what a push needs before any work is done; returns the token (never log it).

    Raises :class:`DatasetError` for a malformed repo id, a missing token or ``HF_HUB_OFFLINE``.
    """
    if not _HUB_ID_RE.match(repo):
        raise DatasetError(f"{repo!r}: not a hub repo id (expected owner/name)")
    token = hub_token()
    if token is None:
        raise DatasetError(f"cannot push to {repo}: set HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) in the environment")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise DatasetError(f"cannot push to {repo}: HF_HUB_OFFLINE is set (the hub is switched off)")
    return token


def push_to_hub(dd, repo: str) -> None:
    """Push ``dd`` to the hub dataset ``repo`` with the token from the environment.

    Raises :class:`DatasetError` with one line (the token scrubbed from it) when there is no token,
    the hub is switched off (``HF_HUB_OFFLINE``), or the push fails.
    """
    token = push_preflight(repo)
    try:
        dd.push_to_hub(repo, token=token)
    except Exception as exc:
        message = _first_line(exc).replace(token, "***")
        raise DatasetError(f"cannot push to {repo}: {type(exc).__name__}: {message}") from None
