#!/usr/bin/env python3
"""Deterministic generator for the procedural (rule-based) task datasets.

Every dataset written here is derived by code from the hand-written word
lists below, so the answers are correct by construction.

Usage (from the repository root):
    python tasks/scripts/generate_procedural.py          # (re)write the JSON files
    python tasks/scripts/generate_procedural.py --check  # verify files on disk

Standard library only. Each dataset uses its own random.Random seeded with a
fixed string, so output is byte-identical on every run and independent of
PYTHONHASHSEED.
"""

import argparse
import json
import random
import re
import sys
from pathlib import Path

SEED = 20231023
TASKS_DIR = Path(__file__).resolve().parents[2] / "workbench" / "data" / "tasks_builtin"  # package data

# ---------------------------------------------------------------------------
# Word lists (hand-written; checked by eye). All lowercase ASCII, single words.
# COMMON_WORDS is kept disjoint from ANIMALS and OBJECTS (asserted below).
# ---------------------------------------------------------------------------

COMMON_WORDS = """
water river mountain forest garden house city village road bridge
island ocean beach desert valley field flower tree leaf grass
stone sand cloud rain snow wind storm sun moon star
sky fire smoke light shadow morning evening night summer winter
autumn music song story paper picture color friend family child
mother father brother sister teacher doctor farmer king queen money
market school church office kitchen idea dream power voice
heart world country street park farm hill lake wave space
time year week hour minute food bread cheese apple
orange lemon grape cherry butter sugar salt honey milk coffee
green red blue yellow white black purple brown gray pink
happy sad big small tall short long quick slow warm
cold hot bright dark soft hard loud quiet clean dirty
empty full heavy strong weak young old new rich poor
kind brave calm clever gentle honest proud wild simple strange
sweet bitter sour fresh dry wet deep narrow wide thick
thin sharp smooth rough early late easy busy lazy angry
funny lucky pretty ugly huge tiny round flat safe free
silent golden ancient modern famous common rare cheap large little
run walk jump swim sing dance read write speak listen
think build break carry climb cook cry draw drink drive
eat fall grow help hold laugh learn live move open
paint play pull push reach rest ride rise send share
shine shout sleep smile stand start stay stop study teach
throw travel wait wake wash win wish work begin bring
buy catch choose close count cut enjoy explain find follow
forget give hear hide hope join keep kick know leave
lift look lose love make meet miss need promise remember
repeat return save search sell show sit tell touch visit
beautiful important different question yesterday happiness adventure neighbor holiday journey
kingdom surprise
"""
COMMON_WORDS = COMMON_WORDS.split()

ANIMALS = """
dog cat horse cow pig sheep goat chicken duck goose
rabbit rat lion tiger bear wolf fox deer elephant giraffe
zebra monkey gorilla kangaroo koala panda camel donkey squirrel hedgehog
owl eagle hawk parrot pigeon crow swan penguin ostrich frog
toad snake lizard turtle crocodile alligator shark whale dolphin octopus
jellyfish crab lobster salmon goldfish bee ant spider butterfly beetle
mosquito snail worm hippopotamus rhinoceros cheetah leopard buffalo moose beaver
otter raccoon skunk badger hamster llama flamingo peacock sparrow woodpecker
lamb pony chimpanzee walrus hyena ferret seagull pelican vulture caterpillar
""".split()

OBJECTS = """
chair table lamp cup plate bowl spoon fork knife bottle
pencil pen book key clock phone bag box basket bucket
hammer scissors umbrella mirror pillow blanket towel brush candle wallet
backpack camera ladder shovel broom kettle teapot jar mug sofa
bed desk shelf carpet curtain door window stapler envelope notebook
eraser calculator laptop keyboard television radio computer microwave toaster oven
stove sink bathtub toothbrush soap shoe sock hat glove scarf
jacket shirt button zipper belt necklace bicycle helmet tent rope
bell coin ticket suitcase magnet needle screwdriver wrench flashlight battery
""".split()

NUMBER_WORDS = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]


def roman(n):
    out = ""
    for value, sym in ((10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out += sym
            n -= value
    return out


ROMANS = [roman(i) for i in range(1, 21)]
NUMBERS = [str(i) for i in range(100)]

# (sequence, cyclic?)  Cyclic sequences wrap around (sunday -> monday,
# december -> january); the others have no successor for their last item
# and no predecessor for their first.
SEQUENCES = [
    (NUMBERS, False),
    (NUMBER_WORDS, False),
    (DAYS, True),
    (MONTHS, True),
    (LETTERS, False),
    (ROMANS, False),
]


def check_word_lists():
    """Sanity checks on the hand-written lists; raises AssertionError."""
    word_re = re.compile(r"^[a-z]+$")
    for name, lst in (("COMMON_WORDS", COMMON_WORDS), ("ANIMALS", ANIMALS), ("OBJECTS", OBJECTS)):
        for w in lst:
            assert word_re.match(w), f"{name}: bad word {w!r}"
        dups = sorted({w for w in lst if lst.count(w) > 1})
        assert not dups, f"{name}: duplicates {dups}"
    assert not set(ANIMALS) & set(OBJECTS), set(ANIMALS) & set(OBJECTS)
    assert not set(COMMON_WORDS) & set(ANIMALS), set(COMMON_WORDS) & set(ANIMALS)
    assert not set(COMMON_WORDS) & set(OBJECTS), set(COMMON_WORDS) & set(OBJECTS)
    assert 280 <= len(COMMON_WORDS) <= 320, len(COMMON_WORDS)
    assert 75 <= len(ANIMALS) <= 90, len(ANIMALS)
    assert 75 <= len(OBJECTS) <= 90, len(OBJECTS)


# ---------------------------------------------------------------------------
# Dataset builders
# ---------------------------------------------------------------------------

N_SINGLE = 200  # pairs for single-word tasks (sampled from COMMON_WORDS)
N_MULTI = 200  # pairs for list tasks


def rng_for(name):
    # Seeding with a str is deterministic (sha512-based) across runs.
    return random.Random(f"{SEED}:{name}")


def single_word_task(name, fn):
    words = rng_for(name).sample(COMMON_WORDS, N_SINGLE)
    return [{"input": w, "output": fn(w)} for w in words]


def draw_lists(name, k, n, pool, valid=None):
    """n distinct inputs, each k distinct words from pool joined by ', '."""
    rng = rng_for(name)
    seen = set()
    out = []
    while len(out) < n:
        words = rng.sample(pool, k)
        if valid is not None and not valid(words):
            continue
        key = ", ".join(words)
        if key in seen:
            continue
        seen.add(key)
        out.append(words)
    return out


def list_task(name, k, pick, valid=None):
    return [
        {"input": ", ".join(ws), "output": pick(ws)}
        for ws in draw_lists(name, k, N_MULTI, COMMON_WORDS, valid)
    ]


def distinct_first_letters(ws):
    return len({w[0] for w in ws}) == len(ws)


def sequence_task(step):
    data = []
    for seq, cyclic in SEQUENCES:
        n = len(seq)
        for i, item in enumerate(seq):
            j = i + step
            if cyclic:
                j %= n
            elif not 0 <= j < n:
                continue
            data.append({"input": item, "output": seq[j]})
    return data


def animal_vs_object(name):
    rng = rng_for(name)
    seen = set()
    data = []
    while len(data) < N_MULTI:
        animal = rng.choice(ANIMALS)
        ws = [animal] + rng.sample(OBJECTS, 2)
        rng.shuffle(ws)
        key = ", ".join(ws)
        if key in seen:
            continue
        seen.add(key)
        data.append({"input": key, "output": animal})
    return data


def build_all():
    check_word_lists()
    d = {}
    d["capitalize"] = single_word_task("capitalize", lambda w: w[0].upper() + w[1:])
    d["uppercase"] = single_word_task("uppercase", str.upper)
    d["capitalize-first-letter"] = single_word_task("capitalize-first-letter", lambda w: w[0].upper())
    d["lowercase-first-letter"] = single_word_task("lowercase-first-letter", lambda w: w[0])
    d["word-length"] = single_word_task("word-length", lambda w: str(len(w)))
    d["next-item"] = sequence_task(+1)
    d["prev-item"] = sequence_task(-1)
    d["choose-first-of-3"] = list_task("choose-first-of-3", 3, lambda ws: ws[0])
    d["choose-middle-of-3"] = list_task("choose-middle-of-3", 3, lambda ws: ws[1])
    d["choose-last-of-3"] = list_task("choose-last-of-3", 3, lambda ws: ws[-1])
    d["alphabetically-first-of-3"] = list_task("alphabetically-first-of-3", 3, min, distinct_first_letters)
    d["alphabetically-last-of-3"] = list_task("alphabetically-last-of-3", 3, max, distinct_first_letters)
    d["animal-vs-object-of-3"] = animal_vs_object("animal-vs-object-of-3")
    d["choose-first-of-5"] = list_task("choose-first-of-5", 5, lambda ws: ws[0])
    # Composed tasks (choose an item, then transform it).
    d["first-item-capitalize"] = list_task(
        "first-item-capitalize", 3, lambda ws: ws[0][0].upper() + ws[0][1:]
    )
    d["last-item-uppercase"] = list_task("last-item-uppercase", 3, lambda ws: ws[-1].upper())
    return d


MIN_PAIRS = {"next-item": 120, "prev-item": 120}
DEFAULT_MIN, MAX_PAIRS = 150, 250


def serialize(data):
    # Identical to json.dump(data, f, ensure_ascii=False, indent=1).
    return json.dumps(data, ensure_ascii=False, indent=1)


def format_errors(name, data):
    errs = []
    if not isinstance(data, list):
        return [f"{name}: not a JSON list"]
    lo = MIN_PAIRS.get(name, DEFAULT_MIN)
    if not lo <= len(data) <= MAX_PAIRS:
        errs.append(f"{name}: {len(data)} pairs, expected {lo}-{MAX_PAIRS}")
    seen = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict) or set(item) != {"input", "output"}:
            errs.append(f"{name}[{i}]: not an {{input, output}} object")
            continue
        for key in ("input", "output"):
            v = item[key]
            if not isinstance(v, str) or not v:
                errs.append(f"{name}[{i}].{key}: not a non-empty string")
            elif v != v.strip():
                errs.append(f"{name}[{i}].{key}: leading/trailing whitespace")
        inp = item["input"]
        if inp in seen:
            errs.append(f"{name}[{i}]: duplicate input {inp!r}")
        seen[inp] = item["output"]
    return errs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--check",
        action="store_true",
        help="regenerate in memory; exit 1 if files on disk differ or break format rules",
    )
    args = ap.parse_args()

    datasets = build_all()
    errors = []
    for name, data in datasets.items():
        errors += format_errors(name, data)

    if not args.check:
        if errors:
            print("\n".join(errors), file=sys.stderr)
            return 1
        for name, data in datasets.items():
            with open(TASKS_DIR / f"{name}.json", "w", encoding="utf-8", newline="\n") as f:
                json.dump(data, f, ensure_ascii=False, indent=1)
            print(f"wrote {name}.json ({len(data)} pairs)")
        return 0

    for name, data in datasets.items():
        path = TASKS_DIR / f"{name}.json"
        if not path.exists():
            errors.append(f"{name}: {path} missing")
            continue
        raw = path.read_bytes()
        if raw != serialize(data).encode("utf-8"):
            errors.append(f"{name}: file on disk differs from regenerated output")
        try:
            on_disk = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            errors.append(f"{name}: unreadable JSON ({e})")
            continue
        errors += format_errors(name, on_disk)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    print(f"OK: {len(datasets)} datasets match and pass format checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
