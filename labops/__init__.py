"""Operator tools over many lab stacks, built on Pulumi's Automation API.

    python -m labops.graph --stack sim          # `make graph`: the lab as a picture (Graphviz)
    python -m labops.fleet status               # `make fleet`: every lab stack, its state and drift
    python -m labops.fleet up sim sim-three --continue-on-error

``labops.stacks`` reads stacks (state without secrets, drift from a refreshing preview); ``labops.graph`` and
``labops.fleet`` are thin commands on top. Run them with the project's environment (``. scripts/env.sh``).
"""
