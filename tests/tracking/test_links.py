"""Links into the MLflow UI (colorize/tracking/links.py) open "Model training" on the runs table."""

from colorize.tracking.links import page, ui_link


def test_every_page_carries_the_model_training_workflow():
    assert page("3") == "#/experiments/3?workflowType=machine_learning"
    assert page("3", "abc") == "#/experiments/3/runs/abc?workflowType=machine_learning"


def test_a_server_link_is_direct_and_a_file_store_says_how_to_start_the_ui():
    assert ui_link("http://mlflow:5000/", "3", "abc") == (
        "http://mlflow:5000/#/experiments/3/runs/abc?workflowType=machine_learning")
    assert ui_link("sqlite:///mlflow.db", "3") == (
        "mlflow ui --port 5000, then open http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning")
    expected = "mlflow ui --backend-store-uri sqlite:////tmp/x.db --port 5000"
    assert ui_link("sqlite:////tmp/x.db", "3").startswith(expected)
