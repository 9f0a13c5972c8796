"""Export layer: ONNX and AOTInductor artifacts that carry their identity and are verified against eager."""

from audiosep_kit.export.aoti_export import export_aoti
from audiosep_kit.export.onnx_export import export_onnx
from audiosep_kit.export.parity import TOLERANCES, run_parity
from audiosep_kit.export.verify import VerificationError

__all__ = ["export_onnx", "export_aoti", "run_parity", "TOLERANCES", "VerificationError"]
