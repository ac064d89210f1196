"""KServe custom predictor serving model.onnx with onnxruntime (a peer in benchmarks/serving.py).

Written the way KServe's custom-model docs show: subclass `kserve.Model`, load in `load()`,
answer V2 requests in `predict()`, start with `kserve.ModelServer().start([model])`.
Run from a throwaway venv with kserve 0.21 installed, not the project's:
    python kserve_predictor.py --model_name NAME --onnx PATH --http_port PORT
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server
from kserve.utils.utils import generate_uuid

NUMPY = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


def session(path: str) -> ort.InferenceSession:
    """One intra-op and one inter-op thread, as the project's server runs it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


class OnnxModel(Model):
    def __init__(self, name: str, onnx_path: str) -> None:
        super().__init__(name)
        self.onnx_path = onnx_path
        self.load()

    def load(self) -> bool:
        self.session = session(self.onnx_path)
        self.types = {i.name: NUMPY.get(i.type, object) for i in self.session.get_inputs()}
        self.ready = True
        return self.ready

    async def predict(
        self,
        payload: InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        feeds: dict[str, Any] = {}
        for tensor in payload.inputs:
            if tensor.name in self.types:
                kind = self.types[tensor.name]
                values = (
                    tensor.data
                    if kind is object
                    else [np.nan if v is None else v for v in tensor.data]
                )
                feeds[tensor.name] = np.asarray(values, dtype=kind).reshape(tensor.shape)
        label, probabilities = self.session.run(None, feeds)
        outputs = [
            InferOutput(name="label", shape=list(label.shape), datatype="INT64"),
            InferOutput(name="probabilities", shape=list(probabilities.shape), datatype="FP32"),
        ]
        outputs[0].set_data_from_numpy(label, binary_data=False)
        outputs[1].set_data_from_numpy(probabilities, binary_data=False)
        return InferResponse(
            model_name=self.name, infer_outputs=outputs, response_id=payload.id or generate_uuid()
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--onnx", required=True)
    args, _ = parser.parse_known_args()
    ModelServer().start([OnnxModel(args.model_name, args.onnx)])
