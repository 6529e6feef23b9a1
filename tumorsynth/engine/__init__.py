"""The synthesis engine: a healthy case in, tumours drawn as params, then rendered by the kernels.

- :mod:`~tumorsynth.engine.case`: :class:`Case`, the checked CT, organ mask and spacing, and the
  organ's measurements (:mod:`~tumorsynth.engine.organ`);
- :mod:`~tumorsynth.engine.stages`: one module per stage of a tumour (location, shape, texture,
  intensity, mass effect, capsule), each a ``*Config``, frozen ``*Params`` and a ``sample_*``;
- :mod:`~tumorsynth.engine.params` / :mod:`~tumorsynth.engine.config`: the drawn params of a volume
  (JSON round-trip) and the synthesis config with its presets (``presets/*.json``);
- :mod:`~tumorsynth.engine.config_files`: every command's config read from a file, a dict or the
  defaults, with ``key=value`` overrides and unknown fields named;
- :mod:`~tumorsynth.engine.packing` / :mod:`~tumorsynth.engine.gpu_pack`: params packed into the
  flat arrays the kernels read;
- :mod:`~tumorsynth.engine.pipeline`: ``sample_params``, ``render`` and ``synthesize``;
- :mod:`~tumorsynth.engine.batch`: batched synthesis on the GPU.

The public names are re-exported by :mod:`tumorsynth`.
"""
