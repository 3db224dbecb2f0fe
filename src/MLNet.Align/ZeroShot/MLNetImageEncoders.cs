using Microsoft.ML;
using Microsoft.ML.Transforms.Image;
using MLNet.Align.Onnx;

namespace MLNet.Align.ZeroShot;

/// <summary>
/// An image encoder expressed only in stock ML.NET transforms (LoadImages, ResizeImages, ExtractPixels, ApplyOnnxModel,
/// CopyColumns), so that it saves into an ML.NET zip and reloads without MLNet.Align. This is the pluggable image part
/// of <see cref="ZeroShotClassifierEstimator"/>: any ONNX image encoder whose preprocessing is expressible in these
/// transforms or in a preprocessing ONNX fits.
/// </summary>
public interface IMLNetImageEncoder
{
    /// <summary>Short name ("resnet18").</summary>
    string Name { get; }

    /// <summary>Width of the pooled embedding it produces (512 for ResNet18).</summary>
    int Dimension { get; }

    /// <summary>Stock estimators reading image file paths from <paramref name="imagePathColumnName"/> (string,
    /// relative to <paramref name="imageFolder"/> when given) and writing <paramref name="outputColumnName"/>: float
    /// vector of <see cref="Dimension"/> values. Intermediate columns use the ONNX tensor names of the encoder.</summary>
    IEstimator<ITransformer> CreateEstimator(TransformsCatalog transforms, string outputColumnName, string imagePathColumnName, string? imageFolder);
}

/// <summary>
/// ResNet18 from Microsoft.ML.DnnImageFeaturizer.ResNet18 as stock ML.NET transforms:
/// LoadImages -> ResizeImages(224, 224) -> ExtractPixels (planar, 0..255) -> [alpha onto white, a tiny ONNX] ->
/// ApplyOnnxModel(ResNetPreprocess.onnx: OriginalInput -> PreprocessedInput) -> CopyColumns(Input247) ->
/// ApplyOnnxModel(ResNet18.onnx: Input247 -> Pooling395_Output_0 [1,512,1,1]) -> CopyColumns(output).
/// The ONNX bytes are embedded in the saved zip by OnnxTransformer.
/// </summary>
public sealed class ResNet18MLNetImageEncoder : IMLNetTokenImageEncoder
{
    /// <summary>ResNet18 tensor names (docs/toolchain.md "Models inside packages").</summary>
    public const string PreprocessInput = "OriginalInput", PreprocessOutput = "PreprocessedInput",
        ModelInput = "Input247", ModelOutput = "Pooling395_Output_0", ImageColumn = "mlnet_align_image", PixelsColumn = "mlnet_align_argb";

    /// <summary>Uses the ONNX files the DnnImageFeaturizer.ResNet18 package copies to the app's output folder
    /// (<c>DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx</c>, <c>DnnImageModels/ResNet18Onnx/ResNet18.onnx</c>).</summary>
    /// <param name="modelsDirectory">Folder holding <c>ResNetPrepOnnx/</c> and <c>ResNet18Onnx/</c>; default
    /// <c>AppContext.BaseDirectory/DnnImageModels</c>.</param>
    /// <exception cref="FileNotFoundException">A model file is missing (the message names it).</exception>
    public ResNet18MLNetImageEncoder(string? modelsDirectory = null)
    {
        var dir = modelsDirectory ?? Path.Combine(AppContext.BaseDirectory, "DnnImageModels");
        PreprocessModelPath = Path.Combine(dir, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        ModelPath = Path.Combine(dir, "ResNet18Onnx", "ResNet18.onnx");
        foreach (var p in new[] { PreprocessModelPath, ModelPath })
            if (!File.Exists(p)) throw new FileNotFoundException($"ResNet18 model file '{p}' is missing; reference Microsoft.ML.DnnImageFeaturizer.ResNet18 (it copies DnnImageModels/ to the output folder) or pass modelsDirectory.", p);
    }

    /// <inheritdoc/>
    public string Name => "resnet18";

    /// <inheritdoc/>
    public int Dimension => 512;

    /// <summary>Path of ResNetPreprocess.onnx.</summary>
    public string PreprocessModelPath { get; }

    /// <summary>Path of ResNet18.onnx.</summary>
    public string ModelPath { get; }

    /// <summary>How images are brought to 224x224. Default <see cref="ImageResizingEstimator.ResizingKind.IsoCrop"/>
    /// (ML.NET's default, what DnnImageFeaturizer samples use). Must match the image encoder used for training
    /// features, or the projector sees shifted inputs.</summary>
    public ImageResizingEstimator.ResizingKind Resizing { get; init; } = ImageResizingEstimator.ResizingKind.IsoCrop;

    /// <summary>Composite transparent pixels onto white (the <see cref="Encoders.IImageEncoder"/> contract) with a
    /// small ONNX graph over the ARGB pixels. Default true. When false, ML.NET's decoded colours are used as they
    /// are (transparent areas come out as the premultiplied colour, i.e. black).</summary>
    public bool CompositeOntoWhite { get; init; } = true;

    /// <summary>ResNet-18's last feature map (<see cref="Encoders.PackagedEncoders.ResNet18TokenOutputName"/>): 512 channels.</summary>
    public int TokenDimension => 512;

    /// <summary>Feature map [512, 7, 7], flattened to 49 tokens inside the projector graph.</summary>
    public Projection.ImageTokenLayout TokenLayout => Projection.ImageTokenLayout.Nchw;

    /// <summary>7 x 7 = 49 tokens.</summary>
    public (int Height, int Width) TokenGrid => (7, 7);

    /// <inheritdoc/>
    public IEstimator<ITransformer> CreateEstimator(TransformsCatalog transforms, string outputColumnName, string imagePathColumnName, string? imageFolder)
        => Build(transforms, outputColumnName, null, imagePathColumnName, imageFolder);

    /// <summary>As <see cref="CreateEstimator"/>, with ResNet18.onnx edited to also output
    /// <see cref="Encoders.PackagedEncoders.ResNet18TokenOutputName"/> [1, 512, 7, 7] (weights unchanged, batch kept at 1),
    /// copied into <paramref name="tokensColumnName"/> (25,088 floats, channel-major).</summary>
    public IEstimator<ITransformer> CreateTokenEstimator(TransformsCatalog transforms, string pooledColumnName, string tokensColumnName, string imagePathColumnName, string? imageFolder)
        => Build(transforms, pooledColumnName, tokensColumnName, imagePathColumnName, imageFolder);

    private IEstimator<ITransformer> Build(TransformsCatalog transforms, string outputColumnName, string? tokensColumnName, string imagePathColumnName, string? imageFolder)
    {
        ArgumentNullException.ThrowIfNull(transforms);
        var t = transforms;
        IEstimator<ITransformer> chain = t.LoadImages(ImageColumn, imageFolder, imagePathColumnName)
            .Append(t.ResizeImages(ImageColumn, 224, 224, ImageColumn, Resizing));
        if (CompositeOntoWhite)
        {
            chain = chain
                .Append(t.ExtractPixels(PixelsColumn, ImageColumn, ImagePixelExtractingEstimator.ColorBits.All,
                    ImagePixelExtractingEstimator.ColorsOrder.ARGB, interleavePixelColors: false, outputAsFloatArray: true))
                .Append(t.ApplyOnnxModel(new[] { PreprocessInput }, new[] { PixelsColumn }, new MemoryStream(AlphaCompositeOnnx(224, 224, PixelsColumn, PreprocessInput))));
        }
        else
        {
            chain = chain.Append(t.ExtractPixels(PreprocessInput, ImageColumn, outputAsFloatArray: true));
        }
        chain = chain
            .Append(t.ApplyOnnxModel(new[] { PreprocessOutput }, new[] { PreprocessInput }, PreprocessModelPath))
            .Append(t.CopyColumns(ModelInput, PreprocessOutput));
        if (tokensColumnName is null)
            return chain
                .Append(t.ApplyOnnxModel(new[] { ModelOutput }, new[] { ModelInput }, ModelPath))
                .Append(t.CopyColumns(outputColumnName, ModelOutput));
        var model = OnnxGraphEditor.Parse(Encoders.PackagedEncoders.ResNet18ModelBytes(addTokenOutput: true, symbolicBatch: false, modelPath: ModelPath));
        MLNetOnnx.FixShape(model.Graph.Output.First(o => o.Name == Encoders.PackagedEncoders.ResNet18TokenOutputName), 1, 512, 7, 7);
        return chain
            .Append(t.ApplyOnnxModel(new[] { ModelOutput, Encoders.PackagedEncoders.ResNet18TokenOutputName }, new[] { ModelInput },
                new MemoryStream(OnnxGraphEditor.ToBytes(model))))
            .Append(t.CopyColumns(outputColumnName, ModelOutput))
            .Append(t.CopyColumns(tokensColumnName, Encoders.PackagedEncoders.ResNet18TokenOutputName));
    }

    /// <summary>
    /// ONNX graph: input planar ARGB float [1, 4, h, w] in 0..255 as ML.NET extracts it from a decoded image
    /// (SkiaSharp decodes with premultiplied alpha), output RGB [1, 3, h, w] composited onto white:
    /// rgb + (255 - a). For opaque pixels (a = 255) this is the identity.
    /// </summary>
    public static byte[] AlphaCompositeOnnx(int height, int width, string inputName, string outputName)
    {
        var g = new OnnxGraphBuilder("alpha_onto_white");
        var x = g.Input(inputName, 1, 4, height, width);
        var parts = g.Node("Split", new[] { x, g.ConstantInt64("split_sizes", new long[] { 1, 3 }, 2) }, outputCount: 2,
            attributes: new Dictionary<string, object> { ["axis"] = 1L });
        var white = g.Constant("white", new[] { 255f }, 1);
        var missing = g.Op("Sub", white, parts[0]);
        g.Node("Add", new[] { parts[1], missing }, outputs: new[] { outputName });
        g.Output(outputName, 1, 3, height, width);
        return g.ToBytes();
    }
}
