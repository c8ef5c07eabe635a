"""Tenant names as people read them: normalised (NFKC, no invisible or control characters, single
spaces) and compared by a look-alike "skeleton", so `D\\u0435mo team` (a Cyrillic e) or `Demo team` with a
zero-width space cannot pose as `Demo Team`.

The skeleton follows Unicode's confusable detection (UTS #39, section 4): each character becomes
the prototype it is confusable with, from Unicode's confusables data as shipped and kept current by
the `confusable_homoglyphs` package (its data is confusables.txt; its API answers "is this string
confusable?", while comparing two names needs a canonical form, so the mapping is applied here).
"""

import json
import unicodedata
from functools import cache
from importlib.resources import files

# Unicode categories never visible in a name: controls, format characters (zero-width space and
# joiners, bidi marks), surrogates, private use, unassigned; line and paragraph separators.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
# Letters that render as blank space though their category says otherwise (Hangul fillers, …).
_BLANK_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"}


def name_normalise(name: str) -> str:
    """NFKC, invisible and control characters removed, runs of spaces made one, ends trimmed."""
    name = unicodedata.normalize("NFKC", name or "")
    kept = "".join(
        ch
        for ch in name
        if unicodedata.category(ch) not in _INVISIBLE_CATEGORIES and ch not in _BLANK_LETTERS
    )
    return " ".join(kept.split())


@cache
def _confusables() -> dict[str, str]:
    """character → its prototype, from confusable_homoglyphs' copy of confusables.txt.

    That data lists, for each prototype, every character confusable with it, and for each such
    character the prototype alone; a pair listing only each other is mapped to the lower of the two.
    """
    data = json.loads(
        files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    mapping = {}
    for char, entries in data.items():
        if len(char) != 1 or len(entries) != 1:
            continue
        target = entries[0]["c"]
        back = data.get(target, [])
        if len(back) == 1 and back[0]["c"] == char:
            target = min(char, target)
        if target != char:
            mapping[char] = target
    return mapping


def _skeleton(text: str) -> str:
    mapping = _confusables()
    text = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(mapping.get(ch, ch) for ch in text))


def name_skeletons(name: str) -> set[str]:
    """The forms two names share when a reader could take one for the other, case included.

    Two, because case and look-alikes interact: `AIpha` (capital I) looks like `Alpha` only before
    case is folded (I → l), while `ILLINOIS` matches `illinois` only after. Names whose sets meet
    look alike.
    """
    name = name_normalise(name)
    forms = (_skeleton(name.casefold()), _skeleton(_skeleton(name).casefold()))
    return {_skeleton(form).casefold().replace(" ", "") for form in forms}
