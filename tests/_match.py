"""Helpers shared by the contract tests (imported as ``from _match import exactly``)."""

from __future__ import annotations

import re


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern that matches ``message`` word for word, whole.

    >>> import re
    >>> bool(re.search(exactly("a (b)"), "a (b)")), bool(re.search(exactly("a (b)"), "a (b)!"))
    (True, False)
    """
    return "^" + re.escape(message) + "$"
