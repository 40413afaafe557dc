"""phononft: fine-tuning MACE foundation models for phonon and thermal properties.

All workflow logic lives here; the Snakemake rules call thin scripts that import this package.
"""

import os

# torch >= 2.6 loads weights-only by default; e3nn 0.4.4 constants and MACE model files need full
# unpickling.  Must be set before torch/e3nn load anything.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

__version__ = "0.1.0"
