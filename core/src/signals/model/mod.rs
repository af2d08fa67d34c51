//! ONNX models: metadata, registry, inference sessions, ensembles. SKELETON (inference helper owns it).
