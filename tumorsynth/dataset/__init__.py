"""Datasets on disk: ``generate`` (host CTs or phantoms in, an nnU-Net v2 dataset out), ``replay``
(one case again, bit for bit, from the manifest) and ``preview`` (PNG slices through each tumour).

- :mod:`~tumorsynth.dataset.sources`: which CTs and masks a run reads and how they pair up;
- :mod:`~tumorsynth.dataset.layout`: the dataset folder, its records and its manifest; its locks
  (:mod:`~tumorsynth.dataset.locks`);
- :mod:`~tumorsynth.dataset.casework`: one case made and written;
- :mod:`~tumorsynth.dataset.generate`, :mod:`~tumorsynth.dataset.replay`,
  :mod:`~tumorsynth.dataset.preview`: the commands' functions.
"""
