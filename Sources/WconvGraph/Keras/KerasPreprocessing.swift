import WconvFormats

/// Input preprocessing for recognisable keras.applications families, which each expect their own
/// (keras/src/applications/imagenet_utils.py `preprocess_input` modes):
/// - `caffe` (ResNet50/101/152, VGG): RGB→BGR, subtract the ImageNet mean in 0–255 units, no scaling.
/// - `tf` (MobileNet, MobileNetV2, Xception, Inception): x / 127.5 − 1.
/// - EfficientNet (and any model whose first layer is Rescaling): raw 0–255 pixels; the model
///   rescales and normalises inside the graph.
/// Keras applications resize straight to the input size (no resize-then-crop).
enum KerasPreprocessing {
    static func infer(modelName: String, graph: ModelGraph, firstLayers: [JSONValue]) -> Preprocessing? {
        var size = [224, 224]
        if let input = graph.inputs.first, input.shape.count == 4, let h = input.shape[2], let w = input.shape[3] {
            size = [h, w]
        }
        let n = modelName.lowercased()
        let firstClass = firstLayers.first { $0["class_name"]?.string != "InputLayer" }?["class_name"]?.string
        if n.hasPrefix("resnet") && !n.contains("v2") || n.hasPrefix("vgg") {
            return Preprocessing(inputSize: size, resizeShorter: nil, mean: [103.939, 116.779, 123.68], std: [1, 1, 1],
                                 interpolation: "bilinear", channelOrder: "bgr", scale: 255)
        }
        if n.hasPrefix("mobilenet") || n.hasPrefix("xception") || n.hasPrefix("inception") || n.hasPrefix("resnet") {
            return Preprocessing(inputSize: size, resizeShorter: nil, mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5],
                                 interpolation: "bilinear", channelOrder: "rgb", scale: 255)
        }
        if n.hasPrefix("efficientnet") || n.hasPrefix("convnext") || firstClass == "Rescaling" {
            return Preprocessing(inputSize: size, resizeShorter: nil, mean: [0, 0, 0], std: [1, 1, 1],
                                 interpolation: "bilinear", channelOrder: "rgb", scale: 255)
        }
        return nil
    }
}
