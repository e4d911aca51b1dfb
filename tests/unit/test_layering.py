"""The layering rules of docs/architecture.md that a test can check without a server: only
storage/ knows MongoDB, so no module above it (handlers/, web/, formats/) imports its driver,
writes a query operator or indexes a stored field (storage/records.py's keys); the file formats
know nothing of HTTP and the HTTP machinery nothing of the routes; and a verb that takes from
`self.brought` what it did not declare with `@reads` fails loudly."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from storage.collection import CollectionStats
from storage.reading_stats import OwnFigures
from storage.records import RatingRecord, SeriesRecord, StatusRecord, StoredList
from web.reads import Brought, CatalogDocument, Computed, OwnEntry, UndeclaredRead, WholeList

ROOT = Path(__file__).resolve().parents[2]
# The modules above storage/: the routes, the HTTP machinery and the file formats.
HANDLER_MODULES = sorted(path for package in ("handlers", "web", "formats") for path in (ROOT / package).rglob("*.py"))
WEB_MODULES = sorted((ROOT / "web").rglob("*.py"))
FORMAT_MODULES = sorted((ROOT / "formats").rglob("*.py"))
DRIVER_PACKAGES = frozenset({"pymongo", "bson", "gridfs", "motor"})
# A MongoDB operator or field path (`$elemMatch`, `$$this.x`, `$statuses`). JSON Schema's own
# keywords, which OpenAPI publishes, look alike and are not MongoDB's.
MONGO_OPERATOR = re.compile(r"^\$+[A-Za-z_]")
JSON_SCHEMA_KEYWORDS = frozenset({"$ref", "$defs", "$schema", "$id", "$comment", "$anchor"})
# OpenAPI's runtime expressions (a link's parameters, web.openapi): `$request.…`, `$response.…`.
OPENAPI_EXPRESSION = re.compile(r"^\$(request|response)\.")


# The keys handler modules index that share a name with a stored field but are not a stored
# document's: (module, key) -> what is indexed.
NOT_STORED = {
    ("web/base.py", "id"): "the path's keyword arguments",
    ("web/errors.py", "type"): "a pydantic error",
    ("handlers/schemas/reading.py", "progress_type"): "a JSON schema's properties",
    ("handlers/schemas/reading.py", "start"): "a validator's already validated fields",
    ("handlers/schemas/settings.py", "type"): "a JSON schema",
    ("handlers/schemas/settings.py", "settings"): "the request body",
    ("handlers/schemas/reading.py", "title"): "a JSON schema",
    ("handlers/schemas/settings.py", "title"): "a JSON schema",
    ("web/openapi.py", "tags"): "an OpenAPI operation",
    ("web/openapi.py", "type"): "a JSON schema",
}


def stored_field_names() -> set[str]:
    """The fields of stored documents: the keys storage/records.py reads to build its records."""
    return set(indexed_keys(tree_of(ROOT / "storage" / "records.py")))


def indexed_keys(tree: ast.Module) -> list[str]:
    """Every string key the module indexes with: `x["key"]` and `x.get("key", ...)`."""
    keys = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str):
            keys.append(node.slice.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            keys.append(node.args[0].value)
    return keys


# Public methods of the stores handlers hold that take a mapping, and why that is no projection.
TAKE_A_MAPPING = {
    "UserStore.save_settings": "the settings the user sets, by the names the API publishes",
    "UserStore.session_records": "stored sessions, read by another store (account export)",
    "AvatarStore.switch": "a stored image reference, from the store's own upload",
    "AvatarStore.upload": "the image's bytes, by size",
    "AvatarStore.replace": "the image's bytes, by size",
    "CatalogKeys.read_current": "a pipeline, from the stores that order lists (storage/)",
}


def store_classes() -> set[str]:
    """The classes `Services` (web/services.py) holds: what handlers call."""
    tree = tree_of(ROOT / "web" / "services.py")
    services = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Services")
    return {ast.unparse(node.annotation) for node in services.body if isinstance(node, ast.AnnAssign)}


def methods_taking_a_mapping(tree: ast.Module, classes: set[str]) -> list[str]:
    found = []
    for cls in tree.body:
        if not (isinstance(cls, ast.ClassDef) and cls.name in classes):
            continue
        for method in cls.body:
            if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) or method.name.startswith("_"):
                continue
            arguments = method.args.args + method.args.kwonlyargs
            if any(argument.annotation is not None and re.search(r"\b(dict|Mapping)\[", ast.unparse(argument.annotation))
                   for argument in arguments):
                found.append(f"{cls.name}.{method.name}")
    return found


def tree_of(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported_packages(tree: ast.Module) -> set[str]:
    """Every top-level package the module imports, wherever the import is (a function, a
    TYPE_CHECKING block)."""
    packages: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            packages.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            packages.add(node.module.split(".")[0])
    return packages


def imported_modules(tree: ast.Module) -> set[str]:
    """Every module the module imports, by its full name."""
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def route_modules(modules: set[str]) -> set[str]:
    """The route modules among `modules`: handlers/, but not the models in handlers/schemas."""
    return {module for module in modules if module.split(".")[0] == "handlers"
            and not module.startswith("handlers.schemas")
            and (ROOT / (module.replace(".", "/") + ".py")).exists()}


def operator_strings(tree: ast.Module) -> list[str]:
    """String constants (f-strings' literal parts included) that read as MongoDB operators."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if MONGO_OPERATOR.match(text) and text not in JSON_SCHEMA_KEYWORDS and not OPENAPI_EXPRESSION.match(text):
                found.append(text)
    return found


def test_there_are_handler_modules_to_check() -> None:
    assert len(HANDLER_MODULES) > 20


@pytest.mark.parametrize("path", HANDLER_MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_handler_module_imports_the_database_driver(path: Path) -> None:
    assert imported_packages(tree_of(path)) & DRIVER_PACKAGES == set()


@pytest.mark.parametrize("path", HANDLER_MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_handler_module_writes_a_query_operator(path: Path) -> None:
    assert operator_strings(tree_of(path)) == []


@pytest.mark.parametrize("path", HANDLER_MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_handler_module_indexes_a_stored_field(path: Path) -> None:
    """A handler reads records (storage/records.py), never a stored document's fields."""
    module = str(path.relative_to(ROOT))
    stored = stored_field_names()
    assert [key for key in indexed_keys(tree_of(path)) if key in stored and (module, key) not in NOT_STORED] == []


def our_file(module: str) -> Path | None:
    """The file of one of this repository's modules, or None for a library's (or a name
    imported from a module, such as `web.errors.ApiError`)."""
    path = ROOT / module.replace(".", "/")
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def reached_modules(path: Path) -> set[str]:
    """Every module importing `path` loads, transitively: libraries by name, ours followed."""
    seen: set[str] = set()
    pending = [path]
    while pending:
        for module in imported_modules(tree_of(pending.pop())):
            if module in seen:
                continue
            seen.add(module)
            found = our_file(module)
            if found is not None:
                pending.append(found)
    return seen


@pytest.mark.parametrize("path", FORMAT_MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_a_file_format_knows_nothing_of_http(path: Path) -> None:
    """A format raises formats.problems, never an HTTP answer: the route maps it. Followed
    through every import, so a model that drags the HTTP machinery in is caught too."""
    modules = reached_modules(path)
    assert {module.split(".")[0] for module in modules} & {"web", "tornado"} == set()
    assert route_modules(modules) == set()


# docs/architecture.md's table of layers: what each may import of this repository.
MAY_IMPORT = {
    "handlers": {"handlers.schemas", "web", "formats", "auth", "storage", "settings", "imaging", "languages",
                 "partial_dates"},
    "handlers.schemas": {"auth", "storage", "languages", "partial_dates"},
    "web": {"handlers.schemas", "formats", "auth", "storage", "settings", "imaging", "workers"},
    "formats": {"handlers.schemas", "auth", "storage", "partial_dates"},
    "storage": {"auth", "settings", "languages", "partial_dates", "workers"},
    "auth": set(),
    **{module: set() for module in ("imaging", "settings", "log_format", "partial_dates", "languages", "workers")},
}


def layer_of(module: str) -> str:
    return "handlers.schemas" if module.startswith("handlers.schemas") else module.split(".")[0]


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_each_layer_imports_only_what_the_architecture_table_says(layer: str) -> None:
    if layer in ("handlers", "handlers.schemas", "web", "formats", "storage", "auth"):
        files = sorted((ROOT / layer.replace(".", "/")).rglob("*.py"))
    else:
        files = [ROOT / f"{layer}.py"]
    imported = {layer_of(module) for path in files for module in imported_modules(tree_of(path))
                if our_file(module) is not None and layer_of(path.relative_to(ROOT).with_suffix("").as_posix()
                                                         .replace("/", ".")) == layer}
    assert imported - {layer} <= MAY_IMPORT[layer], sorted(imported - {layer} - MAY_IMPORT[layer])


@pytest.mark.parametrize("path", WEB_MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_the_http_machinery_imports_no_route_module(path: Path) -> None:
    assert route_modules(imported_modules(tree_of(path))) == set()


@pytest.mark.parametrize("path", HANDLER_MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_handler_module_takes_the_raw_entries_of_a_stored_list(path: Path) -> None:
    """`StoredList.stored` holds the documents' own entries: only storage/ reads them."""
    assert [node.lineno for node in ast.walk(tree_of(path))
            if isinstance(node, ast.Attribute) and node.attr == "stored"] == []


def test_the_stores_handlers_call_take_typed_requests_not_projections() -> None:
    classes = store_classes()
    assert {"UserStore", "ReadingStatusStore", "CollectionStore", "PublicProfiles"} <= classes
    found = [name for path in sorted((ROOT / "storage").glob("*.py"))
             for name in methods_taking_a_mapping(tree_of(path), classes)]
    assert sorted(set(found) - set(TAKE_A_MAPPING)) == []
    assert sorted(set(TAKE_A_MAPPING) - set(found)) == []  # an exception no longer needed goes
    assert "UserStore.find_by_session" not in found


def test_the_stored_fields_are_found() -> None:
    assert {"series_id", "progress_type", "token_hash", "price_cents", "visibility"} <= stored_field_names()


def test_the_checks_see_what_they_look_for() -> None:
    tree = ast.parse('import bson\nfrom pymongo.errors import WriteError\n'
                     'def f():\n    from gridfs import GridFS\n'
                     'q = {"x": {"$elemMatch": {"a": 1}}, "$ref": 1}\ny = f"$$this.{z}"\n')
    assert imported_packages(tree) >= {"bson", "pymongo", "gridfs"}
    imports = ast.parse("from web.errors import ApiError\nfrom handlers import accounts\nfrom handlers.schemas.auth import User\n")
    assert route_modules(imported_modules(imports)) == {"handlers.accounts"}
    assert {"web.errors", "web.errors.ApiError"} <= imported_modules(imports)
    assert "web.openapi" in reached_modules(ROOT / "handlers" / "ratings.py")
    assert sorted(operator_strings(tree)) == ["$$this.", "$elemMatch"]
    assert indexed_keys(ast.parse('a = status["series_id"]\nb = entry.get("score")\nc = d[0]\n')) == \
        ["series_id", "score"]


def test_a_verb_that_reads_a_list_it_did_not_declare_fails_loudly() -> None:
    with pytest.raises(UndeclaredRead, match=r"Handler\.get reads a whole list"):
        Brought(verb="Handler.get").list()
    with pytest.raises(UndeclaredRead, match="WholeList"):
        Brought(declared=OwnEntry("ratings"), verb="Handler.get").list()


def test_a_verb_that_reads_what_another_declaration_brings_fails_loudly() -> None:
    with pytest.raises(UndeclaredRead):
        Brought(declared=WholeList("statuses")).own_entry(StatusRecord)
    with pytest.raises(UndeclaredRead):
        Brought(declared=OwnEntry("statuses")).catalog_document(SeriesRecord, "Series not found")
    with pytest.raises(UndeclaredRead):
        Brought(declared=CatalogDocument("series")).figures_of(CollectionStats)
    figures = CollectionStats(total_items=1, total_cents=0, first_buy=None, last_buy=None)
    with pytest.raises(UndeclaredRead):
        Brought(declared=Computed(lambda arguments: None), figures=figures).figures_of(OwnFigures)


def test_what_was_declared_comes_back_typed() -> None:
    assert Brought(declared=WholeList("statuses")).list() == StoredList("statuses", [])
    assert Brought(declared=OwnEntry("ratings")).own_entry(RatingRecord) is None
    figures = CollectionStats(total_items=1, total_cents=250, first_buy="2024-01-02", last_buy=None)
    assert Brought(declared=Computed(lambda arguments: None), figures=figures).figures_of(CollectionStats) == figures


def test_a_verb_that_takes_another_kind_of_record_than_it_declared_fails_loudly() -> None:
    rating = {"series_id": 7, "rating": 8.5, "last_update": None}
    brought = Brought(declared=OwnEntry("ratings"), verb="Handler.get", entries=StoredList("ratings", [rating]))
    assert brought.own_entry(RatingRecord) == RatingRecord.of(rating)
    with pytest.raises(UndeclaredRead, match=r"Handler\.get reads a StatusRecord"):
        brought.own_entry(StatusRecord)
