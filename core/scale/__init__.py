"""Beyond one machine (outline 7.2.3, 8.3.3): sweeps of training runs as Ray tasks, honest
statistics over seeds, and RLlib interop. Needs the ``scale`` extra (``pip install
duetrl[scale]``); nothing here is imported by the rest of duetrl."""
