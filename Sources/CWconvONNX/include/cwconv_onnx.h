// protoc-c output for schemas/onnx.proto lands here (ONNX issue).
#include <protobuf-c/protobuf-c.h>
