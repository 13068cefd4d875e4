import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.data.tasks import Pair, Task, TaskError, list_tasks, load_task

REQUIRED = [
    "antonym",
    "synonym",
    "capitalize",
    "country-capital",
    "country-currency",
    "english-french",
    "english-spanish",
    "english-german",
    "present-past",
    "singular-plural",
    "next-item",
    "prev-item",
    "landmark-country",
    "person-occupation",
    "product-company",
    "word-length",
    "lowercase-first-letter",
    "capitalize-first-letter",
    "choose-first-of-3",
    "choose-last-of-3",
    "alphabetically-first-of-3",
    "animal-vs-object-of-3",
]


def test_builtin_tasks_exist_and_are_large_enough():
    names = list_tasks()
    assert len(names) >= 24
    for name in REQUIRED:
        assert name in names, name
    for name in names:
        task = load_task(name)
        assert len(task.split(seed=0).test) >= 25, name


def test_some_pairs_are_right():
    assert Pair("France", "Paris") in load_task("country-capital").pairs
    assert Pair("go", "went") in load_task("present-past").pairs
    caps = load_task("capitalize")
    assert all(p.output == p.input[0].upper() + p.input[1:] for p in caps.pairs)


def write(tmp_path, obj, raw=False):
    path = tmp_path / "t.json"
    path.write_text(obj if raw else json.dumps(obj))
    return path


@pytest.mark.parametrize(
    "content,message",
    [
        ('[{"input": "a", "output": "b"', "not valid JSON"),
        ('{"input": "a"}', "expected a JSON list"),
        ("[]", "empty"),
        ('[{"input": "a"}]', "missing key 'output'"),
        ('[{"input": "a", "output": 3}]', "must be a string"),
        ('[{"input": "a", "output": "  "}]', "empty or only whitespace"),
        (
            '[{"input": "a", "output": "b"}, {"input": "a", "output": "c"}]',
            "appears again with a different output",
        ),
        ('["a"]', "expected an object"),
    ],
)
def test_malformed_datasets_give_clear_errors(tmp_path, content, message):
    path = write(tmp_path, content, raw=True)
    with pytest.raises(TaskError, match=message) as err:
        load_task(path)
    assert str(path) in str(err.value)


def test_unknown_task_names_the_builtins():
    with pytest.raises(TaskError, match="Built-in tasks: .*antonym"):
        load_task("no-such-task")


def test_entry_index_is_reported(tmp_path):
    path = write(tmp_path, [{"input": "a", "output": "b"}, {"input": "c", "output": 5}])
    with pytest.raises(TaskError, match="entry 1"):
        load_task(path)


TASK_TEXT = st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"])  # what a task may hold
pairs_strategy = st.dictionaries(
    st.text(TASK_TEXT, min_size=1).filter(lambda s: s.strip() == s and s),
    st.text(TASK_TEXT, min_size=1).filter(lambda s: s.strip() == s and s),
    min_size=1,
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(pairs_strategy, st.integers(0, 2**31))
def test_split_is_a_deterministic_partition(mapping, seed):
    task = Task.from_pairs("h", list(mapping.items()))
    a, b = task.split(seed), task.split(seed)
    assert a == b
    parts = a.train + a.valid + a.test
    assert sorted(parts, key=lambda p: p.input) == sorted(task.pairs, key=lambda p: p.input)
    n = len(task)
    assert abs(len(a.train) - 0.7 * n) <= 1 and abs(len(a.valid) - 0.09 * n) <= 1


@settings(max_examples=40, deadline=None)
@given(pairs_strategy)
def test_file_roundtrip_and_exact_duplicates(tmp_path_factory, mapping):
    items = [{"input": k, "output": v} for k, v in mapping.items()]
    path = tmp_path_factory.mktemp("h") / "task.json"
    path.write_text(json.dumps(items + items[:1]), encoding="utf-8")  # an exact duplicate is fine
    task = load_task(path)
    assert [(p.input, p.output) for p in task.pairs] == list(mapping.items())
