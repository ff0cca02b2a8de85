"""Which nodes of a tree-sitter syntax tree are definitions, per language, and what they are
called: the tables behind the source-code reader (`ragidx.read.code`).

In: a node of a tree that a grammar wheel's parser made, and the UTF-8 bytes it parsed.
Out: `definition(node, syntax, src)`, a `Found` (the node that starts and ends the
definition, its names, the node whose children hold nested definitions) or None;
`scope_body(node, syntax)`, the node whose children a preprocessor conditional, an
`extern "C"` block or an anonymous namespace lays out at its parent's level. Nothing here
raises for odd trees: a node without the parts a definition needs is not one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from tree_sitter import Node

__all__ = ["CPP", "SYNTAXES", "Found", "Syntax", "definition", "scope_body"]

_MAX_TITLE = 200
_MAX_UNWRAP = 8  # wrappers in wrappers (template<> template<>), declarators in declarators
_TEMPLATE_ARGS = re.compile(r"<.*>", re.S)


class Found(NamedTuple):
    node: Node
    """The outermost node of the definition (a decorator, `export` or `template<>` wraps it)."""
    names: tuple[str, ...]
    """Its title, after the titles of its scope where it names one (`Server`, `Handle` for
    Go's `func (s *Server) Handle`; `Circle`, `area` for C++'s `Circle::area`)."""
    body: Node | None
    """The node whose children hold its nested definitions; None for a function."""


@dataclass(frozen=True, slots=True)
class Syntax:
    """One language: its grammar, which node types are definitions (by handler), which
    comments and attributes above a definition belong to it, and which nodes hold
    definitions at their parent's level."""

    name: str
    module: str
    function: str
    kinds: Mapping[str, str]
    leading: frozenset[str]
    transparent: frozenset[str] = field(default_factory=frozenset)


def _text(node: Node, src: bytes) -> str:
    # A name is short; what a declarator holds (an initializer) need not be.
    end = min(node.end_byte, node.start_byte + 4 * _MAX_TITLE)
    return " ".join(src[node.start_byte : end].decode("utf-8", "replace").split())


def _title(node: Node | None, src: bytes) -> str:
    return _text(node, src)[:_MAX_TITLE] if node is not None else ""


def _name(node: Node, src: bytes) -> str:
    return _title(node.child_by_field_name("name"), src)


def _container(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    name = _name(node, src)
    body = node.child_by_field_name("body")
    return Found(node, (name,), body) if name and body is not None else None


def _leaf(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    name = _name(node, src)
    return Found(node, (name,), None) if name else None


_JS_CLASSES = frozenset({"class", "class_declaration", "abstract_class_declaration"})

_FUNCTION_VALUES = frozenset(
    "arrow_function function_expression function generator_function class".split()
)


def _js_variable(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    """`const handler = async () => {...}`: a function (or class) bound to a name."""
    for declarator in node.named_children:
        if declarator.type != "variable_declarator":
            continue
        value = declarator.child_by_field_name("value")
        if value is not None and value.type in _FUNCTION_VALUES:
            name = _name(declarator, src)
            return Found(node, (name,), None) if name else None
    return None


def _js_field(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    """A class field holding a function: `handle = () => {...}`."""
    value = node.child_by_field_name("value")
    if value is None or value.type not in _FUNCTION_VALUES:
        return None
    name = node.child_by_field_name("name") or node.child_by_field_name("property")
    title = _title(name, src)
    return Found(node, (title,), None) if title else None


def _js_statement(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    """`Foo.prototype.bar = function () {...}`, or a TS `namespace` (an expression there)."""
    inner = node.named_children[0] if node.named_child_count else None
    if inner is None:
        return None
    if inner.type == "internal_module":
        found = _container(inner, syntax, src)
        return found._replace(node=node) if found is not None else None
    if inner.type != "assignment_expression":
        return None
    right = inner.child_by_field_name("right")
    if right is None or right.type not in _FUNCTION_VALUES:
        return None
    title = _title(inner.child_by_field_name("left"), src)
    return Found(node, (title,), None) if title else None


def _go_method(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    """`func (s *Server) Handle()`: `Handle` under `Server`."""
    name = _name(node, src)
    if not name:
        return None
    receiver = node.child_by_field_name("receiver")
    kind = None
    if receiver is not None:
        for param in receiver.named_children:
            if param.type == "parameter_declaration":
                kind = param.child_by_field_name("type")
                break
    for _ in range(_MAX_UNWRAP):
        if kind is None or kind.type == "type_identifier":
            break
        kind = kind.child_by_field_name("type") or (
            kind.named_children[0] if kind.named_child_count else None
        )
    scope = _title(kind, src) if kind is not None and kind.type == "type_identifier" else ""
    return Found(node, (scope, name) if scope else (name,), None)


def _go_type(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    """`type Server struct {...}`; a group `type (...)` of several is no one definition."""
    specs = [c for c in node.named_children if c.type in ("type_spec", "type_alias")]
    if len(specs) != 1:
        return None
    name = _name(specs[0], src)
    return Found(node, (name,), None) if name else None


def _rust_impl(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    """`impl Foo` or `impl Display for Foo`, titled so."""
    kind = _title(node.child_by_field_name("type"), src)
    body = node.child_by_field_name("body")
    if not kind or body is None:
        return None
    trait = _title(node.child_by_field_name("trait"), src)
    title = f"impl {trait} for {kind}" if trait else f"impl {kind}"
    return Found(node, (title[:_MAX_TITLE],), body)


def _declared(declarator: Node | None) -> Node | None:
    """What a C or C++ declarator declares, under its pointers, arrays, parentheses,
    parameters and initializer: an identifier, or a qualified one."""
    for _ in range(_MAX_UNWRAP):
        if declarator is None:
            return None
        inner = declarator.child_by_field_name("declarator")
        if inner is None and declarator.type.endswith("declarator"):
            named = declarator.named_children
            inner = named[0] if declarator.type == "parenthesized_declarator" and named else None
            if inner is None and declarator.type != "function_declarator" and named:
                inner = named[-1]
        if inner is None:
            break
        declarator = inner
    return (
        declarator
        if declarator is not None and not declarator.type.endswith("declarator")
        else None
    )


def _c_function(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    """A C or C++ function definition, named by its declarator; an out-of-line member
    (`double Circle::area()`) is named under its class."""
    declarator = _declared(node.child_by_field_name("declarator"))
    names: list[str] = []
    for _ in range(_MAX_UNWRAP):
        if declarator is None or declarator.type != "qualified_identifier":
            break
        scope = declarator.child_by_field_name("scope")
        if scope is not None:
            names.append(_TEMPLATE_ARGS.sub("", _title(scope, src)))
        declarator = declarator.child_by_field_name("name")
    name = _title(declarator, src)
    if not name:
        return None
    return Found(node, (*[n for n in names if n], name), None)


_SPECIFIERS = frozenset("struct_specifier union_specifier enum_specifier class_specifier".split())


def _c_specifier(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    """`struct point {...}` (a class, in C++), with its body; a bare `struct point` is none."""
    body = node.child_by_field_name("body")
    name = _name(node, src)
    if body is None or not name:
        return None
    scope = None if node.type == "enum_specifier" else body
    return Found(node, (_TEMPLATE_ARGS.sub("", name),), scope)


def _c_typed(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    """`typedef struct {...} point_t;`, `struct foo {...} x;`: the struct, started at the
    declaration, named by its tag or else by what is declared."""
    kind = node.child_by_field_name("type")
    if kind is None or kind.type not in _SPECIFIERS:
        return None
    body = kind.child_by_field_name("body")
    if body is None:
        return None
    name = _name(kind, src) or _title(_declared(node.child_by_field_name("declarator")), src)
    if not name:
        return None
    return Found(node, (name,), None if kind.type == "enum_specifier" else body)


def _cpp_namespace(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    # An anonymous namespace is no scope a reader names: `scope_body` lays it out flat.
    return _container(node, syntax, src)


_HANDLERS: dict[str, Callable[[Node, Syntax, bytes], Found | None]] = {
    "container": _container,
    "leaf": _leaf,
    "js_variable": _js_variable,
    "js_field": _js_field,
    "js_statement": _js_statement,
    "go_method": _go_method,
    "go_type": _go_type,
    "rust_impl": _rust_impl,
    "c_function": _c_function,
    "c_specifier": _c_specifier,
    "c_typed": _c_typed,
    "cpp_namespace": _cpp_namespace,
}


def definition(node: Node, syntax: Syntax, src: bytes) -> Found | None:
    """The definition `node` is, or None (a statement, a declaration without a body, a node
    with no name to give it)."""
    return _definition(node, syntax, src, _depth=0)


def _definition(node: Node, syntax: Syntax, src: bytes, *, _depth: int) -> Found | None:
    kind = syntax.kinds.get(node.type)
    if kind is None or (kind == "wrapper" and _depth >= _MAX_UNWRAP):
        return None
    if kind == "wrapper":
        return _unwrap(node, syntax, src, _depth)
    return _HANDLERS[kind](node, syntax, src)


def _unwrap(node: Node, syntax: Syntax, src: bytes, depth: int) -> Found | None:
    inner = node.child_by_field_name("definition") or node.child_by_field_name("declaration")
    if inner is None:
        for child in reversed(node.named_children):
            if child.type in syntax.kinds:
                inner = child
                break
    if inner is None:
        return None
    found = _definition(inner, syntax, src, _depth=depth + 1)
    if found is None and node.type == "export_statement" and inner.type in _JS_CLASSES:
        # `export default class {...}`: anonymous, named by how it is exported
        return Found(node, ("default",), inner.child_by_field_name("body"))
    if found is None and node.type == "export_statement" and "function" in inner.type:
        return Found(node, ("default",), None)
    return found._replace(node=node) if found is not None else None


def scope_body(node: Node, syntax: Syntax) -> Node | None:
    """The node whose children are definitions at the level of `node`'s parent: a
    preprocessor conditional, `extern "C" {...}`, an anonymous namespace; else None."""
    if node.type in syntax.transparent:
        return node
    if node.type == "namespace_definition" and node.child_by_field_name("name") is None:
        return node.child_by_field_name("body")
    return None


_C_KINDS = {
    "function_definition": "c_function",
    "struct_specifier": "c_specifier",
    "union_specifier": "c_specifier",
    "enum_specifier": "c_specifier",
    "declaration": "c_typed",
    "type_definition": "c_typed",
}
_CPP_KINDS = {
    **_C_KINDS,
    "class_specifier": "c_specifier",
    "field_declaration": "c_typed",
    "namespace_definition": "cpp_namespace",
    "template_declaration": "wrapper",
}
_PREPROCESSOR = frozenset(
    "preproc_if preproc_ifdef preproc_else preproc_elif preproc_elifdef".split()
)
_JS_KINDS = {
    "class_declaration": "container",
    "class": "container",
    "function_declaration": "leaf",
    "generator_function_declaration": "leaf",
    "method_definition": "leaf",
    "field_definition": "js_field",
    "lexical_declaration": "js_variable",
    "variable_declaration": "js_variable",
    "expression_statement": "js_statement",
    "export_statement": "wrapper",
}
_TS_KINDS = {
    **_JS_KINDS,
    "abstract_class_declaration": "container",
    "public_field_definition": "js_field",
    "interface_declaration": "leaf",
    "enum_declaration": "leaf",
    "type_alias_declaration": "leaf",
    "function_signature": "leaf",
    "internal_module": "container",
    "module": "container",
    "ambient_declaration": "wrapper",
}
_JS_LEADING = frozenset({"comment", "decorator"})

_PYTHON = Syntax(
    "python",
    "tree_sitter_python",
    "language",
    {
        "class_definition": "container",
        "function_definition": "leaf",
        "decorated_definition": "wrapper",
    },
    frozenset({"comment"}),
)
_JAVASCRIPT = Syntax("javascript", "tree_sitter_javascript", "language", _JS_KINDS, _JS_LEADING)
_TYPESCRIPT = Syntax(
    "typescript", "tree_sitter_typescript", "language_typescript", _TS_KINDS, _JS_LEADING
)
_TSX = Syntax("tsx", "tree_sitter_typescript", "language_tsx", _TS_KINDS, _JS_LEADING)
_GO = Syntax(
    "go",
    "tree_sitter_go",
    "language",
    {
        "function_declaration": "leaf",
        "method_declaration": "go_method",
        "type_declaration": "go_type",
    },
    frozenset({"comment"}),
)
_RUST = Syntax(
    "rust",
    "tree_sitter_rust",
    "language",
    {
        "function_item": "leaf",
        "function_signature_item": "leaf",
        "struct_item": "leaf",
        "enum_item": "leaf",
        "union_item": "leaf",
        "macro_definition": "leaf",
        "trait_item": "container",
        "mod_item": "container",
        "impl_item": "rust_impl",
    },
    frozenset({"line_comment", "block_comment", "attribute_item"}),
)
_JAVA = Syntax(
    "java",
    "tree_sitter_java",
    "language",
    {
        "class_declaration": "container",
        "interface_declaration": "container",
        "enum_declaration": "container",
        "record_declaration": "container",
        "annotation_type_declaration": "container",
        "method_declaration": "leaf",
        "constructor_declaration": "leaf",
        "compact_constructor_declaration": "leaf",
    },
    frozenset({"line_comment", "block_comment"}),
    frozenset({"enum_body_declarations"}),
)
_C = Syntax(
    "c",
    "tree_sitter_c",
    "language",
    _C_KINDS,
    frozenset({"comment"}),
    _PREPROCESSOR | {"linkage_specification", "declaration_list"},
)
_CPP = Syntax(
    "cpp",
    "tree_sitter_cpp",
    "language",
    _CPP_KINDS,
    frozenset({"comment"}),
    _PREPROCESSOR | {"linkage_specification", "declaration_list"},
)

SYNTAXES: dict[str, Syntax] = {
    **dict.fromkeys((".py", ".pyi"), _PYTHON),
    **dict.fromkeys((".js", ".jsx", ".mjs", ".cjs"), _JAVASCRIPT),
    **dict.fromkeys((".ts", ".mts", ".cts"), _TYPESCRIPT),
    ".tsx": _TSX,
    ".go": _GO,
    ".rs": _RUST,
    ".java": _JAVA,
    ".c": _C,
    ".h": _C,  # or C++: `ragidx.read.code` tries C++ where C finds errors
    **dict.fromkeys((".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"), _CPP),
}
"""The languages by file name ending."""

CPP = _CPP
"""C++, which a header (`.h`) is parsed as where C finds errors in it."""
