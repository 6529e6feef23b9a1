"""``python -m tumorsynth.cli``: the ``tumorsynth`` command (also what torchrun runs with ``-m``)."""

from tumorsynth.cli import main

if __name__ == "__main__":
    main()
