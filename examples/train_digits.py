"""Train an MLP and a small CNN on scikit-learn's 8x8 handwritten digits (the `gradflow demo` job).

The training code lives in `gradflow/demo.py` so that the installed `gradflow demo`
command can run it; read it there. This script exposes its options:

    python examples/train_digits.py                      # best device, 20 epochs, writes gradflow-digits.png
    python examples/train_digits.py --device cpu --epochs 5 --plot digits.png
    python examples/train_digits.py --short              # one epoch (CI)
"""

from __future__ import annotations

import sys

from gradflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
