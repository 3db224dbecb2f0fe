using System.Text.Json.Serialization;

namespace MLNet.Align.Encoders;

/// <summary>How an image is brought to the model's square input size.</summary>
public enum ImageResizeMode
{
    /// <summary>Scale so the shortest side equals the input size, then crop the centre (ML.NET's IsoCrop, torchvision's
    /// Resize + CenterCrop). Keeps the aspect ratio.</summary>
    ShortestSideCenterCrop,

    /// <summary>Scale both sides to the input size independently (distorts the aspect ratio).</summary>
    Squash,
}

/// <summary>Channel order of the model's planar input.</summary>
public enum ChannelOrder
{
    /// <summary>Red, green, blue planes.</summary>
    Rgb,
    /// <summary>Blue, green, red planes (Caffe-style models).</summary>
    Bgr,
}

/// <summary>Layout of an image model's token (patch) output.</summary>
public enum ImageTokenKind
{
    /// <summary>CNN feature map [N, C, H, W]: H*W tokens of C features (row-major positions).</summary>
    FeatureMap,

    /// <summary>ViT sequence [N, 1+T, D]: the token at <see cref="OnnxImageEncoderOptions.ClsTokenIndex"/> is dropped
    /// from the tokens (and used as the pooled embedding when the pooled output name equals the token output name).</summary>
    VitSequence,
}

/// <summary>How the pooled image feature is made from a token output when the model has no pooled output of its own
/// (<see cref="OnnxImageEncoderOptions.PooledOutputName"/> empty or equal to the token output).</summary>
public enum ImagePooling
{
    /// <summary>The CLS token (ViT only). The paper's main configuration feeds this to its CLS projector P_cls
    /// (docs/method.md 3.3) and averages the projected patch tokens separately.</summary>
    Cls,
    /// <summary>Mean of the patch tokens (CLS and register tokens excluded); for a CNN feature map, the mean over the
    /// H*W positions (global average pooling).</summary>
    MeanPatch,
    /// <summary>concat[CLS, mean of patch tokens], 2D wide (ViT only), as SAIL and dino.txt use.</summary>
    ClsMeanPatch,
}

/// <summary>How an <see cref="OnnxImageEncoder"/> runs batches.</summary>
public enum ImageBatchMode
{
    /// <summary>The model's batch dimension was already symbolic: one session run per batch.</summary>
    Native,
    /// <summary>The batch dimension was fixed to 1 and was made symbolic by editing the graph; a measured check
    /// (batch of 2 vs two runs of 1) passed.</summary>
    GraphEdited,
    /// <summary>One session run per image (the batch dimension is fixed and the edit was not possible, failed its check,
    /// or was disabled).</summary>
    PerItem,
}

/// <summary>
/// Options of <see cref="OnnxImageEncoder"/>: which ONNX model, which tensors, and how pixels are prepared.
/// Pixel value fed to the model = (byte * <see cref="ValueScale"/> - <see cref="Mean"/>[c]) / <see cref="Std"/>[c],
/// planar [N, 3, S, S] with S = <see cref="ImageSize"/>, channels in <see cref="ChannelOrder"/>.
/// </summary>
public sealed class OnnxImageEncoderOptions
{
    /// <summary>Name reported in <see cref="EncoderIdentity.Name"/>.</summary>
    public string Name { get; set; } = "onnx-image";

    /// <summary>Path of the ONNX model (ignored when <see cref="ModelBytes"/> is set).</summary>
    public string? ModelPath { get; set; }

    /// <summary>The ONNX model bytes (not serialised: a bundle records <see cref="ModelPath"/> and its SHA-256).</summary>
    [JsonIgnore] public byte[]? ModelBytes { get; set; }

    /// <summary>Model input name; null = the model's only input.</summary>
    public string? InputName { get; set; }

    /// <summary>Output holding a pooled embedding [N, D] or [N, D, 1, 1]. Empty (or equal to
    /// <see cref="TokenOutputName"/>) = the pooled feature is made from the token output by <see cref="Pooling"/>
    /// (a ViT's last_hidden_state, a CNN's feature map).</summary>
    public string PooledOutputName { get; set; } = "";

    /// <summary>Output (or intermediate value, added as a graph output) holding token features; null = no tokens.</summary>
    public string? TokenOutputName { get; set; }

    /// <summary>Layout of <see cref="TokenOutputName"/>.</summary>
    public ImageTokenKind TokenKind { get; set; } = ImageTokenKind.FeatureMap;

    /// <summary>Index of the CLS token in a <see cref="ImageTokenKind.VitSequence"/> output (dropped from tokens).
    /// CLI: <c>--image-cls-index</c>.</summary>
    public int ClsTokenIndex { get; set; }

    /// <summary>Register tokens right after the CLS token in a <see cref="ImageTokenKind.VitSequence"/> output (DINOv2
    /// "with registers": 4), dropped from the tokens and from every pooling. CLI: <c>--image-registers</c>.</summary>
    public int RegisterTokens { get; set; }

    /// <summary>How the pooled feature is made from <see cref="TokenOutputName"/> when <see cref="PooledOutputName"/>
    /// is empty or names the same output. CLI: <c>--image-pooling cls|mean|cls+mean</c>.</summary>
    public ImagePooling Pooling { get; set; } = ImagePooling.Cls;

    /// <summary>With <see cref="ImageResizeMode.ShortestSideCenterCrop"/>: the shortest side is first resized to this
    /// many pixels, then the centre <see cref="ImageSize"/> square is cropped (HF's DINOv2 processor: 256 then 224;
    /// torchvision Resize(256) + CenterCrop(224)). Null = <see cref="ImageSize"/> (no margin). CLI:
    /// <c>--image-resize-size</c>.</summary>
    public int? ResizeSize { get; set; }

    /// <summary>Square input side in pixels (e.g. 224).</summary>
    public int ImageSize { get; set; } = 224;

    /// <summary>How images are resized to <see cref="ImageSize"/>.</summary>
    public ImageResizeMode ResizeMode { get; set; } = ImageResizeMode.ShortestSideCenterCrop;

    /// <summary>Multiplier applied to 0..255 bytes before mean/std (e.g. 1/255).</summary>
    public float ValueScale { get; set; } = 1f / 255f;

    /// <summary>Per-channel mean, in the order of <see cref="ChannelOrder"/>, subtracted after scaling.</summary>
    public float[] Mean { get; set; } = [0.485f, 0.456f, 0.406f];

    /// <summary>Per-channel standard deviation, in the order of <see cref="ChannelOrder"/>.</summary>
    public float[] Std { get; set; } = [0.229f, 0.224f, 0.225f];

    /// <summary>Plane order of the model input.</summary>
    public ChannelOrder ChannelOrder { get; set; } = ChannelOrder.Rgb;

    /// <summary>Optional preprocessing ONNX (path) applied to the prepared pixels before the model (e.g. ResNet-18's
    /// BGR swap and mean-image subtraction). Ignored when <see cref="PreprocessingModelBytes"/> is set.</summary>
    public string? PreprocessingModelPath { get; set; }

    /// <summary>Optional preprocessing ONNX bytes (not serialised).</summary>
    [JsonIgnore] public byte[]? PreprocessingModelBytes { get; set; }

    /// <summary>Input of the preprocessing model; null = its only input.</summary>
    public string? PreprocessingInputName { get; set; }

    /// <summary>Output of the preprocessing model fed to the image model; null = its first output.</summary>
    public string? PreprocessingOutputName { get; set; }

    /// <summary>Images per session run.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Make a batch dimension fixed to 1 symbolic by editing the graph (checked by measurement); when false or
    /// when the edit fails, such models run one image at a time.</summary>
    public bool AllowGraphBatchEdit { get; set; } = true;

    /// <summary>ONNX Runtime intra-op threads per session run; 0 = automatic: ONNX Runtime's default (all cores) when
    /// batches run one at a time, otherwise cores / <see cref="InferenceParallelism"/> (at least 1).</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>Batches inferred at once (concurrent session runs, each fed by one decode thread that prepares the next
    /// batches while inference runs); 0 = automatic: <see cref="AutoInferenceParallelism"/> of the core count.
    /// Outputs do not depend on it (each batch is computed alone, written at its own rows).</summary>
    public int InferenceParallelism { get; set; }

    /// <summary>The automatic <see cref="InferenceParallelism"/>: 1 on one core, 2 on 2-5 cores, cores / 3 up to 4
    /// beyond (measured on 2 cores: ONNX Runtime's intra-op threads do not scale ResNet-18 past one core there, two
    /// concurrent runs of one thread each do; docs/performance.md).</summary>
    public static int AutoInferenceParallelism(int cores) => cores <= 1 ? 1 : cores < 6 ? 2 : Math.Min(4, cores / 3);

    /// <summary>CUDA device to run on (ML.NET's <c>GpuDeviceId</c>); null = CPU. Needs a <c>-p:Cuda=true</c> build
    /// (Microsoft.ML.OnnxRuntime.Gpu) and an NVIDIA device; see <see cref="OnnxExecution"/>. A runtime setting: it is
    /// not part of the encoder identity (cache keys) and never saved.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int? GpuDeviceId { get; set; }

    /// <summary>When <see cref="GpuDeviceId"/> is set and CUDA cannot start: true runs on CPU after one warning line,
    /// false (ML.NET's default) throws <see cref="InvalidOperationException"/>.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public bool FallbackToCpu { get; set; }

    /// <summary>Receives one line naming the execution provider that runs (and a fallback's reason); null = only a
    /// fallback warning, on stderr.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public Action<string>? Log { get; set; }

    /// <summary>Pixel budget of one image file (width x height as its header declares, checked before decoding):
    /// larger images are refused with an error naming them (<see cref="ImageFileDecoder.DefaultMaxPixels"/>, 100
    /// megapixels, by default). A runtime setting: not saved, not part of the encoder identity.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public long MaxImagePixels { get; set; } = ImageFileDecoder.DefaultMaxPixels;
}
