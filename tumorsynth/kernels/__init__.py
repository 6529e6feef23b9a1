"""Kernels: the per-voxel hot paths.

``kernels.cpu`` holds the numba implementations, ``kernels.reference`` slow NumPy oracles of the same
functions used by the tests. A GPU sibling, ``kernels.cuda``, keeps the same names and signatures.
"""

from tumorsynth.kernels.compile_notice import install as _install_compile_notice

_install_compile_notice()
