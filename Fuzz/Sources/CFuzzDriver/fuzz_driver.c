// Header-only target: declares libFuzzer's LLVMFuzzerRunDriver for the Swift harnesses.
