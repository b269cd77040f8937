// Kernels, executor and autograd over ModelGraph.
import WconvGraph
