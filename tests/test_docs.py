"""docs/methods.md is the method reference that ships with the code: these tests keep the two in step.

- No file under advcl/ or plugins/ points at a path outside the repository (``../shared/...``): a clone has
  only what is committed. Every ``../`` path there must resolve, from the file's own folder, to something that
  exists inside the repository.
- Every ``docs/methods.md, "Section / Subsection"`` citation names headings that exist.
- Every perturber, loss and objective the built-ins register has a section ("Registered as <kind> `name`"),
  under the right part of the page, and no section names a component that is not registered.
- Every recipe default a section's tables quote (a cell that is one literal, such as `` `1e-3` ``) is the
  default of the Config dataclass it names.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from advcl.config.schema import Recipe
from advcl.config.validate import build, resolve_component, to_dict
from advcl.plugins import load_registry

REPO = Path(__file__).resolve().parents[1]
METHODS = REPO / "docs" / "methods.md"
SCANNED = ("advcl", "plugins")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".json", ".sh", ".yaml", ".yml"}
KINDS = ("perturber", "loss", "objective")
PART_OF_KIND = {"perturber": {"Perturbers"}, "loss": {"Losses"}, "objective": {"Supervised", "Unsupervised"}}

RELATIVE_PATH = re.compile(r"(?<![\w./~-])((?:\.\./)+[\w.\-/]*)")
CITATION = re.compile(r'docs/methods\.md(,?\s*"([^"]+)")?')
REGISTERED = re.compile(r"^Registered as (perturber|loss|objective)s? (.*)$", re.MULTILINE)
TABLE_ROW = re.compile(r"^\| `(?:\[([\w.]+)\] )?(\w+)` \| `([^`]+)`", re.MULTILINE)


def scanned_files():
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*")):
            parts = set(path.relative_to(REPO).parts)
            if path.is_file() and path.suffix in TEXT_SUFFIXES and not parts & {"__pycache__", ".venv"} and not any(
                p.endswith(".egg-info") for p in parts
            ):
                yield path


def test_no_file_under_advcl_or_plugins_points_outside_the_repository():
    bad = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in RELATIVE_PATH.finditer(text):
            target = (path.parent / match.group(1)).resolve()
            if not target.is_relative_to(REPO) or not target.exists():
                line = text.count("\n", 0, match.start()) + 1
                bad.append(f"{path.relative_to(REPO)}:{line}: {match.group(1)}")
    assert not bad, "paths that a clone of the repository does not have:\n" + "\n".join(bad)


def test_nothing_cites_the_workplace_copy_of_the_method_notes():
    files = [*scanned_files(), *sorted((REPO / "docs").rglob("*.md")), REPO / "README.md"]
    bad = [str(p.relative_to(REPO)) for p in files if "shared/methods" in p.read_text(encoding="utf-8", errors="replace")]
    assert not bad, f"cite docs/methods.md instead of shared/methods.md in: {bad}"


def headings() -> list[tuple[int, str, str]]:
    """(level, text, text of the enclosing level-2 heading) of every heading in docs/methods.md."""
    found, part = [], ""
    for line in METHODS.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(#{1,6}) (.+?)\s*$", line)
        if match:
            level, text = len(match.group(1)), match.group(2)
            part = text if level == 2 else part
            found.append((level, text, part))
    return found


def sections() -> list[tuple[str, str, str]]:
    """(level-2 heading, level-3 heading, body) of every level-3 section of docs/methods.md."""
    found, part, title, body = [], "", None, []
    for line in METHODS.read_text(encoding="utf-8").splitlines() + ["## end"]:
        match = re.match(r"^(#{2,3}) (.+?)\s*$", line)
        if match:
            if title is not None:
                found.append((part, title, "\n".join(body)))
            title, body = (match.group(2), []) if len(match.group(1)) == 3 else (None, [])
            part = match.group(2) if len(match.group(1)) == 2 else part
        elif title is not None:
            body.append(line)
    return found


def resolves(section: str) -> bool:
    """``"Part / Title"``: a level-3 heading under that level-2 one; ``"Title"``: exactly one heading of that text."""
    all_headings = headings()
    if " / " in section:
        part, title = section.split(" / ", 1)
        return any(level == 3 and text == title and p == part for level, text, p in all_headings)
    return sum(text == section for _, text, _ in all_headings) == 1


def test_every_citation_of_the_method_reference_names_a_section_that_exists():
    cited, bad = 0, []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in CITATION.finditer(text):
            cited += 1
            where = f"{path.relative_to(REPO)}:{text.count(chr(10), 0, match.start()) + 1}"
            if match.group(2) is None:
                bad.append(f"{where}: docs/methods.md without a section (write docs/methods.md, \"Part / Title\")")
            elif not resolves(" ".join(match.group(2).split())):
                bad.append(f"{where}: no section {match.group(2)!r} in docs/methods.md")
    assert cited > 0, "no docstring cites docs/methods.md"
    assert not bad, "\n".join(bad)


def test_the_citation_check_tells_a_section_from_a_missing_one():
    assert resolves("Perturbers / SMART") and resolves("Supervised / SMART")
    assert not resolves("SMART")  # two sections have that title: a citation must say which
    assert not resolves("Perturbers / CAT") and not resolves("No such section")


def registered_in(body: str) -> list[tuple[str, str]]:
    """(kind, name) of the components a section's "Registered as <kind> `name` (`file`)" line names."""
    return [(kind, name) for kind, rest in REGISTERED.findall(body) for name in re.findall(r"`([^`]+)`", rest.split(" (", 1)[0])]


def documented_components() -> dict[tuple[str, str], str]:
    """(kind, name) -> the level-2 part of the section whose "Registered as" line names it."""
    found = {}
    for part, _, body in sections():
        for key in registered_in(body):
            assert key not in found, f"{key} is registered by two sections"
            found[key] = part
    return found


def test_every_builtin_perturber_loss_and_objective_has_a_section():
    builtins = {(c.kind, c.name) for c in load_registry(autoload=False).all() if c.kind in KINDS}
    documented = documented_components()
    missing = sorted(builtins - set(documented))
    assert not missing, f"no section of docs/methods.md says 'Registered as <kind> `name`' for: {missing}"
    stale = sorted(set(documented) - builtins)
    assert not stale, f"docs/methods.md documents components that are not registered: {stale}"
    misplaced = sorted(key for key, part in documented.items() if part not in PART_OF_KIND[key[0]])
    assert not misplaced, f"sections under the wrong part of docs/methods.md: {misplaced}"


def component_defaults(kind: str, name: str) -> dict:
    return to_dict(resolve_component(kind, name, kind).config)


def quoted_defaults():
    """(section, table, field, literal) for each table row whose default cell is one parsable literal."""
    for part, title, body in sections():
        for table, field, literal in TABLE_ROW.findall(body):
            try:
                value = tomllib.loads(f"v = {literal}")["v"]
            except tomllib.TOMLDecodeError:
                continue
            yield f"{part} / {title}", table, field, value, body


def default_candidates(table: str, field: str, body: str) -> list:
    """The defaults that a row ``[table] field`` in a section with this body may mean."""
    registered = registered_in(body)
    if table in ("model", "data", "run", "train"):
        return [to_dict(build(Recipe, {}))[table].get(field, KeyError)]
    if not table:  # a loss section's option table
        return [component_defaults(kind, name).get(field, KeyError) for kind, name in registered if kind == "loss"]
    path = table.split(".")[1:]
    if path == ["perturber"] and any(kind == "perturber" for kind, _ in registered):
        return [component_defaults(k, n).get(field, KeyError) for k, n in registered if k == "perturber"]
    objectives = [n for k, n in registered if k == "objective"] or [
        c.name for c in load_registry(autoload=False).components["objective"].values()
    ]
    values = []
    for name in objectives:
        node = component_defaults("objective", name)
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and field in node:
            values.append(node[field])
    return values


def same(documented, actual) -> bool:
    if isinstance(documented, float) or isinstance(actual, float):
        return not isinstance(actual, (bool, str)) and actual == pytest.approx(documented, rel=1e-12)
    return documented == actual


def test_every_quoted_recipe_default_is_the_configs_default():
    checked, bad = 0, []
    for section, table, field, value, body in quoted_defaults():
        candidates = default_candidates(table, field, body)
        key = f"[{table}] {field}" if table else field
        if not candidates or KeyError in candidates:
            bad.append(f"{section}: {key} is not a field of the component(s) the section documents")
            continue
        checked += 1
        if not all(same(value, actual) for actual in candidates):
            bad.append(f"{section}: {key} is documented as {value!r}, the code's default is {candidates}")
    assert checked >= 40, f"only {checked} quoted defaults were checked: did the table format change?"
    assert not bad, "\n".join(bad)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_every_link_inside_the_method_reference_lands_on_a_heading():
    anchors, seen = set(), {}
    for _, text, _ in headings():
        base = slug(text)
        anchors.add(base if base not in seen else f"{base}-{seen[base]}")
        seen[base] = seen.get(base, 0) + 1
    links = re.findall(r"\]\(#([^)]+)\)", METHODS.read_text(encoding="utf-8"))
    assert links and not sorted(set(links) - anchors), f"links to no heading: {sorted(set(links) - anchors)}"
