// Umbrella header of CWconvONNX: protoc-c output for schemas/onnx.proto (tools/regenerate-onnx).
#ifndef CWCONV_ONNX_H
#define CWCONV_ONNX_H
#include <protobuf-c/protobuf-c.h>
#include "onnx.pb-c.h"
#endif
