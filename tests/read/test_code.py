"""Source code read through tree-sitter: chunks follow functions, classes and methods, with
the symbol path (`shapes > Circle > area`) as heading path, in the eight languages the code
reader parses; offsets hold in non-ASCII text; a syntax error costs only the definitions it
touches; a file over the large-file size still indexes, without an outline."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path

import pytest
from helpers import file_info

import ragidx
from ragidx.chunk import chunk_document
from ragidx.config import ChunkConfig, IndexConfig
from ragidx.embed import HashEmbedder
from ragidx.models import Chunk, Document, FileStatus
from ragidx.query.search import search
from ragidx.read import LARGE_FILE, read_document, reader_for
from ragidx.read.code import CODE_TREE, MAX_DEPTH, MAX_HEADS
from ragidx.store import SqliteStore

CONFIG = ChunkConfig(chunk_tokens=200, chunk_overlap=0, pack=False)

SOURCES = {
    "shapes.py": '''\
"""Shapes and their areas."""

import math

PI = math.pi


class Circle:
    """A circle."""

    def __init__(self, radius: float) -> None:
        self.radius = radius

    @property
    def area(self) -> float:
        return PI * self.radius ** 2


def describe(shape) -> str:
    name = type(shape).__name__
    return f"{name} of area {shape.area:.2f}"


REGISTRY = {"circle": Circle}
''',
    "shapes.js": """\
// Shapes and their areas.
const PI = Math.PI;

class Circle {
  constructor(radius) {
    this.radius = radius;
  }

  area() {
    return PI * this.radius ** 2;
  }
}

export const describe = (shape) => {
  const name = shape.constructor.name;
  return `${name} of area ${shape.area()}`;
};

export const REGISTRY = { circle: Circle };
""",
    "shapes.ts": """\
// Shapes and their areas.
export interface Shape {
  area(): number;
}

export class Circle implements Shape {
  constructor(private readonly radius: number) {}

  area(): number {
    return Math.PI * this.radius ** 2;
  }
}

export function describe(shape: Shape): string {
  const kind = shape.constructor.name;
  return `${kind} of area ${shape.area()}`;
}

export const REGISTRY: Record<string, unknown> = { circle: Circle };
""",
    "shapes.tsx": """\
import React from "react";

export class Circle {
  constructor(private radius: number) {}

  area(): number {
    return Math.PI * this.radius ** 2;
  }
}

export function Badge({ shape }: { shape: Circle }) {
  const label = shape.area().toFixed(2);
  return <span className="badge">{label}</span>;
}

export default Badge;
""",
    "shapes.go": """\
// Package shapes computes areas.
package shapes

import "math"

// Circle is round.
type Circle struct {
	Radius float64
}

// Area is the circle's area.
func (c *Circle) Area() float64 {
	return math.Pi * c.Radius * c.Radius
}

func Describe(s *Circle) string {
	name := "circle"
	return name
}

var Registry = map[string]any{"circle": Circle{}}
""",
    "shapes.rs": """\
//! Shapes and their areas.
use std::f64::consts::PI;

pub trait Shape {
    fn area(&self) -> f64;
}

/// A circle.
#[derive(Debug)]
pub struct Circle {
    pub radius: f64,
}

impl Shape for Circle {
    fn area(&self) -> f64 {
        PI * self.radius * self.radius
    }
}

pub fn describe(shape: &dyn Shape) -> String {
    let area = shape.area();
    format!("area {area}")
}

pub const REGISTRY: [&str; 1] = ["circle"];
""",
    "Shapes.java": """\
package shapes;

import java.util.Map;

/** Shapes and their areas. */
public class Shapes {
    static final Map<String, String> REGISTRY = Map.of("circle", "Circle");

    /** A circle. */
    public static class Circle {
        private final double radius;

        Circle(double radius) {
            this.radius = radius;
        }

        @Override
        public double area() {
            return Math.PI * radius * radius;
        }
    }

    static String describe(Circle shape) {
        String name = "circle";
        return name + shape.area();
    }

    static final int VERSION = 2;
}
""",
    "shapes.c": """\
/* Shapes and their areas. */
#include <math.h>

#define PI 3.14159

/* A circle. */
struct circle {
    double radius;
};

double circle_area(const struct circle *c)
{
    return PI * c->radius * c->radius;
}

static const char *describe(const struct circle *c)
{
    (void)c;
    return "circle";
}

int registry_size = 1;
""",
    "shapes.cpp": """\
// Shapes and their areas.
#include <cmath>

namespace geo {

class Circle {
 public:
  explicit Circle(double radius) : radius_(radius) {}
  double area() const;

  double diameter() const {
    return 2 * radius_;
  }

 private:
  double radius_;
};

double Circle::area() const {
  return M_PI * radius_ * radius_;
}

const int kRegistrySize = 1;

}  // namespace geo
""",
}

# For each file: (a line, the heading path of its chunk, how that chunk starts).
EXPECTED: dict[str, list[tuple[str, tuple[str, ...], str]]] = {
    "shapes.py": [
        ("return PI * self.radius", ("shapes", "Circle", "area"), "@property"),
        ("name = type(shape)", ("shapes", "describe"), "def describe"),
        ("REGISTRY = ", ("shapes",), "REGISTRY"),
        ("import math", ("shapes",), '"""Shapes'),
    ],
    "shapes.js": [
        ("return PI * this.radius", ("shapes", "Circle", "area"), "area() {"),
        ("const name = shape", ("shapes", "describe"), "export const describe"),
        ("REGISTRY", ("shapes",), "export const REGISTRY"),
    ],
    "shapes.ts": [
        ("return Math.PI", ("shapes", "Circle", "area"), "area(): number {"),
        ("const kind = shape", ("shapes", "describe"), "export function describe"),
        ("REGISTRY", ("shapes",), "export const REGISTRY"),
        ("area(): number;", ("shapes", "Shape"), "// Shapes and their areas."),
    ],
    "shapes.tsx": [
        ("return Math.PI", ("shapes", "Circle", "area"), "area(): number {"),
        ('className="badge"', ("shapes", "Badge"), "export function Badge"),
        ("export default Badge", ("shapes",), "export default Badge"),
    ],
    "shapes.go": [
        ("return math.Pi", ("shapes", "Circle", "Area"), "// Area is"),
        ("Radius float64", ("shapes", "Circle"), "// Circle is round."),
        ('name := "circle"', ("shapes", "Describe"), "func Describe"),
        ("var Registry", ("shapes",), "var Registry"),
    ],
    "shapes.rs": [
        ("PI * self.radius", ("shapes", "impl Shape for Circle", "area"), "fn area"),
        ("pub radius", ("shapes", "Circle"), "/// A circle."),
        ("let area = shape", ("shapes", "describe"), "pub fn describe"),
        ("REGISTRY", ("shapes",), "pub const REGISTRY"),
    ],
    "Shapes.java": [
        ("return Math.PI", ("Shapes", "Shapes", "Circle", "area"), "@Override"),
        ("this.radius = radius", ("Shapes", "Shapes", "Circle", "Circle"), "Circle(double"),
        ('String name = "circle"', ("Shapes", "Shapes", "describe"), "static String describe"),
        ("VERSION = 2", ("Shapes", "Shapes"), "static final int VERSION"),
    ],
    "shapes.c": [
        ("return PI * c->radius", ("shapes", "circle_area"), "double circle_area"),
        ("double radius;", ("shapes", "circle"), "/* A circle. */"),
        ("registry_size", ("shapes",), "int registry_size"),
    ],
    "shapes.cpp": [
        ("return M_PI", ("shapes", "geo", "Circle", "area"), "double Circle::area"),
        ("return 2 * radius_", ("shapes", "geo", "Circle", "diameter"), "double diameter"),
        ("double radius_;", ("shapes", "geo", "Circle"), "private:"),
        ("kRegistrySize", ("shapes", "geo"), "const int kRegistrySize"),
    ],
}


def _read(tmp_path: Path, name: str, text: str | bytes) -> tuple[Document, list[Chunk]]:
    data = text.encode() if isinstance(text, str) else text
    doc = read_document(file_info(tmp_path / name, data))
    return doc, chunk_document(doc, CONFIG)


def _every_line_once(doc: Document, chunks: list[Chunk]) -> None:
    """Chunks are slices of the text, in order, and what lies between them is blank: every
    line of code is in exactly one chunk."""
    at, line = 0, 1
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.char_start : chunk.char_end]
        assert chunk.char_start >= at and not doc.text[at : chunk.char_start].strip()
        line += doc.text.count("\n", at, chunk.char_start)
        assert chunk.line_start == line
        line += chunk.text.count("\n")
        at = chunk.char_end
    assert not doc.text[at:].strip()


def _holding(chunks: list[Chunk], needle: str) -> Chunk:
    (chunk,) = [c for c in chunks if needle in c.text]
    return chunk


@pytest.mark.parametrize("name", list(SOURCES))
def test_chunks_follow_definitions_with_their_symbol_path(tmp_path: Path, name: str) -> None:
    doc, chunks = _read(tmp_path, name, SOURCES[name])
    assert doc.format == "code" and doc.outline is not None
    assert doc.outline[0] == (0, 1, Path(name).stem)
    _every_line_once(doc, chunks)
    for needle, path, start in EXPECTED[name]:
        chunk = _holding(chunks, needle)
        assert (chunk.heading_path, chunk.text[: len(start)]) == (path, start), needle


def test_the_code_reader_takes_its_languages_and_leaves_the_rest(tmp_path: Path) -> None:
    for (
        suffix
    ) in ".py .pyi .mjs .cjs .jsx .mts .cts .tsx .go .rs .java .c .h .hh .hpp .cxx".split():
        assert reader_for(Path(f"x{suffix}")) is CODE_TREE
    for suffix in (".rb", ".kt", ".sh", ".toml"):
        reader = reader_for(Path(f"x{suffix}"))
        assert reader is not CODE_TREE and reader.format == "code"
    assert pickle.loads(pickle.dumps(CODE_TREE)).read  # workers get the reader pickled
    doc, _ = _read(tmp_path, "notes.rb", "class Foo\n  def bar\n  end\nend\n")
    assert doc.outline is None  # plain code: the chunker finds no headings


def test_offsets_hold_in_non_ascii_text(tmp_path: Path) -> None:
    source = '''\
"""Größen: 面积 und Umfang 😀."""

GRUSS = "héllo wörld ✓ 🎉"


class Kreis:
    """Ein Kreis — rund."""

    def fläche(self) -> float:  # 面积
        return 3.14 * self.r ** 2
'''
    doc, chunks = _read(tmp_path, "formen.py", source)
    _every_line_once(doc, chunks)
    chunk = _holding(chunks, "return 3.14")
    assert chunk.heading_path == ("formen", "Kreis", "fläche")
    assert chunk.text.startswith("def fläche") and chunk.line_start == 9
    # A definition that starts mid-line, after non-ASCII text on its line.
    doc, chunks = _read(
        tmp_path,
        "mid.js",
        '// Zwei Mal.\nconst s = "ü✓😀"; function twice(a) {\n  return a * 2;\n}\n',
    )
    _every_line_once(doc, chunks)
    chunk = _holding(chunks, "return a * 2")
    assert chunk.heading_path == ("mid", "twice") and chunk.text.startswith("function twice")


def test_offsets_are_in_the_decoded_text_whatever_the_encoding(tmp_path: Path) -> None:
    """A Latin-1 file is parsed as the text it decodes to, not as its bytes."""
    source = (
        "# Café, crème brûlée, déjà vu, naïve façade: résumé of the menu.\n"
        "MENU = ['café', 'crème', 'brûlée', 'façade', 'pâté', 'gâteau']\n"
        "\n\n"
        "def prix(article):\n"
        "    return {'café': 2, 'crème': 3}.get(article, 0)\n"
    )
    doc, chunks = _read(tmp_path, "menu.py", source.encode("cp1252"))
    assert doc.encoding != "utf-8" and len(doc.text) < len(source.encode())
    _every_line_once(doc, chunks)
    chunk = _holding(chunks, "return {'café'")
    assert chunk.heading_path == ("menu", "prix") and chunk.text.startswith("def prix")


@pytest.mark.parametrize(
    ("name", "source", "good"),
    [
        (
            "broken.py",
            "class A:\n    def good(self):\n        return 1\n\n\n"
            "def broken(:\n    pass\n\n\ndef fine():\n    return 2\n",
            [("return 1", ("broken", "A", "good")), ("return 2", ("broken", "fine"))],
        ),
        (
            "broken.cpp",
            "namespace n {\nint good() {\n  return 1;\n}\n\n"
            "int broken( {\n  return @@;\n}\n\nint fine() {\n  return 2;\n}\n}\n",
            [("return 1", ("broken", "n", "good"))],
        ),
        ("noise.rs", "}}} fn (( ]] impl for {\n@@ ## !!\n" * 50, []),
    ],
    ids=["python", "cpp", "noise"],
)
def test_a_syntax_error_costs_only_what_it_touches(
    tmp_path: Path, name: str, source: str, good: list[tuple[str, tuple[str, ...]]]
) -> None:
    doc, chunks = _read(tmp_path, name, source)
    assert doc.outline is not None and doc.outline[0] == (0, 1, Path(name).stem)
    _every_line_once(doc, chunks)
    for needle, path in good:
        assert _holding(chunks, needle).heading_path == path


def test_outlines_are_bounded(tmp_path: Path) -> None:
    # Classes nested deeper than an outline goes stay in their parent's section.
    nested = "".join(f"{'    ' * n}class C{n}:\n" for n in range(12)) + "    " * 12 + "x = 1\n"
    doc, chunks = _read(tmp_path, "deep.py", nested)
    assert doc.outline is not None and max(level for _, level, _ in doc.outline) == MAX_DEPTH
    assert _holding(chunks, "x = 1").heading_path == ("deep", *[f"C{n}" for n in range(7)])
    # More definitions than an outline holds: the rest are the file's.
    many = "".join(f"def f{n}():\n    return {n}\n" for n in range(MAX_HEADS + 50))
    doc = read_document(file_info(tmp_path / "many.py", many.encode()))
    assert doc.outline is not None and len(doc.outline) <= MAX_HEADS
    assert doc.outline[-1][1:] == (1, "many")
    chunks = chunk_document(doc, CONFIG)
    _every_line_once(doc, chunks)
    assert _holding(chunks, f"return {MAX_HEADS + 49}").heading_path == ("many",)
    # Brackets nested beyond any parser's stack.
    doc, chunks = _read(tmp_path, "nest.py", "x = " + "[" * 50_000 + "\ndef f():\n    pass\n")
    _every_line_once(doc, chunks)


def test_a_run_indexes_code_and_search_finds_a_method_under_its_class(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    for name in ("shapes.py", "shapes.go", "shapes.rs"):
        (repo / "pkg" / name).write_text(SOURCES[name], encoding="utf-8")
    summary = ragidx.index(
        [repo], HashEmbedder(), IndexConfig(db_path=tmp_path / "idx.db", workers=1)
    )
    assert summary.counts[FileStatus.INDEXED] == 3
    store = SqliteStore.open_for_reading(tmp_path / "idx.db")
    try:
        hits = asyncio.run(search(store, HashEmbedder(), "PI * self.radius ** 2", k=3))
    finally:
        store.close()
    (hit,) = [h for h in hits if "self.radius ** 2" in h.text]
    assert hit.path.endswith("shapes.py") and hit.heading_path == ("shapes", "Circle", "area")


def test_a_source_file_too_large_to_read_whole_is_read_in_segments(tmp_path: Path) -> None:
    """Past `LARGE_FILE`, a file is read a segment at a time as plain code, with no outline."""
    repo = tmp_path / "repo"
    repo.mkdir()
    big = "".join(f"def handler_{n}(request):\n    return {n}\n\n\n" for n in range(150_000))
    big += "def last_one():\n    return 'tail marker'\n"
    assert len(big) > LARGE_FILE
    (repo / "big.py").write_text(big)
    chunk = ChunkConfig(chunk_tokens=8000, chunk_overlap=0)  # fewer chunks to embed
    config = IndexConfig(db_path=tmp_path / "idx.db", workers=1, chunk=chunk)
    summary = ragidx.index([repo], HashEmbedder(), config)
    assert summary.counts[FileStatus.INDEXED] == 1
    store = SqliteStore.open_for_reading(tmp_path / "idx.db")
    try:
        rows = [row for row, _ in store.iter_chunks()]
    finally:
        store.close()
    assert "".join(r.text for r in rows).count("def handler_") == 150_000
    assert "tail marker" in rows[-1].text and {r.heading_path for r in rows} == {()}
