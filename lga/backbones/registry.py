"""The backbone registry: ``@BACKBONES.register("<name>")`` on a backbone class makes ``conf/backbone``
options with ``_target_`` that class possible (its schema is ``schema/backbone/<name>``)."""

from __future__ import annotations

from ..registry import Registry

# the run adds the input channels and the attention factory (lga.build.build_model)
BACKBONES = Registry("backbone", filled=("in_chans", "attention"), convert=True)
