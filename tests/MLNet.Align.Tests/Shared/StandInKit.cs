using MLNet.Align.Encoders;
using MLNet.Align.Onnx;
using MLNet.Align.Tests.Encoders;

namespace MLNet.Align.Tests.Shared;

/// <summary>
/// The generated stand-ins of the paper's encoders as files, written once per test run into a temp folder:
/// <see cref="VitPath"/> (DINOv2-shaped, <see cref="StandInEncoders.Vit"/> defaults: pixel_values [N,3,224,224] ->
/// last_hidden_state [N,257,64]), <see cref="RobertaPath"/> (RoBERTa-shaped, 32-d, GPT-2 vocabulary + 3 specials),
/// <see cref="VocabPath"/> / <see cref="MergesPath"/> (RoBERTa-style vocab.json and GPT-2's merges). Encoders over them
/// are shared (thread-safe, never disposed mid-run). Stable API: other test files build on it.
/// </summary>
public static class StandInKit
{
    private static readonly Lazy<string> s_dir = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), "mlnet-align-standins-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "dinov2-standin.onnx"), StandInEncoders.Vit());
        File.WriteAllBytes(Path.Combine(dir, "roberta-standin.onnx"), StandInEncoders.Roberta());
        var (encoder, merges) = BpeTokenizerReferenceTests.Gpt2Files();
        File.WriteAllBytes(Path.Combine(dir, "vocab.json"), StandInEncoders.RobertaStyleVocabulary(encoder));
        File.WriteAllBytes(Path.Combine(dir, "merges.txt"), merges);
        return dir;
    });
    private static readonly Lazy<OnnxImageEncoder> s_vit = new(() => new OnnxImageEncoder(VitOptions()));
    private static readonly Lazy<OnnxTextEncoder> s_roberta = new(() => new OnnxTextEncoder(RobertaOptions()));

    /// <summary>The folder holding the four files.</summary>
    public static string Directory => s_dir.Value;
    /// <summary>dinov2-standin.onnx.</summary>
    public static string VitPath => Path.Combine(Directory, "dinov2-standin.onnx");
    /// <summary>roberta-standin.onnx.</summary>
    public static string RobertaPath => Path.Combine(Directory, "roberta-standin.onnx");
    /// <summary>vocab.json (RoBERTa-style: GPT-2 ids, then &lt;s&gt; 50257, &lt;/s&gt; 50258, &lt;pad&gt; 50259).</summary>
    public static string VocabPath => Path.Combine(Directory, "vocab.json");
    /// <summary>merges.txt (GPT-2's vocab.bpe).</summary>
    public static string MergesPath => Path.Combine(Directory, "merges.txt");

    /// <summary>DINOv2 preprocessing (256 then centre 224, ImageNet mean/std) over the ViT stand-in; pooled = CLS,
    /// tokens = the 256 patch tokens.</summary>
    public static OnnxImageEncoderOptions VitOptions(ImagePooling pooling = ImagePooling.Cls, int batchSize = 8) => new()
    {
        Name = "dinov2-standin", ModelPath = VitPath, InputName = "pixel_values",
        TokenOutputName = "last_hidden_state", TokenKind = ImageTokenKind.VitSequence, ClsTokenIndex = 0, Pooling = pooling,
        ImageSize = 224, ResizeSize = 256, ResizeMode = ImageResizeMode.ShortestSideCenterCrop, ValueScale = 1f / 255,
        Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f], ChannelOrder = ChannelOrder.Rgb, BatchSize = batchSize,
    };

    /// <summary>Byte-level BPE + the RoBERTa stand-in, mean pooling, L2-normalised, max 128 tokens.</summary>
    public static OnnxTextEncoderOptions RobertaOptions(int batchSize = 16) => new()
    {
        Name = "roberta-standin", ModelPath = RobertaPath, TokenizerKind = TextTokenizerKind.ByteLevelBpe,
        VocabPath = VocabPath, MergesPath = MergesPath, MaxLength = 128, Pooling = TextPooling.Mean, BatchSize = batchSize,
    };

    /// <summary>Shared ViT stand-in encoder (<see cref="VitOptions"/> defaults).</summary>
    public static OnnxImageEncoder Vit => s_vit.Value;
    /// <summary>Shared RoBERTa stand-in encoder (<see cref="RobertaOptions"/> defaults).</summary>
    public static OnnxTextEncoder Roberta => s_roberta.Value;
}
