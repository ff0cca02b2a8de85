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
from ragidx.read.code import CODE_TREE, MAX_DEPTH, MAX_HEADS, MIN_LINES
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
        if self.radius < 0:
            raise ValueError("negative radius")
        return PI * self.radius ** 2


def describe(shape) -> str:
    name = type(shape).__name__
    if not name:
        name = "shape"
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
    if (this.radius < 0) {
      throw new Error("negative radius");
    }
    return PI * this.radius ** 2;
  }
}

export const describe = (shape) => {
  const name = shape.constructor.name;
  if (!name) return "shape";
  return `${name} of area ${shape.area()}`;
};

export const REGISTRY = { circle: Circle };
""",
    "shapes.ts": """\
// Shapes and their areas.
export interface Shape {
  readonly name: string;
  area(): number;
  perimeter(): number;
}

export class Circle implements Shape {
  readonly name = "circle";
  constructor(private readonly radius: number) {}

  area(): number {
    if (this.radius < 0) {
      throw new Error("negative radius");
    }
    return Math.PI * this.radius ** 2;
  }

  perimeter(): number {
    return 2 * Math.PI * this.radius;
  }
}

export function describe(shape: Shape): string {
  const kind = shape.name;
  const area = shape.area().toFixed(2);
  return `${kind} of area ${area}`;
}

export const REGISTRY: Record<string, unknown> = { circle: Circle };
""",
    "shapes.tsx": """\
import React from "react";

export class Circle {
  constructor(private radius: number) {}

  area(): number {
    if (this.radius < 0) {
      throw new Error("negative radius");
    }
    return Math.PI * this.radius ** 2;
  }
}

export function Badge({ shape }: { shape: Circle }) {
  const label = shape.area().toFixed(2);
  const title = `area ${label}`;
  return <span className="badge" title={title}>{label}</span>;
}

export default Badge;
""",
    "shapes.go": """\
// Package shapes computes areas.
package shapes

import "math"

// Circle is round.
type Circle struct {
	Name   string
	Radius float64
	Tags   []string
}

// Area is the circle's area.
func (c *Circle) Area() float64 {
	if c == nil {
		return 0
	}
	return math.Pi * c.Radius * c.Radius
}

func Describe(s *Circle) string {
	name := s.Name
	if name == "" {
		name = "circle"
	}
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
    pub name: String,
    pub radius: f64,
    pub tags: Vec<String>,
}

impl Shape for Circle {
    fn area(&self) -> f64 {
        if self.radius < 0.0 {
            return 0.0;
        }
        PI * self.radius * self.radius
    }
}

pub fn describe(shape: &dyn Shape) -> String {
    let area = shape.area();
    let rounded = (area * 100.0).round() / 100.0;
    format!("area {rounded}")
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
            if (radius < 0) {
                throw new IllegalStateException("negative radius");
            }
            return Math.PI * radius * radius;
        }
    }

    static String describe(Circle shape) {
        String name = "circle";
        double area = shape.area();
        return name + " of area " + area;
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
    const char *name;
    double radius;
    int tags;
};

double circle_area(const struct circle *c)
{
    if (c == NULL) {
        return 0;
    }
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
    if (radius_ < 0) {
      return 0;
    }
    return 2 * radius_;
  }

 private:
  double radius_;
};

double Circle::area() const {
  if (radius_ < 0) {
    return 0;
  }
  return M_PI * radius_ * radius_;
}

const int kRegistrySize = 1;

}  // namespace geo
""",
    "geo.h": """\
#pragma once

namespace geo {

class Circle {
 public:
  double area() const {
    if (radius_ < 0) {
      return 0;
    }
    return 3.14159 * radius_ * radius_;
  }

 private:
  double radius_ = 1;
};

}  // namespace geo
""",
}

# For each file: (a line, the heading path of its chunk, how that chunk starts). Definitions
# shorter than MIN_LINES (a constructor of one statement) are lines of what holds them.
EXPECTED: dict[str, list[tuple[str, tuple[str, ...], str]]] = {
    "shapes.py": [
        ("return PI * self.radius", ("shapes", "Circle", "area"), "@property"),
        ("self.radius = radius", ("shapes", "Circle"), "class Circle"),
        ("name = type(shape)", ("shapes", "describe"), "def describe"),
        ("REGISTRY = ", ("shapes",), "REGISTRY"),
        ("import math", ("shapes",), '"""Shapes'),
    ],
    "shapes.js": [
        ("return PI * this.radius", ("shapes", "Circle", "area"), "area() {"),
        ("this.radius = radius", ("shapes", "Circle"), "class Circle"),
        ("const name = shape", ("shapes", "describe"), "export const describe"),
        ("REGISTRY", ("shapes",), "export const REGISTRY"),
    ],
    "shapes.ts": [
        ("return Math.PI", ("shapes", "Circle", "area"), "area(): number {"),
        ("return 2 * Math.PI", ("shapes", "Circle"), "perimeter(): number {"),
        ("const kind = shape", ("shapes", "describe"), "export function describe"),
        ("REGISTRY", ("shapes",), "export const REGISTRY"),
        ("perimeter(): number;", ("shapes", "Shape"), "// Shapes and their areas."),
    ],
    "shapes.tsx": [
        ("return Math.PI", ("shapes", "Circle", "area"), "area(): number {"),
        ('className="badge"', ("shapes", "Badge"), "export function Badge"),
        ("export default Badge", ("shapes",), "export default Badge"),
    ],
    "shapes.go": [
        ("return math.Pi", ("shapes", "Circle", "Area"), "// Area is"),
        ("Radius float64", ("shapes", "Circle"), "// Circle is round."),
        ("name := s.Name", ("shapes", "Describe"), "func Describe"),
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
        ("this.radius = radius", ("Shapes", "Shapes", "Circle"), "/** A circle. */"),
        ('String name = "circle"', ("Shapes", "Shapes", "describe"), "static String describe"),
        ("VERSION = 2", ("Shapes", "Shapes"), "static final int VERSION"),
    ],
    "shapes.c": [
        ("return PI * c->radius", ("shapes", "circle_area"), "double circle_area"),
        ("double radius;", ("shapes", "circle"), "/* A circle. */"),
        ('return "circle"', ("shapes", "describe"), "static const char *describe"),
        ("registry_size", ("shapes",), "int registry_size"),
    ],
    "shapes.cpp": [
        ("return M_PI", ("shapes", "geo", "Circle", "area"), "double Circle::area"),
        ("explicit Circle(", ("shapes", "geo", "Circle"), "class Circle"),
        ("return 2 * radius_", ("shapes", "geo", "Circle", "diameter"), "double diameter"),
        ("double radius_;", ("shapes", "geo", "Circle"), "private:"),
        ("kRegistrySize", ("shapes", "geo"), "const int kRegistrySize"),
    ],
    # A header C cannot parse, that has words of C++, is read as C++.
    "geo.h": [
        ("return 3.14159", ("geo", "geo", "Circle", "area"), "double area"),
        ("double radius_ = 1;", ("geo", "geo", "Circle"), "private:"),
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
TRENNER = "a\u2028b\u0085c"  # separators str.splitlines() would break a line at
\f


class Kreis:
    """Ein Kreis — rund."""

    def fläche(self) -> float:  # 面积
        r = self.r
        if r < 0:
            raise ValueError("négatif ✗")
        return 3.14 * r ** 2
'''
    doc, chunks = _read(tmp_path, "formen.py", source)
    _every_line_once(doc, chunks)
    chunk = _holding(chunks, "return 3.14")
    assert chunk.heading_path == ("formen", "Kreis", "fläche")
    assert chunk.text.startswith("def fläche") and chunk.line_start == 11
    # A definition that starts mid-line, after non-ASCII text on its line.
    doc, chunks = _read(
        tmp_path,
        "mid.js",
        '// Zwei Mal.\nconst s = "ü✓😀"; function twice(a) {\n'
        "  if (a === undefined) {\n    return 0;\n  }\n  return a * 2;\n}\n",
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
        "    if not article:\n"
        "        return 0\n"
        "    tarifs = {'café': 2, 'crème': 3}\n"
        "    return tarifs.get(article, 0)\n"
    )
    doc, chunks = _read(tmp_path, "menu.py", source.encode("cp1252"))
    assert doc.encoding != "utf-8" and len(doc.text) < len(source.encode())
    _every_line_once(doc, chunks)
    chunk = _holding(chunks, "tarifs = {'café'")
    assert chunk.heading_path == ("menu", "prix") and chunk.text.startswith("def prix")


BODY = "a = 1\n{0}b = 2\n{0}c = 3\n{0}"


@pytest.mark.parametrize(
    ("name", "source", "good"),
    [
        (
            "broken.py",
            "class A:\n    def good(self):\n        " + BODY.format(" " * 8) + "return 1\n\n\n"
            "def broken(:\n    pass\n\n\ndef fine():\n    " + BODY.format(" " * 4) + "return 2\n",
            [("return 1", ("broken", "A", "good")), ("return 2", ("broken", "fine"))],
        ),
        (
            "broken.cpp",
            "namespace n {\nint good() {\n  int a = 0;\n  a += 1;\n  return a;\n}\n\n"
            "int broken( {\n  return @@;\n}\n\nint fine() {\n  return 2;\n}\n}\n",
            [("return a;", ("broken", "n", "good"))],
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
    body = "    x = 0\n" * (MIN_LINES - 2)
    many = "".join(f"def f{n}():\n{body}    return {n}\n" for n in range(MAX_HEADS + 50))
    doc = read_document(file_info(tmp_path / "many.py", many.encode()))
    assert doc.outline is not None and MAX_HEADS - MAX_DEPTH <= len(doc.outline) <= MAX_HEADS
    assert doc.outline[-1][1:] == (1, "many")
    chunks = chunk_document(doc, CONFIG)
    _every_line_once(doc, chunks)
    assert _holding(chunks, "def f7():").heading_path == ("many", "f7")
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
