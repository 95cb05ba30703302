"""Train a small MLP on two spirals with raw gradflow tensors (the `gradflow demo` job).

python examples/train_spirals.py --device cpu --steps 300
"""

import argparse

from gradflow import demo

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    demo.run(steps=args.steps, device=args.device)
