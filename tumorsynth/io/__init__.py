"""Volumes on disk through SimpleITK, with their geometry; every write atomic.

- :mod:`~tumorsynth.io.volume`: read and write NIfTI, NRRD, MetaImage and DICOM series, (X, Y, Z)
  arrays with origin, spacing and direction;
- :mod:`~tumorsynth.io.case`: a CT and its organ mask read into a :class:`~tumorsynth.Case`, the
  mask resampled onto the CT's grid where it lies on another.
"""
