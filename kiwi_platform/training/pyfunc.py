"""A Kiwi-Edit checkpoint as an MLflow pyfunc model: `mlflow.pyfunc.load_model(uri).predict(df)`.

Logged as "models from code" (this file is the model's code; nothing is pickled), so loading it
needs only this project installed, not a matching Python object layout.

The checkpoint folder (released layout) is logged as the `checkpoint` artifact; `predict` takes
a DataFrame with `video`, `prompt`, optional `ref_image` and `out` columns and writes each edited
video to `out`, returning the written paths.
"""

from __future__ import annotations

import mlflow.models
import mlflow.pyfunc
import pandas as pd


class KiwiEditModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from model import KiwiEditPipeline

        self.pipeline = KiwiEditPipeline.from_pretrained(context.artifacts["checkpoint"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from PIL import Image

        from model import read_video_frames

        params = params or {}
        written = []
        for rec in model_input.to_dict("records"):
            frames = read_video_frames(rec["video"])
            ref = rec.get("ref_image")
            out = self.pipeline(
                rec["prompt"],
                video=frames,
                ref_image=Image.open(ref).convert("RGB") if ref else None,
                num_inference_steps=int(params.get("steps", 50)),
                seed=int(params.get("seed", 0)),
            )
            self.pipeline.save_video(out.frames, rec["out"])
            written.append(rec["out"])
        return pd.DataFrame({"out": written})


SIGNATURE_COLUMNS = {"video": "video.mp4", "prompt": "make it snow", "ref_image": "", "out": "edited.mp4"}

mlflow.models.set_model(KiwiEditModel())
