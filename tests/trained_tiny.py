"""A tiny Llama trained to do in-context learning partly, for tests of the "filtered" code path.

Random-weight tiny models answer almost no clean 10-shot prompt right, so the filter (keep only the
valid queries that ICL gets right) falls back to "all" and its real branch goes untested.  This
model is trained for a few hundred Adam steps on ``Q: x\\nA: y`` prompts (3 to 10 demonstrations)
that mix two tasks over the same synthetic words, copy (``bako3 -> bako3``, 3/4 of the prompts)
and capitalize (``bako3 -> Bako3``); only the demonstrations say which, so a capitalize query
needs them.  Capitalized answers are trained only for words starting with ``a``-``m``: the model
never learns to write `` N``..`` Z``, so with clean demonstrations it gets the ``a``-``m`` queries
of the capitalize task right and the others wrong.  The pairs it returns are all held out:
training draws its words from a disjoint pool.

Measured with ``python tests/trained_tiny.py`` on the 2-core CPU, seed 0, 400 steps: training
25.5 s of CPU on one thread (24 to 42 s of wall time while other jobs loaded the machine),
first-token accuracy 0.47 with 10 clean demonstrations (all 56 ``a``-``m`` queries of 120, none of
the others), 0.00 zero-shot; the same seed gives identical weights.
Seeds 1 to 4 gave 0.48 to 0.59 (10-shot) and at most 0.08 (zero-shot); seed 5 had not learned the
task by step 400 (0.13 both ways), so check the accuracy before relying on another seed.
"""

from __future__ import annotations

import random
import string
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from workbench.core.tiny import tiny_config, tiny_tokenizer

__all__ = ["trained_copy_model"]

Pair = tuple[str, str]

N_PAIRS = 120  # the returned capitalize task
N_TRAIN_WORDS = 400  # the disjoint pool that training prompts are drawn from
SHOTS = (3, 10)  # demonstrations per training prompt, inclusive
BATCH = 16
LR = 3e-3
COPY_SHARE = 0.75  # training prompts that copy; the others capitalize
CAPITALIZE_LETTERS = "abcdefghijklm"


def _words(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct pronounceable words with a digit, e.g. ``bako3``; any first letter."""
    words: dict[str, None] = {}  # an ordered set
    while len(words) < n:
        syllables = "".join(
            rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(1, 2))
        )
        words[rng.choice(string.ascii_lowercase) + syllables + str(rng.randrange(10))] = None
    return list(words)


def _config(vocab_size: int) -> LlamaConfig:
    """The workbench's tiny Llama (2 layers, 4 heads, 2 KV heads, d_model 64), eager attention."""
    cfg = tiny_config("llama", vocab_size)
    cfg._attn_implementation = "eager"
    return cfg


class _Encoder:
    """Token ids of prompt pieces, cached: ``Q: x\\nA:``, `` y`` and the ``\\n\\n`` separator.

    The tokenizer's merges never cross these piece boundaries, so joining the pieces' ids gives
    the ids of the joined text.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerFast) -> None:
        self.tokenizer = tokenizer
        self.cache: dict[str, list[int]] = {}
        self.sep = self("\n\n")

    def __call__(self, text: str) -> list[int]:
        if text not in self.cache:
            self.cache[text] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.cache[text]

    def prompt(self, demos: Sequence[Pair], query: str) -> list[int]:
        """``[bos]`` + the clean prompt's ids, ending at ``A:``."""
        ids = [self.tokenizer.bos_token_id]
        for x, y in demos:
            ids += self(f"Q: {x}\nA:") + self(f" {y}") + self.sep
        return ids + self(f"Q: {query}\nA:")

    def answer(self, y: str) -> int:
        """The first token of ``" " + y``, the one that is scored."""
        return self(f" {y}")[0]


def _right_padded(rows: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows right-padded into one tensor, and the index of each row's last real token."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows])
    return ids, torch.tensor([len(r) - 1 for r in rows])


def _train_batch(enc: _Encoder, words: list[str], rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
    """``BATCH`` prompts of 4 to 11 ``Q: x\\nA: y`` blocks, each all copy or all capitalize, as
    right-padded ids, and targets: each block's first answer token, -100 elsewhere.  A capitalized
    answer is a target only if it starts with one of ``CAPITALIZE_LETTERS``."""
    rows, targets, shots = [], [], rng.randint(*SHOTS)  # one length per batch: little padding
    for _ in range(BATCH):
        copy = rng.random() < COPY_SHARE
        ids, target = [enc.tokenizer.bos_token_id], [-100]
        for x in rng.sample(words, shots + 1):
            head, answer = enc(f"Q: {x}\nA:"), enc(f" {x if copy else x.capitalize()}")
            first = answer[0] if copy or x[0] in CAPITALIZE_LETTERS else -100
            ids += head + answer + enc.sep
            target += [-100] * (len(head) - 1) + [first] + [-100] * (len(answer) + 2)
        rows.append(ids)
        targets.append(target)
    return _right_padded(rows, enc.tokenizer.pad_token_id)[0], _right_padded(targets, -100)[0]


@torch.no_grad()
def _accuracy(
    model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, pairs: list[Pair], shots: int, seed: int
) -> float:
    """Top-1 accuracy of the answer's first token, each pair as the query of a clean prompt whose
    ``shots`` demonstrations are other pairs."""
    enc, rng = _Encoder(tokenizer), random.Random(seed)
    rows, answers = [], []
    for i, (x, y) in enumerate(pairs):
        others = pairs[:i] + pairs[i + 1 :]
        rows.append(enc.prompt(rng.sample(others, shots), x))
        answers.append(enc.answer(y))
    ids, last = _right_padded(rows, tokenizer.pad_token_id)
    logits = model(ids).logits[torch.arange(len(rows)), last]
    return (logits.argmax(-1) == torch.tensor(answers)).float().mean().item()


def trained_copy_model(
    steps: int = 400, seed: int = 0
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast, list[Pair]]:
    """A 2-layer Llama-shaped model trained for ``steps`` Adam steps to do ICL partly.

    Returns ``(hf_model, tokenizer, pairs)``: a float32 CPU ``LlamaForCausalLM`` in eval mode with
    eager attention, the tiny tokenizer, and ``N_PAIRS`` capitalize pairs (``bako3 -> Bako3``,
    distinct inputs), none of whose words were seen in training.  Clean few-shot prompts of these
    pairs are answered right when the query starts with one of ``CAPITALIZE_LETTERS``.  Trains on
    one thread; deterministic in ``seed``; the global RNG and thread count are left as they were.
    """
    tokenizer = tiny_tokenizer()
    rng = random.Random(seed)
    words = _words(rng, N_PAIRS + N_TRAIN_WORDS)
    pairs = [(w, w.capitalize()) for w in words[:N_PAIRS]]
    train_words = words[N_PAIRS:]
    enc = _Encoder(tokenizer)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices this small gain little from more, and spin on a busy CPU
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = LlamaForCausalLM(_config(len(tokenizer))).float()
            model.set_attn_implementation("sdpa")  # a third faster to train; eager again below
            opt = torch.optim.Adam(model.parameters(), lr=LR)
            model.train()
            for _ in range(steps):
                ids, targets = _train_batch(enc, train_words, rng)
                loss = F.cross_entropy(model(ids).logits.flatten(0, 1), targets.flatten())
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    model.set_attn_implementation("eager")
    return model.eval(), tokenizer, pairs


if __name__ == "__main__":
    wall, cpu = time.perf_counter(), time.process_time()
    model, tokenizer, pairs = trained_copy_model()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"trained in {wall:.1f} s ({cpu:.1f} s CPU); {len(pairs)} pairs, e.g. {pairs[0]}")
    for shots in (10, 0):
        print(f"{shots:2d}-shot held-out accuracy: {_accuracy(model, tokenizer, pairs, shots, seed=1):.2f}")
    again, _, _ = trained_copy_model()
    same = all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    print(f"deterministic (same seed, identical weights): {same}")
    print(f"attention: {model.config._attn_implementation}, dtype: {model.dtype}, training: {model.training}")
