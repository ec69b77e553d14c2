"""Load a registered Heimdall model the way a consumer does, with MLflow's own
Python client (scripts/requirements-mlflow-client.txt), and report what it saw.

Usage (MLFLOW_TRACKING_URI set): python mlflow_client_check.py MODEL_NAME X.f32 N,R,M,F OUT.json
X.f32 holds validation inputs as little-endian float32 in that shape.
"""
import json
import os
import sys
import tempfile

import numpy as np

import mlflow
import mlflow.artifacts
import mlflow.onnx
import mlflow.pyfunc
from mlflow import MlflowClient
from mlflow.models import get_model_info

name, xpath, shape, out = sys.argv[1:5]
uri = f"models:/{name}@staging"
res = {"mlflow_version": mlflow.__version__}

onnx_model = mlflow.onnx.load_model(uri)
res["onnx_inputs"] = [i.name for i in onnx_model.graph.input]
res["onnx_outputs"] = [o.name for o in onnx_model.graph.output]

x = np.fromfile(xpath, dtype="<f4").reshape([int(d) for d in shape.split(",")])
pyfunc_model = mlflow.pyfunc.load_model(uri)
pred = pyfunc_model.predict({"mel_spectrogram": x})
for k, v in pred.items():
    res[k] = {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.astype(float).ravel().tolist()}

info = get_model_info(uri)
res["signature"] = {
    "inputs": json.loads(info.signature.inputs.to_json()),
    "outputs": json.loads(info.signature.outputs.to_json()),
}
res["flavors"] = sorted(info.flavors)
res["loader_module"] = info.flavors["python_function"]["loader_module"]

with tempfile.TemporaryDirectory() as tmp:
    d = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
    res["files"] = sorted(os.listdir(d))

c = MlflowClient()
res["production_alias_version"] = c.get_model_version_by_alias(name, "production").version
res["production_loads"] = mlflow.pyfunc.load_model(f"models:/{name}@production").metadata.flavors["python_function"]["loader_module"]

with open(out, "w") as f:
    json.dump(res, f)
