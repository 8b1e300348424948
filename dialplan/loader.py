"""Load the configuration directory into a validated :class:`~dialplan.schema.Config`.

Theory of operation: every file is parsed with ruamel.yaml's round-trip loader,
which remembers the line and column of every key and list item.  ``${VAR}``
references in string values are then replaced from the environment, and the
documents are combined (``centrala.yaml`` plus ``tenants: [one per file]``) and
validated in one pass, so pydantic reports every field error at once.  Each
error's ``loc`` is routed back to its file (``tenants[i]`` is the i-th tenant
file) and walked down the YAML tree to the line of the offending key or item.
Nothing is raised until every file has been read: :class:`ConfigError` carries
all the :class:`ConfigIssue`\\ s.

Licences: ``licences/*.pub`` are the trusted authority keys (Ed25519 PEM) and
``licences/*.lic`` the signed licence files (:mod:`switch.licence.document`).
A file that is malformed, or not signed by a trusted key, is an issue and none
of it counts.  Once the configuration is valid it is checked against the
licences (:meth:`switch.licence.policy.LicencePolicy.problems`): users enabling
more user-bound features than licensed, mixed voicemail models and a standby
shortfall are issues too, so a running switch keeps its last good
configuration.  A licence for a tenant that is not configured is only logged
as a warning: licences may be installed before the tenant file, and removing
a tenant must not make the configuration unloadable.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from dialplan.base import REFERENCE_ERROR, Loc, Problem, format_loc
from dialplan.schema import Config, Tenant, domain_problems
from switch.licence.document import (
    Licence,
    LicenceError,
    TrustedKeys,
    load_public_key,
    trusted_keys,
    verify,
)
from switch.licence.policy import LicenceProblem

__all__ = [
    "LICENCES_DIR",
    "MAIN_FILE",
    "TENANTS_DIR",
    "ConfigError",
    "ConfigIssue",
    "format_issues",
    "load_config",
]

log = logging.getLogger(__name__)

MAIN_FILE = "centrala.yaml"
TENANTS_DIR = "tenants"
LICENCES_DIR = "licences"
_YAML_SUFFIXES = (".yaml", ".yml")

Position = tuple[int, int]  # 0-based (line, column), as ruamel stores them


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in one file. ``line``/``column`` are 1-based; 0 means the whole file."""

    file: Path
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else str(self.file)
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration is unusable; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__(format_issues(self.issues))


def format_issues(issues: Iterable[ConfigIssue]) -> str:
    """One ``file:line:column: message`` line per issue, ordered by file and line."""
    ordered = sorted(issues, key=lambda i: (str(i.file), i.line, i.column))
    return "\n".join(str(issue) for issue in ordered)


@dataclass(frozen=True, slots=True)
class _Document:
    """A parsed YAML file; ``root`` keeps ruamel's positions for every node."""

    file: Path
    root: CommentedMap

    def issue(self, pos: Position | None, message: str) -> ConfigIssue:
        line, column = pos if pos is not None else (-1, -1)
        return ConfigIssue(self.file, line + 1, column + 1, message)


def load_config(config_dir: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read ``config_dir/centrala.yaml`` and ``config_dir/tenants/*.yaml``.

    ``${VAR}`` and ``${VAR:-default}`` in string values come from ``env``
    (default: ``os.environ``); ``$$`` is a literal ``$``.  Relative paths are
    resolved against ``config_dir``; ``state_dir`` defaults to ``var/`` beside it.
    Verified ``licences/*.lic`` are attached (``config.licences``) and enforced.
    Raises :class:`ConfigError` listing every problem in every file.
    """
    env = os.environ if env is None else env
    issues: list[ConfigIssue] = []
    main = _read(config_dir / MAIN_FILE, issues)
    parsed = [_read(path, issues) for path in _tenant_files(config_dir)]
    tenants = [doc for doc in parsed if doc is not None]
    for doc in (main, *tenants):
        if doc is not None:
            issues += _substitute(doc, env)
    valid = _validate_tenants(tenants, issues)
    config = _validate_config(main, valid, issues)
    installed = _load_licences(config_dir / LICENCES_DIR, issues)
    if config is not None and main is not None and not issues:
        config = config.with_licences(licence for _, licence in installed)
        issues += _licence_issues(config, main, valid, installed)
    if config is not None and not issues:
        issues += _moh_issues(valid, config_dir)
    if issues or config is None:
        raise ConfigError(issues)
    log.debug("loaded %s: %d tenant(s)", config_dir, len(config.tenants))
    return _resolve_paths(config, config_dir)


# --------------------------------------------------------------------------- reading


def _tenant_files(config_dir: Path) -> list[Path]:
    """``tenants/*.yaml`` and ``*.yml``, by name; dotfiles are ignored."""
    folder = config_dir / TENANTS_DIR
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix in _YAML_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def _read(path: Path, issues: list[ConfigIssue]) -> _Document | None:
    """Parse one file; a problem becomes an issue and ``None``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        issues.append(ConfigIssue(path, 0, 0, "file not found"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        issues.append(ConfigIssue(path, 0, 0, f"cannot read: {exc}"))
        return None
    try:
        root = YAML(typ="rt").load(text)
    except YAMLError as exc:
        issues.append(_yaml_issue(path, text, exc))
        return None
    if root is None:
        return _Document(path, CommentedMap())
    if not isinstance(root, CommentedMap):
        issues.append(ConfigIssue(path, 1, 1, "expected a mapping of settings (key: value)"))
        return None
    return _Document(path, root)


def _yaml_issue(path: Path, text: str, exc: YAMLError) -> ConfigIssue:
    """Turn a ruamel exception into an issue, never echoing values (they may be secrets)."""
    if isinstance(exc, DuplicateKeyError) and exc.problem_mark is not None:
        found = re.match(r'found duplicate key "(.*?)" with value', exc.problem or "")
        key = found.group(1) if found else "?"
        mark = exc.problem_mark
        return ConfigIssue(path, mark.line + 1, mark.column + 1, f"duplicate key {key!r}")
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        context = f" ({exc.context})" if exc.context else ""
        message = f"YAML syntax error: {exc.problem}{context}"
        return (
            ConfigIssue(path, mark.line + 1, mark.column + 1, message)
            if mark
            else ConfigIssue(path, 0, 0, message)
        )
    if isinstance(exc, ReaderError):
        line = text.count("\n", 0, exc.position)
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1)
        return ConfigIssue(
            path, line + 1, column + 1, f"YAML error: unacceptable character {chr(exc.character)!r}"
        )
    return ConfigIssue(path, 0, 0, f"YAML error: {type(exc).__name__}")


# --------------------------------------------------------------------------- ${VAR}

_REFERENCE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)(?P<close>\}?)")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def _substitute(doc: _Document, env: Mapping[str, str]) -> list[ConfigIssue]:
    """Expand ``${VAR}`` in every string value of ``doc`` in place."""
    issues: list[ConfigIssue] = []
    for container, loc, pos in _string_slots(doc.root, ()):
        text = container[loc[-1]]
        if "$" not in text:
            continue
        expanded, problems = _expand(text, env)
        container[loc[-1]] = expanded
        issues += [doc.issue(pos, f"{format_loc(loc)}: {problem}") for problem in problems]
    return issues


def _string_slots(node: Any, loc: Loc) -> Iterator[tuple[Any, Loc, Position | None]]:
    """Every (container, loc, position) holding a string value, depth first."""
    if isinstance(node, CommentedMap):
        slots: Iterable[tuple[Any, Position | None]] = ((k, _lc(node, "value", k)) for k in node)
    elif isinstance(node, CommentedSeq):
        slots = ((i, _lc(node, "item", i)) for i in range(len(node)))
    else:
        return
    for key, pos in slots:
        if isinstance(node[key], str):
            yield node, (*loc, key), pos
        else:
            yield from _string_slots(node[key], (*loc, key))


def _expand(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """``text`` with references replaced, and a message per bad reference."""
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        body = _BODY.fullmatch(match.group("body"))
        if not match.group("close") or body is None:
            problems.append(
                f"malformed variable reference {match.group(0)!r}; "
                "write ${NAME} or ${NAME:-default} ($$ for a literal $)"
            )
            return match.group(0)
        value = env.get(body.group("name"), body.group("default"))
        if value is None:
            problems.append(f"environment variable {body.group('name')} is not set")
            return ""
        return value

    return _REFERENCE.sub(replace, text), problems


# --------------------------------------------------------------------------- validation

Route = Callable[[Loc], tuple[_Document, Loc]]
"""Maps a pydantic ``loc`` to the document holding it and the ``loc`` inside that document."""

_M = TypeVar("_M", bound=BaseModel)


def _validate_tenants(
    docs: list[_Document], issues: list[ConfigIssue]
) -> list[tuple[_Document, Tenant]]:
    """Validate each tenant file on its own, then check domains across the valid ones."""
    valid: list[tuple[_Document, Tenant]] = []
    for doc in docs:
        tenant = _try(Tenant, doc.root, _in_file(doc), issues)
        if tenant is not None:
            valid.append((doc, tenant))
    route = _in_config(None, [doc for doc, _ in valid])
    for loc, message in domain_problems([tenant for _, tenant in valid]):
        issues.append(_issue_at(loc, message, REFERENCE_ERROR, route))
    return valid


def _validate_config(
    main: _Document | None, tenants: list[tuple[_Document, Tenant]], issues: list[ConfigIssue]
) -> Config | None:
    """Validate the global settings, then assemble the :class:`Config`."""
    if main is None:  # missing or unparsable, which is already reported
        return None
    settings: dict[str, Any] = dict(main.root)
    if "tenants" in settings:
        issues.append(
            main.issue(
                _lc(main.root, "key", "tenants"),
                f"tenants go in {TENANTS_DIR}/*.yaml, one file per tenant",
            )
        )
    route = _in_config(main, [doc for doc, _ in tenants])
    if _try(Config, {**settings, "tenants": []}, route, issues) is None or issues:
        return None
    return _try(Config, {**settings, "tenants": [t for _, t in tenants]}, route, issues)


def _try(model: type[_M], data: Any, route: Route, issues: list[ConfigIssue]) -> _M | None:
    """``model.model_validate(data)``, or ``None`` with every error added to ``issues``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            issues += _error_issues(error, model, route)
        return None


def _in_file(doc: _Document) -> Route:
    """Route for a model validated straight from ``doc``."""
    return lambda loc: (doc, loc)


def _in_config(main: _Document | None, tenants: list[_Document]) -> Route:
    """Route for :class:`Config`: ``tenants[i]`` is the i-th tenant file, the rest ``main``."""

    def route(loc: Loc) -> tuple[_Document, Loc]:
        if len(loc) >= 2 and loc[0] == "tenants" and isinstance(loc[1], int):
            return tenants[loc[1]], loc[2:]
        assert main is not None, f"settings error {loc} without centrala.yaml"
        return main, loc

    return route


def _error_issues(error: ErrorDetails, model: type[BaseModel], route: Route) -> list[ConfigIssue]:
    """Issues for one pydantic error; a reference error carries several problems."""
    loc: Loc = tuple(error["loc"])
    if error["type"] == REFERENCE_ERROR:
        problems: tuple[Problem, ...] = error["ctx"]["problems"]
        return [_issue_at(loc + at, message, REFERENCE_ERROR, route) for at, message in problems]
    return [_issue_at(loc, _message(error, model, loc), error["type"], route)]


def _issue_at(loc: Loc, message: str, kind: str, route: Route) -> ConfigIssue:
    """The issue for ``loc``, at the line of the key or item it names."""
    doc, rel = route(loc)
    unknown_key = kind == "extra_forbidden"
    path = format_loc(rel[:-1] if unknown_key else rel)
    pos = _position(doc.root, rel, at_key=unknown_key)
    return doc.issue(pos or (0, 0), f"{path}: {message}" if path else message)


def _message(error: ErrorDetails, model: type[BaseModel], loc: Loc) -> str:
    """Pydantic's message, reworded where an operator would be puzzled."""
    if error["type"] == "extra_forbidden":
        key = str(loc[-1])
        close = difflib.get_close_matches(key, _fields_at(model, loc[:-1]), n=1)
        return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if error["type"] == "missing":
        return "required setting missing"
    return error["msg"].removeprefix("Value error, ")


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Names of the settings allowed in the mapping at ``loc`` (for suggestions)."""
    kind: Any = model
    for step in loc:
        if isinstance(step, int):
            kind = next(iter(get_args(kind)), None)
        elif isinstance(kind, type) and issubclass(kind, BaseModel) and step in kind.model_fields:
            kind = kind.model_fields[step].annotation
        else:
            return []
        kind = _without_none(kind)
    is_model = isinstance(kind, type) and issubclass(kind, BaseModel)
    return list(kind.model_fields) if is_model else []


def _without_none(kind: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    args = get_args(kind)
    if type(None) not in args:
        return kind
    return next(arg for arg in args if arg is not type(None))


# --------------------------------------------------------------------------- positions


def _position(root: CommentedMap, loc: Loc, *, at_key: bool) -> Position | None:
    """Where ``loc`` is written, or the nearest enclosing key/item that is."""
    node: Any = root
    pos: Position | None = None
    for depth, step in enumerate(loc):
        last = depth == len(loc) - 1
        if isinstance(node, CommentedMap) and step in node:
            child = node[step]
            nested = isinstance(child, (CommentedMap, CommentedSeq))
            use_key = not last or at_key or nested
            pos = _lc(node, "key" if use_key else "value", step) or pos
        elif isinstance(node, CommentedSeq) and isinstance(step, int) and 0 <= step < len(node):
            child = node[step]
            pos = _lc(node, "item", step) or pos
        else:
            break
        node = child
    return pos


def _lc(node: CommentedMap | CommentedSeq, what: str, key: Any) -> Position | None:
    """ruamel's recorded position of a key, value or item (absent for merged keys)."""
    try:
        line, column = getattr(node.lc, what)(key)
    except (KeyError, IndexError, TypeError):
        return None
    return int(line), int(column)


# --------------------------------------------------------------------------- licences

Installed = tuple[Path, Licence]
"""A verified licence and the file it came from."""


def _visible_files(folder: Path, suffix: str) -> list[Path]:
    """``folder/*suffix`` by name, dotfiles ignored; none if there is no folder."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix == suffix and not p.name.startswith(".") and p.is_file()
    )


def _load_licences(folder: Path, issues: list[ConfigIssue]) -> list[Installed]:
    """Every ``*.lic`` signed by a key in ``*.pub``; each refused file is an issue."""
    for path in _visible_files(folder, ".key"):
        log.warning("%s: a private key does not belong in the configuration directory", path)
    keys = _trusted_keys(folder, issues)
    installed: list[Installed] = []
    first: dict[str, Path] = {}
    for path in _visible_files(folder, ".lic"):
        licence = _read_licence(path, keys, issues)
        if licence is None:
            continue
        if licence.serial in first:
            message = (
                f"licence serial {licence.serial!r} is already installed from "
                f"{first[licence.serial].name}; a licence counts once, remove the copy"
            )
            issues.append(ConfigIssue(path, 0, 0, message))
            continue
        first[licence.serial] = path
        installed.append((path, licence))
    return installed


def _trusted_keys(folder: Path, issues: list[ConfigIssue]) -> TrustedKeys:
    """The authority public keys in ``*.pub``; an unusable file is an issue."""
    keys = []
    for path in _visible_files(folder, ".pub"):
        try:
            keys.append(load_public_key(path.read_bytes()))
        except OSError as exc:
            issues.append(ConfigIssue(path, 0, 0, f"cannot read: {exc}"))
        except ValueError as exc:
            issues.append(ConfigIssue(path, 0, 0, f"licence authority key: {exc}"))
    return trusted_keys(keys)


def _read_licence(path: Path, keys: TrustedKeys, issues: list[ConfigIssue]) -> Licence | None:
    """The verified licence in ``path``, or ``None`` with the reason added to ``issues``."""
    try:
        return verify(path.read_text(encoding="utf-8"), keys)
    except (OSError, UnicodeDecodeError) as exc:
        issues.append(ConfigIssue(path, 0, 0, f"cannot read: {exc}"))
    except LicenceError as exc:
        column = 1 if exc.line else 0
        issues.append(ConfigIssue(path, exc.line, column, f"licence refused: {exc.message}"))
    return None


def _licence_issues(
    config: Config,
    main: _Document,
    tenants: list[tuple[_Document, Tenant]],
    installed: list[Installed],
) -> list[ConfigIssue]:
    """What the valid configuration enables beyond its licences."""
    docs = {tenant.domain: doc for doc, tenant in tenants}
    for path, licence in installed:
        if licence.tenant not in docs:
            log.warning(
                "%s: licence %s is for tenant %s, which is not configured; it is ignored",
                path,
                licence.serial,
                licence.tenant,
            )
    files = {licence.serial: path for path, licence in installed}
    problems = config.licences.problems(config.tenants, standby=config.standby)
    return [_problem_issue(p, main, docs, files) for p in problems]


def _problem_issue(
    problem: LicenceProblem,
    main: _Document,
    docs: Mapping[str, _Document],
    files: Mapping[str, Path],
) -> ConfigIssue:
    """Locate one licence problem: the user's flag, the licence file or ``standby``."""
    if problem.kind == "standby":
        return main.issue(_lc(main.root, "key", "standby"), problem.message)
    if problem.kind == "mixed_voicemail":
        path = max(files[serial] for serial in problem.serials)
        return ConfigIssue(path, 0, 0, problem.message)
    doc = docs[problem.tenant]
    return doc.issue(_user_position(doc, problem), problem.message)


def _user_position(doc: _Document, problem: LicenceProblem) -> Position | None:
    """Where extension ``problem.first_over`` sets ``problem.flag`` (or the extension);
    where the tenant sets it, when the extension does not (a tenant's ``recording``)."""
    extensions = doc.root.get("extensions")
    if not isinstance(extensions, CommentedSeq) or problem.flag is None:
        return None
    for i, entry in enumerate(extensions):
        if isinstance(entry, CommentedMap) and str(entry.get("number")) == problem.first_over:
            if problem.flag not in entry and problem.flag in doc.root:
                return _position(doc.root, (problem.flag,), at_key=True)
            return _position(doc.root, ("extensions", i, problem.flag), at_key=True)
    return None


# --------------------------------------------------------------------------- paths


def _resolve_paths(config: Config, config_dir: Path) -> Config:
    """Make ``state_dir`` and TLS files absolute, relative to the config directory."""
    base = config_dir.expanduser().resolve()

    def absolute(path: Path | None) -> Path | None:
        return None if path is None else (base / path.expanduser()).resolve()

    state_dir = absolute(config.state_dir) or base.parent / "var"
    tls = config.tls.model_copy(
        update={"cert": absolute(config.tls.cert), "key": absolute(config.tls.key)}
    )
    tenants = [t.model_copy(update={"moh": absolute(t.moh)}) if t.moh else t
               for t in config.tenants]
    resolved = config.model_copy(update={"state_dir": state_dir, "tls": tls, "tenants": tenants})
    resolved.model_post_init(None)  # the by-domain index names the copies
    return resolved


# --------------------------------------------------------------------------- music on hold


def _moh_issues(tenants: list[tuple[_Document, Tenant]], config_dir: Path) -> list[ConfigIssue]:
    """Each tenant's ``moh`` file decoded now (once per file version: the library
    caches it, converted to every codec rate); one that will not play is an issue
    at its ``moh:`` line with the reason.  Decoding takes time: a running switch
    loads its configuration in a worker thread."""
    from switch.b2bua.media_features import MOH_LIBRARY, AudioFileError

    base = config_dir.expanduser().resolve()
    issues: list[ConfigIssue] = []
    for doc, tenant in tenants:
        if tenant.moh is None:
            continue
        path = (base / tenant.moh.expanduser()).resolve()
        try:
            MOH_LIBRARY.get(path)
        except AudioFileError as exc:
            pos = _position(doc.root, ("moh",), at_key=False)
            issues.append(doc.issue(pos or (0, 0), f"moh: {tenant.moh}: {exc}"))
    MOH_LIBRARY.warm_default()
    return issues
