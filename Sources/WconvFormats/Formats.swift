// Readers and writers: zip, pickle, PyTorch, safetensors, ONNX, HDF5/Keras. Filled in by the format issues.
import WconvTensor
