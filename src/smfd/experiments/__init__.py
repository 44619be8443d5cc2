"""Experiments declared in configs and run by the package:

* ``spec``: a bake-off's YAML file (configs/bakeoff.yaml) as typed dataclasses, checked when it is loaded, an error
  naming the key;
* ``bakeoff``: ``smfd bakeoff``: trains what is missing (jobs of :mod:`smfd.train.jobs`), scores every candidate on
  the same test faces, tabulates, and renders a shipped candidate's model card.
"""
