"""Knowledge-graph reasoning by walking the graph (outline 6.3.3; MINERVA, Das et al. 2018).

``graph``: a family tree made in code, derived facts held out; ``walk``: the action sets the
agent chooses from; ``train``: REINFORCE with a moving-average baseline on ``duetrl.core.run``;
``evaluate``: beam search, filtered hits@k and MRR; ``path_ranking``: the random-walk baseline;
``rules``: the learned relation paths read as rules.
"""
