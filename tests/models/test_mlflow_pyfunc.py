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


SERVE = """
import json, sys
import mlflow, pandas as pd
loaded = mlflow.pyfunc.load_model(sys.argv[1])
loaded.predict(pd.DataFrame({"image": [sys.argv[2]], "question": ["How many ships?"]}), params={"max_new_tokens": 2})
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _closure(requirements: list[str]) -> set[str]:
    """The distributions `requirements` install: them and, recursively, what they require (no extras)."""
    import re
    from importlib.metadata import PackageNotFoundError, requires

    seen, todo = set(), [r.split("==")[0] for r in requirements]
    while todo:
        name = re.split(r"[ ;<>=!~\[(]", todo.pop())[0].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += [r for r in requires(name) or [] if "extra ==" not in r]
        except PackageNotFoundError:
            continue
    return seen


def test_the_logged_requirements_cover_every_module_serving_loads(logged_model):
    """Loading the logged model in a fresh process and answering: every third-party module it imports belongs
    to a distribution the logged (pinned) requirements install."""
    from importlib.metadata import packages_distributions

    info, tmp_path = logged_model
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "served"))
    requirements = (Path(local) / "requirements.txt").read_text().split()
    assert "torch==2.13.0" in requirements and any(r.startswith("transformers==") for r in requirements)
    proc = subprocess.run([sys.executable, "-c", SERVE, local, _png_b64(0)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": ""}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    owners = packages_distributions()
    needed = {d.lower().replace("_", "-") for name in loaded for d in owners.get(name, [])}
    needed -= {"earthgpt-pipeline"}  # our own code travels with the model (code_paths)
    needed -= {"psutil", "pytz"}  # imported by mlflow and pandas when present; optional to both
    assert needed <= _closure(requirements), sorted(needed - _closure(requirements))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("manager", ["local", "virtualenv"])
def test_make_serve_answers_requests_without_an_activated_environment(logged_model, manager):
    """`make serve MODEL=... PORT=...` as the README writes it, with the environment's bin folder not on PATH;
    `virtualenv` builds a new environment from the model's pinned requirements alone (minutes the first time)."""
    info, tmp_path = logged_model
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != bin_dir)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "PATH": path}
    server = subprocess.Popen(["make", "--no-print-directory", "serve", f"MODEL={info.model_uri}", f"PORT={port}",
                               f"ENV_MANAGER={manager}"],
                              cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        body = json.dumps({"dataframe_records": [{"image": _png_b64(0), "question": "How many ships?"}],
                           "params": {"max_new_tokens": 4}}).encode()
        deadline = time.time() + (1500 if manager == "virtualenv" else 120)
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
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
