"""The machine's GEMM peaks at the bench's threads: what an encoder layer's dense FLOPs could run at.

An encode row's FLOP bound is the best rate measured here for its precision on a MiniLM layer's widest
GEMM (a 64-sentence batch of 40 tokens against the 384 x 1536 FFN weight): fp32 from torch (MKL) and
onnxruntime (MLAS), int8 from torch's `_int_mm` and onnxruntime's `MatMulInteger`. Libraries differ by
CPU (MKL's fp32 GEMM runs at less than half MLAS's on AMD EPYC), so the best of them is the bound.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

log = logging.getLogger(__name__)
SHAPE = (64 * 40, 384, 1536)  # (rows, inner, out): one batch's tokens through the FFN's first GEMM


def _seconds(fn, repeats: int = 20) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def _onnx_matmul(op: str, x_type: int, w: np.ndarray):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    out_type = TensorProto.INT32 if op == "MatMulInteger" else TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node(op, ["x", "w"], ["y"])],
        "gemm",
        [helper.make_tensor_value_info("x", x_type, [None, w.shape[0]])],
        [helper.make_tensor_value_info("y", out_type, [None, w.shape[1]])],
        [numpy_helper.from_array(w, "w")],
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])


def gemm_peaks() -> dict:
    """GFLOP/s (int8: GOP/s, a multiply-add = 2) per library and the best, fp32 and int8."""
    from onnx import TensorProto

    m, k, n = SHAPE
    flops = 2 * m * k * n
    x, w = torch.randn(m, k), torch.randn(n, k)
    xq, wq = (
        torch.randint(-128, 127, (m, k), dtype=torch.int8),
        torch.randint(-128, 127, (k, n), dtype=torch.int8),
    )
    fp32_ort = _onnx_matmul("MatMul", TensorProto.FLOAT, w.T.contiguous().numpy())
    int8_ort = _onnx_matmul("MatMulInteger", TensorProto.UINT8, wq.numpy())
    xu = (xq.numpy().astype(np.int16) + 128).astype(np.uint8)
    rates = {
        "fp32": {
            "torch": flops / _seconds(lambda: torch.nn.functional.linear(x, w)) / 1e9,
            "onnxruntime": flops / _seconds(lambda: fp32_ort.run(None, {"x": x.numpy()})) / 1e9,
        },
        "int8": {"onnxruntime": flops / _seconds(lambda: int8_ort.run(None, {"x": xu})) / 1e9},
    }
    try:  # a private op: a torch build without its CPU kernel leaves onnxruntime's rate alone
        rates["int8"]["torch"] = flops / _seconds(lambda: torch._int_mm(xq, wq)) / 1e9
    except (RuntimeError, NotImplementedError) as err:
        log.warning("int8 GEMM peak: torch._int_mm unavailable (%s); onnxruntime's only", err)
    return {"shape": list(SHAPE), **{p: {**r, "best": max(r.values())} for p, r in rates.items()}}
