"""The web interface's translation catalogues: compiling ``.po`` to ``.mo`` and checking they are complete.

Used at build time by ``hatch_build.py`` (loaded by file path, so it must need nothing but the standard
library and babel), by ``scripts/bootstrap.sh`` after every set-up (``python -m node.web.catalogues``), and by
the tests. A catalogue with an error (a broken placeholder) fails instead of shipping a page that crashes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def read_catalogue(po_path: Path) -> Catalog:
    with po_path.open("rb") as fh:
        return read_po(fh, locale=po_path.parent.parent.name)


def catalogue_paths(root: Path = TRANSLATIONS) -> list[Path]:
    return sorted(root.glob("*/LC_MESSAGES/messages.po"))


def problems_of(catalogue: Catalog, name: str) -> list[str]:
    """Errors babel finds (placeholders that differ, bad plurals), untranslated and fuzzy messages."""
    found = [f"{name}: {message.id!r}: {error}" for message, errors in catalogue.check() for error in errors]
    for message in catalogue:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            found.append(f"{name}: untranslated: {message.id!r}")
        elif message.fuzzy:
            found.append(f"{name}: fuzzy: {message.id!r}")
    return found


def compile_catalogues(root: Path = TRANSLATIONS) -> list[Path]:
    """Write ``messages.mo`` beside every ``messages.po``; returns the files written.

    Raises:
        RuntimeError: a catalogue has errors babel can see (placeholders, plural forms).
    """
    written = []
    for po_path in catalogue_paths(root):
        catalogue = read_catalogue(po_path)
        errors = [f"{po_path}: {message.id!r}: {error}" for message, errs in catalogue.check() for error in errs]
        if errors:
            raise RuntimeError("translation catalogue errors:\n" + "\n".join(errors))
        mo_path = po_path.with_suffix(".mo")
        with mo_path.open("wb") as fh:
            write_mo(fh, catalogue)
        written.append(mo_path)
    return written


if __name__ == "__main__":
    try:
        made = compile_catalogues()
    except RuntimeError as exc:
        print(f"catalogues: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"catalogues: compiled {len(made)} ({', '.join(p.parent.parent.name for p in made)})")
