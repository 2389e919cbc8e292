import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from models.io import save_model
from models.tracking import log_earthgpt_model


def _png_b64(seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 255, size=(40, 50, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def logged_model(model, tokenizer, tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("test", artifact_location=str(tmp_path / "art")))
    save_model(model, tokenizer, tmp_path / "saved")
    with mlflow.start_run():
        info = log_earthgpt_model(tmp_path / "saved", registered_model_name="earthgpt-test")
    yield info, tmp_path
    mlflow.set_tracking_uri(None)


def test_pyfunc_round_trip_answers_like_the_model(logged_model, model, tokenizer):
    from models.image_transform import read_image
    from models.inference import GenerationOptions, answer_questions

    info, _ = logged_model
    assert info.registered_model_version == 1
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    frame = pd.DataFrame({"image": [_png_b64(0), _png_b64(1)], "question": ["How many ships?", "Is it urban?"]})
    answers = loaded.predict(frame, params={"max_new_tokens": 6})
    images = [read_image(base64.b64decode(b)) for b in frame["image"]]
    expected = answer_questions(model, tokenizer, images, list(frame["question"]), GenerationOptions(max_new_tokens=6))
    assert list(answers) == expected


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_requests(logged_model):
    info, tmp_path = logged_model
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # the server execs `uvicorn` from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", info.model_uri, "--env-manager",
         "local", "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        body = json.dumps({"dataframe_records": [{"image": _png_b64(0), "question": "How many ships?"}],
                           "params": {"max_new_tokens": 4}}).encode()
        deadline = time.time() + 120
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    payload = json.loads(response.read())
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(1)
        assert isinstance(payload["predictions"], list) and len(payload["predictions"]) == 1
    finally:
        server.terminate()
        server.wait(timeout=30)
