"""A small language model, framework-neutral parts: config, parameters, tokenisers, corpora,
sampling, training loop (outline 2.1, 4.1.3, 9.1)."""
