"""A synthetic language pair made in code (outline 6.3.2): English-like in, "Duetish" out.

    source  S  -> NP_subj V NP_obj [Adv]         NP -> Det [Adj] N [Prep NP']  (subject-verb-object)
    target  S' -> NP'_subj NP'_obj [Adv'] V'      NP' -> Det' N' [Adj'] [NP'' Post]  (verb last)

What a word-by-word copy gets wrong, on purpose:

* **order**: the verb goes to the end (SOV), the adverb before it, the adjective after its noun,
  a preposition becomes a postposition after its noun phrase;
* **agreement**: the article and the adjective take the noun's gender and number
  (``the`` -> el / la / los / las, ``red`` -> rojo / roja / rojos / rojas), the verb the
  subject's number (``sees`` / ``see`` -> ve / ven): the right word depends on another word,
  sometimes one that comes later.

A sentence is a list of words; the model sees one token per word. A row of the GPT is

    [<pad> ... <pad>] source words  <sep>  target words  <eos>  [<pad> ...]
    |<---------- max_source ---------->|    |<------- max_target ------->|

the source left-padded so ``<sep>`` sits at the same column in every row (the prompt of a
batched decode), the target right-padded after ``<eos>``. The training loss weighs the target
words and ``<eos>`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

PAD, SEP, EOS = "<pad>", "<sep>", "<eos>"
SPECIALS = (PAD, SEP, EOS)

# (singular, plural, target singular, target plural, gender)
NOUNS = (
    ("cat", "cats", "gato", "gatos", "m"), ("dog", "dogs", "perro", "perros", "m"),
    ("bird", "birds", "pajaro", "pajaros", "m"), ("horse", "horses", "caballo", "caballos", "m"),
    ("boy", "boys", "chico", "chicos", "m"), ("girl", "girls", "chica", "chicas", "f"),
    ("cow", "cows", "vaca", "vacas", "f"), ("house", "houses", "casa", "casas", "f"),
    ("table", "tables", "mesa", "mesas", "f"), ("mouse", "mice", "rata", "ratas", "f"),
)
# source adjective -> target stem; the ending agrees: m sg -o, f sg -a, m pl -os, f pl -as
ADJECTIVES = (("red", "roj"), ("small", "pequen"), ("black", "negr"), ("white", "blanc"),
              ("old", "viej"), ("new", "nuev"))
ENDINGS = {("m", "sg"): "o", ("f", "sg"): "a", ("m", "pl"): "os", ("f", "pl"): "as"}
# (source singular subject, plural subject, target singular, target plural)
VERBS = (("sees", "see", "ve", "ven"), ("follows", "follow", "sigue", "siguen"),
         ("finds", "find", "encuentra", "encuentran"), ("likes", "like", "ama", "aman"),
         ("chases", "chase", "caza", "cazan"), ("hears", "hear", "oye", "oyen"))
# definite "the" (sg and pl), indefinite "a" (sg) / "some" (pl)
ARTICLES = {("the", "m", "sg"): "el", ("the", "f", "sg"): "la", ("the", "m", "pl"): "los",
            ("the", "f", "pl"): "las", ("a", "m", "sg"): "un", ("a", "f", "sg"): "una",
            ("some", "m", "pl"): "unos", ("some", "f", "pl"): "unas"}
PREPOSITIONS = (("near", "cerca"), ("behind", "tras"), ("under", "bajo"), ("with", "con"))
ADVERBS = (("quickly", "rapido"), ("often", "siempre"), ("slowly", "lento"), ("today", "hoy"))


def source_words() -> list[str]:
    """The source vocabulary, in a fixed order."""
    words = [w for noun in NOUNS for w in noun[:2]] + [a for a, _ in ADJECTIVES]
    words += [w for verb in VERBS for w in verb[:2]] + ["the", "a", "some"]
    return words + [p for p, _ in PREPOSITIONS] + [a for a, _ in ADVERBS]


def target_words() -> list[str]:
    """The target vocabulary, in a fixed order."""
    words = [w for noun in NOUNS for w in noun[2:4]]
    words += [stem + ending for _, stem in ADJECTIVES for ending in ENDINGS.values()]
    words += [w for verb in VERBS for w in verb[2:]] + list(ARTICLES.values())
    return words + [p for _, p in PREPOSITIONS] + [a for _, a in ADVERBS]


@dataclass(frozen=True)
class GrammarSettings:
    """How often each optional part appears (each a probability)."""

    adjective: float = 0.5  # an adjective in a noun phrase
    phrase: float = 0.3  # a prepositional phrase after the subject's or the object's noun
    adverb: float = 0.3  # an adverb at the end
    plural: float = 0.5  # a plural noun
    definite: float = 0.5  # "the" rather than "a" / "some"


def _noun_phrase(rng: np.random.Generator, g: GrammarSettings,
                 nested: bool) -> tuple[list[str], list[str], str]:
    """(source words, target words, number) of one noun phrase; ``nested``: no further phrase."""
    noun = NOUNS[rng.integers(len(NOUNS))]
    number = "pl" if rng.random() < g.plural else "sg"
    gender = noun[4]
    det = "the" if rng.random() < g.definite else ("a" if number == "sg" else "some")
    src, tgt = [det], [ARTICLES[det, gender, number]]
    adjective = ADJECTIVES[rng.integers(len(ADJECTIVES))] if rng.random() < g.adjective else None
    if adjective is not None:
        src.append(adjective[0])  # English: the adjective before its noun
    src.append(noun[0] if number == "sg" else noun[1])
    tgt.append(noun[2] if number == "sg" else noun[3])
    if adjective is not None:  # Duetish: after its noun, agreeing in gender and number
        tgt.append(adjective[1] + ENDINGS[gender, number])
    if not nested and rng.random() < g.phrase:
        prep, post = PREPOSITIONS[rng.integers(len(PREPOSITIONS))]
        inner_src, inner_tgt, _ = _noun_phrase(rng, g, nested=True)
        src += [prep, *inner_src]
        tgt += [*inner_tgt, post]  # a postposition after its noun phrase
    return src, tgt, number


def sentence_pair(rng: np.random.Generator,
                  grammar: GrammarSettings | None = None) -> tuple[list[str], list[str]]:
    """One (source, target) sentence pair drawn from the grammar."""
    g = grammar or GrammarSettings()
    subj_src, subj_tgt, number = _noun_phrase(rng, g, nested=False)
    verb = VERBS[rng.integers(len(VERBS))]
    obj_src, obj_tgt, _ = _noun_phrase(rng, g, nested=False)
    adverb = ADVERBS[rng.integers(len(ADVERBS))] if rng.random() < g.adverb else None
    src = [*subj_src, verb[0] if number == "sg" else verb[1], *obj_src]
    tgt = [*subj_tgt, *obj_tgt]
    if adverb is not None:
        src.append(adverb[0])
        tgt.append(adverb[1])  # before the verb
    tgt.append(verb[2] if number == "sg" else verb[3])  # the verb agrees with the subject
    return src, tgt


def word_by_word(source: list[str]) -> list[str]:
    """The copying baseline: each source word replaced by one target word, in source order
    (articles and adjectives in the masculine, verbs as their form of the source's number)."""
    table: dict[str, str] = {}
    for sg, pl, tsg, tpl, _ in NOUNS:
        table[sg], table[pl] = tsg, tpl
    for adj, stem in ADJECTIVES:
        table[adj] = stem + "o"
    for sg, pl, tsg, tpl in VERBS:
        table[sg], table[pl] = tsg, tpl
    table.update({"the": "el", "a": "un", "some": "unos"})
    table.update(dict(PREPOSITIONS))
    table.update(dict(ADVERBS))
    return [table[w] for w in source]


MAX_SOURCE = 16  # Det Adj N Prep Det Adj N | V | Det Adj N Prep Det Adj N | Adv
MAX_TARGET = 17  # the same words, and <eos>


@dataclass(frozen=True)
class Corpus:
    """Sentence pairs, split into train and held-out (no held-out source is a train source)."""

    train: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]
    heldout: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]


def make_corpus(train_pairs: int, heldout_pairs: int, seed: int,
                grammar: GrammarSettings | None = None) -> Corpus:
    """``train_pairs`` and ``heldout_pairs`` distinct pairs from the grammar (seeded); the
    held-out sources never appear in train, so held-out BLEU measures generalisation."""
    if train_pairs < 1 or heldout_pairs < 1:
        raise ValueError(f"train_pairs, heldout_pairs: expected ints >= 1, got {train_pairs}, "
                         f"{heldout_pairs}")
    rng = np.random.default_rng((seed, 11))
    seen: set[tuple[str, ...]] = set()
    pairs: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    while len(pairs) < train_pairs + heldout_pairs:
        src, tgt = sentence_pair(rng, grammar)
        if tuple(src) not in seen:
            seen.add(tuple(src))
            pairs.append((tuple(src), tuple(tgt)))
    return Corpus(train=tuple(pairs[heldout_pairs:]), heldout=tuple(pairs[:heldout_pairs]))


class Vocabulary:
    """One token per word: the specials, the source words, then the target words.

    The GPT has one embedding table, so both languages share the ids; the checks below say
    which language a sentence must be in.
    """

    def __init__(self) -> None:
        self.words = [*SPECIALS, *source_words(), *target_words()]
        self.ids = {w: i for i, w in enumerate(self.words)}
        self.pad, self.sep, self.eos = (self.ids[s] for s in SPECIALS)
        self.source, self.target = set(source_words()), set(target_words())
        self.max_source, self.max_target = MAX_SOURCE, MAX_TARGET

    @property
    def size(self) -> int:
        return len(self.words)

    @cached_property
    def block_size(self) -> int:
        """Columns of a row: the source, <sep>, the target and <eos>."""
        return self.max_source + 1 + self.max_target

    def check_sentence(self, words: list[str] | tuple[str, ...] | str, side: str,
                       name: str) -> list[str]:
        """``words`` (a list, or a string split on spaces) as a list, checked: not empty, no
        longer than the side allows, every word of that side's language.

        :param side: ``"source"`` or ``"target"``.
        :param name: what to call the argument in an error (``sentence``, ``reference``).
        :raises ValueError: naming ``name``, what was expected and what was given.
        """
        words = words.split() if isinstance(words, str) else list(words)
        language, longest = ((self.source, self.max_source) if side == "source"
                             else (self.target, self.max_target - 1))
        if not words:
            raise ValueError(f"{name}: expected a {side} sentence of 1 to {longest} words, got "
                             "an empty one")
        if len(words) > longest:
            raise ValueError(f"{name}: expected at most {longest} words, got {len(words)}: "
                             f"{' '.join(words)!r}")
        unknown = [w for w in words if w not in language]
        if unknown:
            other = "target" if side == "source" else "source"
            hint = (f" (they are {other}-language words: is it the other side of the pair?)"
                    if all(w in (self.target | self.source) for w in unknown) else "")
            raise ValueError(f"{name}: expected words of the {side} language, got "
                             f"{unknown[:5]} in {' '.join(words)!r}{hint}")
        return words

    def rows(self, pairs: list | tuple) -> tuple[np.ndarray, np.ndarray]:
        """Token rows ``(N, block_size)`` of (source, target) pairs, and their loss weights
        ``(N, block_size - 1)``: 1 where the next token is a target word or <eos>."""
        tokens = np.full((len(pairs), self.block_size), self.pad, np.int64)
        weights = np.zeros((len(pairs), self.block_size - 1))
        for i, (src, tgt) in enumerate(pairs):
            tokens[i, : self.max_source + 1] = self.prompt(src)
            ids = [self.ids[w] for w in tgt] + [self.eos]
            start = self.max_source + 1
            tokens[i, start : start + len(ids)] = ids
            weights[i, start - 1 : start - 1 + len(ids)] = 1.0  # column t predicts token t+1
        return tokens, weights

    def prompt(self, source: list[str] | tuple[str, ...]) -> np.ndarray:
        """``(max_source + 1,)`` the left-padded source and <sep>: where decoding starts."""
        row = np.full(self.max_source + 1, self.pad, np.int64)
        row[self.max_source - len(source) : self.max_source] = [self.ids[w] for w in source]
        row[self.max_source] = self.sep
        return row

    def completion(self, new_tokens: np.ndarray) -> tuple[list[list[str]], np.ndarray]:
        """Decoded outputs ``(B, n)`` -> (the words before each row's first <eos>, the mask
        ``(B, n)`` of tokens that belong to the output: up to and including <eos>)."""
        new_tokens = np.asarray(new_tokens)
        is_eos = new_tokens == self.eos
        after_eos = np.cumsum(is_eos, axis=1) - is_eos > 0  # strictly after the first <eos>
        mask = (~after_eos).astype(np.float64)
        sentences = []
        for row, keep in zip(new_tokens, mask):
            sentences.append([self.words[t] for t in row[keep > 0] if t != self.eos])
        return sentences, mask
