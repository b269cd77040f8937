import WconvTensor

/// A `module.name` referenced by the pickle, classified against wconv's fixed table. Resolution never
/// imports anything: the table decides what (if anything) the name means.
public final class PickleGlobal {
    public let module: String
    public let name: String
    public let kind: Kind

    public enum Kind: Equatable {
        case rebuildTensor          // torch._utils._rebuild_tensor (old files)
        case rebuildTensorV2
        case rebuildTensorV3
        case rebuildParameter
        case rebuildParameterWithState
        case rebuildFromTypeV2
        /// Allow-listed by torch but not supported here (quantized, sparse, meta, subclass wrappers).
        case unsupportedTensorRebuild
        /// Typed storage class (`torch.FloatStorage`): element count; dtype nil when wconv lacks it.
        case typedStorage(dtype: DType?, torchName: String, elementSize: Int)
        case untypedStorage
        case torchDType(DType?, torchName: String)
        case torchSize
        case tensorClass             // torch.Tensor and legacy torch.FloatTensor…
        case parameterClass          // torch.nn.parameter.Parameter
        case orderedDict             // collections.OrderedDict / defaultdict / Counter, builtins.dict
        case set                     // builtins.set / frozenset
        case codecsEncode
        case bytearray
        case harmlessValue           // torch.device, torch.serialization._get_layout, builtins.complex, …
        case numpyScalar
        case numpyDType
        case numpyReconstruct
        /// `numpy.core.numeric._frombuffer(buffer, dtype, shape, order)` (protocol-5 arrays).
        case numpyFromBuffer
        /// `torch.storage._load_from_bytes(bytes)`: a storage pickled by plain `pickle`, as a legacy
        /// torch.save image (read inertly by the plain-pickle reader, never through torch.load).
        case storageFromBytes
        case copyregReconstructor
        /// TorchScript `torch.jit._pickle.build_*list` / `restore_type_tag`: return their first argument.
        case jitPassThrough
        /// Not in the table: classes become inert instances, calls become inert records.
        case unknown
    }

    init(module: String, name: String) {
        self.module = module
        self.name = name
        self.kind = PickleGlobal.classify(module: module, name: name)
    }

    public var qualifiedName: String { "\(module).\(name)" }

    /// True for names the table knows (anything that is not an inert stub).
    public var isAllowListed: Bool { kind != .unknown }

    // MARK: - The table

    /// Python-2 module names torch files still use.
    static func canonicalModule(_ m: String) -> String {
        switch m {
        case "__builtin__": return "builtins"
        case "copy_reg": return "copyreg"
        case "numpy.core.multiarray": return "numpy._core.multiarray"
        case "numpy.core.numeric": return "numpy._core.numeric"
        default: return m
        }
    }

    static let typedStorages: [String: (DType?, String, Int)] = [
        "DoubleStorage": (.f64, "float64", 8), "FloatStorage": (.f32, "float32", 4),
        "HalfStorage": (.f16, "float16", 2), "BFloat16Storage": (.bf16, "bfloat16", 2),
        "LongStorage": (.i64, "int64", 8), "IntStorage": (.i32, "int32", 4),
        "ShortStorage": (.i16, "int16", 2), "CharStorage": (.i8, "int8", 1),
        "ByteStorage": (.u8, "uint8", 1), "BoolStorage": (.bool, "bool", 1),
        "ComplexDoubleStorage": (nil, "complex128", 16), "ComplexFloatStorage": (nil, "complex64", 8),
        "QInt8Storage": (nil, "qint8", 1), "QUInt8Storage": (nil, "quint8", 1), "QInt32Storage": (nil, "qint32", 4),
        "QUInt4x2Storage": (nil, "quint4x2", 1), "QUInt2x4Storage": (nil, "quint2x4", 1),
    ]

    static let dtypes: [String: DType?] = [
        "float64": .f64, "double": .f64, "float32": .f32, "float": .f32, "float16": .f16, "half": .f16,
        "bfloat16": .bf16, "int64": .i64, "long": .i64, "int32": .i32, "int": .i32, "int16": .i16,
        "short": .i16, "int8": .i8, "uint8": .u8, "bool": .bool,
        "float8_e4m3fn": .f8e4m3, "float8_e5m2": .f8e5m2,
        "float8_e5m2fnuz": nil, "float8_e4m3fnuz": nil, "float8_e8m0fnu": nil, "float4_e2m1fn_x2": nil,
        "uint16": nil, "uint32": nil, "uint64": nil, "complex32": nil, "complex64": nil, "complex128": nil,
        "cfloat": nil, "cdouble": nil, "chalf": nil, "qint8": nil, "quint8": nil, "qint32": nil,
        "quint4x2": nil, "quint2x4": nil, "bits1x8": nil, "bits2x4": nil, "bits4x2": nil, "bits8": nil, "bits16": nil,
        "uint1": nil, "uint2": nil, "uint3": nil, "uint4": nil, "uint5": nil, "uint6": nil, "uint7": nil,
        "int1": nil, "int2": nil, "int3": nil, "int4": nil, "int5": nil, "int6": nil, "int7": nil,
    ]

    static let legacyTensorClasses: Set<String> = [
        "Tensor", "DoubleTensor", "FloatTensor", "HalfTensor", "BFloat16Tensor", "LongTensor", "IntTensor",
        "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor",
    ]

    static func classify(module rawModule: String, name: String) -> Kind {
        let module = canonicalModule(rawModule)
        switch module {
        case "torch._utils":
            switch name {
            case "_rebuild_tensor": return .rebuildTensor
            case "_rebuild_tensor_v2": return .rebuildTensorV2
            case "_rebuild_tensor_v3": return .rebuildTensorV3
            case "_rebuild_parameter": return .rebuildParameter
            case "_rebuild_parameter_with_state": return .rebuildParameterWithState
            case "_rebuild_qtensor", "_rebuild_sparse_tensor", "_rebuild_meta_tensor_no_storage",
                 "_rebuild_wrapper_subclass", "_rebuild_device_tensor_from_numpy",
                 "_rebuild_device_tensor_from_cpu_tensor", "_rebuild_nested_tensor":
                return .unsupportedTensorRebuild
            default: return .unknown
            }
        case "torch.jit._pickle":
            switch name {
            case "build_intlist", "build_tensorlist", "build_doublelist", "build_boollist", "build_complexlist", "restore_type_tag":
                return .jitPassThrough
            default: return .unknown
            }
        case "torch._tensor":
            return name == "_rebuild_from_type_v2" ? .rebuildFromTypeV2 : .unknown
        case "torch", "torch.cuda":
            if let t = typedStorages[name] { return .typedStorage(dtype: t.0, torchName: t.1, elementSize: t.2) }
            if module == "torch" {
                if name == "UntypedStorage" { return .untypedStorage }
                if let d = dtypes[name] { return .torchDType(d, torchName: name) }
                if name == "Size" { return .torchSize }
                if legacyTensorClasses.contains(name) { return .tensorClass }
                if name == "device" || name == "per_tensor_affine" || name == "per_channel_affine" { return .harmlessValue }
            }
            return .unknown
        case "torch.storage":
            if name == "UntypedStorage" { return .untypedStorage }
            if name == "_load_from_bytes" { return .storageFromBytes }
            if name == "TypedStorage" || name == "_LegacyStorage" { return .unknown }
            return .unknown
        case "torch.nn.parameter":
            return name == "Parameter" ? .parameterClass : .unknown
        case "torch.serialization":
            return name == "_get_layout" ? .harmlessValue : .unknown
        case "collections":
            switch name {
            case "OrderedDict", "defaultdict", "Counter": return .orderedDict
            default: return .unknown
            }
        case "builtins":
            switch name {
            case "set", "frozenset": return .set
            case "dict": return .orderedDict
            case "bytearray", "bytes": return .bytearray
            case "complex", "slice", "range", "object", "int", "float", "str", "bool", "tuple", "list": return .harmlessValue
            default: return .unknown
            }
        case "_codecs":
            return name == "encode" ? .codecsEncode : .unknown
        case "numpy._core.multiarray":
            switch name {
            case "scalar": return .numpyScalar
            case "_reconstruct": return .numpyReconstruct
            default: return .unknown
            }
        case "numpy._core.numeric":
            return name == "_frombuffer" ? .numpyFromBuffer : .unknown
        case "numpy":
            switch name {
            case "dtype": return .numpyDType
            case "ndarray": return .harmlessValue
            default: return .unknown
            }
        case "copyreg":
            return name == "_reconstructor" ? .copyregReconstructor : .unknown
        default:
            return .unknown
        }
    }

    // MARK: - Known code-execution gadgets

    /// Top-level modules whose callables can run code, touch files or the network, or import more
    /// code. Referencing any of them refuses the file: nothing legitimate in a weights file needs them.
    static let dangerousRoots: Set<String> = [
        "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "sys", "runpy", "pty", "shutil", "webbrowser",
        "importlib", "pip", "_pip", "pkg_resources", "setuptools", "distutils", "ensurepip", "venv", "zipimport",
        "socket", "ssl", "ctypes", "_ctypes", "cffi", "pickle", "_pickle", "cPickle", "marshal", "dill",
        "cloudpickle", "joblib", "shelve", "code", "codeop", "commands", "pdb", "bdb", "timeit", "profile",
        "cProfile", "trace", "tracemalloc", "platform", "asyncio", "multiprocessing", "threading", "_thread",
        "signal", "tempfile", "io", "_io", "fileinput", "glob", "http", "urllib", "urllib2",
        "urllib3", "requests", "httplib", "ftplib", "smtplib", "telnetlib", "imaplib", "poplib", "nntplib",
        "xmlrpc", "uuid", "_pyrepl", "pydoc", "cgi", "cgitb", "types", "operator", "_operator", "functools",
        "inspect", "ast", "compileall", "py_compile", "_posixsubprocess", "_winapi", "winreg",
        "msvcrt", "resource", "gc", "weakref", "site", "sysconfig", "imp", "pkgutil", "modulefinder", "linecache",
        "tarfile", "zipfile", "bz2", "lzma", "gzip", "sqlite3", "dbm", "mmap", "fcntl", "termios", "tty",
        "select", "selectors", "socketserver", "logging", "atexit", "faulthandler", "readline", "rlcompleter",
        "IPython", "jinja2", "yaml", "numexpr",
    ]

    /// Harmless names inside otherwise refused modules (configs in checkpoints use them).
    static let harmlessExceptions: Set<String> = ["types.SimpleNamespace", "pathlib.PosixPath", "pathlib.WindowsPath",
                                                  "pathlib.PurePosixPath", "pathlib.PureWindowsPath", "pathlib.Path"]

    /// Names inside otherwise harmless packages that load or run code.
    static let dangerousExact: Set<String> = [
        "torch.load", "torch.serialization.load", "torch.hub.load", "torch.hub.load_state_dict_from_url",
        "torch.hub._load_local", "torch.hub.download_url_to_file", "torch.jit.load", "torch.jit._load_for_lite_interpreter",
        "torch.package.PackageImporter", "torch.compile", "torch.utils.cpp_extension.load",
        "torch.utils.cpp_extension.load_inline", "torch._C._jit_pass_inline", "numpy.load",
        "numpy.lib.npyio.load", "numpy.loadtxt", "numpy.fromfile", "numpy.testing._private.utils.runstring",
        "numpy.f2py.compile", "collections.namedtuple", "copyreg._reconstructor_", "copyreg.__newobj__ex",
    ]

    /// Packages where any name other than the table's is a code-execution risk.
    static let dangerousPackages: [String] = ["torch.hub", "torch.jit", "torch.package", "torch.ops", "torch._ops",
                                             "torch.utils.cpp_extension", "torch.distributed", "torch.cuda.memory",
                                             "torch._inductor", "torch._dynamo", "pandas.io"]

    /// The reason a name is refused outright, or nil when it may appear (as an allowed global or stub).
    static func danger(module rawModule: String, name: String) -> String? {
        let module = canonicalModule(rawModule)
        let root = module.split(separator: ".", maxSplits: 1).first.map(String.init) ?? module
        let qualified = "\(module).\(name)"
        if module == "builtins" {
            if classify(module: module, name: name) == .unknown {
                return "builtins.\(name) is a Python builtin that can run code or access files"
            }
            return nil
        }
        if harmlessExceptions.contains(qualified) || classify(module: module, name: name) == .jitPassThrough { return nil }
        if dangerousRoots.contains(root) || dangerousRoots.contains(module) {
            return "module '\(module)' can run commands, import code or access files and the network"
        }
        if dangerousExact.contains(qualified) {
            return "\(qualified) loads or runs code"
        }
        for p in dangerousPackages where module == p || module.hasPrefix(p + ".") {
            return "\(qualified) is part of \(p), which loads or runs code"
        }
        if module == "copyreg", name != "_reconstructor" {
            return "copyreg.\(name) can call arbitrary callables"
        }
        if module == "_codecs", name != "encode" {
            return "_codecs.\(name) is not needed by weights files"
        }
        if name.hasPrefix("__") && name.hasSuffix("__") && name != "__newobj__" {
            return "\(qualified) is a dunder attribute (a common gadget)"
        }
        if name.contains(".") {
            // Protocol 4 qualnames are getattr chains ('torch' + 'hub.load', 'x' + 'f.__globals__'):
            // every step of the chain must pass the same checks as a plain module.name.
            let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !parts.contains(where: \.isEmpty) else { return "'\(name)' is a malformed dotted name" }
            var m = module
            for p in parts.dropLast() {
                if let why = danger(module: m, name: p) { return why }
                m += "." + p
            }
            return danger(module: m, name: parts[parts.count - 1])
        }
        return nil
    }
}
