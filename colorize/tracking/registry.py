"""MLflow's Model Registry: ship a run's ``best.pt`` as a version of a registered model, find it again.

A version's source is ``runs:/<run id>/best.pt``: the checkpoint stays the run's artifact (one copy,
rebuilt by its own stored config), and the registry adds what a team ships by: a name, numbered
versions, aliases (``champion``), tags and a page in the MLflow UI. ``colorize-register`` writes
versions; ``colorize-predict models:/NAME@ALIAS`` (or ``/VERSION``, ``/latest``) reads them.
MLflow's own ``models:/`` download expects an MLflow Model folder, which a checkpoint is not, so a
version is resolved here to its run and artifact and downloaded as a run's artifact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from colorize.errors import ColorizeError, invalid
from colorize.names import BEST

if TYPE_CHECKING:  # (MLflow is imported with the store: the URI and name checks answer without it)
    from colorize.tracking.store import Tracker

NAME = re.compile(r"^[\w.\-]+$")  # MLflow forbids / and :; @ would split a models:/NAME@ALIAS URI
ALIAS = re.compile(r"^[\w\-]+$")  # MLflow's rule; it also reserves `latest` and v<digits>
RESERVED_ALIAS = re.compile(r"^(latest|[vV]\d+)$", re.IGNORECASE)
MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+|latest)|@(?P<alias>[^/@]+))$")
RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)(?:/(?P<artifact>.*))?$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``models:/`` URI: a registered model and one version of it, by number, alias or latest."""
    name: str
    version: Optional[str] = None  # "3" or "latest"
    alias: Optional[str] = None

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class RunArtifact:
    """A parsed ``runs:/<run id>[/<artifact>]`` URI (the artifact is best.pt when the URI names none)."""
    run_id: str
    artifact: str = BEST


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str
    created: bool  # False: the run was registered before, and that version was kept


def parse_model_uri(uri: str) -> ModelRef:
    """``models:/NAME/VERSION``, ``models:/NAME/latest`` or ``models:/NAME@ALIAS``; ColorizeError otherwise."""
    match = MODEL_URI.match(uri)
    if not match:
        raise invalid("model", uri, "a registered model is models:/NAME/VERSION, models:/NAME/latest "
                                    "or models:/NAME@ALIAS")
    return ModelRef(match["name"], match["version"], match["alias"])


def parse_run_uri(uri: str) -> RunArtifact:
    """``runs:/<run id>`` or ``runs:/<run id>/<artifact>``; ColorizeError otherwise."""
    match = RUN_URI.match(uri)
    if not match:
        raise invalid("model", uri, "a run's artifact is runs:/<run id> or runs:/<run id>/<artifact>")
    return RunArtifact(match["run_id"], match["artifact"] or BEST)


def ship_command(run_id: str) -> str:
    """How to ship a run (the report's and colorize-study's last word on their best run)."""
    return f"colorize-register {run_id} <name> --alias champion"


def check_names(name: str, aliases: Sequence[str]) -> None:
    """One line for a model name or alias the registry would refuse, before anything is written."""
    if not NAME.match(name):
        raise invalid("name", name, "letters, digits, '_', '-' and '.'")
    for alias in aliases:
        if not ALIAS.match(alias) or RESERVED_ALIAS.match(alias):
            raise invalid("--alias", alias, "letters, digits, '_' and '-', other than 'latest' and "
                                            "v<number> (MLflow reserves those)")


def register(tracker: Tracker, run_id: str, name: str, aliases: Sequence[str] = (),
             tags: Optional[Mapping[str, Any]] = None, description: str = "") -> Registered:
    """Register the run's best.pt as a version of `name` (created if new; the version this run already
    has is kept), then point each alias at it."""
    check_names(name, aliases)
    client, source = tracker.client, f"runs:/{run_id}/{BEST}"
    try:
        if _find(tracker, name) is None:
            client.create_registered_model(name)
        existing = [v for v in client.search_model_versions(f"name = '{name}'") if v.source == source]
        created = not existing
        version = (existing[0] if existing else client.create_model_version(
            name, source, run_id=run_id, tags={k: str(v) for k, v in (tags or {}).items()},
            description=description)).version
        for alias in aliases:
            client.set_registered_model_alias(name, alias, version)
    except Exception as exc:  # MlflowException, or the store's own error: one line, no traceback
        raise ColorizeError(f"registering run {run_id} as {name!r} in {tracker.uri!r} failed: "
                            f"{str(exc).strip().splitlines()[0]}") from None
    return Registered(name, str(version), run_id, created)


def aliases_of(tracker: Tracker, name: str) -> dict[str, str]:
    """A registered model's aliases and the version each points at (none for a model not registered)."""
    model = _find(tracker, name)
    return {alias: str(v) for alias, v in (model.aliases or {}).items()} if model else {}


def resolve(tracker: Tracker, ref: ModelRef) -> RunArtifact:
    """The run and artifact of the version `ref` names; one line when it does not exist."""
    model = _find(tracker, ref.name)
    if model is None:
        known = ", ".join(sorted(m.name for m in tracker.client.search_registered_models())) or "none"
        raise ColorizeError(f"MLflow store {tracker.uri!r} has no registered model {ref.name!r} "
                            f"(registered: {known})")
    # (a version number is an int from a database store, a str from a server: compared as str)
    versions = sorted(tracker.client.search_model_versions(f"name = '{ref.name}'"), key=lambda v: int(v.version))
    numbers = ", ".join(str(v.version) for v in versions) or "none"
    if ref.alias is not None:
        aliases = dict(model.aliases or {})
        if ref.alias not in aliases:
            known = ", ".join(f"{a} -> {v}" for a, v in sorted(aliases.items())) or "none"
            raise ColorizeError(f"registered model {ref.name!r} has no alias {ref.alias!r} (its aliases: {known})")
        wanted = str(aliases[ref.alias])
    else:
        wanted = str(versions[-1].version) if ref.version == "latest" and versions else str(ref.version)
    found = next((v for v in versions if str(v.version) == wanted), None)
    if found is None:
        raise ColorizeError(f"registered model {ref.name!r} has no version {ref.version!r} (its versions: {numbers})")
    source = RUN_URI.match(found.source or "")
    if not (source and source["artifact"]):
        raise ColorizeError(f"{ref} has the source {found.source!r}, not a run's checkpoint (runs:/<run id>/"
                            "best.pt): register models with colorize-register")
    return RunArtifact(source["run_id"], source["artifact"])


def _find(tracker: Tracker, name: str) -> Any:
    """The registered model `name`, aliases included, or None (a name MLflow would refuse is none)."""
    if not NAME.match(name) or not tracker.client.search_registered_models(f"name = '{name}'"):
        return None
    return tracker.client.get_registered_model(name)  # (a search's results may leave the aliases out)
