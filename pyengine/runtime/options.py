"""Session and run options, named as onnxruntime names them."""
from __future__ import annotations

import enum


class GraphOptimizationLevel(enum.IntEnum):
    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1      # constant folding, Identity/Dropout removal, dead nodes
    ORT_ENABLE_EXTENDED = 2   # + BatchNorm folding, bias and activation fusion
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class SessionOptions:
    """Settings for an InferenceSession. `intra_op_num_threads` sizes the
    thread pool (0: one thread per physical core available to the process)."""

    def __init__(self):
        self.intra_op_num_threads = 0
        self.inter_op_num_threads = 0
        self.graph_optimization_level = GraphOptimizationLevel.ORT_ENABLE_ALL
        self.execution_mode = ExecutionMode.ORT_SEQUENTIAL
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.enable_cpu_mem_arena = True
        self.enable_mem_pattern = True
        self.enable_profiling = False   # per-node timing; InferenceSession.end_profiling() writes it
        self.profile_file_prefix = "pyengine_profile"
        self.optimized_model_filepath = ""
        self.logid = ""
        self._config: dict = {}

    def add_session_config_entry(self, key: str, value: str) -> None:
        self._config[str(key)] = str(value)

    def get_session_config_entry(self, key: str) -> str:
        return self._config[key]

    def __repr__(self) -> str:
        return (f"SessionOptions(intra_op_num_threads={self.intra_op_num_threads}, "
                f"graph_optimization_level={GraphOptimizationLevel(self.graph_optimization_level).name})")


class RunOptions:
    """Accepted for compatibility; pyengine has no per-run settings yet."""

    def __init__(self):
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.terminate = False
