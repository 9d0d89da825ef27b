"""Machine translation with a sequence-level BLEU reward (outline 6.3.2): a synthetic language
pair (``language``), sacrebleu's BLEU (``bleu``), held-out figures and exposure bias
(``evaluation``), maximum likelihood then self-critical sequence training (``train``)."""
