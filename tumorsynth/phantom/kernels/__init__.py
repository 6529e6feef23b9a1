"""The phantom's numba kernels: signed distances, smooth noise and waves, painting tissues.

Used only by :mod:`tumorsynth.phantom`; arrays in, arrays out.
"""
