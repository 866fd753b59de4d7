"""The kit's exceptions, in one place (as papermill keeps its own in ``exceptions.py``).

Every error a user can cause derives from :class:`DSAError`; the CLIs catch it, print one
``error: ...`` line on stderr and exit with :attr:`DSAError.exit_code`.
"""


class DSAError(Exception):
    """Base class for errors caused by the input, not by a bug in the kit."""

    exit_code = 2


class FormatError(DSAError):
    """A reply is not a well-formed dual stream (raised only on request; parsers return reasons)."""


class ControlTokenError(DSAError):
    """Message text contains a chat-control token (Gemma's, or the tokenizer template's) that would shift a mask."""


class ConversationError(DSAError):
    """Messages do not have the shape the chat template expects (roles, types, emptiness)."""


class TemplateError(ConversationError):
    """A tokenizer's chat template cannot express a conversation: none, no assistant role, it raises,
    or a reply is not in its rendering verbatim (``adapters/chat_template.py``)."""


class DatasetError(DSAError):
    """A dataset cannot be read, or a row breaks the schema."""


class NotebookError(DSAError):
    """A notebook cannot be read, validated or written."""


class UnknownFamilyError(NotebookError):
    """No recipe recognises the base notebook."""

    exit_code = 3


class OutputExistsError(DSAError):
    """Refusing to overwrite an existing output."""
