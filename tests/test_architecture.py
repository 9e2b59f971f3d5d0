"""The house rules, read from the source: an AST walk over every module of the tree.

Each rule is a function from one parsed module to the violations it finds, with the reason for
the rule beside it; ``test_the_tree_keeps_the_rule`` runs every rule over the tree, and
``test_a_rule_reports_its_violation`` feeds each rule a small synthetic module that breaks it, so
a rule that silently stopped seeing anything would fail too.

Adding a domain package: add its name to ``DOMAINS`` and its tables to ``OWNERS`` (a table
created by a migration without an owner here fails ``test_every_table_has_one_owner``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit.errors import HANDLER_CODES, INSTANCE_CODES

ROOT = Path(__file__).resolve().parent.parent

# What is walked: every package of the project, tools and benchmarks included (a tool or a
# benchmark that copies a domain's SQL drifts from it as surely as a domain would).
WALKED = (
    "kit",
    "server",
    "residents",
    "behaviours",
    "points",
    "rewards",
    "enterprises",
    "reporting",
    "integrations",
    "mobile_api_spec",
    "scripts",
    "bench",
)
# Every top-level package of the project: an import of one of these is a project import.
PROJECT = {*WALKED, "tests"}
# The domains: the packages that hold the programme's rules and own its tables.
DOMAINS = {
    "residents",
    "behaviours",
    "points",
    "rewards",
    "enterprises",
    "reporting",
    "integrations",
}

# Each table has one owning package, and only that package's repository names it in SQL: a
# reader elsewhere calls the owner's published read, so a change of a table is a change of one
# package. Tables are those the migrations create (test_every_table_has_one_owner).
OWNERS: dict[str, set[str]] = {
    # The kernel's idempotency (`Idempotency-Key` replay or run) is usable by any surface.
    "kit": {"idempotency_keys"},
    # The root's migration tool grants the application role what this table says.
    "server": {"app_grants", "schema_migrations"},
    "residents": {"residents", "resident_identities", "refresh_families", "refresh_tokens"},
    "points": {"ledger_accounts", "ledger_batches", "ledger_transfers", "point_lots"},
    "behaviours": {
        "behaviour_events",
        "behaviour_reference",
        "behaviour_usage",
        "methodologies",
        "methodology_caps",
        "methodology_factors",
        "operators",
        "operator_keys",
        "operator_links",
        "ingest_files",
        "ingest_file_chunks",
        "districts",
        "gtfs_shapes",
        "gtfs_stops",
        "gtfs_stop_times",
        "gtfs_trips",
    },
    "rewards": {
        "donation_projects",
        "donations",
        "merchants",
        "merchant_keys",
        "catalogue_items",
        "reward_codes",
        "rewards",
        "reward_usage",
        "reward_webhooks",
    },
    "enterprises": {
        "enterprises",
        "enterprise_sites",
        "enterprise_meters",
        "meter_readings",
        "meter_monthly",
        "activity_reports",
        "activity_report_lines",
        "green_certificate_claims",
        "activity_touched",
        "enterprise_grid_factors",
        "enterprise_fuel_factors",
        "enterprise_emissions",
        "enterprise_budgets",
        "enterprise_alerts",
        "enterprise_reduction_credits",
        "enterprise_users",
        "enterprise_reports",
        "offset_issuances",
        "allowance_periods",
        "allowance_allocations",
        "allowance_allocation_lines",
        "allowance_positions",
        "allowance_offers",
        "allowance_approvals",
        "commuting_programmes",
        "commuting_employee_codes",
        "commuting_members",
        "commuting_consents",
        "commuting_bonus_runs",
        "commuting_bonuses",
        "enterprise_kind_accounts",
        "offset_purchases",
        "offset_holdings",
        "offset_retirements",
        "enterprise_pollutants",
    },
    # Government users and the administrative audit log (G1); the reports' tables join this set.
    "reporting": {
        "gov_users",
        "gov_audit_log",
        "gov_methodology_drafts",
        "reporting_travel",
        "reporting_points",
        "reporting_enterprise",
        "reporting_grades",
        "reporting_refreshes",
        "reporting_reconciliations",
    },
}
# Where an owner's SQL lives: its repository (a module, or a package of modules).
OWNER_FILES: dict[str, tuple[str, ...]] = {
    # The kernel has no domain repository: its one table belongs to its idempotency module.
    "kit": ("kit/idempotency.py",),
    # The root's tables are the migration tool's own.
    "server": ("server/migrate.py",),
}
# Not owners, allowed to name owners' tables, each for its reason. bench/history.py writes ten
# million credited events set-wise for the 10M-stored benchmark (no domain path writes a year
# of history in minutes); it cannot drift silently: tests/points/test_bench_history.py runs it
# and the ledger audit over what it wrote, and the tables' constraints check every row.
SQL_FIXTURES: tuple[str, ...] = ("bench/history.py",)

# asyncpg is spoken in the repositories and in the kernel's database module only: every other
# module works through `kit.db` (`Tx`, `Conn`), so the driver and its errors can be changed or
# wrapped in one place, and SQL never hides in a service. The composition root's tools also
# talk to PostgreSQL directly, because they work before or beside the application's pool:
# server/migrate.py connects as the schema's owner (not the application role) to apply the
# migrations and grant the application role; server/embedded.py creates the embedded store's
# roles and database before anything can pool; server/cli.py reports asyncpg's connection
# errors of those tools as a one-line message instead of a traceback. The benchmarks measure
# the bare stack's ceiling (plain asyncpg, no project code) next to the project's figures.
ASYNCPG_ALLOWED = (
    "kit/db.py",
    "server/migrate.py",
    "server/embedded.py",
    "server/cli.py",
    "bench/",
)

SQL_KEYWORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|JOIN|TRUNCATE|COPY|LOCK|REFERENCES|CREATE|ALTER|"
    r"DROP|GRANT|REVOKE)\b"
)
COPY_CALLS = {"copy_records_to_table", "copy_to_table", "copy_from_table", "copy_from_query"}


@dataclass(frozen=True)
class Module:
    path: str  # relative to the repository root, with forward slashes
    tree: ast.Module

    @property
    def package(self) -> str:
        return self.path.split("/", 1)[0]

    @classmethod
    def parse(cls, path: str, source: str) -> Module:
        return cls(path, ast.parse(source, filename=path))


def tree_modules() -> list[Module]:
    out = []
    for top in WALKED:
        for file in sorted((ROOT / top).rglob("*.py")):
            rel = file.relative_to(ROOT).as_posix()
            if "/migrations/" in rel:
                continue
            out.append(Module.parse(rel, file.read_text(encoding="utf-8")))
    return out


def imports(module: Module) -> Iterator[tuple[int, str]]:
    """Every module imported, at any depth (lazy imports inside functions count too), with
    ``importlib.import_module("...")`` strings, which are imports that tools cannot follow."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.path.split("/")[: -node.level]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            elif node.module:
                yield node.lineno, node.module
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _project_imports(module: Module) -> Iterator[tuple[int, str]]:
    for line, name in imports(module):
        if _top(name) in PROJECT and _top(name) != module.package:
            yield line, name


# --- the rules ------------------------------------------------------------------------------


def kernel_imports_no_project_package(module: Module) -> list[str]:
    # The kernel is what every package may import; if it imported one of them back, every
    # package would depend on every other through it, and kit could not be read or tested alone.
    if module.package != "kit":
        return []
    return [f"{module.path}:{line} imports {name}" for line, name in _project_imports(module)]


def no_domain_imports_server(module: Module) -> list[str]:
    # `server` is the composition root: it imports every package, so a domain importing it is a
    # cycle, and it would tie the rules to one way of serving them (HTTP, CLI, Celery app).
    if module.package not in DOMAINS:
        return []
    return [
        f"{module.path}:{line} imports {name}"
        for line, name in _project_imports(module)
        if _top(name) == "server"
    ]


def points_imports_no_other_domain(module: Module) -> list[str]:
    # The ledger knows accounts and transfers, not why they move: whatever credits or spends
    # points calls the ledger, never the other way round, so every domain may build on it.
    if module.package != "points":
        return []
    return [
        f"{module.path}:{line} imports {name}"
        for line, name in _project_imports(module)
        if _top(name) in DOMAINS
    ]


def integrations_import_only_kit(module: Module) -> list[str]:
    # Integrations are pure adapters for the outside world (record formats, GTFS, districts,
    # SMS, WeChat): the domains call them, so they may lean on the kernel and nothing else.
    if module.package != "integrations":
        return []
    return [
        f"{module.path}:{line} imports {name}"
        for line, name in _project_imports(module)
        if _top(name) != "kit"
    ]


def _is_repository(path: str) -> bool:
    parts = path.split("/")
    # A package with several parts may keep one repository per part (`users_repository.py`).
    return (
        parts[-1] == "repository.py"
        or parts[-1].endswith("_repository.py")
        or "repository" in parts[:-1]
    )


def asyncpg_only_in_repositories(module: Module) -> list[str]:
    # (the reason is beside ASYNCPG_ALLOWED above)
    if _is_repository(module.path) or module.path.startswith(ASYNCPG_ALLOWED):
        return []
    return [
        f"{module.path}:{line} imports {name}"
        for line, name in imports(module)
        if _top(name) == "asyncpg"
    ]


def litestar_only_in_server(module: Module) -> list[str]:
    # HTTP is one way of reaching the rules, and the root's business: domains raise
    # kit.errors and return Structs, the surfaces under server/ turn them into responses, so a
    # CLI command, a Celery task or a test calls the same rules without a request.
    if module.package == "server":
        return []
    return [
        f"{module.path}:{line} imports {name}"
        for line, name in imports(module)
        if _top(name) == "litestar"
    ]


def _docstrings(tree: ast.Module) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def sql_strings(module: Module) -> Iterator[tuple[int, str]]:
    """The strings that are SQL (upper-case keywords, the house style; docstrings excepted),
    f-strings by their literal parts, and the table named to asyncpg's COPY calls."""
    skip = _docstrings(module.tree)
    for node in ast.walk(module.tree):
        text: str | None = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = " ".join(
                v.value
                for v in node.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in COPY_CALLS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, f"COPY {node.args[0].value}"
            continue
        if text and SQL_KEYWORDS.search(text):
            yield getattr(node, "lineno", 0), text


def _owner_of(table: str) -> str | None:
    for owner, tables in OWNERS.items():
        if table in tables:
            return owner
    return None


def _owns(module: Module, owner: str) -> bool:
    if module.path in SQL_FIXTURES:
        return True
    if module.package != owner:
        return False
    if owner in OWNER_FILES:
        return module.path.startswith(OWNER_FILES[owner])
    return _is_repository(module.path)


def tables_only_in_their_owners_repository(module: Module) -> list[str]:
    # (the reason is beside OWNERS above)
    found = []
    names = {t for tables in OWNERS.values() for t in tables}
    pattern = re.compile(r"\b(" + "|".join(sorted(names, key=len, reverse=True)) + r")\b")
    for line, text in sql_strings(module):
        for table in sorted(set(pattern.findall(text))):
            owner = _owner_of(table)
            if owner is not None and not _owns(module, owner):
                found.append(f"{module.path}:{line} names {table} (owned by {owner}) in SQL")
    return found


Rule = Callable[[Module], list[str]]
RULES: dict[str, Rule] = {
    rule.__name__: rule
    for rule in (
        kernel_imports_no_project_package,
        no_domain_imports_server,
        points_imports_no_other_domain,
        integrations_import_only_kit,
        asyncpg_only_in_repositories,
        litestar_only_in_server,
        tables_only_in_their_owners_repository,
    )
}


@pytest.fixture(scope="module")
def modules() -> list[Module]:
    return tree_modules()


@pytest.mark.parametrize("rule", list(RULES))
def test_the_tree_keeps_the_rule(rule: str, modules: list[Module]) -> None:
    violations = [v for module in modules for v in RULES[rule](module)]
    assert not violations, "\n".join(violations)


# One small module breaking each rule, and one keeping it: the rule must tell them apart.
BREAKS: dict[str, tuple[str, str, str]] = {
    "kernel_imports_no_project_package": (
        "kit/bad.py",
        "def f():\n    from points import service\n",
        "import msgspec\nfrom kit.db import Tx\n",
    ),
    "no_domain_imports_server": (
        "behaviours/bad.py",
        "from server.settings import Settings\n",
        "from kit.settings import doc\n",
    ),
    "points_imports_no_other_domain": (
        "points/bad.py",
        "import importlib\nm = importlib.import_module('behaviours.service')\n",
        "from points.repository import insert\n",
    ),
    "integrations_import_only_kit": (
        "integrations/bad.py",
        "from residents.service import sign_in\n",
        "from kit.errors import InvalidInput\n",
    ),
    "asyncpg_only_in_repositories": (
        "behaviours/service.py",
        "import asyncpg.exceptions\n",
        "from kit.db import Tx\n",
    ),
    "litestar_only_in_server": (
        "residents/service.py",
        "from litestar import Request\n",
        "import msgspec\n",
    ),
    "tables_only_in_their_owners_repository": (
        "residents/repository.py",
        'Q = f"SELECT balance FROM ledger_accounts WHERE owner_id = {1}"\n',
        'Q = "SELECT id FROM residents WHERE id = $1"\n'
        "def f():\n    '''Reads residents FROM their table (a docstring, not SQL).'''\n",
    ),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_a_rule_reports_its_violation(rule: str) -> None:
    path, breaking, keeping = BREAKS[rule]
    assert RULES[rule](Module.parse(path, breaking)), f"{rule} missed a violation"
    assert not RULES[rule](Module.parse(path, keeping)), f"{rule} reported a clean module"


def test_the_table_rule_sees_copy_calls_and_other_owners() -> None:
    copy = (
        "async def f(conn):\n    await conn.copy_records_to_table('behaviour_events', records=[])\n"
    )
    assert tables_only_in_their_owners_repository(Module.parse("points/repository.py", copy))
    assert not tables_only_in_their_owners_repository(
        Module.parse("behaviours/repository.py", copy)
    )
    # A service of the owner is not its repository.
    sql = 'Q = "DELETE FROM point_lots"\n'
    assert tables_only_in_their_owners_repository(Module.parse("points/service.py", sql))


def _created_tables() -> set[str]:
    created = set()
    for file in sorted((ROOT / "server" / "migrations").glob("*.sql")):
        text = re.sub(r"--[^\n]*", "", file.read_text(encoding="utf-8"))
        created |= {
            m.lower()
            for m in re.findall(
                r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:\w+\.)?(\w+)", text, re.IGNORECASE
            )
        }
    return created


def test_every_table_has_one_owner() -> None:
    # A migration's new table needs its owner here, or the table rule could not see it.
    created = _created_tables()
    assert created, "no CREATE TABLE found in server/migrations"
    listed = [t for tables in OWNERS.values() for t in tables]
    assert len(listed) == len(set(listed)), "a table listed under two owners"
    assert created - set(listed) == set(), f"tables without an owner: {created - set(listed)}"
    # schema_migrations is created by server/migrate.py itself, not by a migration.
    assert set(listed) - created <= {"schema_migrations"}, set(listed) - created


def _class_codes(modules: list[Module]) -> set[str]:
    codes = set()
    for module in modules:
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if (
                        isinstance(stmt, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == "code" for t in stmt.targets)
                        and isinstance(stmt.value, ast.Constant)
                        and isinstance(stmt.value.value, str)
                    ):
                        codes.add(stmt.value.value)
    return codes


def unregistered_error_codes(module: Module, known: set[str]) -> list[str]:
    # The error catalogue (kit.errors.error_catalogue, the mobile contract's x-error-codes) is
    # derived from the error classes: an instance raised with its own literal `code="..."`
    # is seen only through kit.errors.INSTANCE_CODES (or HANDLER_CODES, for the codes the
    # root's handlers answer with and an instance may carry too, e.g. `validation_failed`).
    found = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if (
                    kw.arg == "code"
                    and isinstance(kw.value, ast.Constant)
                    and isinstance(kw.value.value, str)
                    and kw.value.value not in known
                ):
                    found.append(f"{module.path}:{node.lineno} raises code {kw.value.value!r}")
    return found


def test_every_error_code_is_catalogued(modules: list[Module]) -> None:
    known = _class_codes(modules) | set(INSTANCE_CODES) | set(HANDLER_CODES)
    violations = [v for module in modules for v in unregistered_error_codes(module, known)]
    assert not violations, "\n".join(violations)
    bad = Module.parse("points/bad.py", "raise NotFound('x', code='nowhere_listed')\n")
    assert unregistered_error_codes(bad, known)
