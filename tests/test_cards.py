"""Card and collection validation: every bad input gives one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path

from conftest import write_card
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repro import cards


def messages(root: Path, registered=None) -> list[str]:
    return [str(p) for p in cards.load(root, registered=registered).errors]


def test_good_cards_load(kb_root):
    kb = cards.load(kb_root)
    assert kb.errors == []
    assert set(kb.cards) == {"transformer", "bert"}
    assert kb.cards["bert"].meta.cites == ["transformer"]


def test_unclosed_quote_names_file_and_line(kb_root):
    p = write_card(kb_root, "broken")
    text = p.read_text().replace('title: "A Paper Title"', 'title: "A Paper Title')
    p.write_text(text)
    (msg,) = messages(kb_root)
    assert msg.startswith("notes/papers/broken.md:")
    assert "YAML error" in msg
    line = int(msg.split(":")[1])
    assert 3 <= line <= 9  # near the title line, not at 0


def test_missing_required_field(kb_root):
    p = write_card(kb_root, "nobody")
    p.write_text(p.read_text().replace("authors: [Ada Lovelace]\n", ""))
    assert messages(kb_root) == ["notes/papers/nobody.md: authors: required field is missing"]


def test_wrong_type(kb_root):
    p = write_card(kb_root, "oldie")
    p.write_text(p.read_text().replace("year: 2020", "year: last spring"))
    (msg,) = messages(kb_root)
    assert msg.startswith("notes/papers/oldie.md:5: year:")
    assert "integer" in msg and "last spring" in msg


def test_unknown_field_suggests(kb_root):
    write_card(kb_root, "typo", extra="autors: [Someone]\n")
    (msg,) = messages(kb_root)
    assert "notes/papers/typo.md:9: autors: unknown field; did you mean 'authors'?" in msg


def test_duplicate_id(kb_root):
    p = write_card(kb_root, "copy")
    p.write_text(p.read_text().replace("id: copy", "id: bert"))
    msgs = messages(kb_root)
    assert any("copy.md:2: id: 'bert' differs from the file name" in m for m in msgs)


def test_duplicate_id_across_files(kb_root):
    # Same id in two files: the second is reported (ids are kept equal to file names, so this
    # arises only together with the file-name error; both are shown).
    p = write_card(kb_root, "zz-other")
    p.write_text(p.read_text().replace("id: zz-other", "id: transformer"))
    msgs = messages(kb_root)
    assert any(
        "duplicate id 'transformer', also used by notes/papers/transformer.md" in m for m in msgs
    )


def test_id_must_equal_file_name(kb_root):
    p = write_card(kb_root, "gpt")
    p.write_text(p.read_text().replace("id: gpt", "id: gpt-1"))
    assert messages(kb_root) == [
        "notes/papers/gpt.md:2: id: 'gpt-1' differs from the file name; rename the file to "
        "gpt-1.md or set id: gpt"
    ]


def test_dangling_cite_did_you_mean(kb_root):
    write_card(kb_root, "roberta", year=2019, cites="[transfomer]")
    assert messages(kb_root) == [
        "notes/papers/roberta.md:8: cites: 'transfomer' is no card id; did you mean 'transformer'?"
    ]


def test_cannot_cite_later_paper(kb_root):
    write_card(kb_root, "old", year=2010, cites="[bert]")
    (msg,) = messages(kb_root)
    assert "old.md:8: cites: 'bert' is from 2018, later than this paper (2010)" in msg


def test_unknown_tag_did_you_mean(kb_root):
    write_card(kb_root, "tagged", tags="[atention]")
    assert messages(kb_root) == [
        "notes/papers/tagged.md:7: tags: 'atention' is not in notes/tags.yml; did you mean 'attention'?"
    ]


def test_script_in_notes_is_rejected(kb_root):
    write_card(kb_root, "xss", body="Fine text.\n\n<script>alert(1)</script>\n")
    (msg,) = messages(kb_root)
    assert msg.startswith("notes/papers/xss.md:12: notes: raw <script> is not allowed")


def test_other_unsafe_html(kb_root):
    body = (
        '<iframe src="x"></iframe>\n<img src=x onerror="alert(1)">\n[a](javascript:alert(1))\n'
        '<object data="x"></object>\n[b](data:text/html;base64,AAAA)\n'
    )
    write_card(kb_root, "xss2", body=body)
    msgs = "\n".join(messages(kb_root))
    for needle in ("<iframe>", "event handler", "javascript:", "<object>", "data:text/html"):
        assert needle in msgs


def test_python_object_tag_is_an_error_not_an_object(kb_root):
    write_card(kb_root, "evil", extra="venue: !!python/object/apply:os.system ['echo pwned']\n")
    (msg,) = messages(kb_root)
    assert "evil.md" in msg and "only plain YAML" in msg


def test_arxiv_pattern_and_year_range(kb_root):
    write_card(kb_root, "bad-meta", arxiv='"arxiv 1234"', year=1850)
    msgs = "\n".join(messages(kb_root))
    assert "arxiv: 'arxiv 1234' is not an arXiv id" in msgs
    assert "year: 1850 is outside" in msgs


def test_optional_reader_fields_load_and_bad_values_name_the_field(kb_root):
    write_card(
        kb_root,
        "good-extras",
        extra='short: "Good extras"\ntldr: "One line."\ncode: "https://example.org/x"\n'
        'figures: {"memory.png": "Peak memory against length."}\n',
    )
    write_card(
        kb_root,
        "bad-extras",
        extra='short: "A short name far too long for any drawing"\ncode: "github.com/x"\n'
        'figures: {"memory plot.png": "x"}\n',
    )
    write_card(kb_root, "two-line-tldr", extra='tldr: "first line\\nsecond line"\n')
    kb = cards.load(kb_root)
    meta = kb.cards["good-extras"].meta
    assert (meta.short, meta.tldr, meta.code) == (
        "Good extras",
        "One line.",
        "https://example.org/x",
    )
    assert meta.figures == {"memory.png": "Peak memory against length."}
    msgs = "\n".join(str(e) for e in kb.errors)
    assert "bad-extras.md" in msgs and "short:" in msgs and "28" in msgs
    assert "code: 'github.com/x' is not an http(s) URL" in msgs
    assert "'memory plot.png' is not a figure file name" in msgs
    assert "two-line-tldr.md" in msgs and "tldr: must be one non-empty line" in msgs
    assert "good-extras" not in msgs


def test_needs_arxiv_or_url(kb_root):
    p = write_card(kb_root, "nolink")
    p.write_text(p.read_text().replace('arxiv: "2001.00001"\n', ""))
    assert any("needs `arxiv:`" in m for m in messages(kb_root))


def test_unregistered_repro(kb_root):
    write_card(kb_root, "withrepro", extra="repro: flash-atention\n")
    (msg,) = messages(kb_root, registered=["flash-attention"])
    assert (
        "repro: 'flash-atention' is no registered reproduction; did you mean 'flash-attention'?"
        in msg
    )


def test_oversized_card_refused(kb_root):
    write_card(kb_root, "huge", body="word " * 20000)
    (msg,) = messages(kb_root)
    assert "huge.md" in msg and "the limit is" in msg


def test_all_problems_reported_together(kb_root):
    write_card(kb_root, "a1", tags="[nope]", cites="[missing]")
    write_card(kb_root, "a2", body="<script></script>")
    assert len(messages(kb_root)) == 3


def test_collections(kb_root):
    col = kb_root / "notes" / "collections" / "list.md"
    col.parent.mkdir(parents=True)
    col.write_text(
        "---\nid: list\ntitle: A list\nkind: list\nsections:\n  - title: One\n"
        "    members: [bert, berd]\n---\nIntro.\n"
    )
    kb = cards.load(kb_root)
    assert [str(p) for p in kb.errors] == [
        "notes/collections/list.md: members: 'berd' is no card id; did you mean 'bert'?"
    ]
    assert kb.collections_of("bert") == ["list"]


def test_collection_bad_kind(kb_root):
    col = kb_root / "notes" / "collections" / "x.md"
    col.parent.mkdir(parents=True)
    col.write_text("---\nid: x\ntitle: X\nkind: magazine\nmembers: [bert]\n---\n")
    (msg,) = [str(p) for p in cards.load(kb_root).errors]
    assert "kind: 'magazine' is not a collection kind" in msg


def test_json_schema_matches_model():
    schema = cards.card_json_schema()
    assert set(schema["required"]) == {"id", "title", "authors", "year", "tags"}
    assert schema["additionalProperties"] is False
    assert "cites" in schema["properties"]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=400))
def test_arbitrary_text_never_crashes(tmp_path_factory, text):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "notes" / "papers").mkdir(parents=True)
    (root / "notes" / "tags.yml").write_text("attention: a\n")
    path = root / "notes" / "papers" / "fuzz.md"
    path.write_text("---\n" + text + "\n---\nbody\n", encoding="utf-8", errors="surrogatepass")
    card, problems = cards.load_card_file(path, root)
    assert card is not None or problems
    kb = cards.load(root)  # cross-card checks must not crash either
    assert isinstance(kb.problems, list)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("fuzzb")
    (root / "notes" / "papers").mkdir(parents=True)
    path = root / "notes" / "papers" / "b.md"
    path.write_bytes(data)
    card, problems = cards.load_card_file(path, root)
    assert card is not None or problems
