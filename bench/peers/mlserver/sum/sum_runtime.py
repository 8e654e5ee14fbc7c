"""MLServer's side of the `sum` model: row sums of an FP32 matrix, as MLServer's docs write a
custom runtime (NumpyCodec in, NumpyCodec out)."""

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class SumRuntime(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rows = NumpyCodec.decode_input(payload.inputs[0])
        sums = rows.sum(axis=-1, dtype=np.float64).astype(np.float32)
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[NumpyCodec.encode_output("sum", sums)],
        )
