"""MLflow's Model Registry through colorize: versions, aliases and models:/ URIs, in a real sqlite store."""

import pytest
from mlflow.tracking import MlflowClient

from colorize.errors import ColorizeError
from colorize.tracking.registry import (ModelRef, RunArtifact, aliases_of, check_names, parse_model_uri, parse_run_uri,
                                        register, resolve)
from colorize.tracking.store import Tracker


@pytest.mark.parametrize("uri, ref", [
    ("models:/faces/3", ModelRef("faces", version="3")),
    ("models:/faces/latest", ModelRef("faces", version="latest")),
    ("models:/faces.v2-b@champion", ModelRef("faces.v2-b", alias="champion")),
])
def test_model_uris_name_a_version_by_number_latest_or_alias(uri, ref):
    assert parse_model_uri(uri) == ref and str(ref) == uri


@pytest.mark.parametrize("uri", ["models:/faces", "models:/faces/", "models:/faces/two", "models:/a/b/1",
                                 "models:/faces@", "models:/@champion", "runs:/abc/best.pt"])
def test_a_malformed_model_uri_is_one_line_naming_the_forms(uri):
    with pytest.raises(ColorizeError, match="is invalid: a registered model is models:/NAME/VERSION"):
        parse_model_uri(uri)


@pytest.mark.parametrize("uri, artifact", [
    ("runs:/0123abcd", RunArtifact("0123abcd", "best.pt")),
    ("runs:/0123abcd/", RunArtifact("0123abcd", "best.pt")),
    ("runs:/0123abcd/last.pt", RunArtifact("0123abcd", "last.pt")),
    ("runs:/0123abcd/samples/epoch_1.png", RunArtifact("0123abcd", "samples/epoch_1.png")),
])
def test_run_uris_name_a_run_and_an_artifact_best_pt_unless_said(uri, artifact):
    assert parse_run_uri(uri) == artifact


@pytest.mark.parametrize("uri", ["runs:/", "runs://best.pt", "models:/faces/1", "0123abcd"])
def test_a_malformed_run_uri_is_one_line_naming_the_forms(uri):
    with pytest.raises(ColorizeError, match="is invalid: a run's artifact is runs:/<run id>"):
        parse_run_uri(uri)


@pytest.mark.parametrize("name, aliases, bad", [
    ("fa/ces", [], "name='fa/ces'"), ("fa:ces", [], "name='fa:ces'"), ("fa@ces", [], "name='fa@ces'"),
    ("", [], "name=''"), ("faces", ["latest"], "--alias='latest'"), ("faces", ["V7"], "--alias='V7'"),
    ("faces", ["champion", "two words"], "--alias='two words'"),
])
def test_names_and_aliases_the_registry_refuses_are_one_line(name, aliases, bad):
    with pytest.raises(ColorizeError, match=f"^{bad} is invalid"):
        check_names(name, aliases)


def test_good_names_and_aliases_pass():
    check_names("faces_unet-2.1", ["champion", "challenger-2", "v2a"])


@pytest.fixture
def store(tmp_path):
    """A real sqlite store with two finished runs, each with a best.pt artifact."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("registry", artifact_location=(tmp_path / "artifacts").as_uri())
    run_ids = []
    for i in range(2):
        run = client.create_run(experiment)
        (tmp_path / "best.pt").write_bytes(bytes([i]))
        client.log_artifact(run.info.run_id, str(tmp_path / "best.pt"))
        client.set_terminated(run.info.run_id)
        run_ids.append(run.info.run_id)
    return Tracker(uri, None, create=False), run_ids


def test_versions_count_up_a_run_keeps_its_version_and_aliases_move(store):
    tracker, (a, b) = store
    first = register(tracker, a, "faces", ["champion"], {"best_val_margin12_accuracy": 0.75}, "run a")
    assert (first.version, first.created) == ("1", True) and aliases_of(tracker, "faces") == {"champion": "1"}
    again = register(tracker, a, "faces", ["champion"])
    assert (again.version, again.created) == ("1", False)  # no second version of the same checkpoint
    second = register(tracker, b, "faces", ["champion", "challenger"])
    assert (second.version, second.created) == ("2", True)
    assert aliases_of(tracker, "faces") == {"champion": "2", "challenger": "2"}
    version = tracker.client.get_model_version("faces", "1")
    assert version.tags == {"best_val_margin12_accuracy": "0.75"} and version.description == "run a"
    assert version.run_id == a and version.source == f"runs:/{a}/best.pt"


def test_models_uris_resolve_to_the_run_and_its_checkpoint(store):
    tracker, (a, b) = store
    register(tracker, a, "faces", ["champion"])
    register(tracker, b, "faces")
    assert resolve(tracker, parse_model_uri("models:/faces@champion")) == RunArtifact(a, "best.pt")
    assert resolve(tracker, parse_model_uri("models:/faces/2")) == RunArtifact(b, "best.pt")
    assert resolve(tracker, parse_model_uri("models:/faces/latest")) == RunArtifact(b, "best.pt")


@pytest.mark.parametrize("uri, line", [
    ("models:/faces@prod", "registered model 'faces' has no alias 'prod' (its aliases: champion -> 1)"),
    ("models:/faces/5", "registered model 'faces' has no version '5' (its versions: 1)"),
    ("models:/other/1", "has no registered model 'other' (registered: faces)"),
])
def test_a_missing_model_version_or_alias_is_one_line_naming_what_exists(store, uri, line):
    tracker, (a, _) = store
    register(tracker, a, "faces", ["champion"])
    with pytest.raises(ColorizeError) as err:
        resolve(tracker, parse_model_uri(uri))
    assert line in str(err.value) and "\n" not in str(err.value)


def test_a_version_another_tool_registered_is_refused_in_one_line(store):
    tracker, (a, _) = store
    tracker.client.create_registered_model("logged")
    tracker.client.create_model_version("logged", "s3://bucket/model", run_id=a)
    with pytest.raises(ColorizeError, match="models:/logged/1 has the source 's3://bucket/model', not a run's"):
        resolve(tracker, parse_model_uri("models:/logged/1"))


def test_no_model_registered_means_no_aliases(store):
    tracker, _ = store
    assert aliases_of(tracker, "faces") == {}


def test_a_store_that_cannot_list_a_runs_artifacts_is_one_line(store, tmp_path):
    tracker, (a, _) = store
    assert tracker.artifact_paths(a) == {"best.pt"}
    lost = tracker.client.create_experiment("lost", artifact_location="nosuch://bucket/artifacts")
    run_id = tracker.client.create_run(lost).info.run_id
    with pytest.raises(ColorizeError) as err:
        tracker.artifact_paths(run_id)
    assert f"cannot list the artifacts of run '{run_id}'" in str(err.value) and "\n" not in str(err.value)
