"""Volumes on disk through SimpleITK, with their geometry; every write atomic.

- :mod:`~tumorsynth.io.volume`: read and write NIfTI, NRRD, MetaImage and DICOM series, (X, Y, Z)
  arrays with origin, spacing and direction;
- :mod:`~tumorsynth.io.case`: a CT and its organ mask read into a :class:`~tumorsynth.Case`, the
  mask resampled onto the CT's grid where it lies on another;
- :mod:`~tumorsynth.io.verify`: whether a file holds all its header promises (every write is
  checked before its rename), and why a write failed;
- :mod:`~tumorsynth.io.dicom`: DICOM series, refused with a missing or unreadable slice;
- :mod:`~tumorsynth.io.nifti`: the NaN and infinite voxels SimpleITK's NIfTI reader sets to 0.
"""
