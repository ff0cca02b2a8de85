"""Text a reader never sees (HTML comments, bare anchors, empty tags) makes no chunk of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import Cli, write

from ragidx.chunk.chunker import chunk_text
from ragidx.config import ChunkConfig

# What the Rust book's sources look like: sections that end with the anchors of old headings
# under a comment, an mdBook listing tag, an output comment over three lines, and an HTML
# example whose comment is code.
PARAGRAPH = (
    "Message passing is a fine way of handling concurrency, but it is not the only one. "
    "Another method would be for multiple threads to access the same shared data. In a way, "
    "channels in any programming language are similar to single ownership, because once you "
    "transfer a value down a channel, you should no longer use that value. Shared memory "
    "concurrency is like multiple ownership: multiple threads can access the same memory "
    "location at the same time, and the type system helps to get this right."
)
CHAPTER = f"""## Shared-State Concurrency

{PARAGRAPH}

{PARAGRAPH.replace("Message passing", "Sending messages")}

<!-- Old headings. Do not remove or links may break. -->

<a id="using-mutexes-to-allow-access-to-data-from-one-thread-at-a-time"></a>

### Controlling Access with Mutexes

<!-- Old headings. Do not remove or links may break. -->
<a id="the-api-of-mutext"></a>

#### The API of `Mutex<T>`

A mutex allows only one thread to access some data at any given time. To access the data in
a mutex, a thread must first signal that it wants access by asking to acquire the lock.

<Listing number="16-12" file-name="src/main.rs" caption="Exploring the API of `Mutex<T>`">

```rust
let m = Mutex::new(5);
```

</Listing>

A page can hold markup of its own, which is code like any other:

```html
<!-- This comment is part of the example -->
<a id="top"></a>
```

<!-- Not extracting output because changes to this output aren't significant;
the changes are likely to be due to the threads running differently rather than
changes in the compiler -->

```text
Result: 10
```

<!-- Old headings. Do not remove or links may break. -->

<a id="similarities-between-refcelltrct-and-mutextarct"></a>
"""

INVISIBLE = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>|\s", re.S)


def seen(text: str) -> str:
    return INVISIBLE.sub("", text)


def test_no_chunk_of_markup_alone_through_the_cli(cli: Cli, work: Path) -> None:
    write(work, {"book/ch16-03-shared-state.md": CHAPTER})
    args = ("--db", "idx.db", "--quiet", "--chunk-tokens", "160", "--chunk-overlap", "16")
    assert cli("index", "book", *args).exit_code == 0
    rows = cli("export", "--db", "idx.db").json_lines()
    assert len(rows) >= 4
    for row in rows:
        assert seen(row["text"]), f"chunk {row['ordinal']} holds only markup: {row['text']!r}"
        # Offsets and lines of every chunk are still those of the file.
        assert CHAPTER[row["char_start"] : row["char_end"]] == row["text"]
        assert row["line_start"] == CHAPTER.count("\n", 0, row["char_start"]) + 1
    texts = "\n".join(r["text"] for r in rows)
    assert "<!-- This comment is part of the example -->" in texts  # code is content
    assert "Result: 10" in texts
    assert [r["ordinal"] for r in rows] == list(range(len(rows)))

    hits = cli("search", "share data between threads safely", "--db", "idx.db", "--json")
    assert hits.exit_code == 0
    assert all(seen(h["text"]) for h in hits.json_lines())


def test_markup_between_headings_joins_the_next_section() -> None:
    text = (
        "## Old\n\n<!-- Old headings. Do not remove or links may break. -->\n"
        '<a id="old"></a>\n\n### New\n\nBody text.\n'
    )
    (only,) = chunk_text(text, "markdown", ChunkConfig())
    assert only.heading_path == ("Old", "New")
    assert only.text == text.strip()  # the markup stays inside a chunk that has words


WORDS = " ".join(f"word{i}" for i in range(30))  # more than a 32-token chunk holds


@pytest.mark.parametrize(
    "shown",
    [
        f"```html\n{WORDS}\n\n<!-- a comment that is the example -->\n\n{WORDS}\n```",
        "    <!-- indented: code -->",
        "Press `<br>` to break a line.",
        '<img src="diagram.png" alt="The ownership diagram">',
        "<!-- never closed, so text",
        "<https://example.com> <user@example.com>",
    ],
)
def test_what_a_reader_sees_is_kept(shown: str) -> None:
    text = f"{WORDS}\n\n{shown}\n"
    chunks = chunk_text(text, "markdown", ChunkConfig(chunk_tokens=32, chunk_overlap=0))
    assert len(chunks) > 1
    kept = {line.strip() for c in chunks for line in c.text.split("\n")}
    assert {line.strip() for line in shown.split("\n") if "<" in line} <= kept


@pytest.mark.parametrize("fmt", ["text", "html", "code"])
def test_markup_is_text_outside_markdown(fmt: str) -> None:
    # HTML arrives as the text a browser shows: a `<a id>` left in it was written as text.
    text = '<!-- shown -->\n\n<a id="x"></a>\n'
    assert [c.text for c in chunk_text(text, fmt, ChunkConfig())] == [text.strip()]


def test_a_file_of_markup_alone_has_no_chunks(cli: Cli, work: Path) -> None:
    write(
        work, {"docs/anchors.md": '<!-- generated -->\n<a id="a"></a>\n', "docs/b.md": "Words.\n"}
    )
    result = cli("index", "docs", "--db", "idx.db", "--json")
    assert result.exit_code == 0, result.stderr
    files = result.files()
    assert files["docs/b.md"]["chunks"] == 1
    assert files["docs/anchors.md"]["chunks"] == 0
    assert [r["path"] for r in cli("export", "--db", "idx.db").json_lines()] == ["docs/b.md"]
