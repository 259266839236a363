"""How counts read in messages: '1 key', '2 keys', never '1 keys'."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word``, pluralised (``many`` for irregular plurals: 'processes')."""
    return f"{count} {word if count == 1 else many or word + 's'}"
