"""A tiny character-level Transformer language model, trained on gradflow's own documentation.

The text is the repository's README.md, docs/*.md and CHANGELOG.md (found next to this
script; nothing is downloaded). Every character becomes a token. A batch is a set of
random windows of the text; the model reads a window and predicts, at every position,
the next character:

    token Embedding + learned position embedding
    -> 2-layer TransformerEncoder (batch_first, causal mask: position i sees 0..i)
    -> LayerNorm -> Linear head over the vocabulary

trained with AdamW on the cross-entropy of the next character. The loss (nats per
character) starts near log(vocabulary size) and falls below the unigram entropy, the
best a model can do without looking at context. Finally the model writes ~200
characters from a prompt, one at a time, sampling with a temperature.

Run it from the repository root (``pip install -e .`` or ``PYTHONPATH=.``)::

    python examples/tiny_transformer.py --device auto          # about a minute on 2 CPU cores
    python examples/tiny_transformer.py --device cpu --short   # 5 steps (or GRADFLOW_EXAMPLE_SHORT=1)
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import nn, optim

REPO_ROOT = Path(__file__).resolve().parent.parent


def load_corpus(root: Path) -> str:
    """README.md, docs/*.md and CHANGELOG.md of the repository, joined."""
    paths = [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "CHANGELOG.md"]
    texts = [path.read_text(encoding="utf-8") for path in paths if path.is_file()]
    if not texts:
        raise FileNotFoundError(f"tiny_transformer: no documentation found under {root}; run it from a checkout")
    return "\n\n".join(texts)


def unigram_entropy(ids: np.ndarray, vocab_size: int) -> float:
    """Entropy (nats) of the character frequencies: the loss of the best context-free predictor."""
    p = np.bincount(ids, minlength=vocab_size) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


class TinyTransformer(nn.Module):
    """Embeddings, a causal TransformerEncoder and a linear head predicting the next token."""

    def __init__(self, vocab_size: int, block_size: int, d_model: int = 64, nhead: int = 4, num_layers: int = 2):
        super().__init__()
        self.block_size = block_size
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(block_size, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=4 * d_model, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=num_layers)
        self.norm = nn.LayerNorm(d_model)  # pre-norm layers leave the last output unnormalised
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, ids: gf.Tensor) -> gf.Tensor:
        """Logits (batch, length, vocab) for int64 token ids (batch, length)."""
        length = ids.shape[1]
        positions = gf.arange(length, device=ids.device)
        x = self.token_embedding(ids) + self.position_embedding(positions)
        # -inf above the diagonal: position i may attend to positions 0..i only.
        causal = gf.full((length, length), float("-inf"), device=ids.device).triu(1)
        x = self.encoder(x, mask=causal, is_causal=True)
        return self.head(self.norm(x))


def random_windows(data: np.ndarray, block_size: int, batch_size: int, rng, device):
    """``batch_size`` random windows as (inputs, targets): targets are the inputs shifted by one."""
    starts = rng.integers(0, len(data) - block_size - 1, batch_size)
    windows = np.stack([data[start : start + block_size + 1] for start in starts])
    return gf.tensor(windows[:, :-1], device=device), gf.tensor(windows[:, 1:], device=device)


def generate(model: TinyTransformer, prompt_ids: list[int], count: int, temperature: float, rng, device) -> list[int]:
    """Append ``count`` tokens, each drawn from softmax(logits / temperature) of the last position."""
    model.eval()
    ids = list(prompt_ids)
    with gf.no_grad():
        for _ in range(count):
            context = gf.tensor([ids[-model.block_size :]], device=device)
            logits = model(context)[0, -1]
            probabilities = F.softmax(logits / temperature, dim=-1).cpu().numpy().astype(np.float64)
            ids.append(int(rng.choice(len(probabilities), p=probabilities / probabilities.sum())))
    model.train()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="'auto' (CUDA if it works, else CPU), 'cpu' or 'cuda'")
    parser.add_argument("--short", action="store_true", help="5 training steps only (also GRADFLOW_EXAMPLE_SHORT=1)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 1000, 5 with --short)")
    parser.add_argument("--temperature", type=float, default=0.7)
    args = parser.parse_args()
    short = args.short or os.environ.get("GRADFLOW_EXAMPLE_SHORT") == "1"
    steps = args.steps if args.steps is not None else (5 if short else 1000)
    block_size, batch_size, log_every = 64, 32, 50
    device = gf.device(args.device)

    text = load_corpus(REPO_ROOT)
    vocab = sorted(set(text))
    index_of = {char: index for index, char in enumerate(vocab)}
    data = np.array([index_of[char] for char in text], dtype=np.int64)
    baseline = unigram_entropy(data, len(vocab))
    print(f"running on {device}: {len(text):,} characters of documentation, vocabulary of {len(vocab)}")
    print(f"uniform guess {math.log(len(vocab)):.3f} nats/char, unigram entropy {baseline:.3f} nats/char")

    gf.manual_seed(0)
    rng = np.random.default_rng(0)
    model = TinyTransformer(len(vocab), block_size).to(device)
    parameter_count = sum(p.numel() for p in model.parameters())
    print(f"model: {parameter_count:,} parameters; {steps} steps of batch {batch_size} x {block_size} characters")
    optimizer = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)

    start, recent = time.perf_counter(), []
    for step in range(1, steps + 1):
        inputs, targets = random_windows(data, block_size, batch_size, rng, device)
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recent = (recent + [loss.item()])[-log_every:]  # one batch is noisy: report the mean of the last 50
        if step == 1 or step % log_every == 0 or step == steps:
            mean = sum(recent) / len(recent)
            print(f"step {step:4d}  loss {mean:.3f}  ({time.perf_counter() - start:5.1f} s)")
    final = sum(recent) / len(recent)
    verdict = "below" if final < baseline else "not yet below"
    print(f"final loss {final:.3f} nats/char, {verdict} the unigram entropy {baseline:.3f}")
    if args.steps is None and not short:  # the full run: the model must have learned from context
        assert final < baseline - 0.5, "the model learned no more than character frequencies"

    prompt = "gradflow "
    sample = generate(model, [index_of[char] for char in prompt], 40 if short else 200, args.temperature, rng, device)
    print(f"sample (temperature {args.temperature}):")
    print("".join(vocab[index] for index in sample))


if __name__ == "__main__":
    main()
