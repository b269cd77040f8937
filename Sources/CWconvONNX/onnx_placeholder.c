#include "cwconv_onnx.h"
