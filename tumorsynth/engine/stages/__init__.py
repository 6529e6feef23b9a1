"""The stages of one tumour, each with a ``*Config`` (ranges), frozen ``*Params`` (drawn values) and
a ``sample_*`` function. Rendering is fused into one kernel (``tumorsynth.kernels``) that reads the
params of every stage.
"""
