"""The README's configuration reference is generated from the model and must not go stale."""

from observability_stack.config.reference import BEGIN, END, reference
from tests.harness import ROOT


def test_readme_reference_is_current():
    text = (ROOT / "README.md").read_text()
    assert BEGIN in text and END in text, "README.md lost its reference markers"
    current = text[text.index(BEGIN): text.index(END) + len(END)]
    assert current == reference(), "README.md configuration reference is stale: run `make reference`"


def test_reference_documents_every_top_level_key():
    from observability_stack.config.loader import known_keys

    ref = reference()
    for key in known_keys():
        assert f"| `{key}` |" in ref
