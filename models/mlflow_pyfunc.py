"""MLflow pyfunc for EarthGPT, logged as "models from code" (this file is the model definition).

Requests: a DataFrame (or `dataframe_records`) with columns
    image     base64 of the encoded image file (PNG, JPEG, TIFF incl. 16-bit)
    question  the user's question
Response: one answer string per row. `mlflow models serve -m <uri> --env-manager local` answers them.
"""

from __future__ import annotations

import base64

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class EarthGPTPyfunc(PythonModel):
    def load_context(self, context) -> None:
        from models.io import load_model

        self.model, self.tokenizer = load_model(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> list[str]:
        from models.image_transform import read_image
        from models.inference import GenerationOptions, answer_questions

        images = [read_image(base64.b64decode(value)) for value in model_input["image"]]
        options = GenerationOptions(max_new_tokens=int((params or {}).get("max_new_tokens", 64)))
        return answer_questions(self.model, self.tokenizer, images, list(model_input["question"]), options)


mlflow.models.set_model(EarthGPTPyfunc())
