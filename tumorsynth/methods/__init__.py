"""Methods that consume the synthetic stream, each in a subpackage of its own and trained through
:class:`tumorsynth.train.Trainer`'s hooks: SPARS, ASLseg and SAR."""
