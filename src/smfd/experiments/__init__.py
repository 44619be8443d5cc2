"""Experiments declared in configs and run by the package: the bake-off (``smfd bakeoff``; its YAML file read by
:mod:`.spec`) trains what is missing, scores every candidate on the same test faces, tabulates, and renders a
shipped candidate's model card."""
