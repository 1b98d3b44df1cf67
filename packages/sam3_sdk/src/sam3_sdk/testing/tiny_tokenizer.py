"""A tiny CLIP-style BPE tokenizer, built deterministically, for the offline smoke-test checkpoint
(`--model tiny-random`), the tests and the golden generator.

The real `facebook/sam3` checkpoint ships the 49408-token CLIP `tokenizer.json`; the tiny test
config has a text vocabulary of 1000, so tests write their own tokenizer with the same pipeline as
CLIP's (NFC + whitespace collapse + lower-casing, CLIP's word-splitting regex, byte-level alphabet,
BPE with the `</w>` end-of-word suffix, `<|startoftext|> ... <|endoftext|>` around each phrase).

The merges are learnt here by a few lines of plain BPE over a fixed corpus (ties broken by the pair's
text), not by `tokenizers`' trainer, so the file is identical whatever the `tokenizers` version.
Importable from both the project venv (tests) and the reference venv (golden generator): it only
needs the `tokenizers` package.
"""

from __future__ import annotations

import json
import os
from collections import Counter

from sam3_core.processing.tokenizer import clip_bpe_tokenizer, set_clip_pipeline
from tokenizers import Tokenizer, processors
from tokenizers.models import BPE

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
VOCAB_SIZE = 1000  # the tiny config's text_config.vocab_size

# CLIP's word-splitting pattern (special tokens, English contractions, letter runs, single digits,
# runs of other non-space characters).

CORPUS = """
a photo of a cat. a photo of a dog! the yellow school bus drives down the street.
an ear, an eye and a nose; the dial and the button of the oven. a laptop on the desk.
handle, pot handle, oven handle. person riding a bicycle next to a red car and a truck.
green trees, blue sky, white clouds, black and white striped zebra, brown horse in the field.
it's the player's ball; they're here, we've seen it, i'm sure you'll like what he'd done.
the quick brown fox jumps over the lazy dog while 3 kids eat 12 apples and 7 oranges.
segment anything with concepts: every object matching the noun phrase gets a mask and a box.
kitchen sink, wooden chair, dining table, glass bottle, coffee mug, cell phone, tv remote.
umbrella, backpack, handbag, suitcase, frisbee, skateboard, surfboard, tennis racket, baseball glove.
airplane, motorcycle, traffic light, fire hydrant, stop sign, parking meter, bench, bird, sheep, cow,
elephant, bear, giraffe, banana, sandwich, broccoli, carrot, pizza, donut, cake, couch, potted plant,
toilet, microwave, toaster, refrigerator, book, clock, vase, scissors, teddy bear, hair drier, toothbrush.
lighthouse, mountain, waterfall, sunflower, butterfly, penguin, octopus, dolphin, volcano, glacier,
cathedral, bridge, harbour, lantern, necklace, bracelet, sweater, jacket, trousers, sneakers, helmet,
keyboard, monitor, headphones, microphone, guitar, violin, trumpet, drum, piano, camera, telescope,
strawberry, pineapple, watermelon, avocado, mushroom, pumpkin, lettuce, tomato, cucumber, pepper.
quietly, quickly, slowly, brightly, yesterday, tomorrow, somewhere, everywhere, nothing, everything.
"""


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable character table (the byte-level alphabet, in CLIP's order)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def _learn_merges(words: list[str], num_merges: int) -> list[tuple[str, str]]:
    """Plain BPE: repeatedly merge the most frequent adjacent pair (ties: smallest pair text)."""
    counts = Counter(words)
    seqs = {w: list(w[:-1]) + [w[-1] + "</w>"] for w in counts}
    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges:
        pairs: Counter = Counter()
        for w, seq in seqs.items():
            for a, b in zip(seq[:-1], seq[1:], strict=True):
                pairs[(a, b)] += counts[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w, seq in seqs.items():
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best:
                    out.append(seq[i] + seq[i + 1])
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[w] = out
    return merges


def build_tiny_tokenizer() -> Tokenizer:
    """The tiny CLIP-style tokenizer: ids < VOCAB_SIZE, `<|startoftext|>` and `<|endoftext|>` last."""
    splitter = Tokenizer(BPE())
    set_clip_pipeline(splitter)
    normalized = splitter.normalizer.normalize_str(CORPUS)
    words = [w for w, _ in splitter.pre_tokenizer.pre_tokenize_str(normalized)]

    alphabet = list(_bytes_to_unicode().values())
    base = alphabet + [c + "</w>" for c in alphabet]
    merges = _learn_merges(words, VOCAB_SIZE - len(base) - 2)
    vocab: dict[str, int] = {}
    for token in base + [a + b for a, b in merges]:
        vocab.setdefault(token, len(vocab))
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    if len(vocab) > VOCAB_SIZE:
        raise AssertionError(f"tiny vocab has {len(vocab)} tokens, more than {VOCAB_SIZE}")

    tokenizer = clip_bpe_tokenizer(vocab, merges, EOS)
    tokenizer.post_processor = processors.RobertaProcessing(
        (EOS, vocab[EOS]), (BOS, vocab[BOS]), trim_offsets=False, add_prefix_space=False
    )
    tokenizer.add_special_tokens([BOS, EOS])
    return tokenizer


def write_tiny_tokenizer(out_dir: str | os.PathLike) -> str:
    """Write `tokenizer.json` and `tokenizer_config.json` (CLIP's special tokens) into `out_dir`.

    Returns the path of `tokenizer.json`.
    """
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "tokenizer.json")
    build_tiny_tokenizer().save(path)
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": EOS,
        "unk_token": EOS,
        "model_max_length": 32,
        "do_lower_case": True,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    return path
