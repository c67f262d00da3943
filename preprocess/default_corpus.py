"""The embedded default corpus: English prose that every Python installation ships.

Documents, in this order: each pydoc topic page (`pydoc_data.topics`, the language reference
text behind `help()`), then one document per standard-library module holding its module, class
and function docstrings in source order. Sources are parsed with `ast`, never imported, so
building the corpus runs no library code. The result (about 2 MB on CPython 3.11) depends only
on the Python version, and is written one paragraph per line with a blank line between documents.

    python -m spanbert_preprocess.default_corpus OUT.txt
"""

import ast
import os
import sys
import sysconfig

# Standard-library directories that hold tests, GUI demos or vendored wheels rather than prose.
SKIPPED_DIRS = {
    "__pycache__",
    "dist-packages",
    "ensurepip",
    "idlelib",
    "lib2to3",
    "site-packages",
    "test",
    "tests",
    "tkinter",
    "turtledemo",
}
_DOCUMENTED_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def paragraphs(text):
    """Split text at blank lines, join each paragraph onto one line; drop doctest examples."""
    result = []
    for block in text.split("\n\n"):
        para = " ".join(block.split())
        if para and not para.startswith(">>>"):
            result.append(para)
    return result


def pydoc_topic_documents():
    from pydoc_data.topics import topics

    docs = [paragraphs(topics[name]) for name in sorted(topics)]
    return [d for d in docs if d]


def _docstrings_in_source_order(node):
    if isinstance(node, _DOCUMENTED_NODES):
        doc = ast.get_docstring(node)
        if doc:
            yield doc
    for child in ast.iter_child_nodes(node):
        yield from _docstrings_in_source_order(child)


def stdlib_module_paths(root=None):
    root = root or sysconfig.get_paths()["stdlib"]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def stdlib_docstring_documents(root=None):
    docs = []
    for path in stdlib_module_paths(root):
        try:
            with open(path, "rb") as f:
                tree = ast.parse(f.read())
        except (SyntaxError, ValueError, OSError):
            continue  # a file this interpreter cannot parse holds no docstrings we can read
        doc = [p for text in _docstrings_in_source_order(tree) for p in paragraphs(text)]
        if doc:
            docs.append(doc)
    return docs


def default_corpus_documents():
    """All documents of the default corpus: a list of documents, each a list of paragraph lines."""
    return pydoc_topic_documents() + stdlib_docstring_documents()


def documents_to_text(docs):
    """The input format of spanbert-preprocess: a line per paragraph, a blank line between documents."""
    return "\n\n".join("\n".join(doc) for doc in docs) + "\n"


def write_default_corpus(path):
    """Write the corpus to `path`; return (documents, lines, bytes)."""
    docs = default_corpus_documents()
    data = documents_to_text(docs).encode("utf-8")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return len(docs), sum(len(doc) for doc in docs), len(data)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m spanbert_preprocess.default_corpus OUT.txt", file=sys.stderr)
        return 2
    n_docs, n_lines, n_bytes = write_default_corpus(argv[0])
    print(
        f"default corpus: {n_docs} documents, {n_lines} lines, {n_bytes} bytes "
        f"(Python {sys.version.split()[0]}) -> {os.path.abspath(argv[0])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
