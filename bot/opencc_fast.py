"""OpenCC's conversion (the pure-Python `opencc-python-reimplemented` 0.1.7), computed with
each dictionary searched once per text instead of again in every piece a match leaves.

That package converts a string by a tree: for each dictionary of a group in turn, it finds the
longest key anywhere in a node's text (leftmost among the longest) by trying every length from
the dictionary's longest key down to its shortest at every position, replaces it, and does the
same again in the text left and right of it; what no key matched goes on to the group's next
dictionary. A 30-character message costs ≈ 15 tries per character against the phrase
dictionary, and a long reply (a repayment schedule for a borrower who writes Traditional) is
searched again in every piece a match leaves: ≈ 4 % of a tuned Rasa turn (docs/benchmarks.md,
session 16), every message being converted to Simplified for the NLU.

The same result, computed differently: every key that occurs is found once, each position
tried only for the lengths up to the longest key that begins with its character; then the
matches are taken longest first, leftmost among equals, skipping any that overlaps one
already taken. That is the tree's choice: the tree takes the longest-leftmost
match of the whole text, then, separately left and right of it, the longest-leftmost match
that fits there, which is the next match in that same order that overlaps nothing taken. The
gaps between the taken matches are the tree's unmatched nodes, each converted on its own by
the next dictionary. Values with several candidates give the first, as the package does. A
dictionary where some key's value is empty (the package then treats that node as unmatched,
which the order above does not model) keeps the package's own conversion; none of the
shipped ones has such a key.
"""

from __future__ import annotations

from typing import Any, Protocol

_Dictionary = tuple[int, int, dict[str, str]]


class _Package(Protocol):
    def convert(self, text: str) -> str: ...


class _Lookup:
    """One dictionary (the package's own mapping), the values it has several candidates for,
    and the longest key that begins with each character."""

    def __init__(self, dictionary: _Dictionary) -> None:
        longest, shortest, mapping = dictionary
        self.shortest = shortest
        self.mapping = mapping
        self.several = {key: _chosen(value) for key, value in mapping.items() if " " in value}
        self.single = longest == 1
        self.reach: dict[str, int] = {}
        for key in mapping:
            if len(key) > self.reach.get(key[0], 0):
                self.reach[key[0]] = len(key)

    @property
    def faithful(self) -> bool:
        return all(self.value(key) for key in self.mapping)

    def value(self, key: str) -> str:
        chosen = self.several.get(key)
        return self.mapping[key] if chosen is None else chosen

    def matches(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """(−length, position) of every key occurring in text[start:end]."""
        found: list[tuple[int, int]] = []
        mapping, reach, shortest = self.mapping, self.reach, self.shortest
        i = start
        for ch in text[start:end]:
            longest = reach.get(ch)
            if longest is not None:
                for n in range(shortest, min(longest, end - i) + 1):
                    if text[i:i + n] in mapping:
                        found.append((-n, i))
            i += 1
        return found


def _chosen(value: str) -> str:
    parts = value.split(" ")
    return parts[0] if len(parts) > 1 else value


class FastOpenCC:
    """`convert` as the package's `OpenCC(config).convert`, from the same loaded dictionaries."""

    def __init__(self, package: Any) -> None:
        self._package: _Package = package
        self._split = package.split_chars_re
        self._chain = [[_Lookup(d) for d in group] for group in package._dict_chain_data]
        self.faithful = all(lookup.faithful for group in self._chain for lookup in group)

    def convert(self, text: str) -> str:
        if not self.faithful:
            return self._package.convert(text)
        pieces = self._split.split(text)
        for i in range(0, len(pieces), 2):  # even pieces are text, odd ones the separators
            if pieces[i]:
                pieces[i] = self._convert_piece(pieces[i])
        return "".join(pieces)

    def _convert_piece(self, text: str) -> str:
        for group in self._chain:
            text = "".join(self._group(text, 0, len(text), group, 0))
        return text

    def _group(self, text: str, start: int, end: int, group: list[_Lookup],
               index: int) -> list[str]:
        """text[start:end] through group[index:], as the package's parse tree leaves it."""
        if index == len(group):
            return [text[start:end]]
        lookup = group[index]
        if lookup.single and index + 1 == len(group):  # the last, of single characters
            mapping = lookup.mapping
            return [lookup.value(ch) if ch in mapping else ch for ch in text[start:end]]
        candidates = lookup.matches(text, start, end)
        if not candidates:
            return self._group(text, start, end, group, index + 1)
        candidates.sort()
        taken: list[tuple[int, int]] = []  # (position, length) of the matches taken
        covered = bytearray(end - start)
        for negative, position in candidates:
            length = -negative
            offset = position - start
            if any(covered[offset:offset + length]):
                continue
            covered[offset:offset + length] = b"\x01" * length
            taken.append((position, length))
        taken.sort()
        out: list[str] = []
        cursor = start
        for position, length in taken:
            if position > cursor:
                out.extend(self._group(text, cursor, position, group, index + 1))
            out.append(lookup.value(text[position:position + length]))
            cursor = position + length
        if cursor < end:
            out.extend(self._group(text, cursor, end, group, index + 1))
        return out
