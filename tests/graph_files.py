"""Hand-written ``.onebit`` graphs for the op tests: ops appended in execution order, each op's
tensors stored as ``<op>.<role>``, the file written with a uint8 NHWC input (docs/format.md §7)."""
from __future__ import annotations

import numpy as np

from onebit.runtime import format as fmt
from onebit.runtime.graph import Op, Value


class GraphFile:
    def __init__(self, input_shape):
        self.input_shape = tuple(input_shape)
        self.tensors, self.ops, self.values = {}, [], {"input": Value("u8", self.input_shape)}

    def op(self, name, type_, inputs, value, attrs=None, tensors=None):
        """Appends op ``name`` writing value ``name``."""
        roles = {}
        for role, arr in (tensors or {}).items():
            self.tensors[f"{name}.{role}"] = np.ascontiguousarray(arr)
            roles[role] = f"{name}.{role}"
        self.ops.append(Op(name, type_, inputs, name, attrs or {}, roles))
        self.values[name] = value

    def dumps(self, output, mean, std, zero_point, dataset="random") -> bytes:
        """The file whose graph output is value ``output``."""
        graph = {"input": "input", "output": output, "values": {k: v.to_json() for k, v in self.values.items()},
                 "ops": [o.to_json() for o in self.ops]}
        meta = {"producer": {"onebit": "test"},
                "input": {"name": "input", "dtype": "uint8", "layout": "NHWC", "shape": list(self.input_shape),
                          "dataset": dataset, "mean": list(mean), "std": list(std),
                          "normalization": "x = (u / 255 - mean[c]) / std[c]", "zero_point": list(zero_point)},
                "output": {"name": output, "dtype": "float32", "shape": list(self.values[output].shape),
                           "class_names": None}}
        return fmt.dumps(meta, graph, self.tensors)
