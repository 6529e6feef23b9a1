"""Presets as data: each ``<name>.json`` overrides the defaults of :class:`tumorsynth.SynthConfig`."""
