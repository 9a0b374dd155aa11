"""Seeded character-level typos: the noise that `qonnx analyze robustness` feeds every variant.

A word is a run of letters; words shorter than MIN_WORD letters are left alone. For a rate r, each
text gets r x (its eligible words) edits on average (the fractional part is rounded up with that
probability, so short texts are not spared at low rates), on distinct words drawn with the rng,
one edit per word, its kind drawn uniformly from KINDS:

- swap: two adjacent, different letters change places (the case pattern stays by position);
- delete: one letter is dropped;
- insert: a key next to a letter of the word on a QWERTY keyboard is typed beside it;
- substitute: one letter becomes a key next to it on a QWERTY keyboard.

Inserted and substituted letters take the case of the letter they stand for. Every edit changes
the word (a swap with no two different adjacent letters, or a substitution without a letter on
the keyboard, falls back to another kind), and the words stay words, so the changed fraction can
be counted back (changed_words). Pure functions: the same texts, rate and seed give the same
output on every machine (Python's random.Random).
"""
import random
import re
import string

KINDS = ("swap", "delete", "insert", "substitute")
MIN_WORD = 2
WORD = re.compile(r"[^\W\d_]+")  # letters only (any script)
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict:
    """Keys that touch each letter on a staggered QWERTY layout (each row sits half a key right
    of the one above): same row left/right, the two above and the two below."""
    pos = {c: (r, i) for r, row in enumerate(KEYBOARD_ROWS) for i, c in enumerate(row)}
    at = {v: k for k, v in pos.items()}
    out = {}
    for c, (r, i) in pos.items():
        near = [(r, i - 1), (r, i + 1), (r - 1, i), (r - 1, i + 1), (r + 1, i - 1), (r + 1, i)]
        out[c] = "".join(at[p] for p in near if p in at)
    return out


NEIGHBOURS = _neighbours()


def _like(letter: str, model: str) -> str:
    return letter.upper() if model.isupper() else letter


def _swap(word, rng):
    spots = [i for i in range(len(word) - 1) if word[i].lower() != word[i + 1].lower()]
    if not spots:
        return None
    i = rng.choice(spots)
    a, b = word[i], word[i + 1]
    if a.isascii() and b.isascii():  # the case pattern stays where it was: Hello -> Ehllo
        a, b = _like(a.lower(), b), _like(b.lower(), a)
    return word[:i] + b + a + word[i + 2:]


def _delete(word, rng):
    i = rng.randrange(len(word))
    return word[:i] + word[i + 1:]


def _insert(word, rng):
    i = rng.randrange(len(word))  # the letter the finger was on; the stray key lands after it
    base = word[i]
    new = rng.choice(NEIGHBOURS.get(base.lower()) or string.ascii_lowercase)
    return word[:i + 1] + _like(new, base) + word[i + 1:]


def _substitute(word, rng):
    spots = [i for i, c in enumerate(word) if c.lower() in NEIGHBOURS]
    if not spots:
        return None
    i = rng.choice(spots)
    return word[:i] + _like(rng.choice(NEIGHBOURS[word[i].lower()]), word[i]) + word[i + 1:]


EDITS = {"swap": _swap, "delete": _delete, "insert": _insert, "substitute": _substitute}
FALLBACK = {"swap": "substitute", "substitute": "delete"}


def edit(word: str, kind: str, rng: random.Random) -> str:
    """One typo of `kind` in `word` (at least MIN_WORD letters); always a different word."""
    while True:
        out = EDITS[kind](word, rng)
        if out is not None:
            return out
        kind = FALLBACK[kind]


def check_rate(rate):
    if not 0 <= rate <= 1:
        raise ValueError(f"a noise rate is a fraction of words between 0 and 1, got {rate}")


def eligible(text: str) -> list:
    """(start, end) of every word that may be edited."""
    return [m.span() for m in WORD.finditer(text) if m.end() - m.start() >= MIN_WORD]


def perturb(text: str, rate: float, rng: random.Random) -> str:
    """`text` with typos in about `rate` of its eligible words (see the module docstring)."""
    check_rate(rate)
    if rate == 0:
        return text
    spans = eligible(text)
    exact = rate * len(spans)
    k = int(exact)
    if rng.random() < exact - k:
        k += 1
    if not k:
        return text
    out, last = [], 0
    for i in sorted(rng.sample(range(len(spans)), k)):
        a, b = spans[i]
        out += [text[last:a], edit(text[a:b], rng.choice(KINDS), rng)]
        last = b
    out.append(text[last:])
    return "".join(out)


def perturb_all(texts, rate: float, seed: int) -> list:
    """Every text perturbed in order from one random.Random(seed): the same list for a seed."""
    check_rate(rate)
    if rate == 0:
        return list(texts)
    rng = random.Random(seed)
    return [perturb(t, rate, rng) for t in texts]


def changed_words(originals, perturbed) -> tuple:
    """(words changed, words eligible) over paired texts: edits keep every word a word, so the
    eligible words of an original line up with the words of its perturbed text."""
    changed = total = 0
    for a, b in zip(originals, perturbed):
        words_b = [m.group() for m in WORD.finditer(b)]
        spans = set(eligible(a))
        words_a = [(m.group(), m.span() in spans) for m in WORD.finditer(a)]
        if len(words_a) != len(words_b):
            raise ValueError(f"not a perturbation of its original: {a!r} -> {b!r}")
        for (wa, counted), wb in zip(words_a, words_b):
            total += counted
            changed += counted and wa != wb
    return changed, total
