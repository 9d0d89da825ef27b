"""Tokenisers, corpora and batches: nothing downloaded, everything reproducible."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from duetrl.core.lm.corpora import CORPORA, MarkovChain, digits_text, load_corpus, pydoc_text
from duetrl.core.lm.data import TokenData, train_rng
from duetrl.core.lm.tokenizers import BPETokenizer, CharTokenizer, tokenizer_from_dict


def test_char_tokenizer_round_trip():
    tokenizer = CharTokenizer.train("hello world")
    ids = tokenizer.encode("low hello")
    assert ids.dtype == np.int64 and tokenizer.decode(ids) == "low hello"
    assert tokenizer_from_dict(tokenizer.to_dict()).vocab == tokenizer.vocab
    with pytest.raises(ValueError, match="'z' is not in the tokeniser"):
        tokenizer.encode("zoo")
    assert CharTokenizer.printable().vocab_size == 100


def test_bpe_tokenizer_learns_merges_and_round_trips():
    text = pydoc_text(20_000)
    tokenizer = BPETokenizer.train(text, 200)
    assert tokenizer.vocab_size == 200
    sample = pydoc_text(30_000)[20_000:21_000]
    ids = tokenizer.encode(sample)
    assert tokenizer.decode(ids) == sample
    assert len(ids) < 0.7 * len(sample)  # merges compress the text
    again = tokenizer_from_dict(tokenizer.to_dict())
    np.testing.assert_array_equal(again.encode(sample), ids)
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train("abc", 2)


def test_markov_entropy_rate_matches_its_samples():
    chain = MarkovChain.random(num_states=5, concentration=0.5, seed=3)
    states = chain.sample(100_000, seed=0)
    empirical = -np.mean(np.log(chain.transitions[states[:-1], states[1:]]))
    assert abs(empirical - chain.entropy_rate) < 0.02
    pi = chain.stationary
    np.testing.assert_allclose(pi @ chain.transitions, pi, atol=1e-12)


def test_corpora_are_made_locally():
    for name in CORPORA:
        text = load_corpus(name, 5000)
        assert 1000 < len(text) <= 5000, name
    assert digits_text(3, seed=0).count("\n") == 3
    for line in digits_text(50).splitlines():
        a, rest = line.split("+")
        b, c = rest.split("=")
        assert int(a) + int(b) == int(c)
    with pytest.raises(ValueError, match="corpus: expected one of"):
        load_corpus("wikipedia")


def test_batches_are_windows_shifted_by_one():
    data = TokenData(np.arange(1000), block_size=8, val_fraction=0.1)
    x, y = data.batch("train", 4, train_rng(0, 5))
    assert x.shape == y.shape == (4, 8)
    np.testing.assert_array_equal(y, x + 1)
    x2, _ = data.batch("train", 4, train_rng(0, 5))
    np.testing.assert_array_equal(x, x2)  # a function of (seed, step) only
    assert data.batch("val", 2, train_rng(0, 0))[0].min() >= 900
    with pytest.raises(ValueError, match="fewer than block_size"):
        TokenData(np.arange(20), block_size=8)


def test_core_imports_no_framework():
    """core/lm and the references must stay framework-free."""
    root = Path(__file__).parent.parent / "core"
    for path in [*root.glob("lm/*.py"), root / "reference/gpt.py", root / "reference/optim.py"]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            for name in names:
                assert name.split(".")[0] not in ("torch", "tensorflow", "keras"), path
