"""A knowledge graph made in code: family trees, with derived facts held out.

A fact (h, r, t) reads "t is h's r": (ada, parent, ben) says ben is ada's parent. The base
relations come from the trees themselves; the others follow from them by rules, which is what
an agent walking the graph can discover:

    parent, child, spouse, sibling                          base (siblings: same two parents)
    grandparent     = parent . parent                       grandchild      = child . child
    aunt_or_uncle   = parent . sibling                      niece_or_nephew = sibling . child
    cousin          = parent . sibling . child  (= aunt_or_uncle . child)

Every relation has its inverse in the graph (parent <-> child, grandparent <-> grandchild,
aunt_or_uncle <-> niece_or_nephew; spouse, sibling and cousin are their own), so a walk can go
both ways along any edge, as MINERVA's inverse edges allow. A fraction of the derived facts is
held out, each together with its inverse (else the inverse edge would give it away): the graph
misses them, the agent is asked for them, and the ones it ranks first are recovered links.

Relation ids 0..2 are the walk's own symbols (``core/interfaces/kg.py``): padding, the stay
action NO_OP and START, the "previous relation" of the first step.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from duetrl.core.interfaces.kg import SPECIAL_RELATIONS

BASE_RELATIONS = ("parent", "child", "spouse", "sibling")
DERIVED_RELATIONS = ("grandparent", "grandchild", "aunt_or_uncle", "niece_or_nephew", "cousin")
RELATIONS = SPECIAL_RELATIONS + BASE_RELATIONS + DERIVED_RELATIONS
"""Every relation name, by id."""
INVERSE = {
    "parent": "child",
    "child": "parent",
    "spouse": "spouse",
    "sibling": "sibling",
    "grandparent": "grandchild",
    "grandchild": "grandparent",
    "aunt_or_uncle": "niece_or_nephew",
    "niece_or_nephew": "aunt_or_uncle",
    "cousin": "cousin",
}
NAMES = (
    "ada",
    "ben",
    "cleo",
    "dan",
    "eva",
    "finn",
    "gia",
    "hugo",
    "iris",
    "jon",
    "kai",
    "lea",
    "max",
    "nina",
    "otto",
    "pia",
    "quin",
    "rosa",
    "sam",
    "tara",
    "umar",
    "vera",
    "wim",
    "xena",
    "yuri",
    "zoe",
)


@dataclass
class FamilyGraph:
    """The graph: entity and relation names, the facts it holds and the facts held out.

    ``facts`` (N, 3) and ``heldout`` (M, 3) are int64 rows (head, relation, tail), both closed
    under inverses; ``query_relations`` are the ids asked about (the derived relations).
    """

    entities: list[str]
    facts: np.ndarray
    heldout: np.ndarray
    relations: list[str] = field(default_factory=lambda: list(RELATIONS))

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    @property
    def query_relations(self) -> list[int]:
        return [self.relations.index(r) for r in DERIVED_RELATIONS]

    def inverse(self, relation: int) -> int:
        """The id of ``relation``'s inverse."""
        return self.relations.index(INVERSE[self.relations[relation]])

    def entity_id(self, name: str) -> int:
        """The id of entity ``name``; ValueError naming a few of the graph's entities."""
        if name not in self._entity_ids:
            raise ValueError(
                f"entity: expected one of the graph's {self.num_entities} entities "
                f"(e.g. {', '.join(self.entities[:4])}), got {name!r}"
            )
        return self._entity_ids[name]

    def relation_id(self, name: str) -> int:
        """The id of query relation ``name``; ValueError listing them."""
        if name not in DERIVED_RELATIONS:
            raise ValueError(
                f"relation: expected a query relation, one of "
                f"{list(DERIVED_RELATIONS)}, got {name!r}"
            )
        return self.relations.index(name)

    def __post_init__(self) -> None:
        self._entity_ids = {name: i for i, name in enumerate(self.entities)}

    def answers(self) -> dict[tuple[int, int], set[int]]:
        """Every known tail of (head, relation), the graph's and the held-out ones: what the
        filtered ranking removes (all answers but the one asked for)."""
        known: dict[tuple[int, int], set[int]] = defaultdict(set)
        for h, r, t in np.concatenate([self.facts, self.heldout]):
            known[int(h), int(r)].add(int(t))
        return known

    def queries(self, split: str) -> np.ndarray:
        """The facts of the query relations, (Q, 3): ``"train"`` the graph's, ``"test"`` the
        held-out ones."""
        if split not in ("train", "test"):
            raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
        rows = self.facts if split == "train" else self.heldout
        return rows[np.isin(rows[:, 1], self.query_relations)]

    def describe(self, fact: np.ndarray | tuple[int, int, int]) -> str:
        """``(ada_3, grandparent, ben_0)``."""
        h, r, t = (int(x) for x in fact)
        return f"({self.entities[h]}, {self.relations[r]}, {self.entities[t]})"


Pairs = list[tuple[int, int]]


def family_trees(
    families: int, generations: int, rng: np.random.Generator
) -> tuple[int, Pairs, Pairs]:
    """People, (child, parent) pairs and spouse pairs of ``families`` trees.

    Generation 0 is a couple per family; every couple has 1 to 3 children; a child (not of the
    last generation) marries, with probability 0.8, a newcomer who has no parents in the graph.
    """
    people = 0
    parents: list[tuple[int, int]] = []
    couples: list[tuple[int, int]] = []
    for _ in range(families):
        generation = [(people, people + 1)]
        couples.append(generation[0])
        people += 2
        for g in range(1, generations):
            next_couples = []
            for mother, father in generation:
                for _ in range(int(rng.integers(1, 4))):
                    child = people
                    people += 1
                    parents += [(child, mother), (child, father)]
                    if g < generations - 1 and rng.random() < 0.8:
                        next_couples.append((child, people))  # marries a newcomer
                        people += 1
            couples += next_couples
            generation = next_couples
    return people, parents, couples


def derived_facts(
    parents: list[tuple[int, int]], couples: list[tuple[int, int]]
) -> dict[str, set[tuple[int, int]]]:
    """Every fact (h, t) of each relation, base and derived, from the trees."""
    parent_of: dict[int, set[int]] = defaultdict(set)
    children_of: dict[int, set[int]] = defaultdict(set)
    for child, parent in parents:
        parent_of[child].add(parent)
        children_of[parent].add(child)
    facts: dict[str, set[tuple[int, int]]] = {r: set() for r in INVERSE}
    facts["parent"] = {(c, p) for c, p in parents}
    facts["spouse"] = {(a, b) for a, b in couples} | {(b, a) for a, b in couples}
    for x, ps in parent_of.items():
        siblings = {s for p in ps for s in children_of[p]} - {x}
        facts["sibling"] |= {(x, s) for s in siblings}
        facts["grandparent"] |= {(x, g) for p in ps for g in parent_of.get(p, ())}
        aunts = {a for p in ps for q in parent_of.get(p, ()) for a in children_of[q]} - ps
        facts["aunt_or_uncle"] |= {(x, a) for a in aunts}
        facts["cousin"] |= {(x, c) for a in aunts for c in children_of[a]}
    for relation in ("child", "grandchild", "niece_or_nephew"):  # the inverses, read backwards
        facts[relation] = {(t, h) for h, t in facts[INVERSE[relation]]}
    return facts


def make_family_graph(
    families: int = 14, generations: int = 4, heldout_fraction: float = 0.2, seed: int = 0
) -> FamilyGraph:
    """The family trees' graph, a fraction of the derived facts held out (with inverses).

    :param families: how many trees (about 18 people each with 4 generations).
    :param generations: generations per tree, >= 3 (so that grandparents exist).
    :param heldout_fraction: the share of derived facts, in [0, 1), taken out of the graph.
    :param seed: the trees and the held-out draw.
    """
    if not isinstance(families, int) or families < 1:
        raise ValueError(f"families: expected an int >= 1, got {families!r}")
    if not isinstance(generations, int) or generations < 3:
        raise ValueError(f"generations: expected an int >= 3, got {generations!r}")
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction: expected a number in [0, 1), got {heldout_fraction!r}")
    rng = np.random.default_rng((seed, 63))
    people, parents, couples = family_trees(families, generations, rng)
    ids = {r: i for i, r in enumerate(RELATIONS)}
    by_relation = derived_facts(parents, couples)
    rows = [(h, ids[r], t) for r in INVERSE for h, t in sorted(by_relation[r])]
    # hold out each derived fact whose head-tail pair is drawn, with its inverse (t, r', h)
    first_half = [
        i
        for i, (h, r, t) in enumerate(rows)
        if RELATIONS[r] in ("grandparent", "aunt_or_uncle", "cousin")
        and (RELATIONS[r] != "cousin" or h < t)
    ]
    drawn = rng.random(len(first_half)) < heldout_fraction
    out = {rows[i] for i, d in zip(first_half, drawn) if d}
    out |= {(t, ids[INVERSE[RELATIONS[r]]], h) for h, r, t in out}
    held = np.array([row for row in rows if row in out], dtype=np.int64).reshape(-1, 3)
    kept = np.array([row for row in rows if row not in out], dtype=np.int64)
    entities = [f"{NAMES[i % len(NAMES)]}_{i}" for i in range(people)]
    return FamilyGraph(entities, kept, held)


def tiny_graph() -> FamilyGraph:
    """Four people listed by hand, the tests' and the tutorial's example: ben is ada's parent,
    cleo is ben's parent (so ada's grandparent), dan is ada's sibling; with the inverses.
    Nothing is held out."""
    ada, ben, cleo, dan = range(4)
    r = {name: i for i, name in enumerate(RELATIONS)}
    facts = [
        (ada, "parent", ben),
        (ben, "child", ada),
        (ben, "parent", cleo),
        (cleo, "child", ben),
        (ada, "grandparent", cleo),
        (cleo, "grandchild", ada),
        (ada, "sibling", dan),
        (dan, "sibling", ada),
    ]
    rows = np.array([(h, r[name], t) for h, name, t in facts], dtype=np.int64)
    return FamilyGraph(["ada", "ben", "cleo", "dan"], rows, np.zeros((0, 3), np.int64))
