// Transfer learning: groups, optimizers, losses, data, trainer, evaluation.
import WconvRuntime
