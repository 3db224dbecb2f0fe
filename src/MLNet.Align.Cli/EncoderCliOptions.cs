using System.CommandLine;
using System.Globalization;
using MLNet.Align.Encoders;

namespace MLNet.Align.Cli;

/// <summary>
/// The encoder flags shared by every command that opens encoders itself (<c>embed</c>, <c>train --pairs</c>). Each
/// flag sets one property of <see cref="OnnxImageEncoderOptions"/> / <see cref="OnnxTextEncoderOptions"/> (the names
/// follow the properties; the table is in README "Bring your own encoders"). Commands that read a bundle
/// (<c>zeroshot</c>, <c>retrieval</c>) take no encoder flags: the bundle records the options.
/// </summary>
public sealed class EncoderCliOptions
{
    public readonly Option<string> ImageEncoder = new("--image-encoder") { Description = "'resnet18' (packaged) or the path of an ONNX image model.", DefaultValueFactory = _ => "resnet18" };
    public readonly Option<string?> ImageInput = new("--image-input") { Description = "ONNX image model: input name (InputName; default: its only input)." };
    public readonly Option<string?> ImageOutput = new("--image-output") { Description = "ONNX image model: the output to read. --image-layout pooled: a pooled [N, D] or [N, D, 1, 1] output (PooledOutputName); vit: the [N, 1+R+T, D] sequence, e.g. last_hidden_state; feature-map: an [N, C, H, W] map (TokenOutputName)." };
    public readonly Option<string?> ImageTokenOutput = new("--image-token-output") { Description = "ONNX image model, --image-layout pooled: an extra [N, C, H, W] feature-map output for tokens (TokenOutputName)." };
    public readonly Option<string> ImageLayout = new("--image-layout") { Description = "ONNX image model: pooled | vit | feature-map (TokenKind; what --image-output holds).", DefaultValueFactory = _ => "pooled" };
    public readonly Option<int> ImageClsIndex = new("--image-cls-index") { Description = "vit layout: index of the CLS token (ClsTokenIndex).", DefaultValueFactory = _ => 0 };
    public readonly Option<int> ImageRegisters = new("--image-registers") { Description = "vit layout: register tokens right after CLS, dropped (RegisterTokens; DINOv2 with registers: 4).", DefaultValueFactory = _ => 0 };
    public readonly Option<string> ImagePooling = new("--image-pooling") { Description = "vit / feature-map layout: pooled feature = cls | mean (of patch tokens) | cls+mean (concat) (Pooling). Default cls for vit, mean for feature-map." };
    public readonly Option<string> ImageResize = new("--image-resize") { Description = "crop (shortest side, then centre crop) | squash (ResizeMode).", DefaultValueFactory = _ => "crop" };
    public readonly Option<int?> ImageResizeSize = new("--image-resize-size") { Description = "crop: resize the shortest side to this before the centre crop of --image-size (ResizeSize; DINOv2: 256)." };
    public readonly Option<int> ImageSize = new("--image-size") { Description = "ONNX image model: square input size in pixels (ImageSize).", DefaultValueFactory = _ => 224 };
    public readonly Option<string> ImageScale = new("--image-scale") { Description = "Multiplier of 0..255 bytes before mean/std, a number or a fraction such as 1/255 (ValueScale).", DefaultValueFactory = _ => "1/255" };
    public readonly Option<string> ImageMean = new("--image-mean") { Description = "Per-channel mean after scaling, in --image-channels order (Mean).", DefaultValueFactory = _ => "0.485,0.456,0.406" };
    public readonly Option<string> ImageStd = new("--image-std") { Description = "Per-channel std after scaling, in --image-channels order (Std).", DefaultValueFactory = _ => "0.229,0.224,0.225" };
    public readonly Option<string> ImageChannels = new("--image-channels") { Description = "Plane order of the model input: rgb | bgr (ChannelOrder).", DefaultValueFactory = _ => "rgb" };

    public readonly Option<string> TextEncoder = new("--text-encoder") { Description = "'minilm' (packaged all-MiniLM-L6-v2), 'arctic-xs' (packaged snowflake-arctic-embed-xs, CLS pooling) or the path of an ONNX sentence-transformer model.", DefaultValueFactory = _ => "minilm" };
    public readonly Option<string?> TextTokenizer = new("--text-tokenizer") { Description = "wordpiece (vocab.txt) | bpe (byte-level, vocab.json + merges.txt: RoBERTa, GPT-2) (TokenizerKind). Default: bpe when --text-merges is given." };
    public readonly Option<string?> TextVocab = new("--text-vocab") { Description = "ONNX text model: vocab.txt (WordPiece) or vocab.json (BPE) (VocabPath)." };
    public readonly Option<string?> TextMerges = new("--text-merges") { Description = "BPE: merges.txt (MergesPath)." };
    public readonly Option<string> TextSpecialTokens = new("--text-special-tokens") { Description = "BPE: start,end,padding tokens as in vocab.json (BpeBosToken, BpeEosToken, BpePadToken).", DefaultValueFactory = _ => "<s>,</s>,<pad>" };
    public readonly Option<bool> TextAddPrefixSpace = new("--text-add-prefix-space") { Description = "BPE: add a space before the text, as HF add_prefix_space=True (BpeAddPrefixSpace; RoBERTa default off)." };
    public readonly Option<bool> TextCased = new("--text-cased") { Description = "WordPiece: keep case and accents (LowerCase = false) for cased vocabularies." };
    public readonly Option<string> TextOutput = new("--text-output") { Description = "ONNX text model: token-states output name (OutputName).", DefaultValueFactory = _ => "last_hidden_state" };
    public readonly Option<string> TextPooling = new("--text-pooling") { Description = "ONNX text model: mean | cls (Pooling; sentence-transformers all-*: mean).", DefaultValueFactory = _ => "mean" };
    public readonly Option<int> MaxLength = new("--max-length") { Description = "Text encoder maximum tokens, special tokens included (MaxLength).", DefaultValueFactory = _ => 256 };

    public readonly Option<int?> GpuDeviceId = new("--gpu-device-id") { Description = "Run the ONNX encoders with the CUDA execution provider on this device (GpuDeviceId; needs a -p:Cuda=true build). Not saved." };
    public readonly Option<long> MaxImagePixels = new("--max-image-pixels") { Description = "Pixel budget of one image (width x height as its header declares, checked before decoding); larger images are refused, naming them (MaxImagePixels; default 100 megapixels, a 400 MB decoded bitmap).", DefaultValueFactory = _ => Encoders.ImageFileDecoder.DefaultMaxPixels };
    public readonly Option<bool> FallbackToCpu = new("--fallback-to-cpu") { Description = "With --gpu-device-id: run on CPU (one warning line) when CUDA cannot start, instead of failing (FallbackToCpu)." };

    /// <summary>Adds every encoder flag to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { ImageEncoder, ImageInput, ImageOutput, ImageTokenOutput, ImageLayout, ImageClsIndex, ImageRegisters,
                     ImagePooling, ImageResize, ImageResizeSize, ImageSize, ImageScale, ImageMean, ImageStd, ImageChannels,
                     TextEncoder, TextTokenizer, TextVocab, TextMerges, TextSpecialTokens, TextAddPrefixSpace, TextCased, TextOutput, TextPooling, MaxLength, GpuDeviceId, FallbackToCpu, MaxImagePixels })
            command.Options.Add(o);
    }

    /// <summary>Reads the flags of one invocation.</summary>
    public EncoderArgs Read(ParseResult parse) => new()
    {
        ImageEncoder = parse.GetValue(ImageEncoder)!, ImageInput = parse.GetValue(ImageInput), ImageOutput = parse.GetValue(ImageOutput),
        ImageTokenOutput = parse.GetValue(ImageTokenOutput), ImageLayout = parse.GetValue(ImageLayout)!, ImageClsIndex = parse.GetValue(ImageClsIndex),
        ImageRegisters = parse.GetValue(ImageRegisters), ImagePooling = parse.GetValue(ImagePooling), ImageResize = parse.GetValue(ImageResize)!,
        ImageResizeSize = parse.GetValue(ImageResizeSize), ImageSize = parse.GetValue(ImageSize), ImageScale = parse.GetValue(ImageScale)!,
        ImageMean = parse.GetValue(ImageMean)!, ImageStd = parse.GetValue(ImageStd)!, ImageChannels = parse.GetValue(ImageChannels)!,
        TextEncoder = parse.GetValue(TextEncoder)!, TextTokenizer = parse.GetValue(TextTokenizer), TextVocab = parse.GetValue(TextVocab),
        TextMerges = parse.GetValue(TextMerges), TextSpecialTokens = parse.GetValue(TextSpecialTokens)!, TextAddPrefixSpace = parse.GetValue(TextAddPrefixSpace),
        TextCased = parse.GetValue(TextCased), TextOutput = parse.GetValue(TextOutput)!, TextPooling = parse.GetValue(TextPooling)!, MaxLength = parse.GetValue(MaxLength),
        GpuDeviceId = parse.GetValue(GpuDeviceId), FallbackToCpu = parse.GetValue(FallbackToCpu), MaxImagePixels = parse.GetValue(MaxImagePixels),
    };
}

/// <summary>The encoder flags of one invocation (see <see cref="EncoderCliOptions"/>), and the encoders they describe.</summary>
public sealed record EncoderArgs
{
    public string ImageEncoder { get; init; } = "resnet18";
    public string? ImageInput { get; init; }
    public string? ImageOutput { get; init; }
    public string? ImageTokenOutput { get; init; }
    public string ImageLayout { get; init; } = "pooled";
    public int ImageClsIndex { get; init; }
    public int ImageRegisters { get; init; }
    public string? ImagePooling { get; init; }
    public string ImageResize { get; init; } = "crop";
    public int? ImageResizeSize { get; init; }
    public int ImageSize { get; init; } = 224;
    public string ImageScale { get; init; } = "1/255";
    public string ImageMean { get; init; } = "0.485,0.456,0.406";
    public string ImageStd { get; init; } = "0.229,0.224,0.225";
    public string ImageChannels { get; init; } = "rgb";
    public string TextEncoder { get; init; } = "minilm";
    public int? GpuDeviceId { get; init; }
    public bool FallbackToCpu { get; init; }
    public long MaxImagePixels { get; init; } = Encoders.ImageFileDecoder.DefaultMaxPixels;
    public string? TextTokenizer { get; init; }
    public string? TextVocab { get; init; }
    public string? TextMerges { get; init; }
    public string TextSpecialTokens { get; init; } = "<s>,</s>,<pad>";
    public bool TextAddPrefixSpace { get; init; }
    public bool TextCased { get; init; }
    public string TextOutput { get; init; } = "last_hidden_state";
    public string TextPooling { get; init; } = "mean";
    public int MaxLength { get; init; } = 256;

    /// <summary>The image encoder options the flags describe (null for the packaged 'resnet18').</summary>
    /// <exception cref="ArgumentException">A flag value is invalid (the message names the flag).</exception>
    /// <exception cref="FileNotFoundException">The model file does not exist.</exception>
    public OnnxImageEncoderOptions? ImageOptions(int batchSize)
    {
        if (ImageEncoder.Equals("resnet18", StringComparison.OrdinalIgnoreCase)) return null;
        if (!File.Exists(ImageEncoder))
            throw new FileNotFoundException($"--image-encoder: expected 'resnet18' or an existing .onnx file, got '{ImageEncoder}'.", ImageEncoder);
        if (string.IsNullOrEmpty(ImageOutput))
            throw new ArgumentException("--image-output (the output to read) is required with a custom ONNX image model.");
        var layout = ImageLayout.ToLowerInvariant() switch
        {
            "pooled" => (ImageTokenKind?)null,
            "vit" => ImageTokenKind.VitSequence,
            "feature-map" or "featuremap" or "cnn" => ImageTokenKind.FeatureMap,
            _ => throw new ArgumentException($"--image-layout must be pooled, vit or feature-map, got '{ImageLayout}'."),
        };
        if (layout is not null && ImageTokenOutput is not null)
            throw new ArgumentException($"--image-token-output goes with --image-layout pooled; with --image-layout {ImageLayout} the tokens come from --image-output.");
        var pooling = (ImagePooling ?? (layout == ImageTokenKind.FeatureMap ? "mean" : "cls")).ToLowerInvariant() switch
        {
            "cls" => Encoders.ImagePooling.Cls,
            "mean" or "mean-patch" => Encoders.ImagePooling.MeanPatch,
            "cls+mean" or "cls-mean" or "concat" => Encoders.ImagePooling.ClsMeanPatch,
            _ => throw new ArgumentException($"--image-pooling must be cls, mean or cls+mean, got '{ImagePooling}'."),
        };
        if (layout is null && ImagePooling is not null)
            throw new ArgumentException("--image-pooling needs --image-layout vit or feature-map (a pooled output is used as it is).");
        if ((ImageClsIndex != 0 || ImageRegisters != 0) && layout != ImageTokenKind.VitSequence)
            throw new ArgumentException("--image-cls-index and --image-registers need --image-layout vit.");
        return new OnnxImageEncoderOptions
        {
            Name = Path.GetFileNameWithoutExtension(ImageEncoder),
            ModelPath = Path.GetFullPath(ImageEncoder),
            InputName = ImageInput,
            PooledOutputName = layout is null ? ImageOutput : "",
            TokenOutputName = layout is null ? ImageTokenOutput : ImageOutput,
            TokenKind = layout ?? ImageTokenKind.FeatureMap,
            ClsTokenIndex = ImageClsIndex,
            RegisterTokens = ImageRegisters,
            Pooling = pooling,
            ResizeMode = ImageResize.ToLowerInvariant() switch
            {
                "crop" or "center-crop" or "shortest-side-center-crop" => ImageResizeMode.ShortestSideCenterCrop,
                "squash" => ImageResizeMode.Squash,
                _ => throw new ArgumentException($"--image-resize must be crop or squash, got '{ImageResize}'."),
            },
            ResizeSize = ImageResizeSize,
            ImageSize = ImageSize,
            ValueScale = ParseScale(ImageScale),
            Mean = ParseTriple(ImageMean, "--image-mean"),
            Std = ParseTriple(ImageStd, "--image-std"),
            ChannelOrder = ImageChannels.ToLowerInvariant() switch
            {
                "rgb" => ChannelOrder.Rgb,
                "bgr" => ChannelOrder.Bgr,
                _ => throw new ArgumentException($"--image-channels must be rgb or bgr, got '{ImageChannels}'."),
            },
            BatchSize = batchSize,
        };
    }

    /// <summary>The text encoder options the flags describe (null for the packaged 'minilm').</summary>
    /// <exception cref="ArgumentException">A flag value is invalid or a needed file is missing.</exception>
    /// <exception cref="FileNotFoundException">The model file does not exist.</exception>
    public OnnxTextEncoderOptions? TextOptions(int batchSize)
    {
        if (TextEncoder.Equals("minilm", StringComparison.OrdinalIgnoreCase)) return null;
        if (TextEncoder.Equals("arctic-xs", StringComparison.OrdinalIgnoreCase)) return PackagedEncoders.ArcticXsOptions(MaxLength, batchSize);
        if (!File.Exists(TextEncoder))
            throw new FileNotFoundException($"--text-encoder: expected 'minilm', 'arctic-xs' or an existing .onnx file, got '{TextEncoder}'.", TextEncoder);
        var kind = (TextTokenizer ?? (TextMerges is not null ? "bpe" : "wordpiece")).ToLowerInvariant() switch
        {
            "wordpiece" or "bert" => TextTokenizerKind.WordPiece,
            "bpe" or "byte-level-bpe" or "roberta" or "gpt2" => TextTokenizerKind.ByteLevelBpe,
            _ => throw new ArgumentException($"--text-tokenizer must be wordpiece or bpe, got '{TextTokenizer}'."),
        };
        if (string.IsNullOrEmpty(TextVocab) || !File.Exists(TextVocab))
            throw new ArgumentException($"--text-vocab (an existing {(kind == TextTokenizerKind.WordPiece ? "WordPiece vocab.txt" : "BPE vocab.json")}) is required with a custom ONNX text model, got '{TextVocab}'.");
        if (kind == TextTokenizerKind.ByteLevelBpe && (string.IsNullOrEmpty(TextMerges) || !File.Exists(TextMerges)))
            throw new ArgumentException($"--text-merges (an existing merges.txt) is required with --text-tokenizer bpe, got '{TextMerges}'.");
        var specials = TextSpecialTokens.Split(',');
        if (specials.Length != 3 || specials.Any(s => s.Length == 0))
            throw new ArgumentException($"--text-special-tokens needs 3 comma-separated tokens (start,end,padding), got '{TextSpecialTokens}'.");
        return new OnnxTextEncoderOptions
        {
            Name = Path.GetFileNameWithoutExtension(TextEncoder),
            ModelPath = Path.GetFullPath(TextEncoder),
            TokenizerKind = kind,
            VocabPath = Path.GetFullPath(TextVocab),
            MergesPath = kind == TextTokenizerKind.ByteLevelBpe ? Path.GetFullPath(TextMerges!) : null,
            LowerCase = !TextCased,
            BpeBosToken = specials[0], BpeEosToken = specials[1], BpePadToken = specials[2],
            BpeAddPrefixSpace = TextAddPrefixSpace,
            OutputName = TextOutput,
            MaxLength = MaxLength,
            BatchSize = batchSize,
            Pooling = TextPooling.ToLowerInvariant() switch
            {
                "mean" => Encoders.TextPooling.Mean,
                "cls" => Encoders.TextPooling.Cls,
                _ => throw new ArgumentException($"--text-pooling must be mean or cls, got '{TextPooling}'."),
            },
        };
    }

    /// <summary>The image encoder the flags describe.</summary>
    public IImageEncoder CreateImageEncoder(int batchSize)
    {
        if (ImageOptions(batchSize) is { } o) return OpenOnnx("--image-encoder", o.ModelPath!, o.ImageSize, () => new OnnxImageEncoder(Device(o)));
        PackagedEncoders.ResNet18(batchSize).Dispose(); // clear error when the package's files are missing
        return new OnnxImageEncoder(Device(PackagedEncoders.ResNet18Options(batchSize)));
    }

    /// <summary>The text encoder the flags describe.</summary>
    public ITextEncoder CreateTextEncoder(int batchSize)
        => TextOptions(batchSize) is { } o ? OpenOnnx("--text-encoder", o.ModelPath!, null, () => new OnnxTextEncoder(Device(o)))
            : new OnnxTextEncoder(Device(PackagedEncoders.MiniLMOptions(MaxLength, batchSize)));

    private OnnxImageEncoderOptions Device(OnnxImageEncoderOptions o)
    {
        if (MaxImagePixels <= 0) throw new ArgumentException($"--max-image-pixels must be positive, got {MaxImagePixels}.");
        o.GpuDeviceId = GpuDeviceId; o.FallbackToCpu = FallbackToCpu; o.Log = Console.Error.WriteLine; o.MaxImagePixels = MaxImagePixels;
        return o;
    }

    private OnnxTextEncoderOptions Device(OnnxTextEncoderOptions o)
    {
        o.GpuDeviceId = GpuDeviceId; o.FallbackToCpu = FallbackToCpu; o.Log = Console.Error.WriteLine;
        return o;
    }

    /// <summary>Opens a user-given ONNX model; ONNX Runtime's own message does not name the file or the option.</summary>
    private static T OpenOnnx<T>(string option, string path, int? imageSize, Func<T> open)
    {
        try { return open(); }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            string? inputs = null;
            try
            {
                using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(path);
                inputs = string.Join(", ", session.InputMetadata.Select(kv => $"'{kv.Key}' [{string.Join(", ", kv.Value.Dimensions)}]"));
            }
            catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException) { }
            if (inputs is null) throw new InvalidDataException($"{option} '{path}' cannot be loaded as an ONNX model: {e.Message}", e);
            throw new InvalidDataException($"{option} '{path}' loads but rejects its input" +
                (imageSize is int size ? $" at --image-size {size}" : "") + $" (model inputs: {inputs}): {e.Message}", e);
        }
    }

    private static float ParseScale(string text)
    {
        var parts = text.Split('/');
        bool ok = float.TryParse(parts[0].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out float v);
        if (ok && parts.Length == 2)
        {
            ok = float.TryParse(parts[1].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out float d) && d != 0;
            if (ok) v /= d;
        }
        if (!ok || parts.Length > 2 || !float.IsFinite(v) || v <= 0)
            throw new ArgumentException($"--image-scale must be a positive number or fraction (e.g. 1/255 or 1), got '{text}'.");
        return v;
    }

    private static float[] ParseTriple(string text, string option)
    {
        var parts = text.Split(',');
        var v = new float[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!float.TryParse(parts[i].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out v[i]))
                throw new ArgumentException($"{option}: '{parts[i]}' is not a number (in '{text}').");
        return v.Length == 3 ? v : throw new ArgumentException($"{option} needs 3 comma-separated values, got '{text}'.");
    }
}
