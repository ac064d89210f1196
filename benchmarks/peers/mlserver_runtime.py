"""MLServer custom runtime serving model.onnx with onnxruntime (a peer in benchmarks/serving.py).

Written the way MLServer's custom-runtime docs show: subclass `mlserver.MLModel`, load in
`load()`, decode inputs with the numpy codec in `predict()`; `model-settings.json` names this
class as `implementation` and the ONNX file as `parameters.uri`. Run from a throwaway venv
with mlserver 1.7 installed: `mlserver start DIR` (DIR holds settings.json, model-settings.json
and this file).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri

NUMPY = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


class OnnxRuntime(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        path = await get_model_uri(self._settings)
        self.session = ort.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.types = {i.name: NUMPY.get(i.type, object) for i in self.session.get_inputs()}
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds: dict[str, Any] = {}
        for tensor in payload.inputs:
            if tensor.name in self.types:
                kind = self.types[tensor.name]
                values = (
                    tensor.data.root
                    if kind is object
                    else [np.nan if v is None else v for v in tensor.data.root]
                )
                feeds[tensor.name] = np.asarray(values, dtype=kind).reshape(tensor.shape)
        label, probabilities = self.session.run(None, feeds)
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output("label", label),
                NumpyCodec.encode_output("probabilities", probabilities),
            ],
        )
